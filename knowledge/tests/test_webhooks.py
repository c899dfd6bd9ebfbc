"""Signed webhooks: a real HTTP receiver on 127.0.0.1 gets the deliveries; the outbound guard,
retries, redirects, auto-disable and owner scoping are checked through the API and the services."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rest_framework.test import APIClient

from chats import services as chat_services
from knowledge import webhooks
from knowledge.webhook_models import Webhook, WebhookDelivery


class Receiver:
    """A small HTTP server thread: records each request, answers from a script of statuses
    (the last one repeats)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[int] = [200]
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                code = receiver.script.pop(0) if len(receiver.script) > 1 else receiver.script[0]
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def private_ok(settings):
    settings.ALLOW_PRIVATE_OUTBOUND = True  # the receiver is on 127.0.0.1


def _create(client: APIClient, url: str, events=("chat.created", "chat.deleted", "message.created")) -> dict:
    response = client.post("/api/v1/webhooks", {"url": url, "events": list(events)}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def _verified(request: dict, secret: str) -> dict:
    """Check the signature as a receiver would (README's recipe); return the parsed payload."""
    timestamp = request["headers"]["X-Webhook-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + request["body"],
                                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request["headers"]["X-Webhook-Signature"], expected)
    return json.loads(request["body"])


def test_secret_is_shown_once_and_stored_encrypted(auth_client, receiver, private_ok):
    created = _create(auth_client, receiver.url)
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert created["active"] is True and created["events"] == ["chat.created", "chat.deleted", "message.created"]
    row = Webhook.objects.get(id=created["id"])
    assert created["secret"] not in row.secret_encrypted and row.secret == created["secret"]
    listed = auth_client.get("/api/v1/webhooks")
    assert listed.status_code == 200 and listed["X-Total-Count"] == "1"
    assert [w["id"] for w in listed.json()] == [created["id"]] and "secret" not in listed.json()[0]
    detail = auth_client.get(f"/api/v1/webhooks/{created['id']}").json()
    assert "secret" not in detail and detail["url"] == receiver.url


def test_unknown_events_and_fields_are_refused_by_name(auth_client, private_ok):
    response = auth_client.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/x",
                                                     "events": ["chat.created", "chat.exploded"]}, format="json")
    assert response.status_code == 422
    assert "chat.exploded" in str(response.json()["details"]["events"])
    response = auth_client.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["chat.created"],
                                                     "retries": 3}, format="json")
    assert response.status_code == 422 and "retries" in response.json()["details"]
    assert auth_client.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/x", "events": []},
                            format="json").status_code == 422
    assert not Webhook.objects.exists()


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/hook",
                                 "http://localhost:8000/hook", "http://127.0.0.1/hook", "ftp://example.com/x"])
def test_private_and_metadata_addresses_are_refused_at_save(auth_client, settings, url):
    settings.ALLOW_PRIVATE_OUTBOUND = False
    response = auth_client.post("/api/v1/webhooks", {"url": url, "events": ["chat.created"]}, format="json")
    assert response.status_code == 422, response.json()
    assert response.json()["code"] == "OUTBOUND_URL_REFUSED" and "url" in response.json()["details"]
    assert not Webhook.objects.exists()


def test_allow_private_outbound_opts_in(auth_client, settings):
    settings.ALLOW_PRIVATE_OUTBOUND = True
    assert auth_client.post("/api/v1/webhooks", {"url": "http://10.1.2.3/hook", "events": ["chat.created"]},
                            format="json").status_code == 201


def test_another_users_webhook_is_a_404(auth_client, make_user, tokens_for, receiver, private_ok):
    created = _create(auth_client, receiver.url)
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(make_user('bob'))['access_token']}")
    assert bob.get(f"/api/v1/webhooks/{created['id']}").status_code == 404
    assert bob.get(f"/api/v1/webhooks/{created['id']}/deliveries").status_code == 404
    assert bob.delete(f"/api/v1/webhooks/{created['id']}").status_code == 404
    assert bob.get("/api/v1/webhooks").json() == []
    assert Webhook.objects.filter(id=created["id"]).exists()
    assert auth_client.delete(f"/api/v1/webhooks/{created['id']}").status_code == 204
    assert auth_client.get(f"/api/v1/webhooks/{created['id']}").status_code == 404
    assert APIClient().get("/api/v1/webhooks").status_code == 401


