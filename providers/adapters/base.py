"""The provider interface every adapter implements, and the typed events it yields.

``stream()`` is the primitive: an async iterator of :class:`TextDelta`, :class:`ThinkingDelta`,
:class:`Usage` and :class:`Finish` events. It raises a :class:`providers.errors.ProviderError`
subclass on failure (before or after the first token; the caller decides about retries).
``complete()`` is built on it. SDK clients are created by the adapter and live as long as it.
"""

from __future__ import annotations

import abc
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from providers.params import GenerationParams

Role = Literal["user", "assistant", "system"]

CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass
class ChatRequest:
    """What an adapter needs for one call. ``model`` is the provider's own model name."""

    model: str
    messages: list[ChatMessage]
    system: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    user: str | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str
    type: str = "delta"


@dataclass(frozen=True)
class ThinkingDelta:
    text: str
    type: str = "thinking"


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
    """Why generation ended: ``stop``, ``length``, ``content_filter``, ``cancelled``, ``error``."""

    reason: str
    type: str = "finish"


Event = TextDelta | ThinkingDelta | Usage | Finish


def estimate_tokens(text_or_chars: str | int) -> int:
    """Rough token count (about four characters a token, rounded up) for providers that report
    no usage, and for trimming history to a context window."""
    chars = text_or_chars if isinstance(text_or_chars, int) else len(text_or_chars)
    return -(-chars // CHARS_PER_TOKEN)


def estimated_usage(request: ChatRequest, completion_chars: int) -> Usage:
    """Usage estimated from the request's text and the characters generated."""
    prompt_chars = len(request.system or "") + sum(len(m.content) for m in request.messages)
    return Usage(estimate_tokens(prompt_chars), estimate_tokens(completion_chars), estimated=True)


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
