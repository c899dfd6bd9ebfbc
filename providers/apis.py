"""Provider and model routes: seed 001's catalogue, seed 000's /gemini routes, and the general
/providers form. Thin: the work is in providers.services and providers.selectors."""

from __future__ import annotations

import asyncio
import time
from operator import attrgetter

from asgiref.sync import async_to_sync
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import AdminAPIView, AdminAuthMixin
from chatplatform.api.exceptions import AppError
from chatplatform.api.pagination import PAGE_LIMIT_DEFAULT, page_query_serializer, paginate
from chatplatform.api.permissions import AdminForWrites, OpenOrAuthenticated
from providers import registry, selectors, services
from providers.adapters.base import ProviderSettings
from providers.crypto import mask
from providers.errors import ProviderError
from providers.models import Model, ProviderConfig
from providers.reliability import breaker
from providers.serializers import (
    GeminiConfigureInput,
    GeminiRegisterInput,
    GeminiRegisterOutput,
    ModelOutput,
    ProbeInput,
    ProbeOutput,
    ProviderHealthOutput,
    ProviderOutput,
    ProvidersHealthOutput,
    ProvidersOverviewOutput,
    ProviderWriteInput,
)

TAGS = ["providers"]
HEALTH_TIMEOUT_SECONDS = 15.0


