"""Provider kinds -> adapter classes, by dotted path (add a provider by adding a line)."""

from __future__ import annotations

import asyncio

from django.utils.module_loading import import_string

from providers.adapters.base import ChatProvider, ProviderSettings

ADAPTERS: dict[str, str] = {
    "openai": "providers.adapters.openai.OpenAIProvider",
    "anthropic": "providers.adapters.anthropic.AnthropicProvider",
    "gemini": "providers.adapters.gemini.GeminiProvider",
    "local": "providers.adapters.local.LocalProvider",
}

_instances: dict[tuple, ChatProvider] = {}


def adapter_class(kind: str) -> type[ChatProvider]:
    try:
        return import_string(ADAPTERS[kind])
    except KeyError as exc:
        raise ValueError(f"Unknown provider kind: {kind}") from exc


def get_provider(settings: ProviderSettings) -> ChatProvider:
    """One adapter instance per configuration and event loop, so SDK clients (and their
    connection pools, which belong to a loop) are reused across requests."""
    try:
        loop_id = id(asyncio.get_running_loop())
    except RuntimeError:
        loop_id = 0
    key = (*settings.cache_key(), loop_id)
    provider = _instances.get(key)
    if provider is None:
        provider = adapter_class(settings.kind)(settings)
        _instances[key] = provider
    return provider


def clear() -> None:
    """Forget cached adapters (tests, configuration changes)."""
    _instances.clear()
