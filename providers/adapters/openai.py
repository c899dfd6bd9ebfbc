"""OpenAI, and any OpenAI-compatible server (vLLM, Ollama, ...), over Chat Completions.

Chat Completions (``/v1/chat/completions``) rather than the Responses API because it is what the
compatible servers speak. ``request.params.web_grounding`` has no Chat Completions equivalent that those
servers share, so it is ignored here.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx2
import openai
from openai._streaming_cleanup import drain_response_async

from providers.adapters.base import (
    ChatMessage,
    ChatProvider,
    ChatRequest,
    Event,
    Finish,
    ProviderSettings,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    Usage,
    estimated_usage,
)
from providers.adapters.transport import sdk_http_client, timed_out
from providers.errors import (
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    from_http_status,
    retry_after_from_headers,
)

logger = logging.getLogger(__name__)

CHAT_COMPLETIONS_PATH = "/chat/completions"  # relative to the client's base_url, as the SDK's own resource sends it
DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"
# Compatible servers such as Ollama need no key, but the SDK refuses to start without one.
NO_KEY_PLACEHOLDER = "not-needed"
# OpenAI's reasoning models: the only ones that take reasoning_effort / max_completion_tokens.
REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")
FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter",
                  "tool_calls": "tool_calls", "function_call": "tool_calls"}


def openai_message(message: ChatMessage) -> dict[str, Any]:
    """One turn in Chat Completions' shape: images as ``image_url`` parts (data URLs), tool calls
    on the assistant turn, tool results as ``tool`` turns."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": _parts(message)}
    turn: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name:  # a participant's name (OpenAI's own field; other providers have none)
        turn["name"] = message.name
    if message.role == "assistant" and message.tool_calls:
        turn.update(content=message.content or None, tool_calls=[
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls])
    elif message.images:
        turn["content"] = _parts(message)
    return turn


def _parts(message: ChatMessage) -> str | list[dict[str, Any]]:
    """A turn's content: its text, or (with images) text and ``image_url`` parts."""
    if not message.images:
        return message.content
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    parts += [{"type": "image_url", "image_url": {"url": image.data_url}} for image in message.images]
    return parts


