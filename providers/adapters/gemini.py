"""Google Gemini through the ``google-genai`` SDK (the successor of the deprecated
``google-generativeai``), Gemini Developer API only (not Vertex AI).

The SDK client is built once per adapter on an ``httpx.AsyncClient`` that we own, so that:
the transport is always httpx (the SDK would switch to aiohttp whenever that package happens to be
installed, with other exceptions), the connect timeout can differ from the read timeout (the SDK
only has one per-request timeout, ``HttpOptions.timeout`` in milliseconds, which it also sends as
``X-Server-Timeout``), and the pool is closed in :meth:`GeminiProvider.aclose`. SDK retries are
off (one attempt, no automatic continuation, no automatic function calling): the service layer
retries and falls back itself.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from chatplatform.api.ids import new_id
from providers.adapters.base import (
    ChatMessage,
    ChatProvider,
    ChatRequest,
    Completion,
    Event,
    Finish,
    ProviderSettings,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    Usage,
    estimated_usage,
)
from providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    from_http_status,
    retry_after_from_headers,
)
from providers.params import ToolChoice

try:  # the SDK's other httpx flavour; only reachable if someone injects such a client
    import httpx2 as _httpx2
except ImportError:  # pragma: no cover - optional
    _httpx2 = None

_TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (httpx.TimeoutException,) + (
    (_httpx2.TimeoutException,) if _httpx2 else ())
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError,) + (
    (_httpx2.TransportError,) if _httpx2 else ())

DEFAULT_EMBEDDING_MODEL = "text-embedding-004"

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "MODEL_ARMOR": "content_filter",
}

logger = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _enum_name(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def _finish_reason(value: Any) -> str:
    return FINISH_REASONS.get(_enum_name(value), "stop")


def _ms(seconds: float) -> int | None:
    return max(1, int(math.ceil(seconds * 1000))) if seconds and seconds > 0 else None


def _retry_after(exc: genai_errors.APIError) -> float | None:
    """``Retry-After`` header if the response had one, else Google's ``RetryInfo.retryDelay``."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if isinstance(headers, dict):
        headers = {str(k).lower(): v for k, v in headers.items()}
    found = retry_after_from_headers(headers)
    if found is not None:
        return found
    details = exc.details if isinstance(exc.details, dict) else {}
    error = details.get("error", details)
    for item in (error.get("details") if isinstance(error, dict) else None) or []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def gemini_parts(message: ChatMessage, tool_names: dict[str, str]) -> list[types.Part]:
    """One turn's parts: text, images as inline bytes, function calls, function responses (which
    need the function's name: the tool turn's own, or its call's)."""
    if message.role == "tool":
        try:
            result = json.loads(message.content)
        except ValueError:
            result = message.content
        name = message.name or tool_names.get(message.tool_call_id or "", "") or "tool"
        # A result's images follow its function response, as inline parts of the same turn.
        return [types.Part(function_response=types.FunctionResponse(
            id=message.tool_call_id or None, name=name,
            response=result if isinstance(result, dict) else {"result": result})),
            *(types.Part.from_bytes(data=image.data, mime_type=image.media_type) for image in message.images)]
    parts = [types.Part(text=message.content)] if message.content or not (message.images or message.tool_calls) else []
    parts += [types.Part.from_bytes(data=image.data, mime_type=image.media_type) for image in message.images]
    for call in message.tool_calls:
        try:
            args = json.loads(call.arguments or "{}")
        except ValueError:
            args = {}
        parts.append(types.Part(function_call=types.FunctionCall(id=call.id or None, name=call.name,
                                                                 args=args if isinstance(args, dict) else {})))
    return parts


