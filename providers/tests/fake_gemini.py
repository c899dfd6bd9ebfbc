"""A fake Gemini API (Google AI ``generativelanguage`` REST surface) for adapter tests.

Speaks what the ``google-genai`` SDK expects, under any API version prefix (``/v1/``,
``/v1beta/``):

- ``POST /{version}/models/{model}:streamGenerateContent?alt=sse``: SSE, one
  ``data: {GenerateContentResponse}`` event per chunk (``\\r\\n\\r\\n`` separated), thought parts
  (``"thought": true``) first, ``finishReason`` on the last chunk, running ``usageMetadata``
  (the last chunk carries the final numbers).
- ``POST /{version}/models/{model}:generateContent``: one GenerateContentResponse.
- ``POST /{version}/models/{model}:batchEmbedContents``: deterministic vectors per text.
- ``GET /{version}/models``: the ``models`` list, paginated with ``pageSize``/``pageToken``.
- Errors: ``{"error": {"code", "message", "status"}}`` (429 adds a ``RetryInfo`` detail when
  :attr:`FakeGemini.retry_delay` is set).

Function calling (``tools[].functionDeclarations``, ``toolConfig``, ``functionCall``/
``functionResponse`` parts) and JSON output (``generationConfig.responseMimeType`` /
``responseJsonSchema``) follow the REST API; the step kind ``auto`` lets
:mod:`providers.tests.fake_model` answer.

Extra step kinds on top of :class:`~providers.tests.fakeserver.Step`: ``stream_error`` (``after``
chunks, then an in-stream ``data: {"error": ...}`` event with ``status``), and a
:class:`GeminiStep` with the finish reason / prompt block reason to answer with.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
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

STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

EMBEDDING_DIMENSIONS = 8

DEFAULT_MODELS = [
    {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash", "version": "001",
     "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
     "supportedGenerationMethods": ["generateContent", "countTokens"], "thinking": True},
    {"name": "models/gemini-2.5-pro", "displayName": "Gemini 2.5 Pro", "version": "001",
     "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
     "supportedGenerationMethods": ["generateContent", "countTokens"], "thinking": True},
    {"name": "models/text-embedding-004", "displayName": "Text Embedding 004", "version": "004",
     "inputTokenLimit": 2048, "outputTokenLimit": 1, "supportedGenerationMethods": ["embedContent"]},
]


@dataclass
class GeminiStep(Step):
    """A :class:`Step` that also says how the answer ends."""

    finish_reason: str = "STOP"
    block_reason: str = ""  # e.g. "SAFETY": the prompt is blocked, no candidates at all


def _field(message: dict, name: str):
    """A request field by its JSON name or its proto name (the API takes both; the SDK sends some
    fields, such as ``parameters_json_schema``, in snake case)."""
    if name in message:
        return message[name]
    return message.get("".join(f"_{c.lower()}" if c.isupper() else c for c in name))


def fake_embedding(text: str) -> list[float]:
    """The deterministic vector the fake returns for ``text`` (tests compare with it)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255, 6) for b in digest[:EMBEDDING_DIMENSIONS]]


