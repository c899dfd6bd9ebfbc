"""OpenAI's Responses API on the gateway, for any catalogue model.

* ``POST /v1/responses``: text or item ``input``, ``instructions``, function tools
  (``function_call`` / ``function_call_output`` items), ``text.format`` JSON output, reasoning,
  ``stream`` with the documented event types. ``store`` (default true) keeps the exchange as a
  conversation of the caller's, so ``previous_response_id`` continues it (from any earlier
  response: a new branch); ``store: false`` is a stateless turn.
* ``GET /v1/responses/{id}``: a stored response.

A response's id is its assistant message's (``resp_X`` is message ``msg_X``). Errors are in
OpenAI's shape, as on the rest of ``/v1``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from chatplatform.api import sse
from chatplatform.api.asyncviews import authenticate
from chatplatform.api.exceptions import AppError
from chats import selectors, services, streaming
from chats.models import Message
from chats.openai_inputs import split_inputs
from chats.responses_inputs import ResponsesInput, ResponsesToolChoiceField, params_of
from chats.transports import replay
from chats.transports.openai import _overhead, gateway_turn, openai_endpoint, openai_error_body, written_events
from chats.turns import NewConversation, Turn

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_id(message_id: str) -> str:
    return "resp_" + message_id.removeprefix("msg_")


def message_id_of(value: str, *, field: str) -> str:
    """The message id behind response id ``value`` (404 naming ``field`` when it is not one of ours)."""
    message_id = "msg_" + value.removeprefix("resp_")
    if not value.startswith("resp_") or not replay.STREAM_ID.match(message_id):
        raise AppError(f"Response with id '{value}' not found.", status_code=404, details={field: ["Not found."]})
    return message_id


# --- the Response object -----------------------------------------------------------------------


def echo(data: dict) -> dict[str, Any]:
    """The request's settings a Response repeats."""
    fmt = dict((data.get("text") or {}).get("format") or {"type": "text"})
    tools = [{"type": "function", "name": t["name"], "description": t.get("description") or None,
              "parameters": t["parameters"], "strict": bool(t.get("strict"))} for t in data.get("tools") or []]
    choice = data.get("tool_choice")
    return {
        "instructions": data.get("instructions"), "max_output_tokens": data.get("max_output_tokens"),
        "metadata": data.get("metadata") or {}, "parallel_tool_calls": data.get("parallel_tool_calls") is not False,
        "previous_response_id": data.get("previous_response_id"),
        "reasoning": {"effort": (data.get("reasoning") or {}).get("effort"), "summary": None},
        "store": bool(data.get("store", True)), "temperature": data.get("temperature"), "text": {"format": fmt},
        "tool_choice": ResponsesToolChoiceField().to_representation(choice) if choice else "auto", "tools": tools,
        "top_p": data.get("top_p"), "truncation": "auto", "user": data.get("user") or None,
        "safety_identifier": data.get("safety_identifier") or None, "service_tier": data.get("service_tier") or "auto",
    }


def output_items(final: dict) -> list[dict]:
    """The reply as output items: reasoning (a summary of the thinking), the message, the calls."""
    suffix = final["stream_id"].removeprefix("msg_")
    items: list[dict] = []
    if final.get("thinking"):
        items.append(reasoning_item(suffix, final["thinking"]))
    calls = final.get("tool_calls") or []
    if final.get("content") or not calls:
        items.append(message_item(final["stream_id"], final.get("content", ""), "completed"))
    items += [function_call_item(suffix, i, c, "completed") for i, c in enumerate(calls)]
    return items


def reasoning_item(suffix: str, text: str) -> dict:
    return {"type": "reasoning", "id": f"rs_{suffix}", "summary": [{"type": "summary_text", "text": text}]}


def message_item(item_id: str, text: str | None, status: str) -> dict:
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def function_call_item(suffix: str, index: int, call: dict, status: str) -> dict:
    return {"type": "function_call", "id": f"fc_{suffix}_{index}", "call_id": call["id"], "name": call["name"],
            "arguments": call.get("arguments") or "", "status": status}


def usage(final: dict) -> dict:
    numbers = final.get("usage") or {}
    prompt, completion = numbers.get("prompt_tokens", 0), numbers.get("completion_tokens", 0)
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + completion}


def response_object(stream_id: str, *, settings: dict, created_at: int, model: str, status: str,
                    final: dict | None = None, error: dict | None = None) -> dict:
    reason = INCOMPLETE.get((final or {}).get("finish_reason") or "")
    if status == "completed" and reason:
        status = "incomplete"
    return {
        "id": response_id(stream_id), "object": "response", "created_at": created_at, "status": status,
        "error": error, "incomplete_details": {"reason": reason} if status == "incomplete" else None,
        "model": model, "output": output_items(final) if final else [],
        "usage": usage(final) if final else None, **settings,
        "completed_at": int(time.time()) if status == "completed" else None,
    }


# --- the turn ----------------------------------------------------------------------------------