def _valid(serializer_class, request: Request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _available_ids(models: list[Model]) -> set[str]:
    return {m.id for m in models if selectors.model_available(m)}


# --- models (seed 001) ------------------------------------------------------------------------


MODEL_SORT_FIELDS = ["id", "name", "provider", "context_length", "max_output_tokens", "created_at"]
ModelPageQuery = page_query_serializer(MODEL_SORT_FIELDS)


class ModelListApi(APIView):
    permission_classes = [OpenOrAuthenticated]

    @extend_schema(tags=TAGS, parameters=[ModelPageQuery], responses={200: ModelOutput(many=True)},
                   description="The model catalogue (anonymous callers: the public models only), as seed 001 "
                               "shows it: a bare list. With `page` or `limit` (seed 001's pagination), the "
                               "answer is `{\"data\": [...], \"pagination\": {page, limit, total, pages, has_next, "
                               "has_prev}}`. `sort` (one of " + ", ".join(MODEL_SORT_FIELDS) + ") and `order` "
                               "(asc/desc) order either form. The total is also in `X-Total-Count`.")
    def get(self, request: Request) -> Response:
        query = ModelPageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        models = selectors.catalogue(public_only=not request.user.is_authenticated)
        if params.get("sort"):
            models.sort(key=attrgetter(params["sort"]))
        if params["order"] == "desc":
            models.reverse()
        headers = {"X-Total-Count": str(len(models))}
        if "page" not in params and "limit" not in params:
            return Response(ModelOutput(models, many=True, context={"available_ids": _available_ids(models)}).data,
                            headers=headers)
        page, meta = paginate(models, page=params.get("page", 1), limit=params.get("limit", PAGE_LIMIT_DEFAULT))
        data = ModelOutput(page, many=True, context={"available_ids": _available_ids(page)}).data
        return Response({"data": data, "pagination": meta}, headers=headers)


class ModelDetailApi(APIView):
    permission_classes = [OpenOrAuthenticated]

    @extend_schema(tags=TAGS, responses={200: ModelOutput})
    def get(self, request: Request, model_id: str) -> Response:
        model = selectors.catalogue_model(model_id)
        if model is None or (not request.user.is_authenticated and not model.public):
            raise AppError(f"Model '{model_id}' not found.", status_code=404)
        return Response(ModelOutput(model, context={"available_ids": _available_ids([model])}).data)


# --- provider listing and health ------------------------------------------------------------


def _provider_view(provider: ProviderSettings, *, row: ProviderConfig | None, default: str) -> dict:
    key = row.masked_key if row and row.api_key_encrypted else (
        mask(provider.api_key[-4:], kind=provider.kind) if provider.api_key else "")
    return {
        "name": provider.name, "kind": provider.kind,
        "display_name": selectors.DISPLAY_NAMES.get(provider.kind, provider.kind),
        "status": "configured", "source": "database" if row else "environment",
        "base_url": provider.base_url, "api_key": key, "default_model": provider.default_model,
        "priority": provider.priority, "timeout": provider.timeout, "max_retries": provider.max_retries,
        "is_default": provider.name == default, "circuit": breaker.status(provider.name),
        "models": [m.id for m in selectors.catalogue() if m.provider == provider.kind],
        "features": selectors.FEATURES.get(provider.kind, []),
        "fallbacks": (row.fallbacks if row else None) or {},
    }


def _providers_listing() -> list[dict]:
    rows = {row.name: row for row in ProviderConfig.objects.all()}
    default = selectors.default_provider_name()
    listing = [_provider_view(p, row=rows.get(p.name), default=default) for p in selectors.configured_providers()]
    seen = {p["name"] for p in listing}
    for row in rows.values():
        if row.name not in seen:
            listing.append({**_provider_view(ProviderSettings(name=row.name, kind=row.kind, base_url=row.base_url,
                                                              default_model=row.default_model,
                                                              priority=row.priority, timeout=row.timeout,
                                                              max_retries=row.max_retries),
                                             row=row, default=default),
                            "status": "disabled" if not row.enabled else "not_configured"})
    return listing


async def _health_of(provider: ProviderSettings) -> dict:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(registry.get_provider(provider).health(), HEALTH_TIMEOUT_SECONDS)
        status_, error = result.status, result.detail
    except TimeoutError:
        status_, error = "unhealthy", "timeout"
    return {"status": status_, "response_time": round(time.perf_counter() - started, 3),
            "model": provider.default_model, "circuit": breaker.status(provider.name), "error": error}


async def _health_many(providers: list[ProviderSettings]) -> dict[str, dict]:
    results = await asyncio.gather(*(_health_of(p) for p in providers))
    return {p.name: r for p, r in zip(providers, results, strict=True)}


def _health_report() -> dict:
    providers = selectors.configured_providers()
    default = selectors.default_provider_name()
    report = async_to_sync(_health_many)(providers)
    healthy = [r["status"] == "healthy" for r in report.values()]
    overall = "healthy" if all(healthy) else ("degraded" if any(healthy) else "unhealthy")
    return {"overall_status": overall, "providers": report, "default_provider": default,
            "default_provider_healthy": report.get(default, {}).get("status") == "healthy"}


def _probe(provider: ProviderSettings, *, model: str | None, message: str) -> dict:
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


def _configured_or_404(name: str) -> ProviderSettings:
    provider = selectors.provider_settings(name)
    if provider is None:
        raise AppError(f"Provider '{name}' is not configured.", status_code=404)
    return provider


class ProviderListApi(AdminAuthMixin, APIView):
    permission_classes = [AdminForWrites]

    @extend_schema(tags=TAGS, responses={200: ProviderOutput(many=True)})
    def get(self, request: Request) -> Response:
        listing = _providers_listing()
        return Response(ProviderOutput(listing, many=True).data, headers={"X-Total-Count": str(len(listing))})

    @extend_schema(tags=TAGS, request=ProviderWriteInput, responses={201: ProviderOutput})
    def post(self, request: Request) -> Response:
        data = _valid(ProviderWriteInput, request)
        if not data.get("name") or not data.get("kind"):
            raise AppError("name and kind are required.", status_code=422,
                           details={k: ["This field is required."] for k in ("name", "kind") if not data.get(k)})
        if ProviderConfig.objects.filter(name=data["name"]).exists():
            raise AppError("A provider with that name exists.", status_code=409, code="CONFLICT")
        row = _save_provider(data)
        return Response(_row_view(row), status=status.HTTP_201_CREATED)


def _save_provider(data: dict, *, existing: ProviderConfig | None = None) -> ProviderConfig:
    name = data.get("name") or existing.name
    kind = data.get("kind") or existing.kind
    api_key = data.get("api_key")
    if api_key and data.get("validate_key", True) and kind != "local":
        base_url = data.get("base_url") or (existing.base_url if existing else "")
        _validate_key(kind=kind, api_key=api_key, base_url=base_url, name=name)
    extra = dict(existing.settings if existing else {})
    for key in ("temperature", "max_tokens"):
        if key in data:
            extra[key] = data[key]
    fields = {k: data.get(k) for k in ("description", "base_url", "default_model", "enabled", "is_default",
                                       "priority", "timeout", "max_retries", "fallbacks")}
    return services.provider_config_save(name=name, kind=kind, api_key=api_key, settings=extra, **fields)


def _validate_key(*, kind: str, api_key: str, base_url: str, name: str) -> list[str]:
    """A real call with the candidate key (list models); 400 if the provider refuses it."""
    candidate = services.settings_for_validation(kind=kind, api_key=api_key, base_url=base_url,
                                                 name=f"validate-{name}")
    adapter = registry.adapter_class(kind)(candidate)

    async def check() -> list[str]:
        try:
            return await adapter.list_models()
        finally:
            await adapter.aclose()

    try:
        return async_to_sync(check)()
    except ProviderError as exc:
        raise AppError("The provider rejected this API key (or could not be reached).", status_code=400,
                       code="INVALID_API_KEY", details={"api_key": [exc.code]}) from exc


def _row_view(row: ProviderConfig) -> dict:
    return next(p for p in _providers_listing() if p["name"] == row.name)


class ProviderDetailApi(AdminAuthMixin, APIView):
    permission_classes = [AdminForWrites]

    @extend_schema(tags=TAGS, responses={200: ProviderOutput})
    def get(self, request: Request, name: str) -> Response:
        found = next((p for p in _providers_listing() if p["name"] == name), None)
        if found is None:
            raise AppError(f"Provider '{name}' not found.", status_code=404)
        return Response(ProviderOutput(found).data)

    @extend_schema(tags=TAGS, request=ProviderWriteInput, responses={200: ProviderOutput})
    def put(self, request: Request, name: str) -> Response:
        data = _valid(ProviderWriteInput, request)
        data.pop("name", None)
        existing = ProviderConfig.objects.filter(name=name).first()
        if existing is None:
            env = selectors.provider_settings(name)
            if env is None and not data.get("kind"):
                raise AppError(f"Provider '{name}' not found.", status_code=404)
            data.setdefault("kind", env.kind if env else data.get("kind"))
            data["name"] = name
        row = _save_provider(data, existing=existing)
        return Response(_row_view(row))

    patch = put

    @extend_schema(tags=TAGS, request=None, responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        services.provider_config_delete(name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProviderTestApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=TAGS, request=ProbeInput, responses={200: ProbeOutput},
                   description="A real, small completion through this provider (no fallback).")
    def post(self, request: Request, name: str) -> Response:
        data = _valid(ProbeInput, request)
        provider = _configured_or_404(name)
        return Response(_probe(provider, model=data.get("model"), message=data["message"]))


class ProviderHealthApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=TAGS, responses={200: ProviderHealthOutput})
    def get(self, request: Request, name: str) -> Response:
        provider = _configured_or_404(name)
        return Response(async_to_sync(_health_of)(provider))


# --- seed 000's /gemini routes ----------------------------------------------------------------


class GeminiRegisterApi(AdminAPIView):
    @extend_schema(tags=["gemini"], request=GeminiRegisterInput, responses={201: GeminiRegisterOutput},
                   description="Validates the key with a real call to Gemini, then stores it encrypted.")
    def post(self, request: Request) -> Response:
        data = _valid(GeminiRegisterInput, request)
        from django.conf import settings

        base_url = data.get("base_url") or settings.GEMINI_BASE_URL
        models = _validate_key(kind="gemini", api_key=data["api_key"], base_url=base_url, name="gemini")
        extra = {"project_id": data["project_id"]} if data.get("project_id") else {}
        existing = ProviderConfig.objects.filter(name="gemini").first()
        row = services.provider_config_save(
            name="gemini", kind="gemini", api_key=data["api_key"], base_url=base_url or "",
            default_model=data["default_model"], description=data["description"],
            settings={**(existing.settings if existing else {}), **extra},
        )
        return Response({
            "message": "Gemini API key registered successfully", "registration_id": row.id, "status": "valid",
            "default_model": row.default_model, "available_models": models[:100],
            "test_result": "API key is working", "registered_at": timezone.now(), "api_key": row.masked_key,
        }, status=status.HTTP_201_CREATED)


class GeminiProvidersApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["gemini"], responses={200: ProvidersOverviewOutput})
    def get(self, request: Request) -> Response:
        listing = _providers_listing()
        details = {
            p["name"]: {"name": p["display_name"], "models": p["models"],
                        "status": p["status"], "features": p["features"], "circuit": p["circuit"]}
            for p in listing
        }
        return Response({
            "available_providers": [p["name"] for p in listing if p["status"] == "configured"],
            "default_provider": selectors.default_provider_name(),
            "provider_details": details,
        })


class GeminiTestApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["gemini"], request=ProbeInput, responses={200: ProbeOutput})
    def post(self, request: Request) -> Response:
        data = _valid(ProbeInput, request)
        provider = _configured_or_404(data.get("provider") or "gemini")
        return Response(_probe(provider, model=data.get("model"), message=data["message"]))


class GeminiConfigureApi(AdminAPIView):
    @extend_schema(tags=["gemini"], request=GeminiConfigureInput, responses={200: ProviderOutput})
    def post(self, request: Request) -> Response:
        data = _valid(GeminiConfigureInput, request)
        name = data["provider"]
        existing = ProviderConfig.objects.filter(name=name).first()
        env = selectors.provider_settings(name)
        if existing is None and env is None:
            raise AppError(f"Provider '{name}' is not configured.", status_code=404)
        update = {"kind": existing.kind if existing else env.kind, "name": name,
                  "default_model": data.get("model"), "is_default": data.get("is_default")}
        update.update({k: data[k] for k in ("temperature", "max_tokens") if k in data})
        row = _save_provider({k: v for k, v in update.items() if v is not None}, existing=existing)
        view = _row_view(row)
        return Response({"message": f"Provider '{name}' configured", **ProviderOutput(view).data,
                         "configuration": row.settings})


class GeminiHealthApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["gemini"], responses={200: ProvidersHealthOutput})
    def get(self, request: Request) -> Response:
        return Response(_health_report())
