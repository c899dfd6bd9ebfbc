"""The OpenAI-compatible API, mounted at ``/v1``: any OpenAI SDK or tool can use chatplatform as a
gateway (``base_url="http://host:8000/v1"``, ``api_key=<a cpk_… key or a JWT>``).

* ``POST /v1/chat/completions``: OpenAI's request (system/developer messages, ``stream``,
  ``stream_options.include_usage``) and response/chunk formats; a stateless turn (usage recorded).
* ``GET /v1/models``, ``GET /v1/models/{id}``: the catalogue as OpenAI model objects.
* ``POST /v1/embeddings``: all-MiniLM-L6-v2, in-process (``float`` or ``base64``).

Errors here use OpenAI's shape, ``{"error": {"message", "type", "param", "code", "request_id"}}``
(SDKs read ``error.message``), not the envelope; validation errors are 400 as at OpenAI. Every
response has ``X-Gateway-Overhead-Ms``: our own time, the provider's excluded.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import serializers

from chatplatform.api import idempotency, sse
from chatplatform.api.asyncviews import authenticate, authenticated, json_body, validated
from chatplatform.api.exceptions import AppError, envelope, exception_handler
from chatplatform.api.net import client_ip
from chats import streaming
from chats.inputs import MAX_HISTORY_ITEMS
from chats.openai_inputs import OpenAIMessageInput, ToolParamsInput, split_inputs
from chats.transports import replay, rest
from chats.transports.formats import assistant_message
from chats.turns import Caller, Turn, turn_begin_after
from providers import embeddings
from providers import selectors as provider_selectors
from providers.errors import UnknownModel
from providers.params import MAX_TOKENS_LIMIT
from providers.serializers import GenerationParamsInput

MAX_CONTENT_CHARS = 500_000
MAX_EMBEDDING_INPUTS = 512
MAX_EMBEDDING_CHARS = 20_000
EMBEDDING_MODELS = {embeddings.EMBEDDING_MODEL_ID, f"sentence-transformers/{embeddings.EMBEDDING_MODEL_ID}"}
MODELS_CREATED = 1_735_689_600  # 2025-01-01: the catalogue's own rows carry no creation time we expose
FINISH_REASONS = {"stop", "length", "content_filter", "tool_calls"}

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "invalid_request_error", 405: "invalid_request_error", 409: "invalid_request_error",
               413: "invalid_request_error", 415: "invalid_request_error", 422: "invalid_request_error",
               429: "rate_limit_error", 500: "server_error"}


# --- errors -------------------------------------------------------------------------------------


def openai_error_body(status: int, body: dict) -> tuple[int, dict]:
    """Our envelope -> OpenAI's error object (OpenAI has no 422: a request it cannot process is a 400)."""
    if status == 422:
        status = 400
    details = body.get("details") or {}
    # ``param`` names the request field at fault: a key whose value lists its errors. Other details
    # (a failed reply's stream, conversation and message ids) name no parameter.
    param = next((name for name, errors in details.items() if isinstance(errors, (list, dict))), None) \
        if isinstance(details, dict) else None
    error = {"message": body.get("message") or body.get("detail") or "Error.",
             "type": ERROR_TYPES.get(status, "api_error"), "param": param, "code": body.get("error"),
             "request_id": body.get("request_id")}
    return status, {"error": error}


def error_response(exc: Exception, to_body: Callable[[int, dict], tuple[int, dict]]) -> JsonResponse:
    """``exc`` rendered as our envelope (with its logging), then in an API's own shape (``to_body``)."""
    if isinstance(exc, UnknownModel):  # OpenAI and Anthropic answer an unknown model with a 404
        exc = AppError(exc.message, status_code=404, code="MODEL_NOT_FOUND", details={"model": ["Unknown model."]})
    rendered = exception_handler(exc, {})  # the envelope (and logging) every error gets
    assert rendered is not None
    status, body = to_body(rendered.status_code, dict(rendered.data))
    response = JsonResponse(body, status=status)
    for name, value in rendered.items():
        if name.lower() in ("retry-after", "www-authenticate", "allow"):
            response[name] = value
    return response


def openai_error_response(exc: Exception) -> JsonResponse:
    return error_response(exc, openai_error_body)


def _overhead(response: HttpResponse, started: float, provider_ms: float = 0.0) -> None:
    if "X-Gateway-Overhead-Ms" not in response:
        total = (time.perf_counter() - started) * 1000
        response["X-Gateway-Overhead-Ms"] = f"{max(0.0, total - provider_ms):.2f}"


