"""Operating the response cache: statistics, warming (shared entries for common prompts) and clearing.

Warming runs as a Celery task (:func:`providers.tasks.cache_warm`); its progress is kept in the
Django cache under the task id, so ``GET /cache/warm/{task_id}`` answers from any worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from chatplatform.api.exceptions import AppError
from providers import cache as response_cache
from providers import semantic_cache, services
from providers.adapters.base import ChatMessage
from providers.models import ResponseCacheEntry
from providers.params import GenerationParams

SHARED_SCOPE = response_cache.SHARED_SCOPE
WARM_PREFIX = "rcache:warm:"
WARM_STATUS_TTL = 24 * 3600
WARM_LIMIT_MAX = 100

# The prompts each documented warming pattern stands for; any other pattern is itself a prompt.
PATTERN_PROMPTS: dict[str, list[str]] = {
    "greeting": ["Hello", "Hi", "Hello, how are you?", "Good morning", "Hey there"],
    "help": ["Can you help me?", "What can you do?", "I need help", "How do I use this?", "Help"],
    "about": ["Who are you?", "What are you?", "Tell me about yourself", "What is this service?",
              "Are you a bot?"],
}


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover


def cache_stats() -> dict[str, Any]:
    """Seed 001's statistics, from the shared counters and the entry rows (all workers)."""
    counts = response_cache.counters()
    live = ResponseCacheEntry.objects.filter(expires_at__gt=timezone.now())
    size = int(live.aggregate(total=Sum("size_bytes"))["total"] or 0)
    hits, misses = counts["hits"], counts["misses"]
    looked_up = hits + misses
    return {
        "hits": hits, "misses": misses, "bypasses": counts["bypasses"], "semantic_hits": counts["semantic_hits"],
        "hit_rate": round(hits / looked_up, 4) if looked_up else 0.0,
        "total_requests": looked_up + counts["bypasses"],
        "cache_size_bytes": size, "cache_size_human": _human(size), "entries": live.count(),
        "avg_response_time_ms": round(counts["hit_time_us"] / hits / 1000, 3) if hits else 0.0,
        "memory_usage_percent": round(100 * size / settings.RESPONSE_CACHE_MAX_BYTES, 2),
        "evictions": counts["evictions"],
        "last_eviction": cache.get(response_cache.STATS_PREFIX + "last_eviction"),
    }


def cache_clear(*, pattern: str = "", progress: Callable[[int, int], None] | None = None,
                batch: int = 500) -> int:
    """Delete the entries whose prompt or model contains ``pattern`` (every entry without one)."""
    rows = ResponseCacheEntry.objects.all()
    if pattern:
        rows = rows.filter(Q(prompt__icontains=pattern) | Q(model__icontains=pattern))
    keys = list(rows.values_list("key", flat=True))
    cleared = 0
    for start in range(0, len(keys), batch):
        cleared += response_cache.entries_delete(keys[start:start + batch])
        if progress:
            progress(min(start + batch, len(keys)), len(keys))
    return cleared


def warm_prompts(patterns: list[str], limit: int) -> list[str]:
    prompts: list[str] = []
    for pattern in patterns:
        prompts += PATTERN_PROMPTS.get(pattern.strip().lower(), [pattern])
    return list(dict.fromkeys(p for p in prompts if p.strip()))[:limit]


def cache_warm_enqueue(*, patterns: list[str], models: list[str], limit: int) -> dict[str, Any]:
    """Queue the warming task; answer its id and first status."""
    from providers import tasks

    for model in models:
        if services.selectors.catalogue_model(model) is None:
            raise AppError(f"Unknown model '{model}'.", status_code=400, details={"models": [f"Unknown: {model}."]})
    task_id = uuid.uuid4().hex
    status = _warm_status_set(task_id, status="pending", done=0, total=len(warm_prompts(patterns, limit)) *
                              max(1, len(models)), warmed=0, failed=0)
    transaction.on_commit(lambda: tasks.cache_warm.delay(task_id=task_id, patterns=patterns, models=models,
                                                         limit=limit))
    return status


def _warm_status_set(task_id: str, **fields: Any) -> dict[str, Any]:
    status = {**(cache.get(WARM_PREFIX + task_id) or {"task_id": task_id}), **fields,
              "updated_at": timezone.now().isoformat()}
    cache.set(WARM_PREFIX + task_id, status, timeout=WARM_STATUS_TTL)
    return status


def warm_status(task_id: str) -> dict[str, Any]:
    status = cache.get(WARM_PREFIX + task_id)
    if status is None:
        raise AppError("Warming task not found.", status_code=404)
    return status


def cache_warm(*, patterns: list[str], models: list[str], limit: int, task_id: str | None = None,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Ask each model each prompt once and store the replies as shared entries (default
    parameters, no system prompt, no history: what a bare first question sends)."""
    prompts = warm_prompts(patterns, limit)
    model_ids = models or [None]
    total, done, warmed, failed = len(prompts) * len(model_ids), 0, 0, 0
    if task_id:
        _warm_status_set(task_id, status="running", total=total)
    for model in model_ids:
        for prompt in prompts:
            try:
                warmed += _warm_one(model, prompt)
            except Exception:  # one failing prompt does not stop the rest
                failed += 1
            done += 1
            if progress:
                progress(done, total)
            if task_id:
                _warm_status_set(task_id, done=done, warmed=warmed, failed=failed)
    result = {"status": "completed", "done": done, "total": total, "warmed": warmed, "failed": failed}
    if task_id:
        result = _warm_status_set(task_id, **result)
    return result


def _warm_one(model: str | None, prompt: str) -> int:
    message = ChatMessage("user", prompt)
    call = services.ChatCall(messages=[message], model=model, params=GenerationParams(), fallback=False)
    stream = services.chat_stream(call)
    model_id = stream.routes[0].model_id
    context = response_cache.context_key(model=model_id, system=None, params=call.params, prior=[])
    key = response_cache.exact_key(scope=SHARED_SCOPE, context=context, last=message)
    result = async_to_sync(services.chat_complete)(call)
    if result.status != "success" or not result.text:
        return 0
    value = {"text": result.text, "thinking": result.thinking, "model": result.model, "provider": result.provider,
             "finish_reason": result.finish_reason, "tool_calls": [],
             "usage": [result.usage.prompt_tokens, result.usage.completion_tokens]}
    vector = semantic_cache.embed(prompt).tobytes() if settings.SEMANTIC_CACHE_ENABLED else None
    return int(response_cache.entry_store(key=key, scope=SHARED_SCOPE, context=context, model=model_id,
                                          prompt=prompt, value=value, vector=vector, shared=True))
