"""Calling providers: route planning, parameter checks, context trimming, retries with backoff,
fallback, the circuit breaker, and usage/cost accounting.

Everything else in the project calls a model through :func:`chat_stream` (streamed events) or
:func:`chat_complete` (collected); nothing outside ``providers/`` touches an SDK.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction

from chatplatform.api import metrics
from chatplatform.api.exceptions import AppError
from chatplatform.api.writebehind import WriteBehind
from providers import registry, selectors
from providers.adapters.base import (
    ChatMessage,
    ChatRequest,
    Event,
    Finish,
    ProviderSettings,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    estimate_tokens,
)
from providers.budgets import Reservation
from providers.errors import ProviderError, ProviderNotConfigured, ProviderUnavailable, UnknownModel
from providers.models import Model, ProviderConfig, UsageRecord
from providers.output import ToolCallAssembler, check_output
from providers.params import GenerationParams, unsupported
from providers.reliability import backoff_delay, breaker

logger = logging.getLogger(__name__)

@dataclass
class ChatCall:
    """One chat request, provider-neutral. ``model`` is a catalogue id (or, with an explicit
    ``provider``, any model name that provider serves)."""

    messages: list[ChatMessage]
    model: str | None = None
    provider: str | None = None
    system: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    fallback: bool = True
    user: Any = None
    api_key: Any = None
    request_id: str = ""
    # A provider not in the configuration (a chatbot's own endpoint): used as the only route.
    endpoint: ProviderSettings | None = None
    end_user: str | None = None  # the client's id for its end user; else ours is sent upstream
    reservation: Reservation | None = None  # tokens held on the caller's limits (providers.budgets)


@dataclass
class Route:
    provider: ProviderSettings
    model_id: str
    upstream_model: str
    model: Model | None = None


@dataclass
class ChatResult:
    text: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    provider: str = ""
    model: str = ""
    usage: Usage = field(default_factory=lambda: Usage(0, 0, estimated=True))
    finish_reason: str = ""
    stop_sequence: str | None = None
    cost: Decimal = Decimal("0")
    latency_ms: float = 0.0
    status: str = "success"
    error: ProviderError | None = None
    usage_id: str = ""


# --- planning ---------------------------------------------------------------------------------


def _route_for(provider: ProviderSettings, model_id: str | None = None) -> Route:
    model_id = model_id or selectors.default_model_for(provider)
    model = selectors.catalogue_model(model_id)
    upstream = model.upstream_name if model and model.provider == provider.kind else model_id
    return Route(provider=provider, model_id=model_id, upstream_model=upstream,
                 model=model if model and model.provider == provider.kind else None)


def _routes_serving(model: Model, providers: list[ProviderSettings]) -> list[Route]:
    """A route through every configured provider of the model's kind (the same model, several
    deployments: e.g. OpenAI itself and an OpenAI-compatible backup)."""
    return [_route_for(p, model.id) for p in providers if p.kind == model.provider]


def _chain_routes(model_ids: list[str], providers: list[ProviderSettings], used: set[tuple[str, str]]) -> list[Route]:
    routes: list[Route] = []
    for model_id in model_ids:
        model = selectors.catalogue_model(model_id)
        if model is None:
            continue  # a chain naming a model the operator removed: skipped
        for route in _routes_serving(model, providers):
            if (route.provider.name, route.model_id) not in used:
                used.add((route.provider.name, route.model_id))
                routes.append(route)
    return routes


def plan_routes(call: ChatCall) -> list[Route]:
    """The routes to try, in order.

    A request that names a provider or a model gets that model (from the named provider, or from
    any configured provider serving it) or an error; other models answer only along the fallback
    chain the operator configured for it (``MODEL_FALLBACKS``, ``ProviderConfig.fallbacks``). A
    request that names nothing goes to the default provider, then along the default chain
    (``DEFAULT_FALLBACKS``, or every other configured provider by priority). ``fallback=False``
    (anonymous callers, probes, chatbot endpoints) means the first choice only.
    """
    if call.endpoint is not None:
        return [Route(provider=call.endpoint, model_id=call.model or call.endpoint.default_model,
                      upstream_model=call.model or call.endpoint.default_model)]
    providers = selectors.configured_providers()
    if not call.provider and not call.model:
        default = selectors.default_provider()
        if default is None:
            raise ProviderNotConfigured("No provider is enabled: an operator disabled them all.", status_code=503,
                                        code="NO_PROVIDER")
        routes = [_route_for(default)]
        if call.fallback:
            used = {(routes[0].provider.name, routes[0].model_id)}
            if settings.DEFAULT_FALLBACKS is None:
                routes += [_route_for(p) for p in providers if p.name != default.name]
            else:
                routes += _chain_routes(settings.DEFAULT_FALLBACKS, providers, used)
        return routes

    model = selectors.catalogue_model(call.model) if call.model else None
    if call.provider:
        # The operator's provider of that name, else one of the caller's teams' own providers.
        chosen = selectors.provider_settings(call.provider) or selectors.team_provider_settings(
            call.provider, user=call.user)
        if chosen is None:
            raise ProviderNotConfigured(f"Provider '{call.provider}' is not configured.",
                                        details={"provider": [f"'{call.provider}' is not configured."]})
        if model is not None and model.provider != chosen.kind:
            raise AppError(f"Model '{call.model}' is not served by provider '{call.provider}'.",
                           status_code=422, details={"model": ["Not served by that provider."]})
        routes = [_route_for(chosen, call.model)]
        model = model or routes[0].model
    else:
        if model is None:
            raise UnknownModel(call.model or "")
        routes = _routes_serving(model, providers)
    if call.fallback and model is not None:
        used = {(r.provider.name, r.model_id) for r in routes}
        routes += _chain_routes(selectors.fallback_chain(model, provider=call.provider), providers, used)
    if not routes:
        raise ProviderNotConfigured(
            f"Model '{call.model}' needs the '{model.provider}' provider, which is not configured here.",
            details={"model": [f"Its provider ({model.provider}) is not configured. GET /api/v1/models "
                               "shows which models are available."]})
    return routes


def trim_history(messages: list[ChatMessage], *, system: str | None, context_length: int,
                 max_tokens: int) -> list[ChatMessage]:
    """Drop the oldest turns until prompt + reply fit the context; the system prompt and the
    last message always stay (422 if even they do not fit)."""
    budget = context_length - max_tokens - (estimate_tokens(system) if system else 0)
    kept: list[ChatMessage] = []
    used = 0
    for message in reversed(messages):
        cost = message.token_estimate() + 4
        if kept and used + cost > budget:
            break
        kept.append(message)
        used += cost
    while len(kept) > 1 and kept[-1].role == "tool":
        kept.pop()  # never keep a tool result whose call was trimmed away
    if used > budget:
        raise AppError("The message is too long for the model's context window.", status_code=422,
                       details={"message": [f"Exceeds the model's context of {context_length} tokens."]})
    kept.reverse()
    return kept


def _request_for(call: ChatCall, route: Route) -> ChatRequest:
    """The adapter's request for one route: the provider's own defaults (its ``settings``) where the
    call set none, fitted to the route's model (a fallback model may take less than the asked one)."""
    extra = route.provider.extra
    params = call.params.with_defaults(temperature=extra.get("temperature"), max_tokens=extra.get("max_tokens"))
    messages = call.messages
    model = route.model
    if model is not None:
        # Unasked, a reply may take up to a quarter of the context (never all of it: the prompt
        # needs room too), within the model's output limit.
        params = params.with_defaults(max_tokens=model.context_length // 4).fitted_to(model)
        messages = trim_history(messages, system=call.system, context_length=model.context_length,
                                max_tokens=params.max_tokens or 0)
    return ChatRequest(model=route.upstream_model, messages=messages, system=call.system, params=params,
                       user=call.end_user or str(getattr(call.user, "id", "") or "") or None)


# --- the call ---------------------------------------------------------------------------------


class ChatStream:
    """Async-iterable over one call's events, with retries, fallback and the breaker.

    Retries and fallback happen only before the first event reaches the caller; after that an
    error is raised to the caller (who keeps the partial text). When iteration ends — finished,
    failed, or abandoned by the caller — one UsageRecord is recorded and :attr:`result` is final.
    With ``USAGE_WRITE_BEHIND`` (the default) the row joins :data:`usage_rows`, written within
    ``USAGE_FLUSH_SECONDS``; otherwise it is written before iteration ends (or by ``usage_task``).
    """

    def __init__(self, call: ChatCall, routes: list[Route], *, defer_usage: bool = False) -> None:
        self.call = call
        self.routes = routes
        self.result = ChatResult()
        # Without write-behind and with defer_usage the UsageRecord is written by a task
        # (``usage_task``) so the caller can answer first and await it after.
        self.defer_usage = defer_usage
        self.usage_task: asyncio.Task | None = None
        # Called with the result once a reply completed without error (the response cache stores it).
        self.on_success: Callable[[ChatResult], Awaitable[None]] | None = None
        self.cache: Any = None  # the response cache's verdict for this call (providers.cache.Lookup)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._run()

    async def _attempts(self, route: Route) -> AsyncIterator[Event]:
        """Events from one provider, retrying before the first event (backoff, Retry-After)."""
        name = route.provider.name
        request = _request_for(self.call, route)
        adapter = registry.get_provider(route.provider)
        attempt = 0
        while True:
            emitted = False
            try:
                async with aclosing(adapter.stream(request)) as events:
                    async for event in events:
                        emitted = True
                        yield event
                breaker.success(name)
                return
            except ProviderError as exc:
                counts = exc.retryable or exc.upstream_status in (401, 403)
                if counts:
                    breaker.failure(name)
                if emitted or not counts:
                    raise  # mid-stream, or our request was refused (another provider would refuse it too)
                delay = backoff_delay(attempt, exc.retry_after) if exc.retryable else None
                if delay is None or attempt >= route.provider.max_retries:
                    raise _FallBack(exc) from exc
                attempt += 1
                logger.info("Retrying %s in %.2fs after %s", name, delay, exc.code)
                await asyncio.sleep(delay)
                if not breaker.acquire(name):
                    raise _FallBack(exc) from exc

    async def _run(self) -> AsyncIterator[Event]:
        started = time.perf_counter()
        result = self.result
        metrics.stream_started()
        text: list[str] = []
        thinking: list[str] = []
        calls = ToolCallAssembler()
        last_error: ProviderError | None = None
        try:
            for route in self.routes:
                if not breaker.acquire(route.provider.name):
                    last_error = last_error or ProviderUnavailable(provider=route.provider.name)
                    continue
                result.provider, result.model = route.provider.name, route.model_id
                try:
                    async with aclosing(self._attempts(route)) as events:
                        async for event in events:
                            if isinstance(event, Usage):
                                result.usage = event
                                continue
                            if isinstance(event, Finish):
                                result.finish_reason, result.stop_sequence = event.reason, event.stop_sequence
                                continue
                            if isinstance(event, ToolCallDelta):
                                calls.add(event)
                            else:
                                (text if isinstance(event, TextDelta) else thinking).append(event.text)
                            yield event
                    result.tool_calls = calls.complete()
                    if result.tool_calls and result.finish_reason in ("", "stop"):
                        result.finish_reason = "tool_calls"
                    check_output("".join(text), self.call.params, provider=route.provider.name,
                                 tool_calls=bool(result.tool_calls))
                    if self.on_success is not None:
                        result.text, result.thinking = "".join(text), "".join(thinking)
                        await self.on_success(result)
                    return
                except _FallBack as fallback:
                    last_error = fallback.error
            raise last_error or ProviderUnavailable()
        except ProviderError as exc:
            result.status, result.error = "error", exc
            result.finish_reason = result.finish_reason or "error"
            raise
        except (asyncio.CancelledError, GeneratorExit):
            result.status = "cancelled"
            result.finish_reason = "cancelled"
            breaker.release(result.provider)
            raise
        finally:
            result.text, result.thinking = "".join(text), "".join(thinking)
            result.latency_ms = (time.perf_counter() - started) * 1000
            self._settle_usage()
            metrics.stream_ended()
            if self.call.reservation is not None:
                self.call.reservation.settle(tokens=result.usage.total_tokens, cost=result.cost)
            if result.provider:
                metrics.provider_call(provider=result.provider, model=result.model, status=result.status,
                                      latency_s=result.latency_ms / 1000, prompt_tokens=result.usage.prompt_tokens,
                                      completion_tokens=result.usage.completion_tokens, cost=result.cost,
                                      error_code=result.error.code if result.error else "")
                if settings.USAGE_WRITE_BEHIND:  # written with the next batch, off the reply's path
                    usage_rows.add(_usage_row(self.call, result, streamed=True))
                elif self.defer_usage:
                    self.usage_task = asyncio.create_task(_record_usage_async(self.call, result, streamed=True))
                else:
                    await _record_usage_async(self.call, result, streamed=True)

    def _settle_usage(self) -> None:
        """Estimate usage the provider did not report, and price it from the catalogue."""
        result = self.result
        produced = len(result.text) + sum(len(c.name) + len(c.arguments) for c in result.tool_calls)
        if result.usage.estimated or (result.usage.total_tokens == 0 and produced):
            prompt = ChatRequest(model="", messages=self.call.messages, system=self.call.system,
                                 params=self.call.params).prompt_estimate()
            result.usage = Usage(prompt, estimate_tokens(produced) if produced else 0, estimated=True)
        model = next((r.model for r in self.routes if r.model_id == result.model and r.model), None)
        if model is not None:
            result.cost = model.cost(result.usage.prompt_tokens, result.usage.completion_tokens)


class _FallBack(Exception):
    """Internal: this provider is exhausted; try the next route."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(error.code)
        self.error = error


# Optional parameters only some adapters can send (``ChatProvider.accepts``).
ADAPTER_PARAMS = ("top_k",)


def refused_by_adapter(params: GenerationParams, kind: str) -> list[str]:
    """The optional parameters set in ``params`` that ``kind``'s adapter cannot send."""
    accepts = registry.adapter_class(kind).accepts
    return [name for name in ADAPTER_PARAMS if getattr(params, name) is not None and name not in accepts]


def _check_adapter(params: GenerationParams, kind: str, model_id: str) -> None:
    refused = refused_by_adapter(params, kind)
    if refused:
        raise AppError(f"{model_id} ({kind}) does not support " + ", ".join(refused) + ".", status_code=400,
                       code="UNSUPPORTED_PARAMETER",
                       details={name: [f"Not supported by {kind} models."] for name in refused})


def check_call(call: ChatCall, model: Model | None) -> None:
    """What ``model`` cannot take, refused naming the field: parameters, and images (``vision``)."""
    call.params.check_for(model)
    if model is not None:
        _check_adapter(call.params, model.provider, model.id)
    if model is not None and not model.has("vision") and any(m.images for m in call.messages):
        raise unsupported(model, {"messages": "vision"})


def supports(call: ChatCall, model: Model | None) -> bool:
    """Whether ``model`` can answer ``call`` (a fallback route that cannot is skipped)."""
    if model is None:
        return True
    return call.params.supported_by(model) and (model.has("vision") or not any(m.images for m in call.messages))


def call_token_estimate(call: ChatCall) -> int:
    """Tokens a call may use, estimated before it runs: its prompt plus ``max_tokens``."""
    prompt = ChatRequest(model="", messages=call.messages, system=call.system, params=call.params).prompt_estimate()
    return prompt + (call.params.max_tokens or 0)


def chat_stream(call: ChatCall) -> ChatStream:
    """Plan and validate synchronously-resolved routes, then return the stream (not started).
    Use :func:`achat_stream` from async code."""
    requested = selectors.catalogue_model(call.model) if call.model and call.endpoint is None else None
    if requested is not None:
        check_call(call, requested)  # what the request asked for is wrong: say so first
    routes = plan_routes(call)
    if requested is None:
        check_call(call, routes[0].model if routes else None)
    routes = [r for i, r in enumerate(routes) if i == 0 or (
        supports(call, r.model) and not refused_by_adapter(call.params, r.provider.kind))]
    if routes:
        _check_adapter(call.params, routes[0].provider.kind, routes[0].model_id)
        _request_for(call, routes[0])  # a message too long for the model's context: 422 now, not mid-stream
    return ChatStream(call, routes)


async def achat_stream(call: ChatCall) -> ChatStream:
    return await sync_to_async(chat_stream, thread_sensitive=True)(call)


async def chat_complete(call: ChatCall) -> ChatResult:
    """Run a call to the end and return the collected result."""
    stream = await achat_stream(call)
    async for _ in stream:
        pass
    return stream.result


def _usage_row(call: ChatCall, result: ChatResult, *, streamed: bool) -> UsageRecord:
    record = UsageRecord(
        user=call.user if getattr(call.user, "pk", None) else None,
        api_key=call.api_key if getattr(call.api_key, "pk", None) else None,
        provider=result.provider, model=result.model,
        prompt_tokens=result.usage.prompt_tokens, completion_tokens=result.usage.completion_tokens,
        total_tokens=result.usage.total_tokens, cost=result.cost, latency_ms=result.latency_ms,
        status=result.status, error_code=result.error.code if result.error else "",
        estimated=result.usage.estimated, streamed=streamed, request_id=call.request_id[:128],
    )
    result.usage_id = record.id
    return record


def _record_usage(call: ChatCall, result: ChatResult, *, streamed: bool) -> None:
    _usage_row(call, result, streamed=streamed).save(force_insert=True)


# Usage rows written behind the reply (USAGE_WRITE_BEHIND): on the request's path the INSERT and its
# thread hop were 15% of a /v1 request's CPU (bench/results.md, "Sixth pass").
usage_rows = WriteBehind("usage", lambda rows: UsageRecord.objects.bulk_create(rows),
                         batch_size=lambda: settings.USAGE_BATCH_SIZE,
                         flush_seconds=lambda: settings.USAGE_FLUSH_SECONDS,
                         background=lambda: settings.USAGE_WRITE_BEHIND)


def usage_flush() -> int:
    """Write this process's held usage rows now (readers of usage call it first)."""
    return usage_rows.flush()


async def _record_usage_async(call: ChatCall, result: ChatResult, *, streamed: bool) -> None:
    try:
        await asyncio.shield(sync_to_async(_record_usage)(call, result, streamed=streamed))
    except Exception:  # accounting must never break the reply
        logger.exception("Could not record usage")


# --- provider configuration writes ------------------------------------------------------------


@transaction.atomic
def provider_config_save(*, name: str, kind: str, api_key: str | None = None, **fields: Any) -> ProviderConfig:
    """Create or update a provider row. ``api_key=None`` keeps the stored key; ``""`` clears it."""
    config = ProviderConfig.objects.select_for_update().filter(name=name, team__isnull=True).first()
    if config is None:
        if ProviderConfig.objects.filter(name=name).exists():
            raise AppError(f"The name '{name}' is taken by a team's provider.", status_code=409, code="CONFLICT",
                           details={"name": ["Taken by a team's provider."]})
        config = ProviderConfig(name=name)
    config.kind = kind
    for key, value in fields.items():
        if value is not None:
            setattr(config, key, value)
    if api_key is not None:
        config.api_key = api_key
    if config.is_default:
        ProviderConfig.objects.exclude(pk=config.pk).filter(is_default=True).update(is_default=False)
    config.save()
    return config


@transaction.atomic
def provider_config_delete(*, name: str) -> None:
    deleted, _ = ProviderConfig.objects.filter(name=name, team__isnull=True).delete()
    if not deleted:
        raise AppError("Provider not found.", status_code=404)


def settings_for_validation(*, kind: str, api_key: str, base_url: str = "", name: str | None = None,
                            timeout: float = 20.0) -> ProviderSettings:
    """Provider settings for a one-off check of credentials before they are saved."""
    return ProviderSettings(name=name or kind, kind=kind, api_key=api_key, base_url=base_url,
                            timeout=timeout, max_retries=0)


def upstream_name(kind: str, model_id: str) -> str:
    """The name ``kind``'s provider knows ``model_id`` by (catalogue ids map; others pass through)."""
    model = selectors.catalogue_model(model_id)
    return model.upstream_name if model is not None and model.provider == kind else model_id


async def provider_probe(provider: ProviderSettings, *, model: str | None = None,
                         message: str = "Hello, are you working?") -> ChatResult:
    """One real, small completion through ``provider`` (no fallback, no retries)."""
    model_id = model or provider.default_model or await sync_to_async(selectors.default_model_for)(provider)
    upstream = await sync_to_async(upstream_name)(provider.kind, model_id)
    call = ChatCall(messages=[ChatMessage("user", message)], model=upstream, params=GenerationParams(max_tokens=32),
                    fallback=False, endpoint=replace(provider, max_retries=0))
    result = await chat_complete(call)
    result.model = model_id
    return result


# --- provider administration (the /providers and seed 000's /gemini routes) ---------------------


def provider_key_validate(*, kind: str, api_key: str, base_url: str, name: str) -> list[str]:
    """A real call with a candidate key (list models), before it is saved: the model ids the key
    sees. 400 (``INVALID_API_KEY``) if the provider refuses it or cannot be reached."""
    candidate = settings_for_validation(kind=kind, api_key=api_key, base_url=base_url, name=f"validate-{name}")
    adapter = registry.adapter_class(kind)(candidate)

    async def check() -> list[str]:
        try:
            return await adapter.list_models()
        finally:
            await adapter.aclose()

    try:
        return async_to_sync(check)()
    except ProviderError as exc:
        raise AppError("The provider rejected this API key (or could not be reached).", status_code=400,
                       code="INVALID_API_KEY", details={"api_key": [exc.code]}) from exc


def provider_save(*, existing: ProviderConfig | None = None, name: str | None = None, kind: str | None = None,
                  api_key: str | None = None, validate_key: bool = True, base_url: str | None = None,
                  description: str | None = None, default_model: str | None = None, enabled: bool | None = None,
                  is_default: bool | None = None, priority: int | None = None, timeout: float | None = None,
                  max_retries: int | None = None, fallbacks: dict | None = None, temperature: float | None = None,
                  max_tokens: int | None = None) -> ProviderConfig:
    """Create or update a provider row from an operator's input (``None``: leave as it is; name
    and kind default to ``existing``'s). A new key is checked with a real call first, unless
    ``validate_key`` is off or the provider is ``local``; ``temperature`` and ``max_tokens`` go
    into the row's settings. Not one transaction on purpose: none is held open during the
    provider call (the row write itself is atomic)."""
    if existing is None and not (name and kind):
        raise ValueError("a new provider needs a name and a kind")
    name = name or existing.name  # type: ignore[union-attr]
    kind = kind or existing.kind  # type: ignore[union-attr]
    if api_key and validate_key and kind != "local":
        provider_key_validate(kind=kind, api_key=api_key, name=name,
                              base_url=base_url or (existing.base_url if existing else ""))
    extra = dict(existing.settings if existing else {})
    for key, value in (("temperature", temperature), ("max_tokens", max_tokens)):
        if value is not None:
            extra[key] = value
    return provider_config_save(name=name, kind=kind, api_key=api_key, settings=extra, description=description,
                                base_url=base_url, default_model=default_model, enabled=enabled,
                                is_default=is_default, priority=priority, timeout=timeout,
                                max_retries=max_retries, fallbacks=fallbacks)


def provider_create(*, name: str | None = None, kind: str | None = None, **fields: Any) -> ProviderConfig:
    """``POST /providers``: a new row (422 without name and kind, 409 if the name is taken);
    ``fields`` as :func:`provider_save` takes them."""
    if not name or not kind:
        raise AppError("name and kind are required.", status_code=422,
                       details={k: ["This field is required."] for k, v in (("name", name), ("kind", kind)) if not v})
    if selectors.provider_config_get(name=name) is not None:
        raise AppError("A provider with that name exists.", status_code=409, code="CONFLICT")
    return provider_save(name=name, kind=kind, **fields)


def provider_update(*, name: str, **fields: Any) -> ProviderConfig:
    """``PUT``/``PATCH /providers/{name}``: change a row, or create one over an environment
    provider (or a new one when ``kind`` is given); 404 otherwise."""
    existing = selectors.provider_config_get(name=name)
    if existing is None:
        env = selectors.provider_settings(name)
        kind = fields.get("kind") or (env.kind if env else None)
        if not kind:
            raise AppError(f"Provider '{name}' not found.", status_code=404)
        fields["kind"] = kind
    return provider_save(existing=existing, name=name, **fields)


def provider_configure(*, name: str, default_model: str | None = None, is_default: bool | None = None,
                       temperature: float | None = None, max_tokens: int | None = None) -> ProviderConfig:
    """Seed 000's ``/gemini/configure``: a configured provider's default model, default flag and
    generation settings (404 if it is configured nowhere)."""
    existing = selectors.provider_config_get(name=name)
    env = selectors.provider_settings(name)
    if existing is None and env is None:
        raise AppError(f"Provider '{name}' is not configured.", status_code=404)
    kind = existing.kind if existing else env.kind  # type: ignore[union-attr]
    return provider_save(existing=existing, name=name, kind=kind, default_model=default_model,
                         is_default=is_default, temperature=temperature, max_tokens=max_tokens)


def provider_gemini_register(*, api_key: str, default_model: str, description: str = "", base_url: str = "",
                             project_id: str = "") -> tuple[ProviderConfig, list[str]]:
    """Seed 000's ``/gemini/register``: check the key with a real call to Gemini, then store it
    (encrypted). Returns the row and the model ids the key sees."""
    base_url = base_url or settings.GEMINI_BASE_URL
    models = provider_key_validate(kind="gemini", api_key=api_key, base_url=base_url, name="gemini")
    existing = selectors.provider_config_get(name="gemini")
    extra = {"project_id": project_id} if project_id else {}
    row = provider_config_save(name="gemini", kind="gemini", api_key=api_key, base_url=base_url or "",
                               default_model=default_model, description=description,
                               settings={**(existing.settings if existing else {}), **extra})
    return row, models
