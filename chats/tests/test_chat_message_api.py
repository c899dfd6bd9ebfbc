"""POST /chat/message and POST /chat/conversation (seed 000), run against the fake OpenAI upstream.

Written from seed 000's documented request/response and its Python/JavaScript SDK examples,
and seed 003's ``send_message`` client flow.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from chats import services
from chats.models import Conversation, Message
from providers import selectors as provider_selectors
from providers.tests.fakeserver import Step

pytestmark = pytest.mark.django_db

URL = "/api/v1/chat/message"


@pytest.fixture
def no_retries(settings, openai_configured):
    """Provider errors surface at once (no backoff retries against the fake)."""
    settings.PROVIDER_MAX_RETRIES = 0
    provider_selectors.invalidate()
    return openai_configured


def client_for(user, tokens_for) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access_token']}")
    return client


# --- seed 000's documented examples ----------------------------------------------------------------


def test_python_sdk_example_login_then_chat_message(openai_configured, make_user, password):
    """Seed 000's Python SDK: log in, POST /chat/message with conversation_id 'conv_123', read 'response'."""
    make_user("john_doe", password=password)
    openai_configured.push(Step(text="Hello! How can I assist you today?", prompt_tokens=9, completion_tokens=8))
    session = APIClient()
    token = session.post("/api/v1/auth/login", {"username": "john_doe", "password": password},
                         format="json").json()["access_token"]
    response = session.post(URL, {"message": "Hello!", "conversation_id": "conv_123"}, format="json",
                            HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["response"] == "Hello! How can I assist you today?"
    assert body["message"] == body["response"]
    assert body["conversation_id"] == "conv_123"
    assert body["model_used"] == "gpt-4o-mini" and body["provider_used"] == "openai"
    assert body["tokens_used"] == 17 and body["usage"]["total_tokens"] == 17
    assert isinstance(body["processing_time"], float) and body["processing_time"] >= 0
    assert body["timestamp"].endswith("Z") and body["finish_reason"] == "stop" and body["status"] == "complete"
    assistant = Message.objects.get(id=body["message_id"])
    assert assistant.role == "assistant" and assistant.parent_id == body["user_message_id"]
    assert Message.objects.get(id=body["user_message_id"]).content == "Hello!"
    # The JavaScript SDK sends the same body again: the conversation continues, history included.
    openai_configured.push(Step(text="Still here."))
    again = session.post(URL, {"message": "Are you there?", "conversation_id": "conv_123"}, format="json",
                         HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert again["conversation_id"] == "conv_123" and again["response"] == "Still here."
    sent = [(m["role"], m["content"]) for m in openai_configured.calls[-1].body["messages"]]
    assert sent == [("user", "Hello!"), ("assistant", "Hello! How can I assist you today?"),
                    ("user", "Are you there?")]
    assert Conversation.objects.get(id="conv_123").message_count == 4


def test_documented_request_body_with_model_parameters(openai_configured, auth_client, make_user):
    """The documented body (with provider/model pointing at OpenAI here) passes the parameters on;
    ``user_id`` is ignored: the caller is the user."""
    other = make_user("bob")
    openai_configured.push(Step(text="Fine, thanks."))
    response = auth_client.post(URL, {
        "message": "Hello, how are you?", "conversation_id": "conv_12345", "user_id": other.id,
        "provider": "openai", "model": "gpt-4o",
        "model_parameters": {"temperature": 0.7, "max_tokens": 150, "top_p": 0.9},
    }, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["model_used"] == "gpt-4o"
    sent = openai_configured.calls[0].body
    assert sent["model"] == "gpt-4o" and sent["temperature"] == 0.7 and sent["max_tokens"] == 150
    assert sent["top_p"] == 0.9
    assert Conversation.objects.get(id="conv_12345").user == auth_client.user


def test_without_conversation_id_starts_a_new_one(openai_configured, auth_client):
    first = auth_client.post(URL, {"message": "One"}, format="json").json()
    second = auth_client.post(URL, {"message": "Two"}, format="json").json()
    assert first["conversation_id"] != second["conversation_id"]
    assert first["conversation_id"].startswith("conv_")
    assert Conversation.objects.get(id=first["conversation_id"]).title == "One"


def test_api_key_authentication(openai_configured, auth_client):
    raw = auth_client.post("/api/v1/auth/generate-api-key", {"name": "sdk"}, format="json").json()["api_key"]
    for header in ({"HTTP_AUTHORIZATION": f"ApiKey {raw}"}, {"HTTP_X_API_KEY": raw}):
        response = APIClient().post(URL, {"message": "Hi"}, format="json", **header)
        assert response.status_code == 200, response.content


def test_unauthenticated_is_401(openai_configured, api_client):
    response = api_client.post(URL, {"message": "Hi"}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"
    assert not openai_configured.calls and not Message.objects.exists()


# --- validation: nothing saved, nothing called --------------------------------------------------------


@pytest.mark.parametrize("body, field", [
    ({}, "message"),
    ({"message": "   "}, "message"),
    ({"message": "x" * 100_001}, "message"),
    ({"message": "Hi", "model_parameters": {"temperature": 5}}, "model_parameters"),
    ({"message": "Hi", "model_parameters": {"max_tokens": 0}}, "model_parameters"),
    ({"message": "Hi", "conversation_id": "has spaces!"}, "conversation_id"),
    ({"message": "Hi", "model": "no-such-model"}, "model"),
])
def test_invalid_input_is_422_and_saves_nothing(openai_configured, auth_client, body, field):
    response = auth_client.post(URL, body, format="json")
    assert response.status_code == 422, response.content
    assert field in response.json()["details"]
    assert not Conversation.objects.exists() and not openai_configured.calls


def test_unconfigured_provider_is_refused_before_saving(openai_configured, auth_client):
    # Seed 000's own example names Gemini; here only OpenAI is configured.
    response = auth_client.post(URL, {"message": "Hello", "provider": "gemini", "model": "gemini-pro"},
                                format="json")
    assert response.status_code == 400 and response.json()["code"] == "PROVIDER_NOT_CONFIGURED"
    assert not Conversation.objects.exists() and not openai_configured.calls


def test_malformed_json_is_400(openai_configured, auth_client):
    response = auth_client.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "INVALID_REQUEST"


# --- ownership ---------------------------------------------------------------------------------------


def test_another_users_conversation_id_is_404_and_untouched(openai_configured, auth_client, make_user, tokens_for):
    bob = make_user("bob")
    theirs = services.conversation_create(user=bob, conversation_id="conv_bobs")
    response = auth_client.post(URL, {"message": "Let me in", "conversation_id": "conv_bobs"}, format="json")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert not theirs.messages.exists() and not openai_configured.calls
    # Bob himself can use it.
    ok = client_for(bob, tokens_for).post(URL, {"message": "Mine", "conversation_id": "conv_bobs"}, format="json")
    assert ok.status_code == 200


# --- provider failures keep the user's message ---------------------------------------------------------


@pytest.mark.parametrize("step, status, code", [
    (Step("status", status=400), 502, "PROVIDER_ERROR"),
    (Step("disconnect", text="one two three four", after=2), 502, "PROVIDER_ERROR"),
    (Step("status", status=504), 504, "TIMEOUT"),
    (Step("status", status=429, headers={"retry-after": "1"}), 429, "RATE_LIMITED"),
])
def test_provider_failure_is_the_envelope_and_keeps_the_user_message(no_retries, auth_client, step, status, code):
    no_retries.push(step)
    response = auth_client.post(URL, {"message": "Will this work?", "conversation_id": "conv_fail"}, format="json")
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["status_code"] == status and body["detail"]
    assert "sk-should-not-leak" not in response.content.decode()
    if status == 429:
        assert response["Retry-After"] == "1"  # the provider's, passed on
    assert body["details"]["conversation_id"] == "conv_fail"
    user_message = Message.objects.get(id=body["details"]["user_message_id"])
    assert (user_message.role, user_message.content) == ("user", "Will this work?")
    failed = Message.objects.get(id=body["details"]["message_id"])
    assert failed.status == "error" and failed.parent_id == user_message.id
    # The conversation shows the kept message; a retry works and skips the failed reply.
    detail = auth_client.get("/api/v1/chat/conversation/conv_fail").json()
    assert detail["messages"][0]["content"] == "Will this work?"
    no_retries.push(Step(text="Yes, now it does."))
    retry = auth_client.post(URL, {"message": "Again?", "conversation_id": "conv_fail"}, format="json")
    assert retry.status_code == 200 and retry.json()["response"] == "Yes, now it does."
    sent = [(m["role"], m["content"]) for m in no_retries.calls[-1].body["messages"]]
    assert sent == [("user", "Will this work?"), ("user", "Again?")]  # the failed reply is not history


@pytest.mark.parametrize("path, body", [
    ("/api/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}),  # seed 004 (async view)
    ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}),
    ("/v1/responses", {"model": "gpt-4o-mini", "input": "Hi"}),
    ("/v1/messages", {"model": "gpt-4o-mini", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]}),
])
def test_provider_rate_limit_passes_its_retry_after_on_every_route(no_retries, auth_client, path, body):
    no_retries.push(Step("status", status=429, headers={"retry-after": "7"}))
    response = auth_client.post(path, body, format="json")
    assert response.status_code == 429, response.content
    assert response["Retry-After"] == "7"
    if path in ("/v1/chat/completions", "/v1/responses"):  # OpenAI's shape: no request field was at fault
        assert response.json()["error"]["param"] is None, response.json()


# --- Idempotency-Key ---------------------------------------------------------------------------------------


def test_idempotency_key_replays_without_a_second_provider_call(openai_configured, auth_client):
    openai_configured.push(Step(text="First and only answer"), Step(text="A second answer"))
    body = {"message": "Charge me once", "conversation_id": "conv_idem"}
    first = auth_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    second = auth_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json() and second["Idempotent-Replayed"] == "true"
    assert len(openai_configured.calls) == 1
    assert Conversation.objects.get(id="conv_idem").message_count == 2
    # Another key is another request.
    third = auth_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="key-2")
    assert third.json()["response"] == "A second answer" and len(openai_configured.calls) == 2
    # The same key with another body is refused.
    reused = auth_client.post(URL, {"message": "Something else"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert reused.status_code == 422 and reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(openai_configured.calls) == 2


def test_idempotency_key_is_per_user(openai_configured, auth_client, make_user, tokens_for):
    body = {"message": "Same key, other user"}
    auth_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    other = client_for(make_user("bob"), tokens_for).post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert other.status_code == 200 and "Idempotent-Replayed" not in other
    assert len(openai_configured.calls) == 2


def test_failed_request_is_not_stored_under_its_key(no_retries, auth_client):
    no_retries.push(Step("status", status=400), Step(text="Worked on retry"))
    body = {"message": "Retry me", "conversation_id": "conv_retry"}
    assert auth_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 502
    retry = auth_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert retry.status_code == 200 and retry.json()["response"] == "Worked on retry"
    assert len(no_retries.calls) == 2


# --- POST /chat/conversation ------------------------------------------------------------------------------


def test_start_conversation_with_initial_message(openai_configured, auth_client):
    openai_configured.push(Step(text="Hello! How can I help you?"))
    response = auth_client.post("/api/v1/chat/conversation", {
        "title": "My Chat Session", "initial_message": "Hello!", "system_prompt": "Be terse.",
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["title"] == "My Chat Session" and body["conversation_id"] == body["id"]
    assert body["message_count"] == 2 and body["system_prompt"] == "Be terse."
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "Hello!"), ("assistant", "Hello! How can I help you?")]
    assert body["reply"]["response"] == "Hello! How can I help you?"
    assert body["reply"]["conversation_id"] == body["conversation_id"]
    sent = openai_configured.calls[0].body["messages"]
    assert sent[0] == {"role": "system", "content": "Be terse."}


def test_start_conversation_without_initial_message_calls_nothing(openai_configured, auth_client):
    response = auth_client.post("/api/v1/chat/conversation", {"title": "Empty"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["messages"] == [] and body["reply"] is None and body["message_count"] == 0
    assert not openai_configured.calls


def test_start_conversation_provider_failure_names_the_conversation(no_retries, auth_client):
    no_retries.push(Step("status", status=400))
    response = auth_client.post("/api/v1/chat/conversation", {"title": "T", "initial_message": "Hi"}, format="json")
    assert response.status_code == 502
    conversation_id = response.json()["details"]["conversation_id"]
    kept = auth_client.get(f"/api/v1/chat/conversation/{conversation_id}").json()
    assert kept["title"] == "T" and kept["messages"][0]["content"] == "Hi"


# --- seed 003's client ----------------------------------------------------------------------------------


class AICustomerServiceClient:
    """Seed 003's Python SDK example, on the test client."""

    def __init__(self, client: APIClient) -> None:
        self.client = client

    def send_message(self, message, conversation_id=None):
        data = {"message": message}
        if conversation_id:
            data["conversation_id"] = conversation_id
        return self.client.post("/api/v1/chat/chat", data, format="json").json()


def test_seed_003_send_message_flow_then_conversation_routes(openai_configured, auth_client):
    """Seed 003's send_message (a new conversation, then continuing it), then its conversation reads."""
    from support.services import faq_create

    faq_create(question="How do I reset my password?", category="account",
               answer="Click 'Forgot Password' on the login page and follow the emailed link.")
    openai_configured.push(Step(text="To reset your password, please follow these steps...",
                                prompt_tokens=20, completion_tokens=25), Step(text="You're welcome."))
    sdk = AICustomerServiceClient(auth_client)
    response = sdk.send_message("How can I reset my password?")
    assert response["response"] == "To reset your password, please follow these steps..."
    assert response["tokens_used"] == 45
    assert isinstance(response["response_time"], int) and response["response_time"] >= 0
    conversation_id = response["conversation_id"]
    again = sdk.send_message("Thanks!", conversation_id)
    assert again["conversation_id"] == conversation_id and again["response"] == "You're welcome."
    listed = auth_client.get("/api/v1/chat/conversations").json()
    assert [c["id"] for c in listed] == [conversation_id]
    detail = auth_client.get(f"/api/v1/chat/conversations/{conversation_id}").json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant", "user", "assistant"]
    assert detail["messages"][1]["tokens_used"] == 45


def test_seed_003_integer_conversation_id_and_errors(no_retries, auth_client, make_user, tokens_for):
    no_retries.push(Step(text="First"))
    first = auth_client.post("/api/v1/chat/chat", {"message": "Hi", "conversation_id": 123}, format="json")
    assert first.status_code == 200 and first.json()["conversation_id"] == "123"
    other = client_for(make_user("bob"), tokens_for).post("/api/v1/chat/chat", {"message": "Hi", "conversation_id": 123},
                                                          format="json")
    assert other.status_code == 404
    no_retries.push(Step("status", status=400))
    failed = auth_client.post("/api/v1/chat/chat", {"message": "Again", "conversation_id": 123}, format="json")
    assert failed.status_code == 502 and failed.json()["detail"]
    assert Message.objects.filter(conversation_id="123", role="user").count() == 2


def test_seed_003_reads_after_chatting(openai_configured, auth_client):
    """Seed 003's GET /chat/conversations and /chat/conversations/{id} shapes, after a chat turn."""
    openai_configured.push(Step(text="To reset your password, please follow these steps...",
                                prompt_tokens=20, completion_tokens=25))
    conversation_id = auth_client.post(URL, {"message": "How can I reset my password?"},
                                       format="json").json()["conversation_id"]
    listed = auth_client.get("/api/v1/chat/conversations")
    assert listed.status_code == 200 and listed["X-Total-Count"] == "1"
    [item] = listed.json()
    for key in ("id", "user_id", "title", "is_active", "created_at", "updated_at", "messages"):
        assert key in item
    assert item["id"] == conversation_id and item["user_id"] == auth_client.user.id
    assert item["is_active"] is True and item["messages"] == []
    assert item["conversation_id"] == conversation_id and item["message_count"] == 2
    detail = auth_client.get(f"/api/v1/chat/conversations/{conversation_id}").json()
    user_msg, reply = detail["messages"]
    assert (user_msg["role"], user_msg["content"], user_msg["tokens_used"], user_msg["response_time"]) == (
        "user", "How can I reset my password?", 0, 0)
    assert reply["conversation_id"] == conversation_id and reply["role"] == "assistant"
    assert reply["tokens_used"] == 45 and isinstance(reply["response_time"], int) and reply["response_time"] >= 0
    assert reply["timestamp"] and reply["id"] == reply["message_id"]
