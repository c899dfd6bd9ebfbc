"""``GET``/``PUT /api/v1/admin/system/config`` (seed 000): the runtime settings, effective in every
worker without a restart (``accounts.runtime``). Admin secret or staff; others 403, anonymous 401."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import runtime
from accounts.permissions import AdminAPIView
from chatplatform.api.exceptions import AppError


def _field(definition: runtime.Definition, *, required: bool) -> serializers.Field:
    if definition.choices:
        return serializers.ChoiceField(choices=list(definition.choices), required=required,
                                       help_text=definition.help)
    kind = serializers.IntegerField if definition.kind is int else serializers.FloatField
    return kind(min_value=definition.minimum, required=required, help_text=definition.help)


# Any subset of the settings in; an unknown key is a 400 naming it. Every setting out.
ConfigInput = type("ConfigInput", (serializers.Serializer,),
                   {name: _field(d, required=False) for name, d in runtime.DEFINITIONS.items()})
ConfigOutput = type("ConfigOutput", (serializers.Serializer,), {
    **{name: _field(d, required=True) for name, d in runtime.DEFINITIONS.items()},
    "message": serializers.CharField(required=False),
    "updated": serializers.ListField(child=serializers.CharField(), required=False),
})


class SystemConfigApi(AdminAPIView):
    @extend_schema(tags=["admin"], responses={200: ConfigOutput}, summary="The runtime configuration")
    def get(self, request: Request) -> Response:
        return Response(runtime.runtime_values())

    @extend_schema(tags=["admin"], request=ConfigInput, responses={200: ConfigOutput},
                   summary="Update the runtime configuration (every worker, no restart)")
    def put(self, request: Request) -> Response:
        if not isinstance(request.data, dict) or not request.data:
            raise AppError("A JSON object with at least one setting is required.", status_code=400,
                           code="validation_error", details={"settings": sorted(runtime.DEFINITIONS)})
        values = runtime.runtime_update(values=dict(request.data))
        return Response({**values, "message": "Configuration updated", "updated": sorted(request.data)})