def test_chat_and_message_events_arrive_signed(auth_client, receiver, private_ok, make_user,
                                               django_capture_on_commit_callbacks):
    created = _create(auth_client, receiver.url)
    other = make_user("carol")
    with django_capture_on_commit_callbacks(execute=True):
        chat = auth_client.post("/api/v1/chats", {"title": "Plans"}, format="json").json()
        chat_services.conversation_create(user=other, title="not alice's")  # carol has no webhook
    assert len(receiver.requests) == 1
    first = receiver.requests[0]
    payload = _verified(first, created["secret"])
    assert payload["event"] == "chat.created" and payload["data"]["id"] == chat["id"]
    assert payload["timestamp"].endswith("Z") and payload["data"]["title"] == "Plans"
    assert first["headers"]["X-Webhook-Event"] == "chat.created"
    assert first["headers"]["X-Webhook-Id"] == created["id"]
    assert first["headers"]["Content-Type"] == "application/json"

    from chats.models import Conversation
    conversation = Conversation.objects.get(id=chat["id"])
    with django_capture_on_commit_callbacks(execute=True):
        message = chat_services.message_add_user(conversation=conversation, content="Hello!")
    payload = _verified(receiver.requests[1], created["secret"])
    assert payload["event"] == "message.created"
    assert payload["data"]["id"] == message.id and payload["data"]["chat_id"] == chat["id"]
    assert payload["data"]["content"] == "Hello!" and payload["data"]["role"] == "user"

    with django_capture_on_commit_callbacks(execute=True):
        chat_services.message_save_assistant(conversation=conversation, message_id="msg_snap1", parent=message,
                                             content="Hi", final=False)
    assert len(receiver.requests) == 2  # a mid-stream snapshot is not an event
    with django_capture_on_commit_callbacks(execute=True):
        chat_services.message_save_assistant(conversation=conversation, message_id="msg_snap1", parent=message,
                                             content="Hi there", model="m1")
    payload = _verified(receiver.requests[2], created["secret"])
    assert payload["data"]["role"] == "assistant" and payload["data"]["content"] == "Hi there"

    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.delete(f"/api/v1/chats/{chat['id']}").status_code == 204
    payload = _verified(receiver.requests[3], created["secret"])
    assert payload == {"event": "chat.deleted", "timestamp": payload["timestamp"], "data": {"id": chat["id"]}}

    log = auth_client.get(f"/api/v1/webhooks/{created['id']}/deliveries?limit=2")
    assert log.status_code == 200 and log["X-Total-Count"] == "4" and len(log.json()) == 2
    assert log.json()[0]["event"] == "chat.deleted" and log.json()[0]["status"] == "success"
    assert log.json()[0]["response_status"] == 200 and log.json()[0]["attempts"] == 1
    assert auth_client.get(f"/api/v1/webhooks/{created['id']}/deliveries?limit=0").status_code == 422


def test_only_subscribed_events_and_nothing_on_rollback(auth_client, user, receiver, private_ok,
                                                        django_capture_on_commit_callbacks):
    from django.db import transaction

    _create(auth_client, receiver.url, events=["chat.deleted"])
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.emit(user, "chat.created", {"id": "x"}) == 0
        with pytest.raises(RuntimeError), transaction.atomic():
            assert webhooks.emit(user, "chat.deleted", {"id": "y"}) == 1
            raise RuntimeError("rolled back")
    assert receiver.requests == [] and not WebhookDelivery.objects.exists()
    with pytest.raises(ValueError):
        webhooks.emit(user, "chat.exploded", {})


def test_a_500_is_retried_then_delivered(auth_client, user, receiver, private_ok,
                                         django_capture_on_commit_callbacks):
    created = _create(auth_client, receiver.url)
    receiver.script = [500, 200]
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.emit(user, "chat.created", {"id": "c1"})
    assert len(receiver.requests) == 2
    for request in receiver.requests:
        assert _verified(request, created["secret"])["data"] == {"id": "c1"}
    assert receiver.requests[0]["headers"]["X-Webhook-Delivery"] == receiver.requests[1]["headers"]["X-Webhook-Delivery"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("success", 2, 200)
    assert Webhook.objects.get(id=created["id"]).failure_count == 0


def test_redirects_are_not_followed(auth_client, user, receiver, private_ok, settings,
                                    django_capture_on_commit_callbacks):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    _create(auth_client, receiver.url)
    receiver.script = [302]
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.emit(user, "chat.created", {"id": "c1"})
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_status) == ("failed", 302)
    assert "redirect" in delivery.error


