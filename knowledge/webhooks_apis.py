"""``/api/v1/webhooks``: thin views over :mod:`knowledge.webhooks`. Owner-scoped (another user's
webhook is a 404); lists are bare arrays with the total in ``X-Total-Count``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatplatform.api import fields
from chatplatform.api.pagination import MAX_OFFSET
from knowledge import webhooks
from knowledge.webhook_models import Webhook, WebhookDelivery

TAGS = ["webhooks"]
TOTAL_HEADER = OpenApiParameter("X-Total-Count", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[200],
                                description="Total number of items.")


class WebhookCreateInput(fields.StrictInput):
    url = serializers.CharField(max_length=2048, help_text="http(s); must be public unless ALLOW_PRIVATE_OUTBOUND.")
    events = serializers.ListField(child=serializers.CharField(max_length=50), min_length=1,
                                   max_length=len(webhooks.EVENTS), help_text="Of: " + ", ".join(webhooks.EVENTS))
    active = serializers.BooleanField(required=False, default=True)

    def validate_events(self, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(webhooks.EVENTS))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown events: {', '.join(unknown)}. Known: {', '.join(webhooks.EVENTS)}.")
        return value


class WebhookOutput(serializers.ModelSerializer):
    active = serializers.BooleanField(source="is_active")

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "active", "failure_count", "disabled_reason", "created_at", "updated_at"]
        read_only_fields = fields


class WebhookCreatedOutput(WebhookOutput):
    secret = serializers.SerializerMethodField(help_text="Shown only in this response: store it now.")

    class Meta(WebhookOutput.Meta):
        fields = [*WebhookOutput.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, webhook: Webhook) -> str:
        return self.context["secret"]


class DeliveryOutput(serializers.ModelSerializer):
    webhook_id = serializers.CharField(read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "webhook_id", "event", "payload", "status", "attempts", "response_status", "error",
                  "next_retry_at", "created_at", "updated_at", "delivered_at"]
        read_only_fields = fields


class PageQuery(fields.StrictInput):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0)


def _page(request: Request, qs, serializer_class) -> Response:
    query = PageQuery(data=request.query_params.dict())
    query.is_valid(raise_exception=True)
    limit, offset = query.validated_data["limit"], query.validated_data["offset"]
    total = qs.count()
    rows = list(qs[offset:offset + limit])
    return Response(serializer_class(rows, many=True).data, headers={"X-Total-Count": str(total)})


PAGE_PARAMS = [OpenApiParameter("limit", int, description="1-100, default 50."),
               OpenApiParameter("offset", int, description="Default 0."), TOTAL_HEADER]


class WebhookListApi(APIView):
    @extend_schema(tags=TAGS, parameters=PAGE_PARAMS, responses={200: WebhookOutput(many=True)},
                   description="Your webhooks (secrets are never shown again).")
    def get(self, request: Request) -> Response:
        return _page(request, webhooks.webhook_list(user=request.user), WebhookOutput)

    @extend_schema(tags=TAGS, request=WebhookCreateInput, responses={201: WebhookCreatedOutput},
                   description="Subscribe a URL to events. The response carries the signing `secret`, once.")
    def post(self, request: Request) -> Response:
        body = WebhookCreateInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        webhook, secret = webhooks.webhook_create(user=request.user, url=data["url"], events=data["events"],
                                                  is_active=data["active"])
        return Response(WebhookCreatedOutput(webhook, context={"secret": secret}).data,
                        status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    @extend_schema(tags=TAGS, responses={200: WebhookOutput})
    def get(self, request: Request, webhook_id: str) -> Response:
        return Response(WebhookOutput(webhooks.webhook_get(user=request.user, webhook_id=webhook_id)).data)

    @extend_schema(tags=TAGS, request=None, responses={204: None}, description="Delete it and its delivery log.")
    def delete(self, request: Request, webhook_id: str) -> Response:
        webhooks.webhook_delete(webhook=webhooks.webhook_get(user=request.user, webhook_id=webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(APIView):
    @extend_schema(tags=TAGS, parameters=PAGE_PARAMS, responses={200: DeliveryOutput(many=True)},
                   description="The delivery log, newest first.")
    def get(self, request: Request, webhook_id: str) -> Response:
        webhook = webhooks.webhook_get(user=request.user, webhook_id=webhook_id)
        return _page(request, webhooks.webhook_deliveries(webhook=webhook), DeliveryOutput)
