"""Provider reads: which providers are configured (environment + ProviderConfig rows), the
default provider/model, the catalogue, and the provider listing the admin routes show.

The resolved configuration is cached in-process for a few seconds. A change to a ProviderConfig
or catalogue row drops it at once in this process and bumps a version number in the shared cache
(Redis in production); every worker compares that number once per request (or every quarter
second outside requests) and drops its copy when it moved, so a change made through one worker is
seen by the next request on any other.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError

from chatplatform.api import memo
from chatplatform.api.context import current_request_id
from chatplatform.api.exceptions import AppError
from providers.adapters.base import ProviderSettings
from providers.catalogue import LOCAL_MODEL_ID
from providers.crypto import mask
from providers.models import Model, ProviderConfig

DISPLAY_NAMES = {"openai": "OpenAI", "anthropic": "Anthropic", "gemini": "Google Gemini", "local": "Local (llama.cpp)"}
FEATURES = {
    "openai": ["chat", "completion", "streaming", "embeddings"],
    "anthropic": ["chat", "completion", "streaming", "extended_thinking"],
    "gemini": ["chat", "completion", "streaming", "vision", "extended_thinking", "web_grounding", "embeddings"],
    "local": ["chat", "completion", "streaming"],
}
_TTL_SECONDS = 5.0
_VERSION_KEY = "providers:config-version"
memo.watch_shared_key(_VERSION_KEY)
_VERSION_CHECK_SECONDS = 0.25  # outside a request (Celery, WebSocket frames)
_lock = threading.Lock()
_cache: dict[str, tuple[float, object]] = {}
_seen: dict[str, object] = {"version": None, "request": None, "at": -1.0}
logger = logging.getLogger(__name__)


def invalidate() -> None:
    """Drop this process's copy of the configuration (and the adapters built from it)."""
    with _lock:
        _cache.clear()
    from providers import registry

    registry.clear()


def announce_change() -> None:
    """A provider or catalogue row changed: drop this process's copy, and tell the other workers
    (through the shared cache) to drop theirs."""
    invalidate()
    try:
        try:
            cache.incr(_VERSION_KEY)
        except ValueError:  # no version yet
            if not cache.add(_VERSION_KEY, 1, timeout=None):
                cache.incr(_VERSION_KEY)
    except Exception:  # the shared cache is away: other workers catch up within the TTL
        logger.warning("Could not announce a provider configuration change to other workers")


def _follow_other_workers() -> None:
    """Drop the local copy when another worker changed the configuration (see the module docstring)."""
    request_id = current_request_id()
    now = time.monotonic()
    if request_id is not None:
        if request_id == _seen["request"]:
            return
    elif now - float(_seen["at"]) < _VERSION_CHECK_SECONDS:  # type: ignore[arg-type]
        return
    try:
        version = memo.shared_value(_VERSION_KEY)  # in a request: read with the memos' versions
    except Exception:  # the shared cache is away: keep the local copy (and its TTL)
        return
    with _lock:
        _seen["request"], _seen["at"] = request_id, now
        if version != _seen["version"]:
            _seen["version"] = version
            _cache.clear()


def _cached(key: str, build):
    _follow_other_workers()
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
        if hit and now - hit[0] < _TTL_SECONDS:
            return hit[1]
    value = build()
    with _lock:
        _cache[key] = (now, value)
    return value


def _env_providers() -> dict[str, ProviderSettings]:
    common = dict(timeout=settings.PROVIDER_TIMEOUT_SECONDS, max_retries=settings.PROVIDER_MAX_RETRIES)
    found: dict[str, ProviderSettings] = {}
    if settings.OPENAI_API_KEY or settings.OPENAI_BASE_URL:
        found["openai"] = ProviderSettings(name="openai", kind="openai", api_key=settings.OPENAI_API_KEY,
                                           base_url=settings.OPENAI_BASE_URL, default_model="gpt-4o-mini",
                                           priority=10, **common)
    if settings.ANTHROPIC_API_KEY:
        found["anthropic"] = ProviderSettings(name="anthropic", kind="anthropic", api_key=settings.ANTHROPIC_API_KEY,
                                              base_url=settings.ANTHROPIC_BASE_URL,
                                              default_model="claude-sonnet-4.5", priority=20, **common)
    if settings.GEMINI_API_KEY:
        found["gemini"] = ProviderSettings(name="gemini", kind="gemini", api_key=settings.GEMINI_API_KEY,
                                           base_url=settings.GEMINI_BASE_URL, default_model="gemini-2.5-flash",
                                           priority=30, **common)
    found["local"] = ProviderSettings(name="local", kind="local", default_model=LOCAL_MODEL_ID, priority=1000,
                                      timeout=max(settings.PROVIDER_TIMEOUT_SECONDS, 300.0), max_retries=0)
    return found


