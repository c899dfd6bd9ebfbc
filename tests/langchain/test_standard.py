"""LangChain's standard chat-model integration tests (``langchain-tests``) with ``ChatOpenAI``
pointed at our ``/v1``. Run by ``run.py`` (``make test-langchain``), which starts the server and
the fake upstream and sets ``CHATPLATFORM_BASE_URL`` / ``CHATPLATFORM_API_KEY``.

The model is ``gpt-4o-mini``: its catalogue entry has tools, vision and json_schema, so the tool
calling, structured output, JSON mode and image tests run. What is skipped, and why, is said
below next to each switch."""

from __future__ import annotations

import os
import struct
import zlib

import httpx
import pytest
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.integration_tests import chat_models as standard

# The one picture test_image_inputs downloads from the internet; this machine has no network
# beyond loopback, so that download (and only it) answers this local PNG instead.
_SUITE_IMAGE_HOST = "raw.githubusercontent.com"


def _png(width: int = 8, height: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture(autouse=True)
def _offline_suite_image(monkeypatch):
    real_get = httpx.get

    def get(url, *args, **kwargs):
        if httpx.URL(str(url)).host == _SUITE_IMAGE_HOST:
            return httpx.Response(200, content=_png(), headers={"content-type": "image/png"})
        return real_get(url, *args, **kwargs)

    monkeypatch.setattr(standard.httpx, "get", get)


class TestChatOpenAIOnOurGateway(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict:
        return {"model": "gpt-4o-mini", "base_url": os.environ["CHATPLATFORM_BASE_URL"],
                "api_key": os.environ["CHATPLATFORM_API_KEY"], "max_retries": 0, "timeout": 60,
                "stream_usage": True}

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        # An http(s) image URL is fetched by our server through its outbound-URL guard, which
        # refuses loopback; the suite's URL is on the internet, out of reach here.
        return False

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "gpt-4o"


class TestClaudeThroughOurGateway(TestChatOpenAIOnOurGateway):
    """The same suite on an Anthropic model: our /v1 translates to the Messages API."""

    @property
    def chat_model_params(self) -> dict:
        return {**super().chat_model_params, "model": "claude-haiku-4.5"}

    @property
    def model_override_value(self) -> str:
        return "claude-sonnet-4.5"


class TestGeminiThroughOurGateway(TestChatOpenAIOnOurGateway):
    """The same suite on a Gemini model: our /v1 translates to generateContent."""

    @property
    def chat_model_params(self) -> dict:
        return {**super().chat_model_params, "model": "gemini-2.5-flash"}

    @property
    def model_override_value(self) -> str:
        return "gemini-2.5-pro"


class TestResponsesAPIOnOurGateway(TestChatOpenAIOnOurGateway):
    """The same suite through ``/v1/responses`` (``ChatOpenAI(use_responses_api=True)``)."""

    @property
    def chat_model_params(self) -> dict:
        return {**super().chat_model_params, "use_responses_api": True}
