"""The response cache: exact, then conversation-aware semantic.

A turn that allows caching asks :func:`cached_stream` for its stream. The **exact key** hashes the
model, every generation parameter (tools and response format included), the system prompt and the
whole message context, with the caller's scope; the **context key** hashes the same minus the last
user message. Values (the reply's text, tool calls, usage) live in the Django cache (Redis in
production) for ``RESPONSE_CACHE_TTL`` seconds; a :class:`~providers.models.ResponseCacheEntry` row
per entry holds its scope, context key and the MiniLM vector of the last user message, so the
semantic lookup (:mod:`providers.semantic_cache`) and the statistics work across workers and restarts.

An entry answers its own scope (the user, the API key, or the anonymous caller's address) and, when
``shared`` (warmed entries), everyone. A hit replays as a stream (:mod:`providers.cache_replay`)
with zero cost; a miss records the reply when it completes without error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, is_dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from chatplatform.api import metrics
from chatplatform.api.counters import counter_add
from providers import semantic_cache
from providers.adapters.base import ChatMessage
from providers.cache_replay import ReplayStream
from providers.models import ResponseCacheEntry

logger = logging.getLogger(__name__)

VALUE_PREFIX = "rcache:v1:"
STATS_PREFIX = "rcache:stats:"
COUNTERS = ("hits", "misses", "bypasses", "semantic_hits", "evictions", "hit_time_us")
SHARED_SCOPE = "shared"  # warmed entries: every caller reads them


@dataclass
class Lookup:
    """The cache's verdict for one call: ``HIT``, ``MISS`` or ``BYPASS``."""

    status: str = "BYPASS"
    key: str | None = None
    similarity: float | None = None

    @property
    def hit(self) -> bool:
        return self.status == "HIT"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=_plain, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _message(message: ChatMessage) -> dict:
    return asdict(message)


def context_key(*, model: str, system: str | None, params: Any, prior: list[ChatMessage]) -> str:
    """What must match for a semantic hit: model, parameters, system prompt, earlier messages."""
    return _digest({"model": model, "system": system or "", "params": asdict(params),
                    "prior": [_message(m) for m in prior]})


def exact_key(*, scope: str, context: str, last: ChatMessage) -> str:
    return _digest({"scope": scope, "context": context, "last": _message(last)})


def scope_of(user: Any, api_key: Any, address: str = "") -> str:
    """Whose entries a caller reads and writes: its API key, else its user, else its address."""
    if getattr(api_key, "pk", None):
        return f"key:{api_key.pk}"
    if getattr(user, "pk", None):
        return f"user:{user.pk}"
    return f"ip:{address}"


def bump(counter: str, amount: int = 1) -> None:
    """Add to a shared statistics counter (best effort: the cache being away never fails a turn)."""
    key = STATS_PREFIX + counter
    try:
        counter_add(key, amount)
    except Exception:  # pragma: no cover - a cache outage only loses statistics
        logger.warning("Could not count %s", counter)


def counters() -> dict[str, int]:
    found = cache.get_many([STATS_PREFIX + c for c in COUNTERS])
    return {c: int(found.get(STATS_PREFIX + c) or 0) for c in COUNTERS}


def value_get(key: str) -> dict | None:
    return cache.get(VALUE_PREFIX + key)


def entry_store(*, key: str, scope: str, context: str, model: str, prompt: str, value: dict,
                vector: bytes | None, shared: bool = False) -> bool:
    """Store one reply (False when it exceeds ``RESPONSE_CACHE_MAX_ENTRY_BYTES``)."""
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > settings.RESPONSE_CACHE_MAX_ENTRY_BYTES:
        return False
    ttl = settings.RESPONSE_CACHE_TTL
    cache.set(VALUE_PREFIX + key, value, timeout=ttl)
    ResponseCacheEntry.objects.update_or_create(key=key, defaults={
        "scope": scope, "shared": shared, "context_key": context, "model": model, "prompt": prompt[:4000],
        "vector": vector, "size_bytes": size, "hits": 0, "created_at": timezone.now(),
        "expires_at": timezone.now() + timedelta(seconds=ttl)})
    evict()
    return True


