"""Helpers for plain async Django views (the streaming path never runs sync views).

DRF views are synchronous, so SSE and other streaming endpoints are async Django views. These
helpers give them the same authentication classes, body parsing and validation errors as the
DRF views; errors raised here are rendered as the envelope by the error middleware.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.settings import api_settings

from chatplatform.api.exceptions import AppError


class _ChatRoute:
    """Stands in for the view when authenticating chat routes: chatbot keys are accepted there
    (see support.authentication)."""

    chatbot_key_allowed = True


def _authenticate_sync(request: HttpRequest, chatbot_keys: bool) -> tuple[Any, Any]:
    from rest_framework.request import Request

    drf_request = Request(request, parser_context={"view": _ChatRoute() if chatbot_keys else None})
    for authenticator_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        result = authenticator_class().authenticate(drf_request)
        if result is not None:
            return result
    return AnonymousUser(), None


async def authenticate(request: HttpRequest, *, required: bool = True, chatbot_keys: bool = False) -> tuple[Any, Any]:
    """(user, auth) from the request's credentials, with the project's authentication classes.

    Invalid credentials are always a 401; missing ones only when ``required``. ``chatbot_keys``:
    a chat route, where a chatbot's key may stand in for its owner."""
    user, auth = await sync_to_async(_authenticate_sync)(request, chatbot_keys)
    if required and not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    return user, auth


async def authenticate_open(request: HttpRequest, *, chatbot_keys: bool = False) -> tuple[Any, Any]:
    """Seed 001's open routes: anonymous callers allowed while ANONYMOUS_CHAT is on."""
    return await authenticate(request, required=not settings.ANONYMOUS_CHAT, chatbot_keys=chatbot_keys)


def json_body(request: HttpRequest) -> dict:
    """The JSON object in the body (400 if it is not one)."""
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AppError("Malformed JSON body.", status_code=400, code="INVALID_REQUEST") from exc
    if not isinstance(data, dict):
        raise AppError("The JSON body must be an object.", status_code=400, code="INVALID_REQUEST")
    return data


def validated(serializer_class, data: dict, **kwargs) -> dict:
    """Run a DRF serializer; field errors become the 422 envelope."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
