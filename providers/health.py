"""Live checks of providers for the admin and seed 000 routes: health (each adapter's own cheap
check, under a timeout) and a probe (one real, small completion). Each returns the plain dict its
route shows; provider errors are reported in it, not raised."""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import async_to_sync

from providers import registry, selectors, services
from providers.adapters.base import ProviderSettings
from providers.errors import ProviderError
from providers.reliability import breaker

HEALTH_TIMEOUT_SECONDS = 15.0


async def aprovider_health(provider: ProviderSettings) -> dict:
    """``status`` (healthy/unhealthy/...), ``response_time`` (seconds), ``model``, ``circuit``, ``error``."""
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(registry.get_provider(provider).health(), HEALTH_TIMEOUT_SECONDS)
        status, error = result.status, result.detail
    except TimeoutError:
        status, error = "unhealthy", "timeout"
    return {"status": status, "response_time": round(time.perf_counter() - started, 3),
            "model": provider.default_model, "circuit": breaker.status(provider.name), "error": error}


def provider_health(provider: ProviderSettings) -> dict:
    """:func:`aprovider_health` for sync callers."""
    return async_to_sync(aprovider_health)(provider)


async def aproviders_health(providers: list[ProviderSettings]) -> dict[str, dict]:
    """:func:`aprovider_health` of each provider, concurrently, by name."""
    results = await asyncio.gather(*(aprovider_health(p) for p in providers))
    return {p.name: r for p, r in zip(providers, results, strict=True)}


def provider_health_report() -> dict:
    """Every configured provider's health, an overall status and whether the default is healthy."""
    providers = selectors.configured_providers()
    default = selectors.default_provider_name()
    report = async_to_sync(aproviders_health)(providers)
    healthy = [r["status"] == "healthy" for r in report.values()]
    overall = "healthy" if all(healthy) else ("degraded" if any(healthy) else "unhealthy")
    return {"overall_status": overall, "providers": report, "default_provider": default,
            "default_provider_healthy": report.get(default, {}).get("status") == "healthy"}


def provider_probe_report(provider: ProviderSettings, *, model: str | None, message: str) -> dict:
    """One real completion through ``provider`` (no fallback): success, reply, time and tokens,
    or the provider error's code."""
    started = time.perf_counter()
    try:
        result = async_to_sync(services.provider_probe)(provider, model=model, message=message)
    except ProviderError as exc:
        return {"success": False, "provider": provider.name, "model": model or provider.default_model,
                "response": "", "response_time": round(time.perf_counter() - started, 3),
                "tokens_used": 0, "error": exc.code}
    return {"success": True, "provider": provider.name, "model": result.model, "response": result.text,
            "response_time": round(time.perf_counter() - started, 3),
            "tokens_used": result.usage.total_tokens, "error": None}
