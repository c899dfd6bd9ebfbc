"""Helpers for plain async Django views (the streaming path never runs sync views).

DRF views are synchronous, so SSE and other streaming endpoints are async Django views. These
helpers give them the same authentication classes, body parsing and validation errors as the
DRF views; errors raised here are rendered as the envelope by the error middleware.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest
from rest_framework import exceptions, serializers
from rest_framework.utils.serializer_helpers import BindingDict

from chatplatform.api.credentials import authenticate_request
from chatplatform.api.exceptions import AppError


def authenticated(request: HttpRequest, *, required: bool = True, chatbot_keys: bool = False) -> tuple[Any, Any]:
    """(user, auth) from the request's credentials, with the project's authentication classes.

    Invalid credentials are always a 401; missing ones only when ``required``. ``chatbot_keys``:
    a chat route, where a chatbot's key may stand in for its owner. Blocking: see :func:`authenticate`."""
    user, auth = authenticate_request(request, chatbot_keys=chatbot_keys)
    if required and not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    return user, auth


async def authenticate(request: HttpRequest, *, required: bool = True, chatbot_keys: bool = False) -> tuple[Any, Any]:
    """:func:`authenticated` from async code (in a thread)."""
    return await sync_to_async(authenticated)(request, required=required, chatbot_keys=chatbot_keys)


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
    serializer = input_serializer(serializer_class, data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


_declared = threading.local()


def input_serializer(serializer_class, data: Any, **kwargs) -> serializers.Serializer:
    """``serializer_class(data=data)``, with its fields built once per thread instead of per request.

    DRF deep-copies every declared field (nested serializers and their fields included) for each
    serializer it makes: 8% of a gateway request's CPU in the profile. A plain input serializer's
    fields hold no per-request state and its validation runs without yielding, so one copy per
    class and thread is bound to each new instance instead. Serializers that build their fields
    themselves (model serializers, ``get_fields`` overrides) or take options keep DRF's way."""
    serializer = serializer_class(data=data, **kwargs)
    return serializer if kwargs else _shared_fields(serializer)


def output_data(serializer_class, instance: Any) -> dict:
    """``serializer_class(instance).data``, with the fields shared as :func:`input_serializer` does
    (rendering a reply's body, too, runs without yielding): 4% of a persisted chat's CPU was DRF
    copying the reply serializer's fields."""
    return _shared_fields(serializer_class(instance)).data


def _shared_fields(serializer: serializers.Serializer) -> serializers.Serializer:
    serializer_class = type(serializer)
    if serializer_class.get_fields is not serializers.Serializer.get_fields:
        return serializer
    by_class = _declared.__dict__.setdefault("by_class", {})
    fields = by_class.get(serializer_class)
    if fields is None:  # the first instance in this thread binds its own copies (DRF's way)
        by_class[serializer_class] = serializer.fields
        return serializer
    bound = BindingDict(serializer)
    bound.fields.update(fields.fields)  # already bound to their names: only the parent changes
    for field in fields.values():
        field.parent = serializer  # hence their root and context
    serializer.__dict__["fields"] = bound  # Serializer.fields is a cached_property
    return serializer