def gateway_endpoint(*methods: str, error_response: Callable[[Exception], JsonResponse]):
    """Plain async view, CSRF-exempt (token auth), errors in the API's own shape (``error_response``),
    overhead header."""
    def decorate(view):
        @wraps(view)
        async def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            started = time.perf_counter()
            request.gateway_started = started
            try:
                if request.method not in methods:
                    raise AppError(f"Method {request.method} is not allowed here.", status_code=405,
                                   headers={"Allow": ", ".join(methods)})
                response = await view(request, *args, **kwargs)
            except Exception as exc:  # every failure answers in the API's own shape
                response = error_response(exc)
            _overhead(response, started)
            return response
        return csrf_exempt(wrapper)
    return decorate


def openai_endpoint(*methods: str):
    """:func:`gateway_endpoint` with OpenAI-shaped errors."""
    return gateway_endpoint(*methods, error_response=openai_error_response)


@openai_endpoint("GET", "POST", "PUT", "PATCH", "DELETE")
async def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    raise AppError(f"Unknown route {request.method} /v1/{path}.", status_code=404)


# --- chat completions ---------------------------------------------------------------------------


class StreamOptionsInput(serializers.Serializer):
    include_usage = serializers.BooleanField(required=False, default=False)


# OpenAI's request parameters that are refused (400 naming them) unless they ask for nothing: each
# is either not offered by every provider or would need output we do not produce. The README lists
# every parameter and what happens to it.
REFUSED_UNLESS_UNSET = {
    "logprobs": (None, False), "top_logprobs": (None,), "logit_bias": (None, {}), "audio": (None,),
    "prediction": (None,), "functions": (None, []), "function_call": (None,), "web_search_options": (None,),
    "metadata": (None, {}), "store": (None, False), "verbosity": (None,),
}


class OpenAIChatInput(GenerationParamsInput, ToolParamsInput):
    model = serializers.CharField(max_length=100, required=False, allow_blank=True)
    messages = OpenAIMessageInput(many=True, min_length=1, max_length=MAX_HISTORY_ITEMS)
    max_completion_tokens = serializers.IntegerField(min_value=1, max_value=MAX_TOKENS_LIMIT, required=False,
                                                     allow_null=True)
    stream = serializers.BooleanField(required=False, allow_null=True, default=False)
    stream_options = StreamOptionsInput(required=False, allow_null=True)
    n = serializers.IntegerField(min_value=1, max_value=1, required=False, allow_null=True,
                                 help_text="Only 1 is supported.")
    reasoning_effort = serializers.ChoiceField(choices=["none", "minimal", "low", "medium", "high"],
                                               required=False, allow_null=True)
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=-(2**63), max_value=2**63 - 1)
    presence_penalty = serializers.FloatField(required=False, allow_null=True, min_value=-2.0, max_value=2.0)
    frequency_penalty = serializers.FloatField(required=False, allow_null=True, min_value=-2.0, max_value=2.0)
    service_tier = serializers.ChoiceField(choices=["auto", "default"], required=False, allow_null=True)
    modalities = serializers.ListField(child=serializers.ChoiceField(choices=["text"]), required=False,
                                       allow_null=True)
    user = serializers.CharField(required=False, allow_blank=True, max_length=256)
    logprobs = serializers.JSONField(required=False, allow_null=True)
    top_logprobs = serializers.JSONField(required=False, allow_null=True)
    logit_bias = serializers.JSONField(required=False, allow_null=True)
    audio = serializers.JSONField(required=False, allow_null=True)
    prediction = serializers.JSONField(required=False, allow_null=True)
    functions = serializers.JSONField(required=False, allow_null=True)
    function_call = serializers.JSONField(required=False, allow_null=True)
    web_search_options = serializers.JSONField(required=False, allow_null=True)
    metadata = serializers.JSONField(required=False, allow_null=True)
    store = serializers.JSONField(required=False, allow_null=True)
    verbosity = serializers.JSONField(required=False, allow_null=True)

    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields))
        if unknown:
            raise AppError(f"Unsupported parameter: '{unknown[0]}'.", status_code=400, code="UNSUPPORTED_PARAMETER",
                           details={name: ["Not supported by this gateway."] for name in unknown})
        for name, allowed in REFUSED_UNLESS_UNSET.items():
            if attrs.get(name) not in allowed:
                raise AppError(f"Unsupported parameter: '{name}' (see the README's parameter table).",
                               status_code=400, code="UNSUPPORTED_PARAMETER",
                               details={name: ["Not supported by this gateway."]})
        return super().validate(attrs)

    def validate_messages(self, value: list[dict]) -> list[dict]:
        last = value[-1]["message"]
        if last.role not in ("user", "tool"):
            raise serializers.ValidationError("The last message must be the user's (or a tool's result).")
        if last.role == "user" and not last.content.strip() and not last.images:
            raise serializers.ValidationError("The last user message may not be blank.")
        return value

    @staticmethod
    def turn(data: dict) -> Turn:
        """Leading system/developer messages are the system prompt; the trailing user and tool
        messages are the turn's new input; the rest is the history."""
        messages = [m["message"] for m in data["messages"]]
        index = 0
        system: list[str] = []
        while index < len(messages) - 1 and messages[index].role == "system":
            if messages[index].content.strip():
                system.append(messages[index].content)
            index += 1
        history, inputs = split_inputs(messages[index:])
        effort = data.get("reasoning_effort")
        limits = {**data, "max_tokens": data.get("max_completion_tokens") or data.get("max_tokens")}
        params = GenerationParamsInput.params(
            limits, thinking=bool(effort and effort not in ("none", "minimal")), seed=data.get("seed"),
            presence_penalty=data.get("presence_penalty"), frequency_penalty=data.get("frequency_penalty"),
            **ToolParamsInput.tool_params(data))
        return Turn(inputs=inputs, model=data.get("model") or None, system="\n\n".join(system) or None,
                    history=[m for m in history if m.content.strip() or m.tool_calls or m.role == "tool"],
                    params=params, end_user=data.get("user") or None)