def responses_turn(data: dict, previous: Message | None) -> Turn:
    """Leading system/developer items join ``instructions`` as this turn's system prompt (not
    carried to the next response, as at OpenAI); trailing user items and tool outputs are the new
    input. With ``store`` the exchange is kept: after ``previous``, or as a new conversation."""
    messages = list(data["items"])
    system = [data["instructions"]] if data.get("instructions") else []
    while len(messages) > 1 and messages[0].role == "system":
        system.append(messages.pop(0).content)
    earlier, inputs = split_inputs(messages)
    turn = Turn(model=data.get("model") or None, system="\n\n".join(s for s in system if s.strip()) or None,
                params=params_of(data), end_user=data.get("safety_identifier") or data.get("user") or None)
    if not data.get("store", True):
        history = selectors.thread_for_model(previous.conversation, leaf_id=previous.id) if previous else []
        turn.history, turn.inputs = [*history, *earlier], inputs
    elif previous is not None:
        turn.conversation, turn.after, turn.inputs = previous.conversation, previous, [*earlier, *inputs]
    else:
        first = next((m.content for m in messages if m.role == "user"), "")
        turn.inputs = inputs
        turn.new = NewConversation(fields={"title": services.title_from(first), "model": data.get("model") or "",
                                           "metadata": {"source": "responses", **(data.get("metadata") or {})}},
                                   history=earlier)
    if not turn.inputs:
        raise AppError("The input must end with a user message or a function call's output.", status_code=400,
                       details={"input": ["Nothing to answer."]})
    return turn


def _previous(user, data: dict) -> Message | None:
    if not data.get("previous_response_id"):
        return None
    message_id = message_id_of(data["previous_response_id"], field="previous_response_id")
    found = selectors.response_message(user=user, message_id=message_id)
    if found is None:
        raise AppError(f"Previous response with id '{data['previous_response_id']}' not found.", status_code=404,
                       details={"previous_response_id": ["Not found."]})
    return found


@openai_endpoint("POST")
async def responses_create(request: HttpRequest) -> HttpResponse:
    """``POST /v1/responses``."""
    started = request.gateway_started
    begun = await gateway_turn(request, ResponsesInput,
                               lambda caller, data: responses_turn(data, _previous(caller.user, data)))
    data, idem = begun.data, begun.idem
    settings, created_at = echo(data), int(time.time())
    if begun.stored is not None:
        return await replay.replayed(request, begun.stored, {}, lambda stream_id, after: sse.sse_response(
            response_events(streaming.reply_events(stream_id, after=after), settings=settings, created_at=created_at)))
    reply = begun.reply
    if data.get("stream"):
        await replay.keep_stream(idem, reply.stream_id)
        response = sse.sse_response(response_events(streaming.stream_reply(reply), settings=settings,
                                                     created_at=created_at), headers={"X-Stream-ID": reply.stream_id})
        _overhead(response, started)
        return response
    provider_ms: list[float] = [0.0]

    def build(final: dict) -> dict:
        provider_ms[0] = float(final.get("latency_ms") or 0.0)
        return response_object(final["stream_id"], settings=settings, created_at=created_at, model=final["model"],
                               status="completed", final=final)

    status, payload = await asyncio.shield(replay.settle(reply, idem, build))
    if status != 200:
        status, payload = openai_error_body(status, payload)
    response = JsonResponse(payload, status=status, headers=replay.error_headers(reply))
    _overhead(response, started, provider_ms[0])
    return response


