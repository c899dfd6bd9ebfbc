"""Anthropic (Claude) through the official ``anthropic`` SDK: the Messages API, streamed.

One ``AsyncAnthropic`` client per adapter (its connection pool is reused); the SDK's own retries
are off (``max_retries=0``) because the service layer retries and falls back itself. Every SDK
and transport exception becomes a :mod:`providers.errors` error with our own message: Anthropic's
error text never leaves this module.

Notes on the installed SDK (anthropic 2.x, transport ``httpx2``):

* ``messages.create`` has no ``temperature``/``top_p`` keywords any more, so they travel in
  ``extra_body`` (the Messages API still takes them).
* Errors that arrive *inside* a 200 stream (``event: error``) surface as ``APIStatusError`` with
  the stream's status (200); their status is recovered from Anthropic's error ``type``.
* Transport failures while reading a stream are raised by ``httpx2`` unwrapped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2

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
    estimate_tokens,
)
from providers.adapters.transport import sdk_http_client, timed_out
from providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    from_http_status,
    retry_after_from_headers,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 1024
MIN_THINKING_BUDGET = 1024
MIN_THINKING_TOP_P = 0.95

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Anthropic's error ``type`` -> the HTTP status it is documented with (for in-stream errors).
ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def _stop_reason(reason: str | None) -> str:
    return STOP_REASONS.get(reason or "", "stop")


_estimate = estimate_tokens


def _as_blocks(content: str | list) -> list:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _arguments_object(arguments: str) -> dict:
    """A tool call's JSON arguments as the object Anthropic's ``tool_use.input`` must be."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        raise ProviderError("Tool call arguments must be a JSON object.", retryable=False, status_code=400,
                            code="INVALID_REQUEST") from None
    return value if isinstance(value, dict) else {"value": value}


def anthropic_blocks(message: ChatMessage) -> tuple[str, str | list[dict[str, Any]]]:
    """(role, content) of one turn: images as base64 ``image`` blocks, tool calls as
    ``tool_use`` blocks, a tool result as a ``tool_result`` block in a user turn."""
    images = [{"type": "image", "source": {"type": "base64", "media_type": i.media_type, "data": i.base64}}
              for i in message.images]
    text = [{"type": "text", "text": message.content}] if message.content else []
    if message.role == "tool":  # a result with images: text and image blocks inside the tool_result
        return "user", [{"type": "tool_result", "tool_use_id": message.tool_call_id or "",
                         "content": [*text, *images] if images else message.content or ""}]
    if message.role == "assistant" and message.tool_calls:
        return "assistant", [*text, *({"type": "tool_use", "id": c.id, "name": c.name,
                                       "input": _arguments_object(c.arguments)} for c in message.tool_calls)]
    if images:
        return message.role, [*text, *images]
    return message.role, message.content


