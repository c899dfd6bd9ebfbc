"""Provider and model routes: seed 001's catalogue, seed 000's /gemini routes, and the general
/providers form. Thin: the work is in providers.services (writes), providers.selectors (reads)
and providers.health (live checks and probes)."""

from __future__ import annotations

from operator import attrgetter

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
from providers import health, selectors, services
from providers.adapters.base import ProviderSettings
from providers.models import Model
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


# --- providers (admin writes; listing, health and probes for any signed-in caller) --------------


def _configured_or_404(name: str) -> ProviderSettings:
    provider = selectors.provider_settings(name)
    if provider is None:
        raise AppError(f"Provider '{name}' is not configured.", status_code=404)
    return provider


class ProviderListApi(AdminAuthMixin, APIView):
    permission_classes = [AdminForWrites]

    @extend_schema(tags=TAGS, responses={200: ProviderOutput(many=True)})
    def get(self, request: Request) -> Response:
        listing = selectors.provider_listing()
        return Response(ProviderOutput(listing, many=True).data, headers={"X-Total-Count": str(len(listing))})

    @extend_schema(tags=TAGS, request=ProviderWriteInput, responses={201: ProviderOutput})
    def post(self, request: Request) -> Response:
        row = services.provider_create(**_valid(ProviderWriteInput, request))
        return Response(selectors.provider_listing_get(name=row.name), status=status.HTTP_201_CREATED)


class ProviderDetailApi(AdminAuthMixin, APIView):
    permission_classes = [AdminForWrites]

    @extend_schema(tags=TAGS, responses={200: ProviderOutput})
    def get(self, request: Request, name: str) -> Response:
        found = selectors.provider_listing_get(name=name)
        if found is None:
            raise AppError(f"Provider '{name}' not found.", status_code=404)
        return Response(ProviderOutput(found).data)

    @extend_schema(tags=TAGS, request=ProviderWriteInput, responses={200: ProviderOutput})
    def put(self, request: Request, name: str) -> Response:
        data = _valid(ProviderWriteInput, request)
        data.pop("name", None)  # the path names the provider
        row = services.provider_update(name=name, **data)
        return Response(selectors.provider_listing_get(name=row.name))

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
        return Response(health.provider_probe_report(provider, model=data.get("model"), message=data["message"]))


class ProviderHealthApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=TAGS, responses={200: ProviderHealthOutput})
    def get(self, request: Request, name: str) -> Response:
        provider = _configured_or_404(name)
        return Response(health.provider_health(provider))


# --- seed 000's /gemini routes ----------------------------------------------------------------


class GeminiRegisterApi(AdminAPIView):
    @extend_schema(tags=["gemini"], request=GeminiRegisterInput, responses={201: GeminiRegisterOutput},
                   description="Validates the key with a real call to Gemini, then stores it encrypted.")
    def post(self, request: Request) -> Response:
        data = _valid(GeminiRegisterInput, request)
        row, models = services.provider_gemini_register(
            api_key=data["api_key"], default_model=data["default_model"], description=data["description"],
            base_url=data.get("base_url") or "", project_id=data.get("project_id") or "")
        return Response({
            "message": "Gemini API key registered successfully", "registration_id": row.id, "status": "valid",
            "default_model": row.default_model, "available_models": models[:100],
            "test_result": "API key is working", "registered_at": timezone.now(), "api_key": row.masked_key,
        }, status=status.HTTP_201_CREATED)


class GeminiProvidersApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["gemini"], responses={200: ProvidersOverviewOutput})
    def get(self, request: Request) -> Response:
        return Response(selectors.provider_overview())


class GeminiTestApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["gemini"], request=ProbeInput, responses={200: ProbeOutput})
    def post(self, request: Request) -> Response:
        data = _valid(ProbeInput, request)
        provider = _configured_or_404(data.get("provider") or "gemini")
        return Response(health.provider_probe_report(provider, model=data.get("model"), message=data["message"]))


class GeminiConfigureApi(AdminAPIView):
    @extend_schema(tags=["gemini"], request=GeminiConfigureInput, responses={200: ProviderOutput})
    def post(self, request: Request) -> Response:
        data = _valid(GeminiConfigureInput, request)
        row = services.provider_configure(name=data["provider"], default_model=data.get("model"),
                                          is_default=data.get("is_default"), temperature=data.get("temperature"),
                                          max_tokens=data.get("max_tokens"))
        view = selectors.provider_listing_get(name=row.name)
        return Response({"message": f"Provider '{row.name}' configured", **ProviderOutput(view).data,
                         "configuration": row.settings})


class GeminiHealthApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["gemini"], responses={200: ProvidersHealthOutput})
    def get(self, request: Request) -> Response:
        return Response(health.provider_health_report())
