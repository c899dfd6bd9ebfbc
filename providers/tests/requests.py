"""Building adapter requests and service calls in tests with generation parameters as flat keywords
(``chat_request(model=..., messages=..., temperature=0.2)``)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from providers.adapters.base import ChatRequest
from providers.params import GenerationParams
from providers.services import ChatCall

PARAM_FIELDS = {f.name for f in fields(GenerationParams)}


def split_params(kwargs: dict[str, Any]) -> tuple[dict[str, Any], GenerationParams]:
    """(the other keywords, the GenerationParams made from the parameter keywords)."""
    params = {k: kwargs.pop(k) for k in list(kwargs) if k in PARAM_FIELDS}
    if params.get("stop") is not None:
        params["stop"] = tuple(params["stop"])
    return kwargs, GenerationParams(**params)


def chat_request(**kwargs: Any) -> ChatRequest:
    rest, params = split_params(dict(kwargs))
    return ChatRequest(params=params, **rest)


def chat_call(**kwargs: Any) -> ChatCall:
    rest, params = split_params(dict(kwargs))
    return ChatCall(params=params, **rest)
