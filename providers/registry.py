"""Provider kinds -> adapter classes, by dotted path (add a provider by adding a line)."""

from __future__ import annotations

import asyncio
import logging

from django.utils.module_loading import import_string

from providers.adapters.base import ChatProvider, ProviderSettings

ADAPTERS: dict[str, str] = {
    "openai": "providers.adapters.openai.OpenAIProvider",
    "anthropic": "providers.adapters.anthropic.AnthropicProvider",
    "gemini": "providers.adapters.gemini.GeminiProvider",
    "local": "providers.adapters.local.LocalProvider",
}

# (configuration, loop id) -> (adapter, its loop). The loop is held so its id cannot be reused by
# another loop while the entry lives.
_instances: dict[tuple, tuple[ChatProvider, asyncio.AbstractEventLoop | None]] = {}
_closing: set[asyncio.Task] = set()
logger = logging.getLogger(__name__)


def adapter_class(kind: str) -> type[ChatProvider]:
    try:
        return import_string(ADAPTERS[kind])
    except KeyError as exc:
        raise ValueError(f"Unknown provider kind: {kind}") from exc


def get_provider(settings: ProviderSettings) -> ChatProvider:
    """One adapter instance per configuration and event loop, so SDK clients (and their
    connection pools, which belong to a loop) are reused across requests. Adapters of loops that
    have closed (``async_to_sync`` runs each call of a Celery task on a loop of its own) are closed
    and dropped whenever a new adapter is built."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    key = (*settings.cache_key(), id(loop) if loop is not None else 0)
    entry = _instances.get(key)
    if entry is not None:
        return entry[0]
    _discard([k for k, (_, owner) in list(_instances.items()) if owner is not None and owner.is_closed()])
    provider = adapter_class(settings.kind)(settings)
    _instances[key] = (provider, loop)
    return provider


def clear() -> None:
    """Close and forget the cached adapters (tests, configuration changes)."""
    _discard(list(_instances))


def _discard(keys: list[tuple]) -> None:
    """Drop these entries and close their adapters' connections: on the adapter's own loop while
    that runs (from any thread), else here (a closed loop's connections need no I/O to let go).
    An SDK client dropped unclosed keeps its sockets until collected, and aiohttp's then logs an
    error."""
    dropped = [entry for entry in (_instances.pop(key, None) for key in keys) if entry is not None]
    for provider, owner in dropped:
        if owner is not None and owner.is_running():
            owner.call_soon_threadsafe(_close_soon, provider)
            continue
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(_closed(provider))
        else:
            _close_soon(provider)


def _close_soon(provider: ChatProvider) -> None:
    """Close ``provider`` in a task of the running loop (held until done, as asyncio asks)."""
    task = asyncio.get_running_loop().create_task(_closed(provider))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def _closed(provider: ChatProvider) -> None:
    try:
        await provider.aclose()
    except Exception:  # its loop is gone or its connections broke: nothing left to release
        logger.debug("closing adapter %s failed", provider.name, exc_info=True)