def _stored_response(user, value: str) -> dict:
    message = selectors.response_message(user=user, message_id=message_id_of(value, field="response_id"))
    if message is None:
        raise AppError(f"Response with id '{value}' not found.", status_code=404, details={"response_id": ["Not found."]})
    previous = selectors.previous_reply(message)
    final = {"stream_id": message.id, "content": message.content, "thinking": message.thinking,
             "tool_calls": message.tool_calls, "finish_reason": message.finish_reason,
             "usage": {"prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens}}
    settings = echo({"store": True, "metadata": {k: v for k, v in (message.conversation.metadata or {}).items()
                                                 if k != "source"},
                     "previous_response_id": response_id(previous.id) if previous else None})
    status = {Message.Status.ERROR: "failed", Message.Status.INCOMPLETE: "incomplete"}.get(message.status, "completed")
    error = {"code": message.error_code or "server_error", "message": "The response failed."} \
        if status == "failed" else None
    return response_object(message.id, settings=settings, created_at=int(message.created_at.timestamp()),
                           model=message.model, status=status, final=final, error=error)


@openai_endpoint("GET")
async def response_detail(request: HttpRequest, response_id: str) -> HttpResponse:
    """``GET /v1/responses/{id}``: a stored response of the caller's (another's is a 404)."""
    user, _ = await authenticate(request)
    return JsonResponse(await sync_to_async(_stored_response)(user, response_id))


# --- streaming ---------------------------------------------------------------------------------


class _EventWriter:
    """Pipeline events -> the Responses API's stream: lifecycle events around output items, each
    opened (``output_item.added``), filled by deltas and closed (``output_item.done``)."""

    def __init__(self, *, settings: dict, created_at: int) -> None:
        self.settings, self.created_at = settings, created_at
        self.sequence = 0
        self.stream_id = ""
        self.model = ""
        self.open: dict | None = None  # the item being written: {"kind", "index", "item", "text"}
        self.count = 0  # output items opened so far
        self.calls: dict[int, tuple[int, dict]] = {}  # tool call index -> (output index, item)

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse.encode(payload, event=kind)

    def _response(self, status: str, **kwargs: Any) -> dict:
        return response_object(self.stream_id, settings=self.settings, created_at=self.created_at, model=self.model,
                               status=status, **kwargs)

    def start(self, event: dict) -> list[bytes]:
        self.stream_id, self.model = event["stream_id"], event.get("model") or ""
        return [self._event("response.created", response=self._response("in_progress")),
                self._event("response.in_progress", response=self._response("in_progress"))]

    def _open(self, kind: str, item: dict) -> list[bytes]:
        out = self.close()
        self.open = {"kind": kind, "index": self.count, "item": item, "text": ""}
        self.count += 1
        out.append(self._event("response.output_item.added", output_index=self.open["index"], item=item))
        suffix = self.stream_id.removeprefix("msg_")
        if kind == "message":
            out.append(self._event("response.content_part.added", item_id=item["id"], output_index=self.open["index"],
                                   content_index=0, part={"type": "output_text", "text": "", "annotations": []}))
        elif kind == "reasoning":
            out.append(self._event("response.reasoning_summary_part.added", item_id=f"rs_{suffix}",
                                   output_index=self.open["index"], summary_index=0,
                                   part={"type": "summary_text", "text": ""}))
        return out

    def close(self) -> list[bytes]:
        """Finish the open item, if any."""
        if self.open is None:
            return []
        item, index, text = self.open["item"], self.open["index"], self.open["text"]
        out: list[bytes] = []
        if self.open["kind"] == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            out += [self._event("response.output_text.done", item_id=item["id"], output_index=index, content_index=0,
                                text=text, logprobs=[]),
                    self._event("response.content_part.done", item_id=item["id"], output_index=index,
                                content_index=0, part=part)]
            item = message_item(item["id"], text, "completed")
        elif self.open["kind"] == "reasoning":
            part = {"type": "summary_text", "text": text}
            out += [self._event("response.reasoning_summary_text.done", item_id=item["id"], output_index=index,
                                summary_index=0, text=text),
                    self._event("response.reasoning_summary_part.done", item_id=item["id"], output_index=index,
                                summary_index=0, part=part)]
            item = {**item, "summary": [part]}
        else:
            item = {**item, "arguments": text, "status": "completed"}
            out.append(self._event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                                   name=item["name"], arguments=text))
        out.append(self._event("response.output_item.done", output_index=index, item=item))
        self.open = None
        return out

    def text(self, delta: str) -> list[bytes]:
        out = [] if self.open and self.open["kind"] == "message" else self._open(
            "message", message_item(self.stream_id, None, "in_progress"))
        self.open["text"] += delta
        return [*out, self._event("response.output_text.delta", item_id=self.stream_id,
                                  output_index=self.open["index"], content_index=0, delta=delta, logprobs=[])]

    def thinking(self, delta: str) -> list[bytes]:
        suffix = self.stream_id.removeprefix("msg_")
        out = [] if self.open and self.open["kind"] == "reasoning" else self._open(
            "reasoning", {"type": "reasoning", "id": f"rs_{suffix}", "summary": []})
        self.open["text"] += delta
        return [*out, self._event("response.reasoning_summary_text.delta", item_id=f"rs_{suffix}",
                                  output_index=self.open["index"], summary_index=0, delta=delta)]

    def tool_call(self, event: dict) -> list[bytes]:
        out: list[bytes] = []
        if event.get("call_id") or event["index"] not in self.calls:
            call = {"id": event.get("call_id") or "", "name": event.get("name") or "", "arguments": ""}
            out = self._open("function_call", function_call_item(self.stream_id.removeprefix("msg_"), event["index"],
                                                                 call, "in_progress"))
            self.calls[event["index"]] = (self.open["index"], self.open["item"])
        if not event.get("arguments"):
            return out
        self.open["text"] += event["arguments"]
        return [*out, self._event("response.function_call_arguments.delta", item_id=self.open["item"]["id"],
                                  output_index=self.open["index"], delta=event["arguments"])]

    def done(self, event: dict) -> list[bytes]:
        response = self._response("completed", final=event)
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        return [*self.close(), self._event(kind, response=response)]

    def error(self, event: dict) -> list[bytes]:
        _, body = openai_error_body(event["status_code"], {"message": event["message"], "error": event["code"]})
        error = {"code": body["error"]["code"] or "server_error", "message": body["error"]["message"]}
        return [*self.close(), self._event("response.failed", response=self._response("failed", error=error))]


async def response_events(events: AsyncIterator[dict], *, settings: dict, created_at: int) -> AsyncIterator[bytes]:
    writer = _EventWriter(settings=settings, created_at=created_at)
    async for chunk in written_events(events, writer):
        yield chunk
