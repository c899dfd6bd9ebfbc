"""WebSocket chat for the benchmarks: seed 001's ``chat`` frames on ``/ws/chat?token=...``.

``chat_over`` sends one streamed chat over an open connection and times its first token;
``websocket_ttft`` does that ``n`` times over one connection (what ``bench/run.py`` compares with
the mock's own SSE time to first token); ``bench/websockets_idle.py`` chats over one of its
held connections with ``chat_over``.
"""

from __future__ import annotations

import json
import time
from itertools import count
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect

_ids = count()


def chat_url(http_url: str, token: str) -> str:
    """The seed 001 WebSocket route of a server at ``http_url``, authenticated by ``token``."""
    return f"{http_url.replace('http://', 'ws://', 1)}/ws/chat?token={quote(token)}"


async def chat_over(ws: ClientConnection, message: str = "Say hello.", model: str = "gpt-4o-mini") -> tuple[float, str]:
    """Milliseconds from sending a streamed ``chat`` frame to its first non-empty ``stream`` chunk,
    and the whole reply of its ``complete`` frame. An ``error`` frame raises ``RuntimeError``."""
    frame_id = f"bench-{next(_ids)}"
    started = time.perf_counter()
    first = None
    await ws.send(json.dumps({"type": "chat", "id": frame_id,
                              "data": {"message": message, "model": model, "stream": True}}))
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("id") != frame_id:
            continue
        if frame["type"] == "stream" and frame["data"].get("chunk") and first is None:
            first = (time.perf_counter() - started) * 1000
        elif frame["type"] == "complete":
            return (first if first is not None else float("nan")), frame["data"]["response"]
        elif frame["type"] == "error":
            raise RuntimeError(f"WebSocket chat failed: {frame}")


async def websocket_ttft(http_url: str, token: str, n: int) -> list[float]:
    """Time to first token of ``n`` sequential streamed chats over one WebSocket connection."""
    async with connect(chat_url(http_url, token), open_timeout=30, ping_interval=None) as ws:
        await chat_over(ws)  # warm-up
        return [(await chat_over(ws))[0] for _ in range(n)]