def test_repeated_failures_disable_the_webhook(auth_client, user, receiver, private_ok, settings,
                                               django_capture_on_commit_callbacks):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOK_MAX_ATTEMPTS = 5
    created = _create(auth_client, receiver.url)
    receiver.script = [500]
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.emit(user, "chat.created", {"id": "c1"})
    assert len(receiver.requests) == 3
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.error) == ("failed", 3, "HTTP 500")
    shown = auth_client.get(f"/api/v1/webhooks/{created['id']}").json()
    assert shown["active"] is False and shown["failure_count"] == 3 and "3 consecutive" in shown["disabled_reason"]
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.emit(user, "chat.created", {"id": "c2"}) == 0
    assert len(receiver.requests) == 3


def test_the_guard_is_applied_again_at_connect_time(auth_client, user, receiver, settings,
                                                    django_capture_on_commit_callbacks):
    settings.ALLOW_PRIVATE_OUTBOUND = True
    _create(auth_client, receiver.url)
    settings.ALLOW_PRIVATE_OUTBOUND = False
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.emit(user, "chat.created", {"id": "c1"})
    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1 and delivery.error.startswith("refused:")


def test_backoff_is_exponential_and_capped(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    settings.WEBHOOK_RETRY_MAX_SECONDS = 600
    assert [webhooks.retry_countdown(n) for n in range(1, 7)] == [30, 60, 120, 240, 480, 600]


def test_memory_created_arrives_signed(auth_client, receiver, private_ok, django_capture_on_commit_callbacks):
    created = _create(auth_client, receiver.url, events=("memory.created",))
    with django_capture_on_commit_callbacks(execute=True):
        memory = auth_client.post("/api/v1/memories", {"content": "I live in Lisbon.", "memory_type": "fact"},
                                  format="json")
    assert memory.status_code == 201, memory.json()
    payload = _verified(receiver.requests[0], created["secret"])
    assert payload["event"] == "memory.created"
    assert payload["data"]["id"] == memory.json()["id"] and payload["data"]["content"] == "I live in Lisbon."
    assert payload["data"]["memory_type"] == "fact"


def test_an_undecryptable_secret_is_never_used_to_sign(auth_client, receiver, private_ok,
                                                       django_capture_on_commit_callbacks):
    created = _create(auth_client, receiver.url)
    Webhook.objects.filter(id=created["id"]).update(secret_encrypted="gAAAA-not-a-token-of-this-key")
    with django_capture_on_commit_callbacks(execute=True):
        auth_client.post("/api/v1/chats", {"title": "Plans"}, format="json")
    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get(webhook_id=created["id"])
    assert delivery.status == WebhookDelivery.Status.FAILED and "cannot be decrypted" in delivery.error


def test_document_uploaded_arrives_signed(auth_client, receiver, private_ok, django_capture_on_commit_callbacks):
    created = _create(auth_client, receiver.url, events=("document.uploaded",))
    with django_capture_on_commit_callbacks(execute=True):
        document = auth_client.post("/api/v1/documents", {"title": "Volcanoes", "content": "Lava is molten rock.",
                                                           "mime_type": "text/plain"}, format="json")
    assert document.status_code == 202, document.content
    payload = next(_verified(r, created["secret"]) for r in receiver.requests)
    assert payload["event"] == "document.uploaded"
    assert payload["data"]["id"] == document.json()["id"] and payload["data"]["title"] == "Volcanoes"
    assert payload["data"]["mime_type"] == "text/plain"


def test_subscriptions_are_remembered_and_a_new_webhook_is_seen_at_once(auth_client, user, receiver, private_ok,
                                                                         django_assert_num_queries):
    assert webhooks.emit(user, "chat.created", {"id": "c0"}) == 0  # looked up: none
    with django_assert_num_queries(0):  # a message without webhooks costs no query
        assert webhooks.emit(user, "chat.created", {"id": "c1"}) == 0

    _create(auth_client, receiver.url)

    assert webhooks.emit(user, "chat.created", {"id": "c2"}) == 1
    Webhook.objects.get().delete()
    assert webhooks.emit(user, "chat.created", {"id": "c3"}) == 0
