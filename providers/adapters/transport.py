"""The HTTP client the OpenAI and Anthropic adapters hand their SDKs, and how to read its failures.

Both SDKs ship an aiohttp transport for their ``httpx2`` client (``DefaultAioHttpClient``, their
``aiohttp`` extra): the same SDK request machinery (authentication, headers, timeouts, errors by
status) over aiohttp's C HTTP parser and asyncio-native connection pool instead of httpcore2 on
anyio. It costs about a millisecond less server CPU per streamed call (``bench/results.md``,
eighth pass).

That transport's exception map reports every failed connection that is not a read timeout
(refused, reset, disconnected by the server) as ``httpx2.ConnectTimeout``, so the SDKs raise
``APITimeoutError`` for a provider that is down. :func:`timed_out` reads the aiohttp cause instead:
a provider that is down stays a 502 (``ProviderUnavailable``) and only a real timeout is a 504.
"""

from __future__ import annotations

from types import ModuleType

import aiohttp
import httpx2


def sdk_http_client(sdk: ModuleType) -> httpx2.AsyncClient:
    """``sdk``'s (``openai``'s or ``anthropic``'s) aiohttp client with that SDK's defaults, never
    following redirects: a chatbot's public endpoint could otherwise bounce the call to an address
    the outbound-URL guard refuses (cloud metadata, loopback)."""
    return sdk.DefaultAioHttpClient(follow_redirects=False)


def timed_out(exc: BaseException) -> bool:
    """Whether a failure the SDK or ``httpx2`` reports as a timeout was one: its aiohttp cause
    decides when it has one (only aiohttp's timeouts are), else it was."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, aiohttp.ClientError):
            return isinstance(cause, aiohttp.ServerTimeoutError)
        cause = cause.__cause__
    return True
