"""A fake Anthropic API speaking the real wire protocol (Messages API and Models API).

* ``POST /v1/messages``: validates the body the way Anthropic does (max_tokens required, the
  extended-thinking rules, temperature/top_p ranges, user/assistant roles only) and answers 400
  ``invalid_request_error`` otherwise; with ``"stream": true`` it streams SSE framed as
  ``event: <type>\\ndata: {json}\\n\\n`` (message_start, content_block_start, ping,
  content_block_delta, content_block_stop, message_delta, message_stop), else one JSON Message.
* ``GET /v1/models`` (paginated with ``limit``/``after_id``) and ``GET /v1/models/{id}``.
* Requests without ``x-api-key`` or ``Authorization`` get 401 ``authentication_error``.
* Tools (``tools``/``tool_choice``, ``tool_use``/``tool_result`` blocks) and structured outputs
  (``output_config.format``) are checked as Anthropic checks them; the step kind ``auto`` lets
  :mod:`providers.tests.fake_model` answer (calling a tool, or JSON matching the schema).
* Errors use Anthropic's shape ``{"type": "error", "error": {"type": ..., "message": ...}}``.

Step kinds beyond :mod:`providers.tests.fakeserver`'s: ``error_event`` streams ``after`` text
deltas, then an in-stream ``event: error`` whose type follows ``status`` (529 -> overloaded);
``truncate`` streams ``after`` text deltas and ends the body cleanly without ``message_stop``.
:class:`AnthropicStep` adds ``stop_reason``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, replace
from urllib.parse import parse_qs

from providers.tests.fake_model import Prompt, respond
from providers.tests.fakeserver import (
    Call,
    Disconnect,
    ScriptedUpstream,
    Step,
    end_stream,
    send_chunk,
    send_json,
    split_text,
    start_stream,
)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

DEFAULT_MODELS = ["claude-sonnet-5", "claude-opus-5", "claude-haiku-4-5"]


@dataclass
class AnthropicStep(Step):
    stop_reason: str = "end_turn"


def error_payload(status: int, message: str | None = None) -> dict:
    return {
        "type": "error",
        "error": {
            "type": ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error"),
            "message": message or f"upstream error {status} with secret sk-should-not-leak",
        },
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }


def _stop_reason(step: Step) -> str:
    return "tool_use" if step.tool_calls else getattr(step, "stop_reason", "end_turn")


def sse(event: str, data: dict | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def model_info(model_id: str) -> dict:
    return {
        "id": model_id,
        "type": "model",
        "display_name": model_id.replace("-", " ").title(),
        "created_at": "2026-01-15T00:00:00Z",
        "lifecycle": "active",
    }


class FakeAnthropic(ScriptedUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.models: list[str] = list(DEFAULT_MODELS)

    def reset(self) -> None:
        super().reset()
        self.models = list(DEFAULT_MODELS)

    def error_body(self, status: int) -> dict:
        return error_payload(status)

    @property
    def message_calls(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST" and c.path == "/v1/messages"]

    async def handle(self, call: Call, step: Step, send) -> None:
        if not (call.headers.get("x-api-key") or call.headers.get("authorization", "").removeprefix("Bearer ").strip()):
            await send_json(send, 401, error_payload(401, "invalid x-api-key"))
            return
        if call.method == "POST" and call.path == "/v1/messages":
            await self._messages(call, step, send)
        elif call.method == "GET" and call.path == "/v1/models":
            await self._list_models(call, send)
        elif call.method == "GET" and call.path.startswith("/v1/models/"):
            model_id = call.path.removeprefix("/v1/models/")
            if model_id in self.models:
                await send_json(send, 200, model_info(model_id))
            else:
                await send_json(send, 404, error_payload(404, f"model: {model_id}"))
        else:
            await send_json(send, 404, error_payload(404, "Not found"))

    # -- models ---------------------------------------------------------------------------------

    async def _list_models(self, call: Call, send) -> None:
        query = parse_qs(call.query)
        limit = int(query.get("limit", ["20"])[0])
        start = 0
        if "after_id" in query:
            start = self.models.index(query["after_id"][0]) + 1
        page = self.models[start:start + limit]
        await send_json(send, 200, {
            "data": [model_info(m) for m in page],
            "has_more": start + limit < len(self.models),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        })

    # -- messages -------------------------------------------------------------------------------

    @staticmethod
    def validate(body) -> str | None:
        """The first rule of Anthropic's Messages API that ``body`` breaks, if any."""
        if not isinstance(body, dict):
            return "request body must be a JSON object"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model: Field required"
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return "max_tokens: Field required"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: at least one message is required"
        for i, message in enumerate(messages):
            if message.get("role") not in ("user", "assistant"):
                return f"messages.{i}.role: Input should be 'user' or 'assistant'"
            if not message.get("content"):
                return f"messages.{i}: all messages must have non-empty content"
            if i and message["role"] == messages[i - 1]["role"]:
                return f"messages.{i}: roles must alternate between 'user' and 'assistant'"
            problem = FakeAnthropic._check_blocks(i, message, messages[i - 1] if i else None)
            if problem:
                return problem
        problem = FakeAnthropic._check_tools(body)
        if problem:
            return problem
        if "system" in body and not isinstance(body["system"], str | list):
            return "system: Input should be a valid string"
        temperature = body.get("temperature")
        if temperature is not None and not 0 <= temperature <= 1:
            return "temperature: range: 0..1"
        top_p = body.get("top_p")
        if top_p is not None and not 0 <= top_p <= 1:
            return "top_p: range: 0..1"
        thinking = body.get("thinking")
        if thinking is not None and thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            if budget >= max_tokens:
                return "`max_tokens` must be greater than `thinking.budget_tokens`"
            if temperature is not None and temperature != 1:
                return "`temperature` may only be set to 1 when thinking is enabled"
            if top_p is not None and top_p < 0.95:
                return "`top_p` must be greater than or equal to 0.95 when thinking is enabled"
        stops = body.get("stop_sequences")
        if stops is not None and (not isinstance(stops, list) or any(not str(s).strip() for s in stops)):
            return "stop_sequences: each stop sequence must contain non-whitespace"
        return None

    @staticmethod
    def _check_blocks(i: int, message: dict, previous: dict | None) -> str | None:
        content = message["content"]
        if isinstance(content, str):
            return None
        used = {b.get("id") for b in (previous or {}).get("content") or [] if isinstance(b, dict)
                and b.get("type") == "tool_use"}
        for j, block in enumerate(content):
            kind = block.get("type")
            if kind not in ("text", "image", "tool_use", "tool_result", "thinking", "document"):
                return f"messages.{i}.content.{j}.type: Input tag {kind!r} is not a known block type"
            if kind == "tool_use" and (message["role"] != "assistant" or not isinstance(block.get("input"), dict)):
                return f"messages.{i}.content.{j}: tool_use blocks are assistant turns with an object input"
            if kind == "tool_result" and block.get("tool_use_id") not in used:
                return (f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message.")
            if kind == "image" and (block.get("source") or {}).get("type") != "base64":
                return f"messages.{i}.content.{j}.source: only base64 sources are accepted here"
        return None

    @staticmethod
    def _check_tools(body: dict) -> str | None:
        names = []
        for i, tool in enumerate(body.get("tools") or []):
            if not tool.get("name") or (tool.get("input_schema") or {}).get("type") != "object":
                return f"tools.{i}: a tool needs a name and an input_schema of type object"
            names.append(tool["name"])
        choice = body.get("tool_choice")
        if choice is not None:
            if choice.get("type") not in ("auto", "any", "tool", "none"):
                return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
            if choice["type"] == "tool" and choice.get("name") not in names:
                return f"tool_choice.name: no tool named {choice.get('name')!r}"
        fmt = (body.get("output_config") or {}).get("format")
        if fmt is not None and (fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict)):
            return "output_config.format: a json_schema format needs a schema"
        return None

    @staticmethod
    def prompt(body: dict) -> Prompt:
        """The request as the fake model reads it."""
        messages = body.get("messages") or []

        def blocks(message: dict) -> list[dict]:
            content = message.get("content")
            return [{"type": "text", "text": content}] if isinstance(content, str) else content or []

        users = [m for m in messages if m.get("role") == "user"
                 and any(b.get("type") == "text" for b in blocks(m))]
        last = blocks(messages[-1]) if messages else []
        results = [b for b in last if b.get("type") == "tool_result"]
        choice = body.get("tool_choice") or {}
        result = results[-1].get("content") if results else None
        if isinstance(result, list):
            result = "".join(b.get("text", "") for b in result)
        return Prompt(
            question="".join(b.get("text", "") for b in blocks(users[-1]) if b.get("type") == "text") if users else "",
            tools=[{"name": t["name"], "parameters": t.get("input_schema")} for t in body.get("tools") or []],
            tool_choice={"any": "required", "tool": choice.get("name")}.get(choice.get("type"), choice.get("type")),
            tool_result=result, schema=((body.get("output_config") or {}).get("format") or {}).get("schema"))

    async def _messages(self, call: Call, step: Step, send) -> None:
        problem = self.validate(call.body)
        if problem:
            await send_json(send, 400, error_payload(400, problem))
            return
        body = call.body
        if step.kind == "auto":
            answer = respond(self.prompt(body))
            step = replace(step, kind="ok", text=answer.text, tool_calls=answer.tool_calls)
        thinking = step.thinking if body.get("thinking") else ""
        if body.get("stream"):
            await self._stream(body, step, thinking, send)
        elif step.kind == "malformed":
            raw = b'{"id": "msg_01", "type": "message", "content": [{"type": "te'
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(raw)).encode())]})
            await send({"type": "http.response.body", "body": raw})
        else:
            await send_json(send, 200, self._message(body, step, thinking))

    def _message(self, body: dict, step: Step, thinking: str) -> dict:
        content = []
        if thinking:
            content.append({"type": "thinking", "thinking": thinking, "signature": "c2lnbmF0dXJl"})
        if step.text or not step.tool_calls:
            content.append({"type": "text", "text": step.text, "citations": None})
        content += [{"type": "tool_use", "id": f"toolu_fake{i}", "name": c["name"], "input": c.get("arguments") or {}}
                    for i, c in enumerate(step.tool_calls)]
        stop_reason = _stop_reason(step)
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": (body.get("stop_sequences") or [None])[0] if stop_reason == "stop_sequence" else None,
            "usage": {"input_tokens": step.prompt_tokens, "output_tokens": step.completion_tokens},
        }

    async def _stream(self, body: dict, step: Step, thinking: str, send) -> None:
        stop_reason = _stop_reason(step)
        usage_start = {"input_tokens": step.prompt_tokens, "output_tokens": 1,
                       "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
            "model": body["model"], "content": [], "stop_reason": None, "stop_sequence": None,
        }
        if step.include_usage:
            message["usage"] = usage_start

        async def emit(event: str, data: dict | str) -> None:
            await send_chunk(send, sse(event, data))
            if step.chunk_delay:
                await asyncio.sleep(step.chunk_delay)

        await start_stream(send)
        await emit("message_start", {"type": "message_start", "message": message})
        index = 0
        if thinking:
            await emit("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
            for piece in split_text(thinking):
                await emit("content_block_delta", {"type": "content_block_delta", "index": index,
                                                   "delta": {"type": "thinking_delta", "thinking": piece}})
            await emit("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "signature_delta", "signature": "c2lnbmF0dXJl"}})
            await emit("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        if step.tool_calls and not step.text:
            await self._stream_tools(emit, index, step)
            await self._stream_end(emit, body, step, stop_reason)
            await end_stream(send)
            return
        await emit("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": {"type": "text", "text": ""}})
        await emit("ping", {"type": "ping"})
        pieces = split_text(step.text)
        failing = step.kind in ("disconnect", "error_event", "malformed", "truncate")
        for n, piece in enumerate(pieces):
            if failing and n == step.after:
                break
            await emit("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "text_delta", "text": piece}})
        if failing:
            if step.kind == "disconnect":
                raise Disconnect()
            if step.kind == "malformed":  # a data line that is not JSON
                await emit("content_block_delta", f'{{"type": "content_block_delta", "index": {index}, "de')
            elif step.kind == "error_event":
                error = error_payload(step.status if step.status >= 400 else 529)
                await emit("error", {"type": "error", "error": error["error"]})
            await end_stream(send)
            return
        await emit("content_block_stop", {"type": "content_block_stop", "index": index})
        await self._stream_tools(emit, index + 1, step)
        await self._stream_end(emit, body, step, stop_reason)
        await end_stream(send)

    @staticmethod
    async def _stream_tools(emit, index: int, step: Step) -> None:
        """Tool calls as Anthropic streams them: a ``tool_use`` block, its input as JSON pieces."""
        for n, call in enumerate(step.tool_calls):
            block = {"type": "tool_use", "id": f"toolu_fake{n}", "name": call["name"], "input": {}}
            await emit("content_block_start", {"type": "content_block_start", "index": index + n,
                                               "content_block": block})
            arguments = json.dumps(call.get("arguments") or {})
            for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2:]):
                await emit("content_block_delta", {"type": "content_block_delta", "index": index + n,
                                                   "delta": {"type": "input_json_delta", "partial_json": piece}})
            await emit("content_block_stop", {"type": "content_block_stop", "index": index + n})

    @staticmethod
    async def _stream_end(emit, body: dict, step: Step, stop_reason: str) -> None:
        delta = {"stop_reason": stop_reason,
                 "stop_sequence": (body.get("stop_sequences") or [None])[0] if stop_reason == "stop_sequence" else None}
        message_delta: dict = {"type": "message_delta", "delta": delta}
        if step.include_usage:
            message_delta["usage"] = {"output_tokens": step.completion_tokens}
        await emit("message_delta", message_delta)
        await emit("message_stop", {"type": "message_stop"})
