"""Single sign-on routes (seed 004's ``GET /auth/sso/login?redirect_uri=``). Thin: the flow is in
``accounts.sso_services``, the protocol in ``accounts.oidc``."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponseRedirect
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import oidc, sso_services
from accounts.serializers import AuthOutput, auth_payload
from chatplatform.api import fields
from chatplatform.api.net import client_ip

TAGS = ["auth"]


class SsoLoginQuery(serializers.Serializer):
    redirect_uri = serializers.CharField(max_length=2048, help_text="Where to hand the sign-in back: must equal "
                                                                    "an allow-listed URI.")
    provider = serializers.CharField(max_length=50, required=False, allow_blank=True,
                                     help_text="Which identity provider (GET /auth/sso/providers); default: "
                                               "the `default` one, or the only one.")
    state = serializers.CharField(max_length=512, required=False, allow_blank=True, default="",
                                  help_text="Your own value, returned unchanged with the code (CSRF protection).")


class SsoCallbackQuery(serializers.Serializer):
    state = serializers.CharField(max_length=512, required=False, allow_blank=True, default="")
    code = serializers.CharField(max_length=4096, required=False, allow_blank=True, default="")
    error = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class SsoTokenInput(serializers.Serializer):
    code = fields.TextField(max_length=200)
    redirect_uri = fields.TextField(max_length=2048)


class SsoProviderOutput(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    login_url = serializers.CharField(help_text="This server's login route for the provider (add `redirect_uri`).")


def _query(serializer_class, request: Request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _no_store(response):
    response["Cache-Control"] = "no-store"
    return response


class _OpenApi(APIView):
    """SSO routes take no credentials: the browser arrives signed out."""

    permission_classes = [AllowAny]
    authentication_classes: list = []


class SsoProvidersApi(_OpenApi):

    @extend_schema(tags=TAGS, responses={200: SsoProviderOutput(many=True)},
                   description="The identity providers configured here (an empty list: SSO is off).")
    def get(self, request: Request) -> Response:
        login = reverse("auth-sso-login")
        listing = [{"name": p.name, "label": p.label, "login_url": f"{login}?{urlencode({'provider': p.name})}"}
                   for p in oidc.providers().values()]
        return Response(listing, headers={"X-Total-Count": str(len(listing))})


class SsoLoginApi(_OpenApi):

    @extend_schema(tags=TAGS, parameters=[SsoLoginQuery],
                   responses={302: OpenApiResponse(description="To the identity provider's login page.")},
                   description="Seed 004's SSO login: redirects the browser to the identity provider "
                               "(authorization code flow with PKCE). After sign-in the browser comes back to "
                               "`redirect_uri` with a one-time `code` (exchange it at `POST /auth/sso/token`) "
                               "and your `state`, or with `error`. 400 for a `redirect_uri` that is not "
                               "allow-listed, 404 `SSO_NOT_CONFIGURED` when SSO is not configured.")
    def get(self, request: Request):
        params = _query(SsoLoginQuery, request)
        callback = settings.OIDC_CALLBACK_URL or request.build_absolute_uri(reverse("auth-sso-callback"))
        url = sso_services.sso_login_start(provider_name=params.get("provider") or None,
                                           redirect_uri=params["redirect_uri"], client_state=params["state"],
                                           callback_url=callback)
        return _no_store(HttpResponseRedirect(url))


class SsoCallbackApi(_OpenApi):

    @extend_schema(tags=TAGS, parameters=[SsoCallbackQuery],
                   responses={302: OpenApiResponse(description="Back to the client's redirect_uri.")},
                   description="Where the identity provider sends the browser (register this URL there). "
                               "Redirects to the client's `redirect_uri` with `code` and `state`, or with "
                               "`error` and `error_description`. An unknown, expired or reused `state` is a 400.")
    def get(self, request: Request):
        params = _query(SsoCallbackQuery, request)
        url = sso_services.sso_callback(state=params["state"], code=params["code"], error=params["error"])
        return _no_store(HttpResponseRedirect(url))


class SsoTokenApi(_OpenApi):

    @extend_schema(tags=TAGS, request=SsoTokenInput, responses={200: AuthOutput},
                   description="Exchange the one-time `code` from the SSO redirect (with the same "
                               "`redirect_uri`) for the usual token body. Single use; valid two minutes.")
    def post(self, request: Request) -> Response:
        serializer = SsoTokenInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        user, tokens = sso_services.sso_code_redeem(
            code=serializer.validated_data["code"], redirect_uri=serializer.validated_data["redirect_uri"],
            ip=client_ip(request), user_agent=request.headers.get("User-Agent", ""))
        return _no_store(Response(auth_payload(user, tokens)))
