"""The response cache through the real routes: a repeat is a HIT without an upstream call (the fake
upstream's request log proves it), a streamed hit replays as a stream, a paraphrase hits
semantically while an unrelated or differently-contexted prompt misses, another user never hits my
entry, and Cache-Control / ``"cache": false`` bypass."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from chats.models import Message
from chats.tests.test_sse import asgi_request, bearer, data_events
from providers.models import ResponseCacheEntry, UsageRecord
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db(transaction=True)

ASK = {"message": "What is the capital of France?", "model": "gpt-4o-mini", "temperature": 0.2}


@pytest.fixture
def cache_on(settings, openai_configured):
    settings.RESPONSE_CACHE_ENABLED = True
    settings.SEMANTIC_CACHE_ENABLED = False
    return openai_configured


@pytest.fixture
def semantic_on(cache_on, settings, minilm):
    settings.SEMANTIC_CACHE_ENABLED = True
    settings.SEMANTIC_CACHE_THRESHOLD = 0.85
    return cache_on


async def complete(body: dict, headers: dict | None = None):
    return await asgi_request("POST", "/api/v1/chat/completion", json_body=body, headers=headers)


async def test_repeat_is_an_exact_hit_without_upstream_call(cache_on):
    cache_on.push(Step(text="Paris is the capital of France.", prompt_tokens=12, completion_tokens=7))
    first = await complete(ASK)
    assert first.status == 200 and first.headers["x-cache-status"] == "MISS"
    assert first.json()["cached"] is False and len(cache_on.calls) == 1
    second = await complete(ASK)
    body = second.json()
    assert second.headers["x-cache-status"] == "HIT"
    assert body["response"] == "Paris is the capital of France."
    assert body["cached"] is True and body["cache_key"] == first.json()["cache_key"]
    assert body["similarity_score"] == 1.0 and body["usage"]["total_tokens"] == 19
    assert len(cache_on.calls) == 1  # no second upstream request
    assert await sync_to_async(UsageRecord.objects.count)() == 1  # a hit costs nothing


async def test_every_parameter_and_the_context_are_in_the_key(cache_on):
    cache_on.push(*[Step(text=f"answer {i}") for i in range(4)])
    await complete(ASK)
    variants = [{**ASK, "temperature": 0.3}, {**ASK, "system_prompt": "Be terse."},
                {**ASK, "conversation_history": [{"role": "user", "content": "Hi"},
                                                 {"role": "assistant", "content": "Hello"}]}]
    for variant in variants:
        response = await complete(variant)
        assert response.headers["x-cache-status"] == "MISS", variant
    assert len(cache_on.calls) == 4


async def test_streamed_reply_is_cached_and_replayed_as_a_stream(cache_on):
    cache_on.push(Step(text="Streaming from the cache works"))
    first = await asgi_request("POST", "/api/v1/chat/stream", json_body=ASK)
    assert first.headers["x-cache-status"] == "MISS"
    live = data_events(first)
    again = await asgi_request("POST", "/api/v1/chat/stream", json_body=ASK)
    assert again.headers["x-cache-status"] == "HIT"
    assert again.headers["content-type"].startswith("text/event-stream")
    replayed = data_events(again)
    assert len(replayed) > 2 and "chunk" in replayed[0]["data"]
    assert "".join(e["data"]["chunk"] for e in replayed[:-1]) == "Streaming from the cache works"
    assert "".join(e["data"]["chunk"] for e in live[:-1]) == "Streaming from the cache works"
    assert replayed[-1]["data"]["finished"] is True and replayed[-1]["data"]["cached"] is True
    assert len(cache_on.calls) == 1


async def test_bypass_header_and_body_flag(cache_on):
    cache_on.push(*[Step(text="fresh") for _ in range(3)])
    await complete(ASK)
    no_cache = await complete(ASK, headers={"Cache-Control": "no-cache"})
    assert no_cache.headers["x-cache-status"] == "BYPASS" and no_cache.json()["cached"] is False
    flagged = await complete({**ASK, "cache": False})
    assert flagged.headers["x-cache-status"] == "BYPASS"
    assert len(cache_on.calls) == 3
    refused = await complete({**ASK, "cache": "sometimes"})
    assert refused.status == 422 and "cache" in refused.json()["details"]


async def test_another_user_never_hits_my_entry(cache_on, make_user, tokens_for):
    alice, bob = await sync_to_async(make_user)("alice"), await sync_to_async(make_user)("bob")
    cache_on.push(Step(text="for alice"), Step(text="for bob"))
    first = await complete(ASK, headers=await bearer(tokens_for, alice))
    assert first.headers["x-cache-status"] == "MISS"
    other = await complete(ASK, headers=await bearer(tokens_for, bob))
    assert other.headers["x-cache-status"] == "MISS" and other.json()["response"] == "for bob"
    mine = await complete(ASK, headers=await bearer(tokens_for, alice))
    assert mine.headers["x-cache-status"] == "HIT" and mine.json()["response"] == "for alice"
    assert len(cache_on.calls) == 2


async def test_persisted_chat_saves_both_messages_on_a_hit(cache_on, user, tokens_for):
    headers = await bearer(tokens_for, user)
    cache_on.push(Step(text="AI is artificial intelligence."))
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is AI?"}]}
    first = await asgi_request("POST", "/api/v1/chat/completions", json_body=body, headers=headers)
    assert first.headers["x-cache-status"] == "MISS"
    second = await asgi_request("POST", "/api/v1/chat/completions", json_body=body, headers=headers)
    assert second.status == 200 and second.headers["x-cache-status"] == "HIT"
    chat_id = second.json()["chat_id"]
    saved = await sync_to_async(list)(Message.objects.filter(conversation_id=chat_id).order_by("created_at"))
    assert [(m.role, m.content) for m in saved] == [("user", "What is AI?"),
                                                   ("assistant", "AI is artificial intelligence.")]
    assert saved[1].metadata["cached"] is True and saved[1].cost == 0
    assert len(cache_on.calls) == 1


async def test_paraphrase_hits_semantically_unrelated_and_other_context_miss(semantic_on):
    semantic_on.push(*[Step(text=f"reply {i}") for i in range(4)])
    await complete(ASK)
    paraphrase = await complete({**ASK, "message": "What's the capital city of France?"})
    assert paraphrase.headers["x-cache-status"] == "HIT"
    assert paraphrase.json()["response"] == "reply 0"
    assert 0.85 <= paraphrase.json()["similarity_score"] < 1.0
    unrelated = await complete({**ASK, "message": "How do I bake sourdough bread?"})
    assert unrelated.headers["x-cache-status"] == "MISS"
    # The same follow-up in two conversations is two different questions.
    about_einstein = [{"role": "user", "content": "Who was Albert Einstein?"},
                      {"role": "assistant", "content": "A physicist."}]
    about_obama = [{"role": "user", "content": "Who is Barack Obama?"},
                   {"role": "assistant", "content": "A former US president."}]
    await complete({**ASK, "message": "How old is he?", "conversation_history": about_einstein})
    other = await complete({**ASK, "message": "How old is he?", "conversation_history": about_obama})
    assert other.headers["x-cache-status"] == "MISS"
    assert len(semantic_on.calls) == 4
    assert await sync_to_async(ResponseCacheEntry.objects.filter(vector__isnull=False).count)() == 4


# --- the cache routes and commands ---------------------------------------------------------------


@pytest.fixture
def staff(make_user):
    return make_user("ops", is_staff=True)


def as_user(api_client, tokens_for, who):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(who)['access_token']}")
    return api_client


def test_stats_count_hits_misses_and_bypasses(cache_on, api_client, tokens_for, user):
    from asgiref.sync import async_to_sync

    cache_on.push(Step(text="Paris.", prompt_tokens=5, completion_tokens=2), Step(text="fresh"))
    async_to_sync(complete)(ASK)
    async_to_sync(complete)(ASK)
    async_to_sync(complete)(ASK, {"Cache-Control": "no-cache"})
    stats = as_user(api_client, tokens_for, user).get("/api/v1/cache/stats").json()
    assert (stats["hits"], stats["misses"], stats["bypasses"], stats["total_requests"]) == (1, 1, 1, 3)
    assert stats["hit_rate"] == 0.5 and stats["entries"] == 1 and stats["cache_size_bytes"] > 0
    assert stats["cache_size_human"].endswith("B") and stats["avg_response_time_ms"] > 0
    for key in ("memory_usage_percent", "evictions", "last_eviction"):
        assert key in stats
    assert api_client.__class__().get("/api/v1/cache/stats").status_code == 401


def test_clear_is_admin_only_and_matches_a_pattern(cache_on, api_client, tokens_for, user, staff):
    from asgiref.sync import async_to_sync

    cache_on.push(Step(text="Paris."), Step(text="Rome."), Step(text="Paris again."))
    async_to_sync(complete)(ASK)
    async_to_sync(complete)({**ASK, "message": "What is the capital of Italy?"})
    assert api_client.delete("/api/v1/cache/clear").status_code == 401
    assert as_user(api_client, tokens_for, user).delete("/api/v1/cache/clear").status_code == 403
    admin = as_user(api_client, tokens_for, staff)
    cleared = admin.delete("/api/v1/cache/clear?pattern=France")
    assert cleared.status_code == 200 and cleared.json() == {"cleared": 1, "pattern": "France"}
    assert ResponseCacheEntry.objects.count() == 1
    again = async_to_sync(complete)(ASK)
    assert again.headers["x-cache-status"] == "MISS" and len(cache_on.calls) == 3
    assert admin.delete("/api/v1/cache/clear").json()["cleared"] == 2


def test_warm_task_stores_shared_entries_everyone_hits(cache_on, api_client, tokens_for, user, staff):
    from asgiref.sync import async_to_sync

    cache_on.push(*[Step(text=f"warm {i}") for i in range(3)])
    body = {"patterns": ["greeting"], "models": ["gpt-4o-mini"], "limit": 3}
    assert as_user(api_client, tokens_for, user).post("/api/v1/cache/warm", body, format="json").status_code == 403
    admin = as_user(api_client, tokens_for, staff)
    started = admin.post("/api/v1/cache/warm", body, format="json")
    assert started.status_code == 202
    status = admin.get(f"/api/v1/cache/warm/{started.json()['task_id']}").json()
    assert (status["status"], status["done"], status["warmed"]) == ("completed", 3, 3)
    assert ResponseCacheEntry.objects.filter(shared=True).count() == 3
    hit = async_to_sync(complete)({"message": "Hello", "model": "gpt-4o-mini"})
    assert hit.headers["x-cache-status"] == "HIT" and hit.json()["response"] == "warm 0"
    assert len(cache_on.calls) == 3
    assert admin.get("/api/v1/cache/warm/unknown").status_code == 404
    refused = admin.post("/api/v1/cache/warm", {**body, "ttl": 5}, format="json")
    assert refused.status_code == 400 and "ttl" in refused.json()["details"]


def test_commands_warm_and_clear_with_progress(cache_on):
    from io import StringIO

    from django.core.management import call_command

    cache_on.push(*[Step(text=f"cmd {i}") for i in range(2)])
    out = StringIO()
    call_command("warm_cache", "help", "--model", "gpt-4o-mini", "--limit", "2", stdout=out)
    assert "2/2" in out.getvalue() and "Warmed 2 of 2" in out.getvalue()
    out = StringIO()
    call_command("clear_cache", stdout=out)
    assert "Cleared 2 cache entries" in out.getvalue() and ResponseCacheEntry.objects.count() == 0
