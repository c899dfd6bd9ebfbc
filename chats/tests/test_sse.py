"""SSE transport: the wire format, heartbeats, client disconnects, resume with Last-Event-ID, and
provider errors mid-stream — driven through the real ASGI application, parsed as a client would."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest
from asgiref.sync import sync_to_async

from chatplatform.api import sse
from chatplatform.api.exceptions import AppError
from chats import services
from chats.models import Message
from chats.transports.replay import parse_event_id
from providers.tests.fakeserver import Step

# --- helpers (used by the other chat API tests too) ---------------------------------------------


@dataclass
class AsgiResponse:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    complete: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def json(self):
        return json.loads(self.body)

    def events(self) -> list[dict]:
        return parse_sse(self.body)


def parse_sse(raw: bytes) -> list[dict]:
    """Parse a text/event-stream body as a client does: one dict per event (``id``, ``event``,
    ``data`` JSON-decoded when possible); comment-only blocks become ``{"comment": …}``."""
    events = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event: dict = {}
        data_lines = []
        for line in block.split("\n"):
            if line.startswith(":"):
                event.setdefault("comment", line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data_lines.append(value)
            elif name in ("id", "event", "retry"):
                event[name] = value
        if data_lines:
            text = "\n".join(data_lines)
            try:
                event["data"] = json.loads(text)
            except ValueError:
                event["data"] = text
        events.append(event)
    return events


def data_events(response_or_events) -> list[dict]:
    events = response_or_events.events() if isinstance(response_or_events, AsgiResponse) else response_or_events
    return [e for e in events if "data" in e]


async def asgi_request(method: str, path: str, *, json_body=None, headers: dict[str, str] | None = None,
                       client: str = "127.0.0.1", disconnect_when=None, disconnect_after: float | None = None,
                       disconnect: asyncio.Event | None = None, timeout: float = 15.0) -> AsgiResponse:
    """Drive ``chatplatform.asgi.application`` with one HTTP request, like a server would.

    ``disconnect_when(response)`` is checked after each body chunk; once true the client
    "goes away" (``http.disconnect``), as when a browser tab closes mid-stream; ``disconnect_after``
    seconds does the same on a timer, and setting ``disconnect`` too."""
    from chatplatform.asgi import application

    path, _, query = path.partition("?")
    body = json.dumps(json_body).encode() if json_body is not None else b""
    raw_headers = [(b"host", b"localhost"), (b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "root_path": "", "headers": raw_headers, "client": (client, 50000), "server": ("localhost", 80)}
    response = AsgiResponse()
    gone = disconnect or asyncio.Event()
    body_sent = False
    if disconnect_after is not None:
        asyncio.get_running_loop().call_later(disconnect_after, gone.set)

    async def receive():
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            response.status = message["status"]
            response.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            if message.get("body"):
                response.chunks.append(message["body"])
            if not message.get("more_body"):
                response.complete = True
                gone.set()
            elif disconnect_when is not None and disconnect_when(response):
                gone.set()

    await asyncio.wait_for(application(scope, receive, send), timeout)
    return response


async def bearer(tokens_for, user) -> dict[str, str]:
    """Authorization header with a fresh access token for ``user`` (from async tests)."""
    tokens = await sync_to_async(tokens_for)(user)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# --- the wire format ----------------------------------------------------------------------------


def test_encode_event_with_id_name_and_json_data():
    raw = sse.encode({"chunk": "I'm", "index": 0}, event_id="msg_1:2")
    assert raw == b'id: msg_1:2\ndata: {"chunk": "I\'m", "index": 0}\n\n'
    assert sse.encode({"error": "x"}, event="error").startswith(b"event: error\ndata: ")
    assert sse.encode("[DONE]") == b"data: [DONE]\n\n"
    # A newline inside a value never breaks the framing (JSON escapes it; raw strings split lines).
    assert parse_sse(sse.encode({"chunk": "a\nb"}))[0]["data"] == {"chunk": "a\nb"}
    assert sse.encode("a\nb") == b"data: a\ndata: b\n\n"


def test_parse_event_id():
    assert parse_event_id("msg_abc:7") == ("msg_abc", 7)
    assert parse_event_id("7", stream_id="msg_abc") == ("msg_abc", 7)
    assert parse_event_id("msg_abc:7", stream_id="msg_abc") == ("msg_abc", 7)
    assert parse_event_id(None, stream_id="msg_abc") == ("msg_abc", 0)
    assert parse_event_id("msg_abc") == ("msg_abc", 0)  # a bare stream id: from its start
    for bad, stream_id in [("msg_abc:x", None), ("7", None), ("msg_other:3", "msg_abc"), ("msg:99999999999", None)]:
        with pytest.raises(AppError) as info:
            parse_event_id(bad, stream_id=stream_id)
        assert info.value.status_code == 422
    with pytest.raises(AppError) as info:
        parse_event_id("", required=True)
    assert "last_event_id" in info.value.details


async def test_heartbeat_pings_while_the_source_is_silent_and_closing_cleans_up():
    cleaned = asyncio.Event()

    async def slow():
        try:
            yield b"data: 1\n\n"
            await asyncio.sleep(0.25)
            yield b"data: 2\n\n"
            await asyncio.sleep(10)
            yield b"never"
        finally:
            cleaned.set()

    stream = sse.with_heartbeat(slow(), interval=0.05)
    received = [await anext(stream) for _ in range(4)]
    assert received[0] == b"data: 1\n\n" and received[1:] == [sse.PING] * 3
    while (chunk := await anext(stream)) == sse.PING:
        pass
    assert chunk == b"data: 2\n\n"
    await stream.aclose()  # the client went away while the source was waiting
    assert cleaned.is_set()


async def test_heartbeat_passes_a_fast_source_through_unchanged():
    async def fast():
        for i in range(50):
            yield str(i).encode()

    assert [c async for c in sse.with_heartbeat(fast(), interval=5)] == [str(i).encode() for i in range(50)]


# --- seed 001 /chat/stream over ASGI ------------------------------------------------------------

pytestmark_db = pytest.mark.django_db(transaction=True)


@pytestmark_db
async def test_seed001_stream_is_sse_exactly_as_documented(openai_configured):
    openai_configured.push(Step(text="I'm doing well", prompt_tokens=10, completion_tokens=15))
    response = await asgi_request("POST", "/api/v1/chat/stream", headers={"Accept-Encoding": "gzip"}, json_body={
        "message": "Hello, how are you?", "model": "gpt-3.5-turbo", "temperature": 0.7, "max_tokens": 1000,
        "stream": True, "system_prompt": "You are a helpful assistant"})
    assert response.status == 200 and response.complete
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-cache-status"] == "BYPASS"
    assert "content-encoding" not in response.headers
    stream_id = response.headers["x-stream-id"]
    events = data_events(response)
    # data: {"chunk": "I'm", "index": 0} / {"chunk": " doing", "index": 1} / {"chunk": " well", "index": 2}
    assert [e["data"] for e in events[:-1]] == [
        {"chunk": "I'm", "index": 0}, {"chunk": " doing", "index": 1}, {"chunk": " well", "index": 2}]
    final = events[-1]["data"]
    assert final["finished"] is True
    assert final["usage"] == {"prompt_tokens": 10, "completion_tokens": 15, "total_tokens": 25}
    assert final["response"] == "I'm doing well" and final["model"] == "gpt-3.5-turbo"
    # Every event carries an id <stream_id>:<n>, increasing.
    numbers = [int(e["id"].split(":")[1]) for e in events]
    assert all(e["id"].startswith(stream_id + ":") for e in events)
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert all("event" not in e for e in events)  # plain `message` events: EventSource.onmessage sees them
    sent = openai_configured.calls[0].body
    assert sent["messages"][0] == {"role": "system", "content": "You are a helpful assistant"}
    assert sent["temperature"] == 0.7 and sent["max_tokens"] == 1000


@pytestmark_db
async def test_heartbeat_comments_while_the_provider_is_slow(openai_configured, monkeypatch):
    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.05)
    openai_configured.push(Step(text="slow words here", chunk_delay=0.2))
    response = await asgi_request("POST", "/api/v1/chat/stream", json_body={"message": "Hi", "model": "gpt-4o-mini"})
    events = response.events()
    assert any(e.get("comment") == "ping" and "data" not in e for e in events)
    assert "".join(e["data"].get("chunk", "") for e in data_events(events)) == "slow words here"
    assert data_events(events)[-1]["data"]["finished"] is True


@pytestmark_db
async def test_provider_error_mid_stream_sends_error_event_then_ends(openai_configured):
    openai_configured.push(Step("disconnect", text="one two three four", after=2))
    response = await asgi_request("POST", "/api/v1/chat/stream", json_body={"message": "Hi"})
    assert response.status == 200 and response.complete
    events = data_events(response)
    assert [e["data"]["chunk"] for e in events[:-1]] == ["one", " two"]
    error = events[-1]
    assert error["event"] == "error" and error["id"].endswith(":4")
    assert error["data"]["code"] == "PROVIDER_ERROR" and error["data"]["error"]
    assert error["data"]["status_code"] == 502 and error["data"]["response"] == "one two"
    assert "sk-should-not-leak" not in response.body.decode()


async def _chat_with_user_message(user, text="Tell me a story"):
    conversation = await sync_to_async(services.conversation_create)(user=user, title="Stories")
    return conversation


@pytestmark_db
async def test_provider_error_mid_stream_saves_the_partial_reply(openai_configured, user, tokens_for):
    conversation = await _chat_with_user_message(user)
    openai_configured.push(Step("disconnect", text="Once upon a time there", after=3))
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user), json_body={
        "chat_id": conversation.id, "messages": [{"role": "user", "content": "Tell me a story"}], "stream": True})
    error = data_events(response)[-1]
    assert error["event"] == "error" and error["data"]["chat_id"] == conversation.id
    messages = await sync_to_async(list)(Message.objects.filter(conversation=conversation).order_by("created_at"))
    assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "error")]
    assert messages[1].content == "Once upon a" and messages[1].parent_id == messages[0].id


@pytestmark_db
async def test_client_disconnect_saves_incomplete_and_generation_goes_on(openai_configured, user, tokens_for):
    conversation = await _chat_with_user_message(user)
    text = " ".join(f"w{i}" for i in range(30))
    openai_configured.push(Step(text=text, chunk_delay=0.03))

    def two_chunks(resp: AsgiResponse) -> bool:
        return sum(1 for e in data_events(parse_sse(resp.body)) if "chunk" in e["data"]) >= 2

    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user), json_body={
        "chat_id": conversation.id, "messages": [{"role": "user", "content": "Count"}], "stream": True},
        disconnect_when=two_chunks)
    assert response.status == 200 and not response.complete  # the client left mid-stream
    stream_id = response.headers["x-stream-id"]
    snapshot = await sync_to_async(Message.objects.get)(id=stream_id)
    assert snapshot.status == "incomplete" and snapshot.content.startswith("w0 w1")
    assert len(snapshot.content) < len(text)

    async def completed() -> bool:
        return (await sync_to_async(Message.objects.get)(id=stream_id)).status == "complete"

    await wait_for(completed)  # the generation went on server-side and was saved in full
    final = await sync_to_async(Message.objects.get)(id=stream_id)
    assert final.content == text and final.total_tokens > 0


@pytestmark_db
async def test_resume_with_last_event_id_across_a_drop(openai_configured, user, tokens_for):
    conversation = await _chat_with_user_message(user)
    text = " ".join(f"t{i}" for i in range(20))
    openai_configured.push(Step(text=text, chunk_delay=0.03))
    headers = await bearer(tokens_for, user)

    def three_chunks(resp: AsgiResponse) -> bool:
        return sum(1 for e in data_events(parse_sse(resp.body)) if "chunk" in e["data"]) >= 3

    first = await asgi_request("POST", "/api/v1/chat/completions", headers=headers, disconnect_when=three_chunks,
                               json_body={"chat_id": conversation.id, "stream": True,
                                          "messages": [{"role": "user", "content": "Go"}]})
    seen = data_events(first)
    last_id = seen[-1]["id"]
    stream_id = first.headers["x-stream-id"]
    assert last_id.startswith(stream_id + ":")
    # Reconnect with Last-Event-ID, as EventSource does: the missed events, then the rest live.
    resumed = await asgi_request("GET", f"/api/v1/chat/stream/{stream_id}", headers={**headers, "Last-Event-ID": last_id})
    assert resumed.status == 200 and resumed.headers["content-type"].startswith("text/event-stream")
    rest = data_events(resumed)
    assert int(rest[0]["id"].split(":")[1]) == int(last_id.split(":")[1]) + 1
    chunks = [e["data"]["chunk"] for e in seen + rest if "chunk" in e["data"]]
    assert "".join(chunks) == text  # nothing lost, nothing repeated
    final = rest[-1]["data"]
    assert final["finished"] is True and final["chat_id"] == conversation.id and final["message"]["content"] == text
    # The same header on the original POST path resumes too (no new generation).
    again = await asgi_request("POST", "/api/v1/chat/completions", headers={**headers, "Last-Event-ID": last_id},
                               json_body={"chat_id": conversation.id, "stream": True,
                                          "messages": [{"role": "user", "content": "Go"}]})
    assert [e["id"] for e in data_events(again)] == [e["id"] for e in rest]
    assert len(openai_configured.calls) == 1


@pytestmark_db
async def test_another_users_stream_is_not_found(openai_configured, user, make_user, tokens_for):
    conversation = await _chat_with_user_message(user)
    openai_configured.push(Step(text="private words"))
    response = await asgi_request("POST", "/api/v1/chat/completions", headers=await bearer(tokens_for, user), json_body={
        "chat_id": conversation.id, "stream": True, "messages": [{"role": "user", "content": "secret"}]})
    stream_id = response.headers["x-stream-id"]
    mallory = await sync_to_async(make_user)("mallory")
    for headers in ({**(await bearer(tokens_for, mallory)), "Last-Event-ID": f"{stream_id}:0"}, {}):
        other = await asgi_request("GET", f"/api/v1/chat/stream/{stream_id}", headers=headers)
        assert other.status == 404 and other.json()["code"] == "NOT_FOUND"
        assert b"private" not in other.body
    owner = await asgi_request("GET", f"/api/v1/chat/stream/{stream_id}?last_event_id=0",
                               headers=await bearer(tokens_for, user))
    assert data_events(owner)[-1]["data"]["response"] == "private words"
    missing = await asgi_request("GET", "/api/v1/chat/stream/msg_doesnotexist", headers=await bearer(tokens_for, user))
    assert missing.status == 404


@pytestmark_db
async def test_stateless_stream_resumes_for_its_caller_only(openai_configured, user, tokens_for):
    openai_configured.push(Step(text="alpha beta gamma delta", chunk_delay=0.02))
    response = await asgi_request("POST", "/api/v1/chat/stream", json_body={"message": "Hi"}, client="10.0.0.5")
    stream_id = response.headers["x-stream-id"]
    mid = data_events(response)[0]["id"]
    same_client = await asgi_request("GET", f"/api/v1/chat/stream/{stream_id}", client="10.0.0.5",
                                     headers={"Last-Event-ID": mid})
    assert "".join(e["data"].get("chunk", "") for e in data_events(same_client)) == " beta gamma delta"
    other_client = await asgi_request("GET", f"/api/v1/chat/stream/{stream_id}", client="10.0.0.6",
                                      headers={"Last-Event-ID": mid})
    assert other_client.status == 404
    signed_in = await asgi_request("GET", f"/api/v1/chat/stream/{stream_id}", client="10.0.0.5",
                                   headers={**(await bearer(tokens_for, user)), "Last-Event-ID": mid})
    assert signed_in.status == 404  # an anonymous caller's stream is not a user's


@pytestmark_db
async def test_malformed_last_event_id_is_422(openai_configured):
    response = await asgi_request("GET", "/api/v1/chat/stream/msg_abc", headers={"Last-Event-ID": "msg_other:2"})
    assert response.status == 422 and response.json()["details"]["Last-Event-ID"]