def _build_configured() -> tuple[list[ProviderSettings], str | None, dict[str, dict[str, list[str]]]]:
    providers = _env_providers()
    default_name: str | None = None
    chains: dict[str, dict[str, list[str]]] = {}
    for row in ProviderConfig.objects.filter(team__isnull=True):
        base = providers.get(row.name)
        if not row.enabled:
            providers.pop(row.name, None)
            continue
        api_key = row.api_key or (base.api_key if base and base.kind == row.kind else "")
        base_url = row.base_url or (base.base_url if base and base.kind == row.kind else "")
        if row.kind != "local" and not (api_key or base_url):
            continue  # a row with no way to reach its provider is not configured
        providers[row.name] = ProviderSettings(
            name=row.name, kind=row.kind, api_key=api_key, base_url=base_url,
            default_model=row.default_model or (base.default_model if base else ""),
            timeout=row.timeout, max_retries=row.max_retries, priority=row.priority,
            extra=dict(row.settings or {}),
        )
        if row.is_default:
            default_name = row.name
        if isinstance(row.fallbacks, dict) and row.fallbacks:
            chains[row.name] = row.fallbacks
    ordered = sorted(providers.values(), key=lambda p: (p.priority, p.name))
    return ordered, default_name, chains


def configured_providers() -> list[ProviderSettings]:
    """Enabled providers in fallback order (priority, then name). ``local`` is always there."""
    return _cached("configured", _build_configured)[0]


def provider_settings(name: str) -> ProviderSettings | None:
    return next((p for p in configured_providers() if p.name == name), None)


def default_provider() -> ProviderSettings | None:
    """The provider an operator marked default at runtime (``is_default``: ``/gemini/configure``,
    ``/providers``, the Django admin), else DEFAULT_PROVIDER, else the first non-local provider,
    else local (None only when an operator disabled every provider, local included). The runtime
    choice wins: it is the later, explicit one; the environment is the starting point."""
    providers, marked, _ = _cached("configured", _build_configured)
    by_name = {p.name: p for p in providers}
    for candidate in (marked, settings.DEFAULT_PROVIDER):
        if candidate and candidate in by_name:
            return by_name[candidate]
    remote = [p for p in providers if p.kind != "local"]
    return remote[0] if remote else by_name.get("local")


def fallback_chain(model: Model, *, provider: str | None = None) -> list[str]:
    """The model ids that may answer when ``model`` fails, in order: a ProviderConfig row's
    ``fallbacks`` (the named provider's, else the first configured provider of the model's kind
    with an entry; the model's own entry, else ``"*"``), else ``MODEL_FALLBACKS``. Empty: none."""
    providers, _, chains = _cached("configured", _build_configured)
    candidates = [p for p in providers if p.name == provider] if provider else [
        p for p in providers if p.kind == model.provider]
    for candidate in candidates:
        rows = chains.get(candidate.name) or {}
        chain = rows.get(model.id) or rows.get("*")
        if chain:
            return [m for m in chain if m != model.id]
    return [m for m in settings.MODEL_FALLBACKS.get(model.id, []) if m != model.id]


def default_provider_name() -> str:
    provider = default_provider()
    return provider.name if provider else ""


def default_model_for(provider: ProviderSettings) -> str:
    """The model a request naming nothing gets from ``provider``: DEFAULT_MODEL for the default
    provider when that provider serves it and no row set a model of its own, else the provider's
    default model, else its first catalogue model."""
    providers, marked, _ = _cached("configured", _build_configured)
    if settings.DEFAULT_MODEL and provider.name == default_provider_name() and not (
            provider.name == marked and provider.default_model):
        model = catalogue_model(settings.DEFAULT_MODEL)
        if model is None or model.provider == provider.kind:
            return settings.DEFAULT_MODEL
    if provider.default_model:
        return provider.default_model
    first = Model.objects.filter(provider=provider.kind, enabled=True).order_by("sort_order", "id").first()
    return first.id if first else LOCAL_MODEL_ID


def providers_configured() -> dict[str, bool]:
    """Which providers have credentials (seed 001's health block). ``local`` needs none.

    Liveness must not depend on the database: if it cannot be read, the environment answers."""
    try:
        names = {p.name for p in configured_providers()}
    except DatabaseError:
        names = set(_env_providers())
    result = {kind: kind in names for kind in ("openai", "anthropic", "gemini", "local")}
    result.update({name: True for name in names})
    return result


def catalogue_model(model_id: str) -> Model | None:
    return _cached(f"model:{model_id}", lambda: Model.objects.filter(id=model_id, enabled=True).first())


def catalogue(*, public_only: bool = False) -> list[Model]:
    qs = Model.objects.filter(enabled=True)
    if public_only:
        qs = qs.filter(public=True)
    return list(qs.order_by("sort_order", "id"))


def model_available(model: Model) -> bool:
    """Its provider kind is configured and that provider's circuit breaker is closed."""
    from providers.reliability import breaker

    return any(p.kind == model.provider and breaker.allows(p.name) for p in configured_providers())