class GeminiProvider(ChatProvider):
    kind = "gemini"
    supports_embeddings = True
    accepts = frozenset({"top_k"})

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        connect_timeout = settings.connect_timeout if settings.connect_timeout and settings.connect_timeout > 0 else None
        read_timeout = settings.timeout if settings.timeout and settings.timeout > 0 else None

        async def _connect_timeout(request: httpx.Request) -> None:
            # The SDK passes one per-request timeout (HttpOptions.timeout); give connecting its own.
            timeout = dict(request.extensions.get("timeout") or {})
            timeout["connect"] = connect_timeout
            request.extensions["timeout"] = timeout

        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            event_hooks={"request": [_connect_timeout]},
            follow_redirects=True,
        )
        self._client: genai.Client | None = None
        if settings.api_key:
            self._client = genai.Client(
                api_key=settings.api_key,
                vertexai=False,
                http_options=types.HttpOptions(
                    base_url=settings.base_url or None,
                    api_version=settings.extra.get("api_version") or None,
                    timeout=_ms(settings.timeout),
                    retry_options=types.HttpRetryOptions(attempts=1),
                    httpx_async_client=self._http,
                ),
            )

    # -- helpers ------------------------------------------------------------------------------

    @property
    def _aio(self):
        if self._client is None:
            raise ProviderAuthError(provider=self.name)
        return self._client.aio

    def _config(self, request: ChatRequest) -> types.GenerateContentConfig:
        p = request.params
        config = types.GenerateContentConfig(
            system_instruction=request.system or None,
            temperature=p.temperature, top_p=p.top_p, top_k=p.top_k, max_output_tokens=p.max_tokens,
            stop_sequences=list(p.stop) if p.stop else None,
            seed=p.seed, presence_penalty=p.presence_penalty, frequency_penalty=p.frequency_penalty,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            automatic_continuation=False,
        )
        if p.thinking:
            # -1: dynamic budget (the model decides); 0 would switch thinking off, which contradicts thinking=True.
            config.thinking_config = types.ThinkingConfig(include_thoughts=True,
                                                          thinking_budget=p.thinking_budget or -1)
        tools: list[types.Tool] = []
        if p.web_grounding:
            tools.append(types.Tool(google_search=types.GoogleSearch()))
        if p.tools:
            tools.append(types.Tool(function_declarations=[
                types.FunctionDeclaration(name=t.name, description=t.description or None,
                                          parameters_json_schema=t.parameters) for t in p.tools]))
            choice = p.tool_choice or ToolChoice()
            config.tool_config = types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
                mode={"auto": "AUTO", "none": "NONE", "required": "ANY", "function": "ANY"}[choice.mode],
                allowed_function_names=[choice.name] if choice.mode == "function" and choice.name else None))
        config.tools = tools or None
        if p.response_format is not None and p.response_format.is_json:
            config.response_mime_type = "application/json"
            if p.response_format.type == "json_schema" and p.response_format.schema:
                config.response_json_schema = p.response_format.schema
        return config

    @staticmethod
    def _contents(request: ChatRequest) -> list[types.Content]:
        contents: list[types.Content] = []
        names = {c.id: c.name for m in request.messages for c in m.tool_calls}
        for message in request.messages:
            role = "model" if message.role == "assistant" else "user"  # system/tool turns: user
            parts = gemini_parts(message, names)
            if contents and contents[-1].role == role:  # merge same-role turns (tool results)
                contents[-1].parts = [*(contents[-1].parts or []), *parts]
            else:
                contents.append(types.Content(role=role, parts=parts))
        return contents

    def _prepare(self, request: ChatRequest) -> tuple[list[types.Content], types.GenerateContentConfig]:
        try:
            return self._contents(request), self._config(request)
        except (pydantic.ValidationError, ValueError, TypeError) as exc:
            raise ProviderError("The AI provider rejected the request.", provider=self.name,
                                retryable=False) from exc

    def _map_error(self, exc: BaseException) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, genai_errors.APIError):
            status = exc.code if isinstance(exc.code, int) else None
            if status is None:
                return ProviderError(provider=self.name, retryable=True)
            return from_http_status(status, provider=self.name, retry_after=_retry_after(exc))
        if isinstance(exc, _TIMEOUT_ERRORS):
            return ProviderTimeout(provider=self.name)
        if isinstance(exc, _TRANSPORT_ERRORS):
            # Refused/reset connections and streams cut mid-body.
            return ProviderUnavailable(provider=self.name)
        if isinstance(exc, (genai_errors.UnknownApiResponseError, json.JSONDecodeError, pydantic.ValidationError)):
            return ProviderError("The AI provider sent a malformed response.", provider=self.name, retryable=True)
        if isinstance(exc, ValueError):  # the SDK refusing our arguments (e.g. an invalid model name)
            return ProviderError("The AI provider rejected the request.", provider=self.name, retryable=False)
        return ProviderError(provider=self.name, retryable=True)

    @staticmethod
    def _usage_numbers(meta: types.GenerateContentResponseUsageMetadata) -> tuple[int, int]:
        completion = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
        return meta.prompt_token_count or 0, completion

    @staticmethod
    def _estimate(request: ChatRequest, completion_chars: int) -> Usage:
        return estimated_usage(request, completion_chars)

    # -- chat ---------------------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        usage: tuple[int, int] | None = None
        finish: str | None = None
        completion_chars = 0
        calls = 0
        contents, config = self._prepare(request)
        try:
            response = await self._aio.models.generate_content_stream(
                model=request.model, contents=contents, config=config)
            async for chunk in response:
                if chunk.usage_metadata is not None:
                    usage = self._usage_numbers(chunk.usage_metadata)
                feedback = chunk.prompt_feedback
                if feedback is not None and feedback.block_reason:
                    finish = "content_filter"
                for candidate in (chunk.candidates or [])[:1]:
                    for part in (candidate.content.parts if candidate.content else None) or []:
                        if part.function_call is not None:  # Gemini sends each call whole
                            arguments = json.dumps(part.function_call.args or {})
                            completion_chars += len(arguments)
                            yield ToolCallDelta(index=calls, id=part.function_call.id or new_id("call"),
                                                name=part.function_call.name, arguments=arguments)
                            calls += 1
                            continue
                        if not part.text:
                            continue
                        completion_chars += len(part.text)
                        yield ThinkingDelta(part.text) if part.thought else TextDelta(part.text)
                    if candidate.finish_reason:
                        finish = _finish_reason(candidate.finish_reason)
        except Exception as exc:
            raise self._map_error(exc) from exc
        if finish is None:
            # The last chunk of a Gemini stream carries the candidate's finishReason (or the prompt's
            # blockReason); a body that ends before it was cut off, not finished.
            logger.warning("gemini provider %s: stream ended without a finishReason", self.name)
            raise ProviderUnavailable("The AI provider's response ended unexpectedly.", provider=self.name)
        if usage is not None:
            yield Usage(*usage)
        else:
            yield self._estimate(request, completion_chars)
        yield Finish("tool_calls" if calls and finish == "stop" else finish)

    async def complete(self, request: ChatRequest) -> Completion:
        """One non-streamed ``generateContent`` call."""
        started = time.perf_counter()
        contents, config = self._prepare(request)
        try:
            response = await self._aio.models.generate_content(
                model=request.model, contents=contents, config=config)
        except Exception as exc:
            raise self._map_error(exc) from exc
        text: list[str] = []
        thinking: list[str] = []
        finish = "stop"
        if response.prompt_feedback is not None and response.prompt_feedback.block_reason:
            finish = "content_filter"
        for candidate in (response.candidates or [])[:1]:
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.text:
                    (thinking if part.thought else text).append(part.text)
            if candidate.finish_reason:
                finish = _finish_reason(candidate.finish_reason)
        if response.usage_metadata is not None:
            usage = Usage(*self._usage_numbers(response.usage_metadata))
        else:
            usage = self._estimate(request, sum(map(len, text)) + sum(map(len, thinking)))
        return Completion(
            text="".join(text), thinking="".join(thinking), model=request.model, provider=self.name,
            usage=usage, finish_reason=finish, latency_ms=(time.perf_counter() - started) * 1000,
        )

    # -- embeddings, models -------------------------------------------------------------------

    async def embed(self, texts: list[str], *, model: str | None = None) -> list[list[float]]:
        if not texts:
            return []
        try:
            response = await self._aio.models.embed_content(
                model=model or DEFAULT_EMBEDDING_MODEL, contents=list(texts))
        except Exception as exc:
            raise self._map_error(exc) from exc
        embeddings = response.embeddings or []
        if len(embeddings) != len(texts) or any(e.values is None for e in embeddings):
            raise ProviderError("The AI provider sent a malformed response.", provider=self.name, retryable=True)
        return [list(e.values or []) for e in embeddings]

    async def list_models(self) -> list[str]:
        names: list[str] = []
        try:
            pager = await self._aio.models.list(config=types.ListModelsConfig(page_size=1000))
            async for model in pager:
                if model.name:
                    names.append(model.name.removeprefix("models/"))
        except Exception as exc:
            raise self._map_error(exc) from exc
        return names

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aio.aclose()
            self._client.close()
        await self._http.aclose()