class AnthropicProvider(ChatProvider):
    kind = "anthropic"
    supports_embeddings = False
    accepts = frozenset({"top_k"})

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        options: dict[str, Any] = {
            "base_url": settings.base_url or None,
            "timeout": anthropic.Timeout(settings.timeout, connect=settings.connect_timeout),
            "max_retries": 0,
            "http_client": sdk_http_client(anthropic),
        }
        self._credentials_broken = False
        try:
            # Empty key: the SDK looks for credentials itself (ANTHROPIC_API_KEY, profiles, ...).
            self._client = anthropic.AsyncAnthropic(api_key=settings.api_key or None, **options)
        except anthropic.CredentialsError:
            # A broken credentials profile must not break construction (the registry builds
            # adapters eagerly); calls report it as an auth error instead.
            logger.warning("anthropic provider %s: no usable credentials", settings.name)
            self._credentials_broken = True
            self._client = anthropic.AsyncAnthropic(api_key="", **options)

    # -- requests -------------------------------------------------------------------------------

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        system_parts = [request.system] if request.system else []
        messages: list[dict[str, Any]] = []
        for message in request.messages:
            if message.role == "system":  # Anthropic has no system turns: fold into `system`.
                if message.content:
                    system_parts.append(message.content)
                continue
            role, blocks = anthropic_blocks(message)
            if messages and messages[-1]["role"] == role:  # alternate roles: merge same-role turns
                messages[-1]["content"] = [*_as_blocks(messages[-1]["content"]), *_as_blocks(blocks)]
            else:
                messages.append({"role": role, "content": blocks})

        max_tokens = int(request.params.max_tokens or self.settings.extra.get("max_tokens") or DEFAULT_MAX_TOKENS)
        params: dict[str, Any] = {"model": request.model or self.settings.default_model, "messages": messages}
        extra_body: dict[str, Any] = {}
        if system_parts:
            params["system"] = "\n\n".join(system_parts)
        if request.params.stop:
            params["stop_sequences"] = list(request.params.stop)
        if request.user:
            params["metadata"] = {"user_id": request.user}

        if request.params.thinking:
            budget = max(MIN_THINKING_BUDGET, int(request.params.thinking_budget or MIN_THINKING_BUDGET))
            if max_tokens <= budget:  # the budget must stay below max_tokens
                max_tokens = budget + DEFAULT_MAX_TOKENS
            params["thinking"] = {"type": "enabled", "budget_tokens": budget}
            # With thinking, Anthropic refuses a temperature and accepts top_p only in [0.95, 1].
            if request.params.top_p is not None:
                extra_body["top_p"] = min(1.0, max(MIN_THINKING_TOP_P, float(request.params.top_p)))
        else:
            if request.params.temperature is not None:
                extra_body["temperature"] = min(1.0, max(0.0, float(request.params.temperature)))
            if request.params.top_p is not None:
                extra_body["top_p"] = min(1.0, max(0.0, float(request.params.top_p)))

        if request.params.top_k is not None:
            extra_body["top_k"] = int(request.params.top_k)
        params["max_tokens"] = max_tokens
        p = request.params
        if p.tools:
            params["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                               for t in p.tools]
            choice = p.tool_choice.mode if p.tool_choice else "auto"
            tool_choice: dict[str, Any] = {"auto": {"type": "auto"}, "none": {"type": "none"},
                                           "required": {"type": "any"}}.get(choice) or {
                "type": "tool", "name": p.tool_choice.name if p.tool_choice else ""}
            if p.parallel_tool_calls is False and choice != "none":
                tool_choice["disable_parallel_tool_use"] = True
            params["tool_choice"] = tool_choice
        if p.response_format is not None and p.response_format.is_json:
            # Anthropic's structured outputs: the reply is JSON valid against the schema.
            schema = p.response_format.schema if p.response_format.type == "json_schema" else {"type": "object"}
            params["output_config"] = {"format": {"type": "json_schema", "schema": schema or {"type": "object"}}}
        if extra_body:
            params["extra_body"] = extra_body
        return params

    # -- streaming ------------------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        params = self._params(request)
        completion_chars = 0
        input_tokens: int | None = None
        output_tokens: int | None = None
        stop_reason: str | None = None
        stop_sequence: str | None = None
        stopped = False
        tool_index: dict[int, int] = {}  # content block index -> tool call index
        try:
            self._check_credentials()
            events = await self._client.messages.create(**params, stream=True)
            async with events:
                async for event in events:
                    kind = event.type
                    if kind == "message_start":
                        usage = getattr(event.message, "usage", None)
                        if usage is not None and getattr(usage, "input_tokens", None) is not None:
                            input_tokens = (usage.input_tokens + (usage.cache_creation_input_tokens or 0)
                                            + (usage.cache_read_input_tokens or 0))
                    elif kind == "content_block_start":
                        block = event.content_block
                        if block.type == "tool_use":
                            tool_index[event.index] = len(tool_index)
                            yield ToolCallDelta(index=tool_index[event.index], id=block.id, name=block.name)
                            continue
                        text = getattr(block, "text", None) if block.type == "text" else None
                        thought = getattr(block, "thinking", None) if block.type == "thinking" else None
                        if text:
                            completion_chars += len(text)
                            yield TextDelta(text)
                        if thought:
                            completion_chars += len(thought)
                            yield ThinkingDelta(thought)
                    elif kind == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta" and delta.text:
                            completion_chars += len(delta.text)
                            yield TextDelta(delta.text)
                        elif delta.type == "thinking_delta" and delta.thinking:
                            completion_chars += len(delta.thinking)
                            yield ThinkingDelta(delta.thinking)
                        elif delta.type == "input_json_delta" and event.index in tool_index:
                            completion_chars += len(delta.partial_json or "")
                            yield ToolCallDelta(index=tool_index[event.index], arguments=delta.partial_json or "")
                        # signature_delta / input_json_delta / citations_delta: nothing to show.
                    elif kind == "message_delta":
                        stop_reason = event.delta.stop_reason or stop_reason
                        stop_sequence = getattr(event.delta, "stop_sequence", None) or stop_sequence
                        usage = getattr(event, "usage", None)
                        if usage is not None:
                            if getattr(usage, "output_tokens", None) is not None:
                                output_tokens = usage.output_tokens
                            if getattr(usage, "input_tokens", None) is not None and input_tokens is None:
                                input_tokens = usage.input_tokens
                    elif kind == "message_stop":
                        stopped = True
        except ProviderError:
            raise
        except Exception as exc:
            mapped = self._map_error(exc)
            if mapped is None:
                raise
            raise mapped from None

        if not stopped:  # the body ended without message_stop: a truncated stream
            logger.warning("anthropic provider %s: stream ended before message_stop", self.name)
            raise ProviderUnavailable("The AI provider's response ended unexpectedly.", provider=self.name)

        if input_tokens is not None and output_tokens is not None:
            yield Usage(prompt_tokens=input_tokens, completion_tokens=output_tokens)
        else:
            yield Usage(prompt_tokens=input_tokens if input_tokens is not None else request.prompt_estimate(),
                        completion_tokens=output_tokens if output_tokens is not None else _estimate(completion_chars),
                        estimated=True)
        yield Finish(_stop_reason(stop_reason),
                     stop_sequence=stop_sequence if stop_reason == "stop_sequence" else None)

    # -- models / lifecycle ---------------------------------------------------------------------

    async def list_models(self) -> list[str]:
        ids: list[str] = []
        try:
            self._check_credentials()
            async for model in self._client.models.list(limit=100):
                ids.append(model.id)
        except ProviderError:
            raise
        except Exception as exc:
            mapped = self._map_error(exc)
            if mapped is None:
                raise
            raise mapped from None
        return ids

    async def aclose(self) -> None:
        await self._client.close()

    # -- errors ---------------------------------------------------------------------------------

    def _check_credentials(self) -> None:
        client = self._client
        if self._credentials_broken or (client.api_key is None and client.auth_token is None
                                        and client.credentials is None):
            # The SDK would raise a bare TypeError at request time.
            raise ProviderAuthError("No credentials are configured for the AI provider.", provider=self.name)

    def _map_error(self, exc: Exception) -> ProviderError | None:
        """Our error for an SDK/transport exception (``None``: not one of theirs, re-raise)."""
        name = self.name
        if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException) and timed_out(exc):
            logger.info("anthropic provider %s: timeout (%s)", name, type(exc).__name__)
            return ProviderTimeout(provider=name)
        if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
            logger.info("anthropic provider %s: connection error (%s)", name, type(exc).__name__)
            return ProviderUnavailable(provider=name)
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            error_type = exc.type if isinstance(exc.type, str) else None
            if status < 400:  # an `event: error` inside a 200 stream
                status = ERROR_TYPE_STATUS.get(error_type or "", 500)
            logger.info("anthropic provider %s: upstream status %s (%s, request %s)",
                        name, status, error_type, exc.request_id)
            return from_http_status(status, provider=name,
                                    retry_after=retry_after_from_headers(exc.response.headers))
        if isinstance(exc, anthropic.APIResponseValidationError | json.JSONDecodeError | httpx2.DecodingError):
            logger.info("anthropic provider %s: malformed response (%s)", name, type(exc).__name__)
            return ProviderError("The AI provider sent a malformed response.", provider=name, retryable=True)
        if isinstance(exc, anthropic.CredentialsError):
            logger.info("anthropic provider %s: credentials error (%s)", name, type(exc).__name__)
            return ProviderAuthError(provider=name)
        if isinstance(exc, anthropic.AnthropicError):
            logger.info("anthropic provider %s: SDK error (%s)", name, type(exc).__name__)
            return ProviderError(provider=name)
        return None