def anonymous_model(model_id: str | None) -> str | None:
    """Anonymous callers may only use public models (403 otherwise). With no model asked for, or
    a public one whose provider is not configured here, the default model if it is public and
    available, else the first available public one (the response names the model that answered)."""
    if model_id:
        model = catalogue_model(model_id)
        if model is None:
            return model_id  # unknown: the provider layer's 422
        if not model.public:
            raise AppError(f"Model '{model_id}' is not available to anonymous callers: sign in, or use a "
                           "public model (GET /api/v1/models lists them).", status_code=403,
                           details={"model": ["Not a public model."]})
        if model_available(model):
            return model_id
    provider = default_provider()
    default = default_model_for(provider) if provider else ""
    model = catalogue_model(default) if default else None
    if model is not None and model.public and model_available(model):
        return default
    for candidate in catalogue(public_only=True):
        if model_available(candidate):
            return candidate.id
    raise AppError("No public model is available to anonymous callers: sign in.", status_code=403)


# --- the provider listing (admin routes, seed 000's /gemini/providers) --------------------------


def provider_config_get(*, name: str) -> ProviderConfig | None:
    """The ProviderConfig row called ``name``, if an operator saved one."""
    return ProviderConfig.objects.filter(name=name, team__isnull=True).first()


def _provider_view(provider: ProviderSettings, *, row: ProviderConfig | None, default: str,
                   models: list[Model]) -> dict:
    from providers.reliability import breaker

    key = row.masked_key if row and row.api_key_encrypted else (
        mask(provider.api_key[-4:], kind=provider.kind) if provider.api_key else "")
    return {
        "name": provider.name, "kind": provider.kind,
        "display_name": DISPLAY_NAMES.get(provider.kind, provider.kind),
        "status": "configured", "source": "database" if row else "environment",
        "base_url": provider.base_url, "api_key": key, "default_model": provider.default_model,
        "priority": provider.priority, "timeout": provider.timeout, "max_retries": provider.max_retries,
        "is_default": provider.name == default, "circuit": breaker.status(provider.name),
        "models": [m.id for m in models if m.provider == provider.kind],
        "features": FEATURES.get(provider.kind, []),
        "fallbacks": (row.fallbacks if row else None) or {},
    }


def provider_listing() -> list[dict]:
    """Every provider an operator can see: the configured ones (environment or row, in fallback
    order), then rows that are disabled (``status: disabled``) or cannot reach their provider
    (``not_configured``). Keys are masked."""
    rows = {row.name: row for row in ProviderConfig.objects.filter(team__isnull=True)}
    default = default_provider_name()
    models = catalogue()
    listing = [_provider_view(p, row=rows.get(p.name), default=default, models=models)
               for p in configured_providers()]
    seen = {p["name"] for p in listing}
    for row in rows.values():
        if row.name not in seen:
            listed = ProviderSettings(name=row.name, kind=row.kind, base_url=row.base_url,
                                      default_model=row.default_model, priority=row.priority,
                                      timeout=row.timeout, max_retries=row.max_retries)
            listing.append({**_provider_view(listed, row=row, default=default, models=models),
                            "status": "disabled" if not row.enabled else "not_configured"})
    return listing


def provider_listing_get(*, name: str) -> dict | None:
    """One provider as :func:`provider_listing` shows it, or None."""
    return next((p for p in provider_listing() if p["name"] == name), None)


def provider_overview() -> dict:
    """Seed 000's ``/gemini/providers``: the available providers, the default and details."""
    listing = provider_listing()
    details = {
        p["name"]: {"name": p["display_name"], "models": p["models"],
                    "status": p["status"], "features": p["features"], "circuit": p["circuit"]}
        for p in listing
    }
    return {
        "available_providers": [p["name"] for p in listing if p["status"] == "configured"],
        "default_provider": default_provider_name(),
        "provider_details": details,
    }


# --- team providers (a team's own ProviderConfig rows) ------------------------------------------


def team_provider_rows(*, team_id: str):
    return ProviderConfig.objects.filter(team_id=team_id).order_by("name")


def team_provider_row(*, team_id: str, name: str) -> ProviderConfig | None:
    return ProviderConfig.objects.filter(team_id=team_id, name=name).first()


def team_provider_settings(name: str | None, *, user) -> ProviderSettings | None:
    """The enabled provider called ``name`` of one of ``user``'s teams, for a request of theirs
    that names it (None for anyone else: to them it is not configured). Its ``base_url`` came from
    a team admin, so it is checked against the outbound rules again now (502 if refused).
    Blocking (name resolution); the turn service calls it off the event loop."""
    from accounts.team_selectors import team_ids_of
    from chatplatform.api.outbound import recheck_outbound_url

    if not name or not getattr(user, "is_authenticated", False):
        return None
    row = ProviderConfig.objects.filter(name=name, enabled=True, team_id__in=team_ids_of(user)).first()
    if row is None:
        return None
    base_url = recheck_outbound_url(row.base_url, field="base_url") if row.base_url else ""
    return ProviderSettings(name=row.name, kind=row.kind, api_key=row.api_key, base_url=base_url,
                            default_model=row.default_model, timeout=row.timeout, max_retries=row.max_retries,
                            priority=row.priority, extra=dict(row.settings or {}))
