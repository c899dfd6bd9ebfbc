"""The provider interface every adapter implements, and the typed events it yields.

``stream()`` is the primitive: an async iterator of :class:`TextDelta`, :class:`ThinkingDelta`,
:class:`Usage` and :class:`Finish` events. It raises a :class:`providers.errors.ProviderError`
subclass on failure (before or after the first token; the caller decides about retries).
``complete()`` is built on it. SDK clients are created by the adapter and live as long as it.
"""

from __future__ import annotations

import abc
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from providers.params import GenerationParams

Role = Literal["user", "assistant", "system", "tool"]

CHARS_PER_TOKEN = 4
# What an image costs in the prompt, for trimming and estimates only (providers report the real
# figure): OpenAI bills a 512x512 tile at 85 + 170 tokens, Anthropic about 1,600 for 1 megapixel.
IMAGE_TOKENS_ESTIMATE = 800


@dataclass(frozen=True)
class Image:
    """An image in a message: its bytes and media type (``image/png``, ``image/jpeg``, ...), or,
    until the turn fetches it (``providers.images.resolved``), only the ``url`` it is at."""

    media_type: str = ""
    data: bytes = b""
    url: str = ""

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    @property
    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.base64}"


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for: ``arguments`` is the JSON text it produced."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True)
class ChatMessage:
    """One turn. ``content`` is its text; a user or tool turn may carry ``images`` (after the text); an
    assistant turn may carry ``tool_calls``; a ``tool`` turn is the result of the call
    ``tool_call_id`` (of the tool ``name``)."""

    role: Role
    content: str = ""
    images: tuple[Image, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    def token_estimate(self) -> int:
        chars = len(self.content) + sum(len(c.name) + len(c.arguments) for c in self.tool_calls)
        return estimate_tokens(chars) + IMAGE_TOKENS_ESTIMATE * len(self.images)


@dataclass
class ChatRequest:
    """What an adapter needs for one call. ``model`` is the provider's own model name."""

    model: str
    messages: list[ChatMessage]
    system: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    user: str | None = None

    def prompt_estimate(self) -> int:
        """Tokens of the prompt, estimated: system, messages, tool definitions."""
        tools = sum(len(t.name) + len(t.description) + len(json.dumps(t.parameters)) for t in self.params.tools)
        return (estimate_tokens(len(self.system or "") + tools)
                + sum(m.token_estimate() for m in self.messages))


@dataclass(frozen=True)
class TextDelta:
    text: str
    type: str = "delta"


@dataclass(frozen=True)
class ThinkingDelta:
    text: str
    type: str = "thinking"


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of the ``index``-th tool call: its id and name when it starts, then pieces of its
    JSON arguments (providers that send a call whole send one delta with all of it)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    type: str = "tool_call"


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False
    type: str = "usage"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Finish:
    """Why generation ended: ``stop``, ``length``, ``content_filter``, ``cancelled``, ``error``;
    ``stop_sequence``: which of the request's stop sequences ended it, when the provider says."""

    reason: str
    type: str = "finish"
    stop_sequence: str | None = None


Event = TextDelta | ThinkingDelta | ToolCallDelta | Usage | Finish


def estimate_tokens(text_or_chars: str | int) -> int:
    """Rough token count (about four characters a token, rounded up) for providers that report
    no usage, and for trimming history to a context window."""
    chars = text_or_chars if isinstance(text_or_chars, int) else len(text_or_chars)
    return -(-chars // CHARS_PER_TOKEN)


def estimated_usage(request: ChatRequest, completion_chars: int) -> Usage:
    """Usage estimated from the request (text, tool calls, images, tool definitions) and the
    characters generated."""
    return Usage(request.prompt_estimate(), estimate_tokens(completion_chars), estimated=True)


@dataclass
class Completion:
    text: str
    model: str
    provider: str
    usage: Usage
    finish_reason: str
    thinking: str = ""
    latency_ms: float = 0.0


@dataclass
class ProviderSettings:
    """One configured provider (from the environment or a ProviderConfig row)."""

    name: str
    kind: str
    api_key: str = ""
    base_url: str = ""
    default_model: str = ""
    timeout: float = 60.0
    connect_timeout: float = 10.0
    max_retries: int = 2
    priority: int = 100
    enabled: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def cache_key(self) -> tuple:
        return (self.name, self.kind, self.api_key, self.base_url, self.timeout, self.connect_timeout)


@dataclass
class HealthResult:
    status: Literal["healthy", "unhealthy"]
    latency_ms: float
    detail: str = ""


class ChatProvider(abc.ABC):
    """Base class of every adapter."""

    kind: str = ""
    supports_embeddings: bool = False
    # Optional GenerationParams this adapter can send (others set in a request are refused with a
    # 400 naming them before any call): e.g. ``top_k``, which OpenAI's API does not have.
    accepts: frozenset[str] = frozenset()

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings

    @property
    def name(self) -> str:
        return self.settings.name

    @abc.abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        """Yield events for one generation; raise ProviderError on failure."""

    async def complete(self, request: ChatRequest) -> Completion:
        """Collect :meth:`stream` into one :class:`Completion`."""
        started = time.perf_counter()
        text: list[str] = []
        thinking: list[str] = []
        usage: Usage | None = None
        finish = "stop"
        async for event in self.stream(request):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ThinkingDelta):
                thinking.append(event.text)
            elif isinstance(event, Usage):
                usage = event
            elif isinstance(event, Finish):
                finish = event.reason
        return Completion(
            text="".join(text), thinking="".join(thinking), model=request.model, provider=self.name,
            usage=usage or Usage(0, 0, estimated=True), finish_reason=finish,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def embed(self, texts: list[str], *, model: str | None = None) -> list[list[float]]:
        from providers.errors import UnsupportedFeature

        raise UnsupportedFeature(provider=self.name)

    async def health(self) -> HealthResult:
        """Cheapest real call that proves credentials and reachability (default: list models)."""
        started = time.perf_counter()
        try:
            await self.list_models()
        except Exception as exc:  # reported, never raised
            return HealthResult("unhealthy", (time.perf_counter() - started) * 1000, type(exc).__name__)
        return HealthResult("healthy", (time.perf_counter() - started) * 1000)

    async def list_models(self) -> list[str]:
        return [self.settings.default_model] if self.settings.default_model else []

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release network resources."""