class OpenAIProvider(ChatProvider):
    kind = "openai"
    supports_embeddings = True

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        options: dict[str, Any] = {}
        if settings.base_url:
            options["base_url"] = settings.base_url
        self._client = openai.AsyncOpenAI(
            api_key=settings.api_key or NO_KEY_PLACEHOLDER,
            timeout=openai.Timeout(settings.timeout, connect=settings.connect_timeout),
            max_retries=0,  # the service layer retries and falls back itself
            http_client=sdk_http_client(openai),
            **options,
        )

    def _chat_params(self, request: ChatRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages += [openai_message(m) for m in request.messages]
        p = request.params
        reasoning_model = bool(REASONING_MODEL.match(request.model))
        params: dict[str, Any] = {
            "model": request.model, "messages": messages,
            "stream": True, "stream_options": {"include_usage": True},
        }
        if p.max_tokens is not None:
            # max_tokens is what compatible servers understand; OpenAI's reasoning models reject it.
            params["max_completion_tokens" if reasoning_model else "max_tokens"] = p.max_tokens
        optional = {"temperature": p.temperature, "top_p": p.top_p, "seed": p.seed,
                    "presence_penalty": p.presence_penalty, "frequency_penalty": p.frequency_penalty,
                    "user": request.user, "stop": list(p.stop) if p.stop else None}
        params.update({k: v for k, v in optional.items() if v is not None})
        if p.thinking and reasoning_model:
            params["reasoning_effort"] = "medium"
        if p.tools:
            params["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters,
                **({"strict": True} if t.strict else {})}} for t in p.tools]
            if p.tool_choice is not None:
                params["tool_choice"] = (p.tool_choice.mode if p.tool_choice.mode != "function" else
                                         {"type": "function", "function": {"name": p.tool_choice.name}})
            if p.parallel_tool_calls is not None:
                params["parallel_tool_calls"] = p.parallel_tool_calls
        if p.response_format is not None and p.response_format.type == "json_object":
            params["response_format"] = {"type": "json_object"}
        elif p.response_format is not None and p.response_format.type == "json_schema":
            params["response_format"] = {"type": "json_schema", "json_schema": {
                "name": p.response_format.name, "schema": p.response_format.schema or {},
                "strict": p.response_format.strict}}
        return params

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        """Stream one chat completion as TextDelta/ThinkingDelta events, then Usage and Finish."""
        usage: Usage | None = None
        finish: str | None = None
        completion_chars = 0
        try:
            # The SDK's own request machinery (auth, headers, timeouts, errors by status) through
            # its documented ``client.post``, and the event stream read raw: the resource method's
            # request transform and per-chunk model objects cost a third of the SDK's CPU per call
            # (bench/results.md) and change nothing in a body that is already plain JSON.
            response = await self._client.post(CHAT_COMPLETIONS_PATH, cast_to=httpx2.Response,
                                               body=self._chat_params(request), stream=True)
            async with aclosing(response):
                async for chunk in _stream_chunks(response):
                    if chunk.get("usage"):
                        usage = Usage(chunk["usage"].get("prompt_tokens") or 0,
                                      chunk["usage"].get("completion_tokens") or 0)
                    for choice in chunk.get("choices") or []:
                        if choice.get("index"):
                            continue
                        delta = choice.get("delta") or {}
                        # vLLM/DeepSeek stream reasoning as `reasoning_content`, Ollama as `reasoning`.
                        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                        if isinstance(reasoning, str) and reasoning:
                            completion_chars += len(reasoning)
                            yield ThinkingDelta(reasoning)
                        text = delta.get("content") or delta.get("refusal")
                        if text:
                            completion_chars += len(text)
                            yield TextDelta(text)
                        for call in delta.get("tool_calls") or []:
                            function = call.get("function") or {}
                            arguments = function.get("arguments") or ""
                            completion_chars += len(arguments)
                            yield ToolCallDelta(index=call.get("index") or 0, id=call.get("id"),
                                                name=function.get("name"), arguments=arguments)
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
        except (openai.OpenAIError, ValueError, AttributeError, TypeError) as exc:
            raise self._error(exc) from None
        if finish is None:
            # Every Chat Completions stream (OpenAI's and the compatible servers') ends its choice
            # with a finish_reason; a body that ends before it was cut off, not finished.
            logger.warning("openai provider %s: stream ended without a finish_reason", self.name)
            raise ProviderUnavailable("The AI provider's response ended unexpectedly.", provider=self.name)
        if usage is None:
            usage = estimated_usage(request, completion_chars)
        yield usage
        yield Finish(FINISH_REASONS.get(finish or "stop", "stop"))

    async def embed(self, texts: list[str], *, model: str | None = None) -> list[list[float]]:
        """One vector per text, in input order (``/v1/embeddings``)."""
        if not texts:
            return []
        try:
            result = await self._client.embeddings.create(input=texts, model=model or DEFAULT_EMBEDDING_MODEL)
            items = sorted(result.data, key=lambda item: item.index)
            vectors = [[float(v) for v in item.embedding] for item in items]
        except (openai.OpenAIError, ValueError, AttributeError, TypeError) as exc:
            raise self._error(exc) from None
        if len(vectors) != len(texts):
            raise ProviderError("The AI provider sent a malformed response.", provider=self.name, retryable=True)
        return vectors

    async def list_models(self) -> list[str]:
        """Model ids from ``/v1/models``."""
        try:
            page = await self._client.models.list()
            return [model.id for model in page.data]
        except (openai.OpenAIError, ValueError, AttributeError) as exc:
            raise self._error(exc) from None

    async def aclose(self) -> None:
        await self._client.close()

    def _error(self, exc: Exception) -> ProviderError:
        """Our error for an SDK exception; the upstream text stays out of it (it may hold secrets)."""
        status = getattr(exc, "status_code", None)
        logger.info("openai provider %s failed: %s (status %s)", self.name, type(exc).__name__, status)
        if isinstance(exc, openai.APITimeoutError) and timed_out(exc):
            return ProviderTimeout(provider=self.name)
        if isinstance(exc, openai.APIStatusError):
            return from_http_status(exc.status_code, provider=self.name,
                                    retry_after=retry_after_from_headers(exc.response.headers))
        if isinstance(exc, openai.APIConnectionError):
            return ProviderUnavailable(provider=self.name)
        if isinstance(exc, openai.APIError) and not isinstance(exc, openai.APIResponseValidationError):
            # An error event inside an otherwise good stream.
            return ProviderError(provider=self.name, retryable=True)
        return ProviderError("The AI provider sent a malformed response.", provider=self.name, retryable=True)


async def _lines(response: httpx2.Response) -> AsyncIterator[str]:
    """The body's lines; a connection that fails or times out mid-body raises the SDK's own errors
    (``APITimeoutError``, ``APIConnectionError``), as the SDK's stream does."""
    try:
        async for line in response.aiter_lines():
            yield line
    except httpx2.TimeoutException as exc:
        raise openai.APITimeoutError(request=response.request) from exc
    except (httpx2.RequestError, ssl.SSLError) as exc:
        raise openai.APIConnectionError(request=response.request) from exc


async def _stream_chunks(response: httpx2.Response) -> AsyncIterator[dict]:
    """The JSON objects of a Chat Completions event stream (``data:`` lines, events separated by a
    blank line, ``[DONE]`` last), as plain dicts. An error object in the stream raises the SDK's
    ``APIError``, as the SDK's own stream does."""
    data: list[str] = []
    async for line in _lines(response):
        if line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
            continue
        if line or not data:
            continue  # event:, id:, retry: and comments carry nothing for chat completions
        payload, data = "\n".join(data), []
        if payload.startswith("[DONE]"):
            # What the SDK's own stream does here: read what is left of the body (briefly, errors
            # ignored) so the connection goes back to the pool instead of a new one per request.
            await drain_response_async(response)
            return
        chunk = json.loads(payload)
        if not isinstance(chunk, dict):
            raise ValueError("A stream event that is not an object.")
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else None
            raise openai.APIError(message if isinstance(message, str) and message else
                                  "An error occurred during streaming", request=response.request, body=error)
        yield chunk
