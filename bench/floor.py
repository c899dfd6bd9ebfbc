"""What the parts of a gateway request cost on their own, in CPU per request, measured in one run:
the floor under ``bench/gate.py``'s figures and DESIGN.md's goal of 3 ms per ``/v1`` request.

* the upstream's side: ``bench/mock_upstream.py`` (a minimal ASGI app on uvicorn) per request, i.e.
  what uvicorn alone costs a server;
* the client side of one streamed chat completion to the mock, in this process: through the OpenAI
  SDK's resource method (``chat.completions.with_streaming_response.create``), through the SDK's
  ``client.post`` on its aiohttp transport as ``providers/adapters/openai.py`` sends it, the same on
  the SDK's default httpx2 transport, and through bare httpx2 for comparison;
* our server (embedded mode): a ``/v1`` 404 (Django's handler, our middleware and the error body, no
  authentication), ``GET /v1/models`` with an API key, and a whole ``/v1/chat/completions``.

Usage: ``python bench/floor.py`` (``--calls 500``, ``--json FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import httpx2
import openai
from openai._streaming_cleanup import drain_response_async

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import cpu_per_request_ms, running_stack  # noqa: E402  (bench/ is no package)

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}],
        "stream": True, "stream_options": {"include_usage": True}}


async def client_cpu_ms(call, calls: int) -> float:
    """This process's CPU per ``call()`` (best of three series, after a warm-up)."""
    for _ in range(30):
        await call()
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(calls):
            await call()
        best = min(best, (time.process_time() - started) * 1000 / calls)
    return best


async def client_side(mock_url: str, calls: int) -> dict:
    def sdk_on(http_client) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(api_key="sk-bench-0000", base_url=f"{mock_url}/v1", max_retries=0,
                                  http_client=http_client)

    sdk = sdk_on(openai.DefaultAioHttpClient(follow_redirects=False))  # as providers/adapters/transport.py
    sdk_httpx2 = sdk_on(openai.DefaultAsyncHttpxClient(follow_redirects=False))
    raw = httpx2.AsyncClient()

    async def resource_method() -> None:
        async with sdk.chat.completions.with_streaming_response.create(**CHAT) as response:
            async for line in response.iter_lines():
                if line.startswith("data: [DONE]"):
                    await drain_response_async(response.http_response)
                    return

    def client_post(client: openai.AsyncOpenAI):
        async def call() -> None:
            response = await client.post("/chat/completions", cast_to=httpx2.Response, body=CHAT, stream=True)
            async for _line in response.aiter_lines():
                pass
            await response.aclose()
        return call

    async def bare_httpx() -> None:
        async with raw.stream("POST", f"{mock_url}/v1/chat/completions", json=CHAT,
                              headers={"Authorization": "Bearer sk-bench-0000"}) as response:
            async for _line in response.aiter_lines():
                pass

    try:
        return {"sdk_resource_method_ms": round(await client_cpu_ms(resource_method, calls), 2),
                "sdk_client_post_ms": round(await client_cpu_ms(client_post(sdk), calls), 2),
                "sdk_client_post_httpx2_ms": round(await client_cpu_ms(client_post(sdk_httpx2), calls), 2),
                "bare_httpx2_ms": round(await client_cpu_ms(bare_httpx, calls), 2)}
    finally:
        await sdk.close()
        await sdk_httpx2.close()
        await raw.aclose()


async def server_side(stack, requests: int) -> dict:
    auth = {"Authorization": f"Bearer {stack.api_key}"}
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}

    async def not_found(client):
        response = await client.get(f"{stack.url}/v1/no-such-route")
        assert response.status_code == 404, response.text
        return httpx.Response(200, request=response.request)  # cpu_per_request_ms wants a success

    series = {
        "mock_upstream_ms": (stack.mock.pid, lambda c: c.post(f"{stack.mock_url}/v1/chat/completions", json=chat)),
        "server_404_ms": (stack.server.pid, not_found),
        "server_models_ms": (stack.server.pid, lambda c: c.get(f"{stack.url}/v1/models", headers=auth)),
        "server_chat_completions_ms": (stack.server.pid, lambda c: c.post(f"{stack.url}/v1/chat/completions",
                                                                         json=chat, headers=auth)),
    }
    figures = {}
    async with httpx.AsyncClient(timeout=60) as client:
        for name, (pid, request) in series.items():
            for _ in range(20):
                await request(client)
            figures[name] = round(min([(await cpu_per_request_ms(pid, client, requests, request))[1]
                                       for _ in range(3)]), 2)
    return figures


async def measure(calls: int) -> dict:
    with running_stack(delay=0, prefix="chatplatform-floor-") as stack:
        return {**await client_side(stack.mock_url, calls), **await server_side(stack, calls)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500, help="calls or requests per series")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.calls))
    for name, value in figures.items():
        print(f"{name:30s} {value:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
