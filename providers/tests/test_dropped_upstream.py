"""An upstream that closes the connection mid-stream is a failure, not a normal stop.

Each remote adapter (through its real SDK) talks to a raw socket server that sends the start of a
well-formed streamed answer in that provider's wire protocol, then closes the socket without the
final chunk: once with chunked framing left unterminated, once with a close-delimited body that
simply ends (only the missing final event shows the cut). The adapter must yield what arrived and
then raise, never report a finish. (The ``local`` adapter runs in-process: there is no connection
to drop.)
"""

from __future__ import annotations

import json

import pytest

from providers.adapters.anthropic import AnthropicProvider
from providers.adapters.base import ChatMessage, ChatRequest, Finish, ProviderSettings, TextDelta, Usage
from providers.adapters.gemini import GeminiProvider
from providers.adapters.openai import OpenAIProvider
from providers.errors import ProviderError
from providers.params import GenerationParams
from providers.tests.fakeserver import CutOffServer

PIECES = ["Once", " upon", " a"]


def openai_parts() -> list[bytes]:
    def chunk(delta: dict) -> bytes:
        payload = {"id": "chatcmpl-cut", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]}
        return b"data: " + json.dumps(payload).encode() + b"\n\n"
    return [chunk({"role": "assistant", "content": ""}), *(chunk({"content": p}) for p in PIECES)]


def anthropic_parts() -> list[bytes]:
    def event(name: str, data: dict) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
    message = {"id": "msg_cut", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5",
               "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1}}
    return [event("message_start", {"type": "message_start", "message": message}),
            event("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}}),
            *(event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": p}}) for p in PIECES)]


def gemini_parts() -> list[bytes]:
    return [b"data: " + json.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": p}]}, "index": 0}],
                                    "modelVersion": "gemini-2.5-flash"}).encode() + b"\r\n\r\n" for p in PIECES]


ADAPTERS = {
    "openai": (OpenAIProvider, openai_parts, "/v1", "gpt-4o-mini"),
    "anthropic": (AnthropicProvider, anthropic_parts, "", "claude-sonnet-4-5"),
    "gemini": (GeminiProvider, gemini_parts, "", "gemini-2.5-flash"),
}


@pytest.mark.parametrize("framing", ["chunked", "close"])
@pytest.mark.parametrize("kind", sorted(ADAPTERS))
async def test_socket_closed_mid_body_raises_after_the_partial_text(kind, framing):
    adapter_class, parts, suffix, model = ADAPTERS[kind]
    async with CutOffServer(parts(), framing=framing) as upstream:
        provider = adapter_class(ProviderSettings(name=kind, kind=kind, api_key="test-key",
                                                  base_url=upstream.url + suffix, timeout=5, max_retries=0))
        seen = []
        with pytest.raises(ProviderError) as info:
            async for event in provider.stream(ChatRequest(model=model, messages=[ChatMessage("user", "Tell me")],
                                                           params=GenerationParams(max_tokens=50))):
                seen.append(event)
        await provider.aclose()
    assert upstream.requests == 1
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == "".join(PIECES)
    assert not any(isinstance(e, Finish | Usage) for e in seen)  # never reported as finished
    assert info.value.status_code == 502 and info.value.code == "PROVIDER_ERROR"
