"""Seed 002's routes (at the root as written, and under /api/v1): db-status, users, chatbots,
chatbot API keys; chatbot-key authentication and revocation; owner scoping; the SSRF rule on
``llm_endpoint_url``; and a chatbot's endpoint, prompt and model reaching the wire."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone
from rest_framework.test import APIClient

from chatplatform.api.outbound import OutboundURLRefused
from providers import services as provider_services
from providers.adapters.base import ChatMessage
from providers.profiles import profile_of
from providers.tests.fakeserver import Step
from support import services
from support.models import Chatbot, ChatbotAPIKey

pytestmark = pytest.mark.django_db

PREFIXES = ["", "/api/v1"]  # seed 002's paths at the root, and the same under /api/v1
PROBE = "/api/v1/_test/chat-probe"
ENVELOPE_KEYS = {"detail", "message", "error", "code", "status_code", "request_id", "timestamp", "details"}


def bot(owner, name: str = "Helper", **fields) -> Chatbot:
    return services.chatbot_create(owner=owner, name=name, **fields)


# --- seed 002's read routes ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_seed_002_health_and_db_status(prefix, alice, staff, client_of, admin_client):
    health = APIClient().get(f"{prefix}/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"

    bot(alice)
    status = admin_client.get(f"{prefix}/db-status")
    assert status.status_code == 200, status.content
    body = status.json()
    assert body["status"] == "connected" and body["database"] == "connected"
    assert body["engine"] in ("sqlite", "postgresql") and body["latency_ms"] >= 0
    assert body["chatbots_count"] == 1 and body["users_count"] == 2 and body["api_keys_count"] == 0
    counts = body["record_counts"]
    assert counts["support_chatbot"] == 1 and counts["accounts_user"] == 2 and counts["support_faq"] == 0
    assert client_of(staff).get(f"{prefix}/db-status").status_code == 200
    # Seed 002's `curl http://localhost:8000/db-status` carries no credentials: admins only here.
    assert APIClient().get(f"{prefix}/db-status").status_code == 401
    assert client_of(alice).get(f"{prefix}/db-status").status_code == 403


@pytest.mark.parametrize("prefix", PREFIXES)
def test_seed_002_users_list_all_for_admins_self_for_others(prefix, alice, bob, staff, client_of, admin_client):
    response = admin_client.get(f"{prefix}/users")
    assert response.status_code == 200
    users = response.json()
    assert [u["username"] for u in users] == ["alice", "bob", "agent"]
    assert response["X-Total-Count"] == "3"
    assert set(users[0]) >= {"id", "email", "created_at"} and "password" not in users[0]
    assert [u["username"] for u in client_of(staff).get(f"{prefix}/users", {"skip": 1, "limit": 1}).json()] == ["bob"]
    own = client_of(alice).get(f"{prefix}/users")
    assert own.status_code == 200 and own["X-Total-Count"] == "1"
    assert [u["id"] for u in own.json()] == [alice.id]  # a normal user: a list of one
    assert client_of(alice).get(f"{prefix}/users", {"skip": 1}).json() == []
    assert APIClient().get(f"{prefix}/users").status_code == 401


@pytest.mark.parametrize("prefix", PREFIXES)
def test_seed_002_user_detail_self_or_admin(prefix, alice, bob, client_of, admin_client):
    me = client_of(alice).get(f"{prefix}/users/{alice.id}")
    assert me.status_code == 200 and me.json()["email"] == "alice@example.com"
    other = client_of(alice).get(f"{prefix}/users/{bob.id}")
    assert other.status_code == 404 and set(other.json()) >= ENVELOPE_KEYS
    assert admin_client.get(f"{prefix}/users/{bob.id}").json()["username"] == "bob"
    assert admin_client.get(f"{prefix}/users/user_missing").status_code == 404


def test_accounts_user_routes_still_win_over_user_detail(alice, client_of):
    profile = client_of(alice).get("/api/v1/users/profile")
    assert profile.status_code == 200 and "preferences" in profile.json()
    assert client_of(alice).get("/api/v1/users/preferences").json()["theme"] == "system"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_seed_002_chatbot_lists(prefix, alice, bob, client_of, admin_client):
    a1, a2, b1 = bot(alice, "A1"), bot(alice, "A2"), bot(bob, "B1")
    response = client_of(alice).get(f"{prefix}/chatbots")
    assert response.status_code == 200 and response["X-Total-Count"] == "2"
    listed = response.json()
    assert [c["id"] for c in listed] == [a1.id, a2.id]
    assert set(listed[0]) >= {"id", "name", "owner_id", "llm_endpoint_url", "created_at"}
    assert listed[0]["owner_id"] == alice.id and listed[0]["id"].startswith("bot_")
    assert [c["id"] for c in admin_client.get(f"{prefix}/chatbots").json()] == [a1.id, a2.id, b1.id]

    mine = client_of(alice).get(f"{prefix}/users/{alice.id}/chatbots")
    assert [c["id"] for c in mine.json()] == [a1.id, a2.id]
    assert client_of(alice).get(f"{prefix}/users/{bob.id}/chatbots").status_code == 404
    assert [c["id"] for c in admin_client.get(f"{prefix}/users/{bob.id}/chatbots").json()] == [b1.id]

    detail = client_of(alice).get(f"{prefix}/chatbots/{a1.id}")
    assert detail.status_code == 200 and detail.json()["name"] == "A1"
    assert client_of(alice).get(f"{prefix}/chatbots/{b1.id}").status_code == 404
    assert admin_client.get(f"{prefix}/chatbots/{b1.id}").status_code == 200
    assert APIClient().get(f"{prefix}/chatbots").status_code == 401


# --- chatbot writes ------------------------------------------------------------------------------------


def test_chatbot_create_update_delete_by_owner(alice, bob, client_of):
    owner, other = client_of(alice), client_of(bob)
    created = owner.post("/chatbots", {"name": "Support bot", "model": "gpt-4o-mini",
                                       "system_prompt": "You are terse."}, format="json")
    assert created.status_code == 201, created.content
    chatbot = created.json()
    assert (chatbot["owner_id"], chatbot["llm_endpoint_url"], chatbot["model"]) == (alice.id, "", "gpt-4o-mini")
    url = f"/api/v1/chatbots/{chatbot['id']}"

    assert other.patch(url, {"name": "stolen"}, format="json").status_code == 404
    assert other.delete(url).status_code == 404
    patched = owner.patch(url, {"name": "Renamed"}, format="json")
    assert patched.status_code == 200 and patched.json()["name"] == "Renamed"
    assert patched.json()["system_prompt"] == "You are terse."
    replaced = owner.put(url, {"name": "Replaced"}, format="json").json()
    assert (replaced["name"], replaced["system_prompt"], replaced["model"]) == ("Replaced", "", "")
    assert owner.put(url, {"system_prompt": "no name"}, format="json").status_code == 422
    assert owner.delete(url).status_code == 204
    assert owner.get(url).status_code == 404


def test_chatbot_create_validation(alice, bob, client_of, admin_client):
    client = client_of(alice)
    assert client.post("/chatbots", {}, format="json").status_code == 422
    unknown = client.post("/chatbots", {"name": "x", "model": "no-such-model"}, format="json")
    assert unknown.status_code == 422 and "model" in unknown.json()["details"]
    # Another owner: admins only.
    assert client.post("/chatbots", {"name": "x", "owner_id": bob.id}, format="json").status_code == 403
    for_bob = admin_client.post("/chatbots", {"name": "For Bob", "owner_id": bob.id}, format="json")
    assert for_bob.status_code == 201 and for_bob.json()["owner_id"] == bob.id
    no_owner = admin_client.post("/chatbots", {"name": "Nobody's"}, format="json")
    assert no_owner.status_code == 422 and "owner_id" in no_owner.json()["details"]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/v1", "http://localhost:11434/v1", "http://2130706433/v1", "http://0x7f000001/",
    "http://[::ffff:127.0.0.1]/v1", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.8/v1",
    "http://[fd00::1]/v1", "file:///etc/passwd", "http://user:pw@example.com/v1",
])
def test_llm_endpoint_url_is_ssrf_checked_on_save(url, alice, client_of):
    response = client_of(alice).post("/chatbots", {"name": "Bot", "llm_endpoint_url": url, "model": "m"},
                                     format="json")
    assert response.status_code == 422, response.content
    body = response.json()
    assert list(body["details"]) == ["llm_endpoint_url"] and body["code"] == "OUTBOUND_URL_REFUSED"
    assert not Chatbot.objects.exists()
    existing = bot(alice)
    patched = client_of(alice).patch(f"/chatbots/{existing.id}", {"llm_endpoint_url": url, "model": "m"},
                                     format="json")
    assert patched.status_code == 422
    assert Chatbot.objects.get(pk=existing.pk).llm_endpoint_url == ""


def test_private_endpoint_allowed_when_operator_says_so(settings, alice, client_of):
    settings.ALLOW_PRIVATE_OUTBOUND = True
    body = {"name": "On-prem", "llm_endpoint_url": "http://127.0.0.1:11434/v1", "model": "llama3"}
    response = client_of(alice).post("/chatbots", body, format="json")
    assert response.status_code == 201 and response.json()["llm_endpoint_url"] == "http://127.0.0.1:11434/v1"
    missing_model = client_of(alice).post("/chatbots", {**body, "model": ""}, format="json")
    assert missing_model.status_code == 422 and "model" in missing_model.json()["details"]


# --- chatbot API keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_seed_002_api_keys_listed_masked(prefix, alice, bob, client_of, admin_client):
    chatbot = bot(alice)
    url = f"{prefix}/chatbots/{chatbot.id}/api-keys"
    created = client_of(alice).post(url, {"name": "website"}, format="json")
    assert created.status_code == 201, created.content
    key = created.json()
    raw = key["api_key"]
    assert raw.startswith(f"cbk_{key['prefix']}_") and len(raw.split("_")[2]) == 40
    assert key["id"].startswith("cbk_") and "shown again" in key["message"]

    listed = client_of(alice).get(url)
    assert listed.status_code == 200 and listed["X-Total-Count"] == "1"
    [item] = listed.json()
    assert item["masked_key"] == f"cbk_{key['prefix']}_********" and item["revoked"] is False
    text = listed.content.decode()
    assert raw not in text and "key_hash" not in text
    assert ChatbotAPIKey.objects.get(pk=key["id"]).key_hash not in text
    assert admin_client.get(url).status_code == 200
    assert client_of(bob).get(url).status_code == 404
    assert client_of(bob).post(url, {}, format="json").status_code == 404


@pytest.mark.urls("support.tests.chatbot_probe_urls")
def test_chatbot_key_authenticates_in_three_spellings_and_revocation(alice, bob, client_of):
    chatbot = bot(alice, system_prompt="Only talk about cats.", model="gpt-4o-mini")
    _key, raw = services.chatbot_api_key_create(chatbot=chatbot)
    for headers in ({"HTTP_AUTHORIZATION": f"Bearer {raw}"}, {"HTTP_AUTHORIZATION": f"ApiKey {raw}"},
                    {"HTTP_X_API_KEY": raw}):
        response = APIClient().get(PROBE, **headers)
        assert response.status_code == 200, response.content
        assert response.json() == {"user_id": alice.id, "auth": "ChatbotAPIKey", "chatbot_id": chatbot.id,
                                   "system": "Only talk about cats.", "model": "gpt-4o-mini"}

    # Another user's JWT is still a JWT; user API keys are unaffected.
    assert client_of(bob).get(PROBE).json()["auth"] == "AccessToken"

    # Revoked (by another user: 404; by the owner: 200) -> 401 at once.
    assert client_of(bob).delete(f"/chatbots/{chatbot.id}/api-keys/{_key.id}").status_code == 404
    revoked = client_of(alice).delete(f"/api/v1/chatbots/{chatbot.id}/api-keys/{_key.id}")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True and revoked.json()["revoked_at"]
    refused = APIClient().get(PROBE, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert refused.status_code == 401 and set(refused.json()) >= ENVELOPE_KEYS
    assert APIClient().get(PROBE, HTTP_X_API_KEY=raw).status_code == 401
    assert client_of(alice).delete(f"/chatbots/{chatbot.id}/api-keys/cbk_nope").status_code == 404

    # Unknown and malformed keys.
    prefix = raw.split("_")[1]
    for bad in (f"cbk_{prefix}_{'x' * 40}", "cbk_nope_nope", "cbk_", "cbk_a_b_c"):
        assert APIClient().get(PROBE, HTTP_AUTHORIZATION=f"Bearer {bad}").status_code == 401, bad


@pytest.mark.urls("support.tests.chatbot_probe_urls")
def test_chatbot_key_is_not_an_account_credential(alice, faqs):
    chatbot = bot(alice)
    _key, raw = services.chatbot_api_key_create(chatbot=chatbot)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    # Only views that opt in accept it: account and management routes refuse it (403).
    for url in ("/api/v1/chatbots", f"/chatbots/{chatbot.id}/api-keys", "/api/v1/users/profile", "/api/v1/logs/logs"):
        response = APIClient().get(url, **headers)
        assert response.status_code == 403, (url, response.content)
    assert APIClient().post("/api/v1/auth/generate-api-key", {}, format="json", **headers).status_code == 403
    # Public FAQ reads opt in (a support widget may show them).
    assert APIClient().get("/api/v1/chat/faqs", **headers).status_code == 200


@pytest.mark.urls("support.tests.chatbot_probe_urls")
def test_last_used_at_is_written_at_most_once_a_minute(alice):
    chatbot = bot(alice)
    key, raw = services.chatbot_api_key_create(chatbot=chatbot)
    assert key.last_used_at is None
    APIClient().get(PROBE, HTTP_X_API_KEY=raw)
    first = ChatbotAPIKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    APIClient().get(PROBE, HTTP_X_API_KEY=raw)
    assert ChatbotAPIKey.objects.get(pk=key.pk).last_used_at == first
    ChatbotAPIKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    APIClient().get(PROBE, HTTP_X_API_KEY=raw)
    assert ChatbotAPIKey.objects.get(pk=key.pk).last_used_at > first


def test_keys_of_inactive_owners_and_deleted_chatbots_stop_working(alice):
    chatbot = bot(alice)
    _key, raw = services.chatbot_api_key_create(chatbot=chatbot)
    assert services.chatbot_api_key_authenticate(raw) is not None
    alice.is_active = False
    alice.save()
    assert services.chatbot_api_key_authenticate(raw) is None
    alice.is_active = True
    alice.save()
    chatbot.delete()
    assert services.chatbot_api_key_authenticate(raw) is None


# --- a chatbot's endpoint, prompt and model on the wire ------------------------------------------------


def test_chat_overrides_route_the_call_to_the_chatbot_endpoint(settings, alice, openai_upstream):
    settings.ALLOW_PRIVATE_OUTBOUND = True  # the fake upstream listens on 127.0.0.1
    openai_upstream.reset()
    openai_upstream.push(Step(text="Meow! Cats are great."))
    chatbot = bot(alice, name="Cat bot", llm_endpoint_url=f"{openai_upstream.url}/v1", model="cat-model-7b",
                  system_prompt="You only talk about cats.")
    _key, raw = services.chatbot_api_key_create(chatbot=chatbot)
    key = services.chatbot_api_key_authenticate(raw)

    profile = key.turn_profile()
    assert profile.label == f"chatbot {chatbot.id}" and profile.model == "cat-model-7b"
    endpoint = profile.endpoint
    assert (endpoint.kind, endpoint.base_url, endpoint.default_model, endpoint.api_key) == (
        "openai", f"{openai_upstream.url}/v1", "cat-model-7b", "")
    assert profile_of("some-other-auth") is None

    call = provider_services.ChatCall(messages=[ChatMessage("user", "Tell me something")], fallback=False,
                                      endpoint=endpoint, system=profile.system_prompt, model=profile.model)
    result = async_to_sync(provider_services.chat_complete)(call)
    assert result.text == "Meow! Cats are great."
    assert result.provider == f"chatbot-{chatbot.id}"
    [wire] = openai_upstream.calls
    assert wire.path.endswith("/v1/chat/completions")
    assert wire.body["model"] == "cat-model-7b"
    assert wire.body["messages"][0] == {"role": "system", "content": "You only talk about cats."}
    assert wire.body["messages"][-1] == {"role": "user", "content": "Tell me something"}

    # The operator turns private targets off: the same URL is refused at call time (502).
    settings.ALLOW_PRIVATE_OUTBOUND = False
    with pytest.raises(OutboundURLRefused) as info:
        key.turn_profile()
    assert info.value.status_code == 502 and "llm_endpoint_url" in info.value.details
    assert len(openai_upstream.calls) == 1


@pytest.mark.urls("support.tests.chatbot_probe_urls")
def test_refused_endpoint_at_call_time_is_a_502_envelope(settings, alice):
    settings.ALLOW_PRIVATE_OUTBOUND = True
    chatbot = bot(alice, llm_endpoint_url="http://127.0.0.1:9/v1", model="m")
    _key, raw = services.chatbot_api_key_create(chatbot=chatbot)
    settings.ALLOW_PRIVATE_OUTBOUND = False
    response = APIClient().get(PROBE, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 502 and response.json()["code"] == "OUTBOUND_URL_REFUSED"


@pytest.mark.django_db(transaction=True)  # async: the database is used from worker threads
async def test_profile_from_async_code(settings, alice):
    from asgiref.sync import sync_to_async

    settings.ALLOW_PRIVATE_OUTBOUND = True
    chatbot = await sync_to_async(bot)(alice, llm_endpoint_url="http://10.1.2.3:8000/v1", model="m")
    _key, raw = await sync_to_async(services.chatbot_api_key_create)(chatbot=chatbot)
    key = await sync_to_async(services.chatbot_api_key_authenticate)(raw)
    profile = await sync_to_async(key.turn_profile)()
    assert profile.endpoint.base_url == "http://10.1.2.3:8000/v1" and profile.system_prompt is None