class FakeGemini(ScriptedUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.models: list[dict] = [dict(m) for m in DEFAULT_MODELS]
        self.max_page_size = 1000
        self.retry_delay: str | None = None  # e.g. "3s": RetryInfo detail on 429 bodies

    def reset(self) -> None:
        super().reset()
        self.models = [dict(m) for m in DEFAULT_MODELS]
        self.max_page_size = 1000
        self.retry_delay = None

    # -- wire helpers -------------------------------------------------------------------------

    def error_body(self, status: int) -> dict:
        error: dict = {
            "code": status,
            "message": f"upstream error {status} with secret sk-should-not-leak",
            "status": STATUS_NAMES.get(status, "UNKNOWN"),
        }
        if status == 429 and self.retry_delay:
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                 "retryDelay": self.retry_delay}]
        return {"error": error}

    @staticmethod
    def _route(path: str) -> tuple[str, str]:
        """``/v1beta/models/gemini-2.5-flash:generateContent`` -> (``gemini-2.5-flash``, ``generateContent``)."""
        parts = path.strip("/").split("/", 1)
        rest = parts[1] if len(parts) == 2 and parts[0].startswith("v1") else ""
        if rest == "models":
            return "", "list"
        if rest.startswith("models/"):
            name = rest[len("models/"):]
            model, _, method = name.partition(":")
            return model, method or "get"
        return "", ""

    @staticmethod
    def _usage(step: Step, thoughts: int, completion_so_far: int | None = None) -> dict:
        completion = step.completion_tokens if completion_so_far is None else completion_so_far
        usage = {"promptTokenCount": step.prompt_tokens, "candidatesTokenCount": completion,
                 "totalTokenCount": step.prompt_tokens + completion + thoughts}
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage

    def _chunks(self, model: str, step: Step) -> list[dict]:
        """The GenerateContentResponse objects of one streamed answer."""
        finish = getattr(step, "finish_reason", "STOP")
        block = getattr(step, "block_reason", "")
        thought_pieces = split_text(step.thinking) if step.thinking else []
        thoughts = len(thought_pieces)
        if block:
            chunk = {"promptFeedback": {"blockReason": block}, "modelVersion": model}
            if step.include_usage:
                chunk["usageMetadata"] = {"promptTokenCount": step.prompt_tokens, "totalTokenCount": step.prompt_tokens}
            return [chunk]
        parts = [{"text": p, "thought": True} for p in thought_pieces]
        parts += [{"text": p} for p in split_text(step.text)]
        parts += [{"functionCall": {"name": c["name"], "args": c.get("arguments") or {}}} for c in step.tool_calls]
        if not parts:
            parts = [{"text": ""}]
        chunks = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            candidate: dict = {"content": {"parts": [part], "role": "model"}, "index": 0}
            if last:
                candidate["finishReason"] = finish
            chunk: dict = {"candidates": [candidate], "modelVersion": model, "responseId": "fake-response-1"}
            if step.include_usage:
                # Running numbers like the real API; only the last chunk has the final ones.
                chunk["usageMetadata"] = self._usage(step, thoughts, None if last else i)
            chunks.append(chunk)
        return chunks

    def _whole(self, model: str, step: Step) -> dict:
        """One non-streamed GenerateContentResponse."""
        chunks = self._chunks(model, step)
        final = dict(chunks[-1])
        if "candidates" in final:
            parts: list[dict] = []
            for c in chunks:
                for part in c["candidates"][0]["content"]["parts"]:
                    if parts and "text" in part and "text" in parts[-1] and parts[-1].get("thought") == part.get("thought"):
                        parts[-1] = {**parts[-1], "text": parts[-1]["text"] + part["text"]}
                    else:
                        parts.append(dict(part))
            final["candidates"] = [{**chunks[-1]["candidates"][0], "content": {"parts": parts, "role": "model"}}]
        return final

    # -- handler ------------------------------------------------------------------------------

    @staticmethod
    def validate(body: dict) -> str | None:
        """The first rule of ``generateContent`` that ``body`` breaks, if any."""
        contents = body.get("contents") or []
        if not contents:
            return "* GenerateContentRequest.contents: contents is not specified"
        names = set()
        for tool in body.get("tools") or []:
            for declaration in tool.get("functionDeclarations") or []:
                if not declaration.get("name"):
                    return "* GenerateContentRequest.tools[0].function_declarations: name is required"
                if "parameters" in declaration and _field(declaration, "parametersJsonSchema") is not None:
                    return "parameters and parametersJsonSchema are mutually exclusive"
                names.add(declaration["name"])
        config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        if config.get("mode") not in (None, "AUTO", "ANY", "NONE", "VALIDATED"):
            return "* GenerateContentRequest.tool_config.function_calling_config.mode: unknown mode"
        if set(config.get("allowedFunctionNames") or []) - names:
            return "allowed_function_names must name declared functions"
        generation = body.get("generationConfig") or {}
        if _field(generation, "responseJsonSchema") is not None and _field(generation, "responseMimeType") != "application/json":
            return "responseJsonSchema needs responseMimeType application/json"
        for i, content in enumerate(contents):
            for part in content.get("parts") or []:
                if "functionResponse" in part and not (part["functionResponse"].get("name")):
                    return f"* GenerateContentRequest.contents[{i}].parts: function_response.name is required"
        return None

    @staticmethod
    def prompt(body: dict) -> Prompt:
        """The request as the fake model reads it."""
        contents = body.get("contents") or []
        users = [c for c in contents if c.get("role", "user") == "user" and any("text" in p for p in c.get("parts", []))]
        last = contents[-1].get("parts", []) if contents else []
        results = [p["functionResponse"] for p in last if "functionResponse" in p]
        config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        allowed = config.get("allowedFunctionNames") or []
        generation = body.get("generationConfig") or {}
        return Prompt(
            question="".join(p.get("text", "") for p in users[-1]["parts"]) if users else "",
            tools=[{"name": d["name"], "parameters": _field(d, "parametersJsonSchema") or d.get("parameters")}
                   for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []],
            tool_choice=allowed[0] if allowed else {"ANY": "required", "NONE": "none"}.get(config.get("mode"), "auto"),
            tool_result=json.dumps(results[-1].get("response")) if results else None,
            schema=_field(generation, "responseJsonSchema"),
            json_object=_field(generation, "responseMimeType") == "application/json")

    async def handle(self, call: Call, step: Step, send) -> None:
        model, method = self._route(call.path)
        if method in ("streamGenerateContent", "generateContent"):
            problem = self.validate(call.body or {})
            if problem:
                await send_json(send, 400, {"error": {"code": 400, "message": problem, "status": "INVALID_ARGUMENT"}})
                return
            if step.kind == "auto":
                answer = respond(self.prompt(call.body or {}))
                step = replace(step, kind="ok", text=answer.text, tool_calls=answer.tool_calls)
        if method == "streamGenerateContent":
            await self._stream(send, model, step)
        elif method == "generateContent":
            await self._unary(send, step, self._whole(model, step))
        elif method == "batchEmbedContents":
            requests = (call.body or {}).get("requests", [])
            texts = ["".join(p.get("text", "") for p in r.get("content", {}).get("parts", [])) for r in requests]
            await self._unary(send, step, {"embeddings": [{"values": fake_embedding(t)} for t in texts]})
        elif method == "list" and call.method == "GET":
            await self._unary(send, step, self._list_page(call.query))
        elif method == "get" and call.method == "GET":
            found = [m for m in self.models if m["name"] == f"models/{model}"]
            if found:
                await self._unary(send, step, found[0])
            else:
                await send_json(send, 404, self.error_body(404))
        else:
            await send_json(send, 404, self.error_body(404))

    def _list_page(self, query: str) -> dict:
        params = parse_qs(query)
        size = min(int(params.get("pageSize", ["50"])[0]), self.max_page_size)
        start = int(params.get("pageToken", ["0"])[0] or 0)
        page = {"models": self.models[start:start + size]}
        if start + size < len(self.models):
            page["nextPageToken"] = str(start + size)
        return page

    async def _unary(self, send, step: Step, payload: dict) -> None:
        if step.kind == "malformed":
            raw = b"<html>this is not json"
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(raw)).encode())]})
            await send({"type": "http.response.body", "body": raw})
            return
        if step.kind == "disconnect":
            raw = json.dumps(payload).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(raw)).encode())]})
            await send({"type": "http.response.body", "body": raw[: len(raw) // 2], "more_body": True})
            raise Disconnect()
        await send_json(send, 200, payload)

    async def _stream(self, send, model: str, step: Step) -> None:
        chunks = self._chunks(model, step)
        await start_stream(send)
        for i, chunk in enumerate(chunks):
            if step.kind in ("disconnect", "stream_error", "truncate") and i >= step.after:
                break
            if step.kind == "malformed" and i == min(step.after, len(chunks) - 1):
                await send_chunk(send, b"data: {not json at all\r\n\r\n")
                await end_stream(send)
                return
            if step.chunk_delay and i:
                await asyncio.sleep(step.chunk_delay)
            await send_chunk(send, b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n")
        if step.kind == "disconnect":
            await asyncio.sleep(0.05)  # let the sent chunks reach the client before the drop
            raise Disconnect()
        if step.kind == "stream_error":
            status = step.status if step.status != 200 else 500
            await send_chunk(send, b"data: " + json.dumps(self.error_body(status)).encode() + b"\r\n\r\n")
        await end_stream(send)
