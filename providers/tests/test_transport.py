"""The OpenAI and Anthropic adapters' HTTP client (their SDKs' aiohttp transport): how its failures
read, that it follows no redirect, and that the registry closes the clients it drops."""

from __future__ import annotations

import asyncio

import pytest

from providers import registry
from providers.adapters.anthropic import AnthropicProvider
from providers.adapters.base import ChatMessage, ProviderSettings
from providers.adapters.openai import OpenAIProvider
from providers.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from providers.tests.fake_anthropic import FakeAnthropic
from providers.tests.fakeserver import FakeServer, Step
from providers.tests.requests import chat_request

ADAPTERS = {"openai": (OpenAIProvider, "/v1"), "anthropic": (AnthropicProvider, "")}


def settings_for(kind: str, url: str, **overrides) -> ProviderSettings:
    values = {"name": f"{kind}-test", "kind": kind, "api_key": "sk-test", "base_url": url + ADAPTERS[kind][1],
              "default_model": "m", "timeout": 5.0, "connect_timeout": 2.0, **overrides}
    return ProviderSettings(**values)


def chat():
    return chat_request(model="m", messages=[ChatMessage("user", "Hi")])


async def drain(adapter) -> None:
    async for _event in adapter.stream(chat()):
        pass


@pytest.fixture
async def hangs_up():
    """A server that reads the request and closes the connection without a byte of answer."""
    requests = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", requests
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
async def test_a_connection_closed_before_an_answer_is_unavailable_not_a_timeout(kind, hangs_up):
    # aiohttp's transport calls this ConnectTimeout; it is a provider that is down (502), not slow.
    url, requests = hangs_up
    adapter = ADAPTERS[kind][0](settings_for(kind, url))
    try:
        with pytest.raises(ProviderUnavailable) as info:
            await drain(adapter)
    finally:
        await adapter.aclose()
    assert not isinstance(info.value, ProviderTimeout)
    assert len(requests) == 1


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
async def test_a_silent_server_is_a_timeout(kind, hangs_up):
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(3)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    adapter = ADAPTERS[kind][0](settings_for(kind, url, timeout=0.3, connect_timeout=0.3))
    try:
        with pytest.raises(ProviderTimeout):
            await drain(adapter)
    finally:
        await adapter.aclose()
        server.close()


async def test_anthropic_follows_no_redirect():
    # As for OpenAI (test_adapter_openai): an endpoint's redirect must not send us elsewhere (SSRF).
    with FakeServer(FakeAnthropic()) as server:
        server.app.push(Step("status", status=307, headers={"location": server.url + "/v1/elsewhere"}))
        adapter = AnthropicProvider(settings_for("anthropic", server.url))
        try:
            with pytest.raises(ProviderError):
                await drain(adapter)
        finally:
            await adapter.aclose()
        assert [call.path for call in server.app.calls] == ["/v1/messages"]


def test_clear_closes_the_adapters_it_drops():
    async def build():
        return registry.get_provider(settings_for("openai", "http://127.0.0.1:9"))

    adapter = asyncio.run(build())
    assert not adapter._client.is_closed()
    registry.clear()
    assert adapter._client.is_closed()


def test_the_adapters_of_closed_loops_are_closed_when_another_loop_builds_one():
    # async_to_sync gives each call from a Celery task a loop of its own: its adapters must not pile up.
    settings = settings_for("openai", "http://127.0.0.1:9")

    async def build():
        adapter = registry.get_provider(settings)
        await asyncio.sleep(0.01)  # a call's own I/O, during which the dropped adapters close
        return adapter

    first = asyncio.run(build())
    second = asyncio.run(build())
    assert first is not second
    assert first._client.is_closed() and not second._client.is_closed()
    assert [entry[0] for entry in registry._instances.values()] == [second]