def evict() -> int:
    """Evict expired entries, then the oldest beyond ``RESPONSE_CACHE_MAX_ENTRIES``; how many went."""
    now = timezone.now()
    expired = list(ResponseCacheEntry.objects.filter(expires_at__lte=now).values_list("key", flat=True)[:500])
    overflow = ResponseCacheEntry.objects.count() - len(expired) - settings.RESPONSE_CACHE_MAX_ENTRIES
    if overflow > 0:
        expired += list(ResponseCacheEntry.objects.filter(expires_at__gt=now).order_by("created_at")
                        .values_list("key", flat=True)[:overflow])
    if expired:
        entries_delete(expired)
        bump("evictions", len(expired))
        cache.set(STATS_PREFIX + "last_eviction", now.isoformat(), timeout=None)
    return len(expired)


def entries_delete(keys: list[str]) -> int:
    cache.delete_many([VALUE_PREFIX + k for k in keys])
    return ResponseCacheEntry.objects.filter(key__in=keys).delete()[0]


def lookup(*, scope: str, model: str, system: str | None, params: Any,
           messages: list[ChatMessage]) -> tuple[Lookup, dict | None, dict]:
    """(verdict, stored value on a hit, what a miss needs to store the reply)."""
    started = time.perf_counter()
    prior, last = messages[:-1], messages[-1]
    context = context_key(model=model, system=system, params=params, prior=prior)
    key = exact_key(scope=scope, context=context, last=last)
    plan = {"key": key, "scope": scope, "context": context, "model": model, "prompt": last.content, "vector": None}
    shared = exact_key(scope=SHARED_SCOPE, context=context, last=last)
    found_values = cache.get_many([VALUE_PREFIX + key, VALUE_PREFIX + shared])
    value = found_values.get(VALUE_PREFIX + key)
    if value is None and VALUE_PREFIX + shared in found_values:
        key, value = shared, found_values[VALUE_PREFIX + shared]
    similarity = None
    if value is None and settings.SEMANTIC_CACHE_ENABLED and last.role == "user" and last.content.strip() \
            and not last.images:
        vector = semantic_cache.embed(last.content)
        plan["vector"] = vector.tobytes()
        found = semantic_cache.nearest(context=context, scope=scope, vector=vector,
                                       threshold=settings.SEMANTIC_CACHE_THRESHOLD)
        if found is not None:
            hit_key, similarity = found
            value = value_get(hit_key)
            key = hit_key if value is not None else key
    if value is None:
        bump("misses")
        metrics.cache_miss("semantic" if plan["vector"] is not None else "exact")
        return Lookup("MISS", key), None, plan
    bump("hits")
    metrics.cache_hit("semantic" if similarity is not None else "exact")
    if similarity is not None:
        bump("semantic_hits")
    ResponseCacheEntry.objects.filter(key=key).update(hits=F("hits") + 1)
    bump("hit_time_us", int((time.perf_counter() - started) * 1_000_000))
    return Lookup("HIT", key, round(similarity, 4) if similarity is not None else 1.0), value, plan


def cacheable(params: Any) -> bool:
    """Replies that depend on the moment (web grounding) are never cached."""
    return not getattr(params, "web_grounding", False)


def cached_stream(stream: Any, *, scope: str, enabled: bool) -> Any:
    """The stream a turn runs: ``stream`` itself (recording its reply on a miss), or a replay of
    a cached reply. ``stream.cache`` carries the :class:`Lookup`."""
    call = stream.call
    if not (enabled and settings.RESPONSE_CACHE_ENABLED and stream.routes and call.messages
            and cacheable(call.params)):
        bump("bypasses")
        stream.cache = Lookup("BYPASS")
        return stream
    model = stream.routes[0].model_id
    verdict, value, plan = lookup(scope=scope, model=model, system=call.system, params=call.params,
                                  messages=call.messages)
    if value is not None:
        replay = ReplayStream(call, stream.routes, value)
        replay.cache = verdict
        return replay
    stream.cache = verdict

    async def record(result: Any) -> None:
        if result.status != "success" or not (result.text or result.tool_calls):
            return
        value = {"text": result.text, "thinking": result.thinking, "model": result.model,
                 "provider": result.provider, "finish_reason": result.finish_reason,
                 "tool_calls": [asdict(c) for c in result.tool_calls],
                 "usage": [result.usage.prompt_tokens, result.usage.completion_tokens]}
        try:
            await sync_to_async(entry_store)(value=value, **plan)
        except Exception:  # storing is best effort: the reply itself went out
            logger.exception("Could not store a cached reply")

    stream.on_success = record
    return stream
