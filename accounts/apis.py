"""Auth and user routes (seeds 000, 003, 004). Thin: validate, call a service, shape output."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import AccessToken

from accounts import selectors, services
from accounts.serializers import (
    PREFERENCE_DEFAULTS,
    ApiKeyCreatedOutput,
    ApiKeyCreateInput,
    ApiKeyOutput,
    AuthOutput,
    ChangePasswordInput,
    ChangePasswordOutput,
    DeleteAccountInput,
    LoginInput,
    LogoutInput,
    LogoutOutput,
    MessageOutput,
    PreferencesSerializer,
    ProfileInput,
    ProfileOutput,
    RefreshInput,
    RegisterInput,
    auth_payload,
)
from chatplatform.api.exceptions import AppError
from chatplatform.api.net import client_ip

AUTH_TAG = ["auth"]
USER_TAG = ["users"]


def _valid(serializer_class, request: Request, **kwargs):
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(tags=AUTH_TAG, request=RegisterInput, responses={201: AuthOutput})
    def post(self, request: Request) -> Response:
        data = _valid(RegisterInput, request)
        user = services.user_register(**data)
        tokens = services.session_open(user=user, ip=client_ip(request),
                                       user_agent=request.headers.get("User-Agent", ""))
        return Response(auth_payload(user, tokens), status=status.HTTP_201_CREATED)


class LoginApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(tags=AUTH_TAG, request=LoginInput, responses={200: AuthOutput},
                   description="JSON or form data; `username` may be the username or the email.")
    def post(self, request: Request) -> Response:
        data = _valid(LoginInput, request)
        user, tokens = services.user_login(
            request=request, identifier=data["identifier"], password=data["password"],
            ip=client_ip(request), user_agent=request.headers.get("User-Agent", ""),
        )
        return Response(auth_payload(user, tokens))


class RefreshApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(tags=AUTH_TAG, request=RefreshInput, responses={200: AuthOutput},
                   description="Rotates the refresh token: the one sent stops working.")
    def post(self, request: Request) -> Response:
        data = _valid(RefreshInput, request)
        user, tokens = services.token_refresh(raw_refresh=data["raw"])
        return Response(auth_payload(user, tokens))


class LogoutApi(APIView):
    @extend_schema(tags=AUTH_TAG, request=LogoutInput, responses={200: LogoutOutput})
    def post(self, request: Request) -> Response:
        data = _valid(LogoutInput, request)
        session_id = request.auth.get("sid") if isinstance(request.auth, AccessToken) else None
        logged_out_at = services.user_logout(
            user=request.user, session_id=session_id, raw_refresh=data.get("refresh_token")
        )
        return Response({"message": "Successfully logged out", "user_id": request.user.id,
                         "logged_out_at": logged_out_at})


class MeApi(APIView):
    @extend_schema(tags=AUTH_TAG, responses={200: ProfileOutput})
    def get(self, request: Request) -> Response:
        return Response(ProfileOutput(request.user).data)


class ChangePasswordApi(APIView):
    @extend_schema(tags=AUTH_TAG, request=ChangePasswordInput, responses={200: ChangePasswordOutput},
                   description="Form data (as seed 000 shows) or JSON. Every earlier token stops "
                               "working; a fresh pair is returned.")
    def post(self, request: Request) -> Response:
        data = _valid(ChangePasswordInput, request)
        tokens = services.user_change_password(user=request.user, **data)
        return Response({"message": "Password changed successfully", **tokens.as_response()})


class GenerateApiKeyApi(APIView):
    @extend_schema(tags=AUTH_TAG, request=ApiKeyCreateInput, responses={201: ApiKeyCreatedOutput},
                   description="The key is shown once; only its hash is stored.")
    def post(self, request: Request) -> Response:
        data = _valid(ApiKeyCreateInput, request)
        key, raw = services.api_key_create(user=request.user, **data)
        key.api_key = raw
        key.message = "Store this key now: it will not be shown again."
        return Response(ApiKeyCreatedOutput(key).data, status=status.HTTP_201_CREATED)


class ApiKeyListApi(APIView):
    @extend_schema(tags=AUTH_TAG, responses={200: ApiKeyOutput(many=True)})
    def get(self, request: Request) -> Response:
        keys = selectors.api_key_list(user=request.user)[:1000]
        return Response(ApiKeyOutput(keys, many=True).data)


class ApiKeyRevokeApi(APIView):
    @extend_schema(tags=AUTH_TAG, request=None, responses={200: ApiKeyOutput})
    def delete(self, request: Request, key_id: str) -> Response:
        key = services.api_key_revoke(user=request.user, key_id=key_id)
        return Response(ApiKeyOutput(key).data)


class ProfileApi(APIView):
    @extend_schema(tags=USER_TAG, responses={200: ProfileOutput})
    def get(self, request: Request) -> Response:
        return Response(ProfileOutput(request.user).data)

    @extend_schema(tags=USER_TAG, request=ProfileInput, responses={200: ProfileOutput})
    def put(self, request: Request) -> Response:
        data = _valid(ProfileInput, request)
        user = services.user_update_profile(user=request.user, **data)
        return Response(ProfileOutput(user).data)

    patch = put


class PreferencesApi(APIView):
    @extend_schema(tags=USER_TAG, responses={200: PreferencesSerializer})
    def get(self, request: Request) -> Response:
        return Response({**PREFERENCE_DEFAULTS, **(request.user.preferences or {})})

    @extend_schema(tags=USER_TAG, request=PreferencesSerializer, responses={200: PreferencesSerializer},
                   description="Merges the given keys into the stored preferences; unknown keys are rejected.")
    def put(self, request: Request) -> Response:
        data = _valid(PreferencesSerializer, request)
        prefs = services.user_update_preferences(user=request.user, preferences=data)
        return Response({**PREFERENCE_DEFAULTS, **prefs})

    patch = put


class AccountApi(APIView):
    @extend_schema(tags=USER_TAG, request=DeleteAccountInput, responses={200: MessageOutput},
                   description="Deletes the account and everything it owns. Only a signed-in session (a JWT "
                               "access token) may do it, as seed 000 shows, with no body; a `password`, if sent, "
                               "must be the current one. API keys and chatbot keys get 403.")
    def delete(self, request: Request) -> Response:
        if not isinstance(request.auth, AccessToken):
            raise AppError("Only a signed-in session can delete the account: use an access token, "
                           "not an API key.", status_code=403, code="SESSION_REQUIRED")
        data = _valid(DeleteAccountInput, request)
        user_id = request.user.id
        services.user_delete_account(user=request.user, password=data.get("password"))
        return Response({"message": "Account and all data deleted", "user_id": user_id})


