"""A fake OpenAI Chat Completions upstream (also what vLLM/Ollama speak) for the official SDK.

Serves ``/v1/chat/completions`` (JSON, or SSE when the body says ``stream``), ``/v1/models`` and
``/v1/embeddings``. Paths are matched by suffix, so a base URL with or without ``/v1`` works.
Step kinds beyond :mod:`fakeserver`'s: ``length`` / ``content_filter`` end with that finish reason.
``malformed`` and ``disconnect`` strike after ``step.after`` content chunks; ``truncate`` ends the
body cleanly there, without the finish_reason chunk and ``[DONE]``; ``stall`` goes silent there for
``step.seconds`` with the connection open (a provider that stops sending mid-stream), then ends so.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import struct
import time
from dataclasses import replace
from typing import Any

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

MODELS = ["gpt-4o-mini", "gpt-4o", "o3-mini", "text-embedding-3-small"]
EMBEDDING_DIM = 16
FINISH_BY_KIND = {"length": "length", "content_filter": "content_filter"}


def fake_embedding(text: str, dim: int = EMBEDDING_DIM) -> list[float]:
    """The deterministic unit vector the fake returns for ``text`` (float32-exact)."""
    digest = b""
    counter = 0
    while len(digest) < dim:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    raw = [(b - 127.5) / 127.5 for b in digest[:dim]]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    # Round through float32 so the base64 and the float encodings decode to the same numbers.
    return list(struct.unpack(f"<{dim}f", struct.pack(f"<{dim}f", *(v / norm for v in raw))))


class FakeOpenAI(ScriptedUpstream):
    async def handle(self, call: Call, step: Step, send) -> None:
        if call.method == "POST" and call.path.endswith("/chat/completions"):
            await self.chat(call, step, send)
        elif call.method == "GET" and call.path.endswith("/models"):
            await self.models(step, send)
        elif call.method == "POST" and call.path.endswith("/embeddings"):
            await self.embeddings(call, step, send)
        else:
            await send_json(send, 404, {"error": {"message": "Not found", "type": "invalid_request_error"}})

    async def models(self, step: Step, send) -> None:
        if step.kind == "malformed":
            await _send_raw(send, b"{not json")
            return
        await send_json(send, 200, {"object": "list", "data": [
            {"id": name, "object": "model", "created": 1700000000, "owned_by": "fake"} for name in MODELS
        ]})

    async def embeddings(self, call: Call, step: Step, send) -> None:
        if step.kind == "malformed":
            await _send_raw(send, b"{not json")
            return
        body = call.body or {}
        inputs = body.get("input", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        dim = int(body.get("dimensions") or EMBEDDING_DIM)
        data = []
        for index, text in enumerate(inputs):
            vector = fake_embedding(str(text), dim)
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(max(1, len(str(t)) // 4) for t in inputs)
        await send_json(send, 200, {"object": "list", "data": data, "model": body.get("model", ""),
                                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    @staticmethod
    def prompt(body: dict) -> Prompt:
        """The request as the fake model reads it."""
        messages = body.get("messages") or []
        users = [m for m in messages if m.get("role") == "user"]
        last = messages[-1] if messages else {}
        choice = body.get("tool_choice")
        return Prompt(
            question=_text(users[-1].get("content")) if users else "",
            tools=[{"name": t["function"]["name"], "parameters": t["function"].get("parameters")}
                   for t in body.get("tools") or []],
            tool_choice=choice["function"]["name"] if isinstance(choice, dict) else choice,
            tool_result=_text(last.get("content")) if last.get("role") == "tool" else None,
            schema=((body.get("response_format") or {}).get("json_schema") or {}).get("schema"),
            json_object=(body.get("response_format") or {}).get("type") == "json_object")

    async def chat(self, call: Call, step: Step, send) -> None:
        body = call.body or {}
        model = body.get("model", "")
        if step.kind == "auto":
            answer = respond(self.prompt(body))
            step = replace(step, kind="ok", text=answer.text, tool_calls=answer.tool_calls)
        if step.tool_calls:
            await self.chat_tools(body, step, send)
            return
        finish_reason = FINISH_BY_KIND.get(step.kind, "stop")
        usage = {"prompt_tokens": step.prompt_tokens, "completion_tokens": step.completion_tokens,
                 "total_tokens": step.prompt_tokens + step.completion_tokens}
        if not body.get("stream"):
            await self.chat_json(step, send, model, finish_reason, usage)
            return
        created = int(time.time())

        def chunk(choices: list[dict], extra: dict | None = None) -> bytes:
            payload = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
                       "model": model, "system_fingerprint": "fp_fake", "choices": choices, **(extra or {})}
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        def delta(**fields: Any) -> bytes:
            return chunk([{"index": 0, "delta": fields, "logprobs": None, "finish_reason": None}])

        await start_stream(send)
        await send_chunk(send, delta(role="assistant", content=""))
        for part in split_text(step.thinking):
            await send_chunk(send, delta(reasoning_content=part))
            await asyncio.sleep(step.chunk_delay)
        for index, part in enumerate(split_text(step.text)):
            if index == step.after:
                if step.kind == "disconnect":
                    raise Disconnect
                if step.kind == "malformed":
                    await send_chunk(send, b'data: {"id": "chatcmpl-fake", "choices": [\n\n')
                    await end_stream(send)
                    return
                if step.kind == "truncate":
                    await end_stream(send)
                    return
                if step.kind == "stall":  # silence with the connection open, then end without a finish
                    await asyncio.sleep(step.seconds)
                    await end_stream(send)
                    return
            await send_chunk(send, delta(content=part))
            await asyncio.sleep(step.chunk_delay)
        await send_chunk(send, chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}]))
        # Like OpenAI: usage only when asked for, in a last chunk with no choices.
        if step.include_usage and (body.get("stream_options") or {}).get("include_usage"):
            await send_chunk(send, chunk([], {"usage": usage}))
        await send_chunk(send, b"data: [DONE]\n\n")
        await end_stream(send)

    async def chat_tools(self, body: dict, step: Step, send) -> None:
        """An answer that calls ``step.tool_calls`` (JSON, or streamed as OpenAI streams calls: the
        id and name first, then the arguments in pieces)."""
        model = body.get("model", "")
        calls = [{"id": f"call_fake{i}", "type": "function",
                  "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments") or {})}}
                 for i, c in enumerate(step.tool_calls)]
        usage = {"prompt_tokens": step.prompt_tokens, "completion_tokens": step.completion_tokens,
                 "total_tokens": step.prompt_tokens + step.completion_tokens}
        if not body.get("stream"):
            message = {"role": "assistant", "content": step.text or None, "refusal": None, "tool_calls": calls}
            await send_json(send, 200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}],
                "usage": usage})
            return
        created = int(time.time())

        def chunk(delta: dict, finish: str | None = None, extra: dict | None = None) -> bytes:
            payload = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                       if delta is not None else [], **(extra or {})}
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        await start_stream(send)
        await send_chunk(send, chunk({"role": "assistant", "content": None}))
        for index, call in enumerate(calls):
            await send_chunk(send, chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                                          "function": {"name": call["function"]["name"],
                                                                       "arguments": ""}}]}))
            arguments = call["function"]["arguments"]
            for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2:]):
                await send_chunk(send, chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        await send_chunk(send, chunk({}, "tool_calls"))
        if (body.get("stream_options") or {}).get("include_usage"):
            await send_chunk(send, chunk(None, extra={"usage": usage}))
        await send_chunk(send, b"data: [DONE]\n\n")
        await end_stream(send)

    async def chat_json(self, step: Step, send, model: str, finish_reason: str, usage: dict) -> None:
        if step.kind == "malformed":
            await _send_raw(send, b'{"id": "chatcmpl-fake", "choices": [')
            return
        if step.kind == "disconnect":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]})
            await send({"type": "http.response.body", "body": b'{"id": "chatcmpl-fake", ', "more_body": True})
            raise Disconnect
        message: dict[str, Any] = {"role": "assistant", "content": step.text, "refusal": None}
        if step.thinking:
            message["reasoning_content"] = step.thinking
        payload: dict[str, Any] = {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        }
        if step.include_usage:
            payload["usage"] = usage
        await send_json(send, 200, payload)


async def _send_raw(send, raw: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
    await send({"type": "http.response.body", "body": raw})


def _text(content: Any) -> str:
    """A message's text: a string, or the text of its content parts."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""
