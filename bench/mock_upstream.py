"""A minimal OpenAI-compatible upstream for benchmarks: answers after a fixed delay.

Run: python bench/mock_upstream.py PORT DELAY_MS. Non-streamed requests get one JSON body after
DELAY_MS; streamed ones get the first chunk after DELAY_MS, then the rest at once, then usage.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import uvicorn

WORDS = ["Hello", " from", " the", " mock", " upstream", "."]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = json.loads(body or b"{}")
    await asyncio.sleep(DELAY)
    created = int(time.time())
    model = request.get("model", "gpt-4o-mini")
    usage = {"prompt_tokens": 12, "completion_tokens": len(WORDS), "total_tokens": 12 + len(WORDS)}
    if not request.get("stream"):
        payload = json.dumps({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(WORDS)},
                         "finish_reason": "stop"}],
            "usage": usage,
        }).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})

    def chunk(delta: dict, finish=None, with_usage=False) -> bytes:
        data = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [] if with_usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if with_usage:
            data["usage"] = usage
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": w}) for w in WORDS]
    out.append(chunk({}, finish="stop"))
    if (request.get("stream_options") or {}).get("include_usage"):
        out.append(chunk({}, with_usage=True))
    out.append(b"data: [DONE]\n\n")
    await send({"type": "http.response.body", "body": out[0], "more_body": True})
    await send({"type": "http.response.body", "body": b"".join(out[1:]), "more_body": False})


if __name__ == "__main__":
    DELAY = int(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.02
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
else:
    DELAY = 0.02