def completion_id(stream_id: str) -> str:
    return "chatcmpl-" + stream_id.removeprefix("msg_")


def finish_reason(value: str | None) -> str:
    return value if value in FINISH_REASONS else "stop"


def chat_completion_data(final: dict, *, created: int) -> dict:
    message: dict[str, Any] = {**assistant_message(final), "refusal": None}
    if message.get("tool_calls") and not message["content"]:
        message["content"] = None
    if final.get("thinking"):
        message["reasoning_content"] = final["thinking"]
    return {
        "id": completion_id(final["stream_id"]), "object": "chat.completion", "created": created,
        "model": final["model"], "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason(final.get("finish_reason"))}],
        "usage": final.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


async def openai_sse(events: AsyncIterator[dict], *, created: int, include_usage: bool,
                     request_id: str) -> AsyncIterator[bytes]:
    """Pipeline events -> OpenAI ``chat.completion.chunk`` events, ``[DONE]`` at the end. A provider
    failure mid-stream is an ``{"error": {…}}`` event (the SDKs raise it), then the stream ends."""
    model = ""
    usage_field: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(event: dict, choices: list[dict], **extra: Any) -> bytes:
        payload = {"id": completion_id(event["stream_id"]), "object": "chat.completion.chunk", "created": created,
                   "model": model or event.get("model", ""), "system_fingerprint": None, "choices": choices,
                   **usage_field, **extra}
        return sse.encode(payload, event_id=sse.event_id(event["stream_id"], event["id"]))

    def delta(event: dict, fields: dict, reason: str | None = None) -> bytes:
        return chunk(event, [{"index": 0, "delta": fields, "logprobs": None, "finish_reason": reason}])

    async with aclosing(events):
        async for event in events:
            kind = event["type"]
            if kind == "start":
                model = event.get("model") or model
                yield delta(event, {"role": "assistant", "content": ""})
            elif kind == "delta":
                yield delta(event, {"content": event["text"]})
            elif kind == "thinking":
                yield delta(event, {"reasoning_content": event["text"]})
            elif kind == "tool_call":
                call: dict[str, Any] = {"index": event["index"], "function": {"arguments": event["arguments"]}}
                if event.get("call_id"):
                    call.update(id=event["call_id"], type="function")
                if event.get("name"):
                    call["function"]["name"] = event["name"]
                yield delta(event, {"tool_calls": [call]})
            elif kind == "done":
                yield delta(event, {}, finish_reason(event.get("finish_reason")))
                if include_usage:
                    yield chunk(event, [], usage=event.get("usage"))
                yield sse.encode("[DONE]")
            elif kind == "error":
                _, body = openai_error_body(event["status_code"], envelope(
                    event["status_code"], event["message"], code=event["code"]) | {"request_id": request_id})
                yield sse.encode(body, event_id=sse.event_id(event["stream_id"], event["id"]))


def _openai_stream(events: AsyncIterator[dict], *, stream_id: str, include_usage: bool, request_id: str,
                   headers: dict[str, str]) -> HttpResponse:
    return sse.sse_response(openai_sse(events, created=int(time.time()), include_usage=include_usage,
                                       request_id=request_id),
                            headers={"X-Stream-ID": stream_id, **headers})


def checked_request(request: HttpRequest, input_class) -> tuple[Caller, dict, dict]:
    """(caller, body, validated data) of a gateway request that starts a turn. Blocking."""
    user, auth = authenticated(request, chatbot_keys=True)
    body = json_body(request)
    data = validated(input_class, body)
    return Caller(user=user, credential=auth, address=client_ip(request),
                  request_id=getattr(request, "request_id", "")), body, data


@dataclass
class BegunTurn:
    """A gateway request's checked input and its begun turn, or (``stored``) the outcome kept for an
    earlier request with its ``Idempotency-Key``."""

    caller: Caller
    body: dict
    data: dict
    idem: idempotency.Idempotency
    reply: streaming.Reply | None = None
    stored: dict | None = None


async def gateway_turn(request: HttpRequest, input_class, turn_of: Callable[[Caller, dict], Turn]) -> BegunTurn:
    """Authenticate, check the body (``input_class``) and begin the turn ``turn_of(caller, data)``
    (blocking: it may look things up). In that order, so a bad credential is a 401 whatever the body.

    Without an ``Idempotency-Key`` all of it is one thread hop (each hop costs about 3% of a ``/v1``
    request's CPU, bench/results.md); with one, the key is looked up between the body's check and
    the turn, and a stored outcome is returned instead of a turn."""
    if not idempotency.requested(request):
        def checks() -> tuple[Caller, Turn, tuple[dict, dict]]:
            caller, body, data = checked_request(request, input_class)
            return caller, turn_of(caller, data), (body, data)

        caller, (body, data), reply = await turn_begin_after(checks)
        return BegunTurn(caller, body, data, idempotency.Idempotency(None), reply=reply)
    caller, body, data = await sync_to_async(checked_request)(request, input_class)
    return await begin_turn(request, caller, body, data, turn_of)


async def begin_turn(request: HttpRequest, caller: Caller, body: dict, data: dict,
                     turn_of: Callable[[Caller, dict], Turn]) -> BegunTurn:
    """For a checked request: the outcome stored for an earlier one with its ``Idempotency-Key``, or
    the turn ``turn_of(caller, data)`` begun (``turn_of`` and the turn's planning in one hop)."""
    idem, stored = await replay.begin(request, caller.user, body)
    if stored is not None:
        return BegunTurn(caller, body, data, idem, stored=stored)
    _, _, reply = await replay.started(idem, lambda: turn_begin_after(lambda: (caller, turn_of(caller, data), None)))
    return BegunTurn(caller, body, data, idem, reply=reply)


@openai_endpoint("POST")
async def chat_completions(request: HttpRequest) -> HttpResponse:
    """``POST /v1/chat/completions``."""
    started = request.gateway_started

    def turn_of(caller: Caller, data: dict) -> Turn:
        turn = OpenAIChatInput.turn(data)
        turn.cache = rest.cache_allowed(request, {})
        return turn

    begun = await gateway_turn(request, OpenAIChatInput, turn_of)
    caller, data, idem = begun.caller, begun.data, begun.idem
    include_usage = bool(data.get("stream") and (data.get("stream_options") or {}).get("include_usage"))
    if begun.stored is not None:
        return await replay.replayed(request, begun.stored, {"X-Cache-Status": "BYPASS"},
                                     lambda stream_id, after: _openai_stream(
                                         streaming.reply_events(stream_id, after=after), stream_id=stream_id,
                                         include_usage=include_usage, request_id=caller.request_id, headers={}))
    reply = begun.reply
    headers = rest.cache_headers(reply)
    if data.get("stream"):
        await replay.keep_stream(idem, reply.stream_id)
        response = _openai_stream(streaming.stream_reply(reply), stream_id=reply.stream_id,
                                  include_usage=include_usage, request_id=caller.request_id, headers=headers)
        _overhead(response, started)  # before the provider is waited for: all ours
        return response
    created = int(time.time())
    provider_ms: list[float] = [0.0]

    def build(final: dict) -> dict:
        provider_ms[0] = float(final.get("latency_ms") or 0.0)
        return chat_completion_data(final, created=created)

    status, payload = await asyncio.shield(replay.settle(reply, idem, build))
    if status != 200:
        status, payload = openai_error_body(status, payload)
        headers = {**(headers or {}), **replay.error_headers(reply)}
    response = JsonResponse(payload, status=status, headers=headers)
    _overhead(response, started, provider_ms[0])
    return response


# --- models -------------------------------------------------------------------------------------


def _model_objects() -> list[dict]:
    models = [{"id": m.id, "object": "model", "created": MODELS_CREATED, "owned_by": m.provider}
              for m in provider_selectors.catalogue()]
    models.append({"id": embeddings.EMBEDDING_MODEL_ID, "object": "model", "created": MODELS_CREATED,
                   "owned_by": "local"})
    return models


@openai_endpoint("GET")
async def models(request: HttpRequest) -> HttpResponse:
    """``GET /v1/models``."""
    await authenticate(request)
    return JsonResponse({"object": "list", "data": await sync_to_async(_model_objects)()})


@openai_endpoint("GET")
async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    """``GET /v1/models/{id}``."""
    await authenticate(request)
    found = [m for m in await sync_to_async(_model_objects)() if m["id"] == model_id]
    if not found:
        raise AppError(f"The model '{model_id}' does not exist.", status_code=404, code="MODEL_NOT_FOUND")
    return JsonResponse(found[0])


# --- embeddings ---------------------------------------------------------------------------------


class EmbeddingsInput(serializers.Serializer):
    input = serializers.JSONField(help_text="A string or a list of strings.")
    model = serializers.CharField(max_length=100, required=False, default=embeddings.EMBEDDING_MODEL_ID)
    encoding_format = serializers.ChoiceField(choices=["float", "base64"], required=False, default="float")
    dimensions = serializers.IntegerField(required=False, allow_null=True, min_value=embeddings.EMBEDDING_DIM,
                                          max_value=embeddings.EMBEDDING_DIM)
    user = serializers.CharField(required=False, allow_blank=True, max_length=256)

    def validate_input(self, value: Any) -> list[str]:
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise serializers.ValidationError("A non-empty string or list of strings (token arrays are not supported).")
        if len(texts) > MAX_EMBEDDING_INPUTS:
            raise serializers.ValidationError(f"At most {MAX_EMBEDDING_INPUTS} inputs.")
        if any(not t or len(t) > MAX_EMBEDDING_CHARS for t in texts):
            raise serializers.ValidationError(f"Each input must have 1 to {MAX_EMBEDDING_CHARS} characters.")
        return texts

    def validate_model(self, value: str) -> str:
        if value not in EMBEDDING_MODELS:
            raise AppError(f"The model '{value}' does not exist or does not make embeddings.", status_code=404,
                           code="MODEL_NOT_FOUND", details={"model": [f"Use {embeddings.EMBEDDING_MODEL_ID}."]})
        return embeddings.EMBEDDING_MODEL_ID


def _count_tokens(texts: list[str]) -> int:
    return sum(embeddings.count_tokens(t) for t in texts)


@openai_endpoint("POST")
async def embeddings_create(request: HttpRequest) -> HttpResponse:
    """``POST /v1/embeddings``."""
    started = request.gateway_started
    await authenticate(request)
    data = validated(EmbeddingsInput, json_body(request))
    texts = data["input"]
    model_started = time.perf_counter()
    vectors, tokens = await asyncio.gather(embeddings.aembed_texts(texts), asyncio.to_thread(_count_tokens, texts))
    model_ms = (time.perf_counter() - model_started) * 1000
    if data["encoding_format"] == "base64":
        encoded: list[Any] = [base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() for v in vectors]
    else:
        encoded = vectors
    response = JsonResponse({
        "object": "list", "model": data["model"],
        "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(encoded)],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
    _overhead(response, started, model_ms)
    return response


async def written_events(events: AsyncIterator[dict], writer: Any) -> AsyncIterator[bytes]:
    """The bytes a gateway stream writer (Anthropic's messages, OpenAI's responses) makes of a
    reply's events: ``writer`` has ``start``, ``text``, ``thinking``, ``tool_call``, ``done`` and
    ``error``, each returning the chunks to send."""
    handlers = {"start": writer.start, "tool_call": writer.tool_call, "done": writer.done, "error": writer.error,
                "delta": lambda event: writer.text(event["text"]),
                "thinking": lambda event: writer.thinking(event["text"])}
    async with aclosing(events):
        async for event in events:
            handler = handlers.get(event["type"])
            if handler is not None:
                for chunk in handler(event):
                    yield chunk
