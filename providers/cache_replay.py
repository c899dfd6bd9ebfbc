"""A cached reply replayed as a provider stream: the same event types a live call yields
(text deltas, thinking, tool calls), with the stored usage and zero cost, and no upstream call."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from providers.adapters.base import Event, TextDelta, ThinkingDelta, ToolCall, ToolCallDelta, Usage

_PIECES = re.compile(r"\S+\s*|\s+")


def pieces(text: str) -> list[str]:
    """``text`` in word-sized chunks (a stream of deltas, as a provider sends them)."""
    return _PIECES.findall(text)


class ReplayStream:
    """Stands in for :class:`providers.services.ChatStream` on a cache hit."""

    def __init__(self, call: Any, routes: list, value: dict) -> None:
        from providers.services import ChatResult

        self.call = call
        self.routes = routes
        self.value = value
        self.defer_usage = False
        self.usage_task = None
        self.on_success = None
        self.cache: Any = None
        self.result = ChatResult(provider=value.get("provider", ""), model=value.get("model", ""))

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._run()

    async def _run(self) -> AsyncIterator[Event]:
        value, result = self.value, self.result
        try:
            for chunk in pieces(value.get("thinking") or ""):
                yield ThinkingDelta(chunk)
            for chunk in pieces(value.get("text") or ""):
                yield TextDelta(chunk)
            calls = [ToolCall(**c) for c in value.get("tool_calls") or []]
            for index, call in enumerate(calls):
                yield ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments)
            result.tool_calls = calls
            result.finish_reason = value.get("finish_reason") or "stop"
        except GeneratorExit:
            result.status, result.finish_reason = "cancelled", "cancelled"
            raise
        finally:
            result.text, result.thinking = value.get("text") or "", value.get("thinking") or ""
            prompt, completion = (value.get("usage") or [0, 0])[:2]
            result.usage = Usage(prompt, completion)
            if self.call.reservation is not None:  # a hit is free: release what the turn held
                self.call.reservation.settle(tokens=0, cost=0)
