"""Seed 003's customer log routes, written from its examples: create, list with every filter and
pagination, update rules, summary breakdowns, admin-only trending, owner scoping, and the support
chat's escalation service."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from support import services
from support.models import CustomerLog

LOGS = "/api/v1/logs/logs"
SUMMARY = f"{LOGS}/summary"
TRENDING = f"{LOGS}/trending"

pytestmark = pytest.mark.django_db

SEED_CREATE = {
    "title": "Unable to login to account",
    "description": "I keep getting invalid credentials error",
    "log_type": "support",
    "priority": "medium",
    "category": "account",
}
SEED_FIELDS = {"id", "user_id", "title", "description", "log_type", "status", "priority", "category",
               "created_at", "updated_at", "resolved_at"}


def make_log(user, *, hours_ago: float = 0, **fields) -> CustomerLog:
    values = {"title": "Something is wrong", "description": "", **fields}
    log = services.customer_log_create(user=user, **values)
    if hours_ago:
        CustomerLog.objects.filter(pk=log.pk).update(created_at=timezone.now() - timedelta(hours=hours_ago))
        log.refresh_from_db()
    return log


def test_seed_003_create_example(alice, client_of):
    response = client_of(alice).post(LOGS, SEED_CREATE, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= SEED_FIELDS
    assert body["id"].startswith("log_") and body["user_id"] == alice.id
    assert {k: body[k] for k in SEED_CREATE} == SEED_CREATE
    assert body["status"] == "open"
    assert body["updated_at"] is None and body["resolved_at"] is None
    assert body["created_at"].endswith("Z")


def test_seed_003_sdk_create_log_sends_only_title_description_and_type(alice, client_of):
    # AICustomerServiceClient.create_log(title, description, log_type='inquiry')
    response = client_of(alice).post(LOGS, {"title": "Billing question", "description": "When am I charged?",
                                            "log_type": "inquiry"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["log_type"], body["priority"], body["category"], body["status"]) == (
        "inquiry", "medium", "general", "open")


def test_create_validation_names_the_field(alice, client_of):
    client = client_of(alice)
    for field, value in (("log_type", "rant"), ("priority", "critical"), ("category", "bad/category")):
        response = client.post(LOGS, {**SEED_CREATE, field: value}, format="json")
        assert response.status_code == 422, response.content
        assert field in response.json()["details"]
    response = client.post(LOGS, {"description": "no title"}, format="json")
    assert response.status_code == 422 and "title" in response.json()["details"]
    # Unauthenticated: seed 003 says Authorization is required.
    assert APIClient().post(LOGS, SEED_CREATE, format="json").status_code == 401


def test_list_filters_from_the_seed_query_string(alice, client_of):
    open_account = make_log(alice, title="Login fails", category="account", priority="high")
    billing = make_log(alice, title="Invoice wrong", category="billing", priority="low")
    urgent = make_log(alice, title="Site down", category="technical", priority="urgent")
    services.customer_log_update(log=urgent, actor=alice, status="closed")
    old = make_log(alice, title="Old issue", hours_ago=30)
    client = client_of(alice)

    def ids(**params) -> list[str]:
        response = client.get(LOGS, params)
        assert response.status_code == 200, response.content
        assert response["X-Total-Count"] == str(len(response.json()))
        return [log["id"] for log in response.json()]

    assert ids() == [urgent.id, billing.id, open_account.id]  # newest first; default 24 h window
    assert ids(status="open") == [billing.id, open_account.id]
    assert ids(status="closed") == [urgent.id]
    assert ids(category="billing") == [billing.id]
    assert ids(category="BILLING") == [billing.id]
    assert ids(priority="high") == [open_account.id]
    assert ids(status="open", category="account", priority="high") == [open_account.id]
    assert ids(hours=48) == [urgent.id, billing.id, open_account.id, old.id]
    assert ids(hours=1, category="account") == [open_account.id]
    assert ids(status="") == ids()  # an empty filter is no filter


@pytest.mark.parametrize(("param", "value"), [
    ("status", "pending"), ("priority", "critical"), ("hours", "abc"), ("hours", "0"), ("skip", "-1"),
    ("limit", "0"), ("limit", "1001"),
])
def test_invalid_query_values_are_422_naming_the_field(alice, client_of, param, value):
    response = client_of(alice).get(LOGS, {param: value})
    assert response.status_code == 422, response.content
    body = response.json()
    assert param in body["details"] and body["code"] == "VALIDATION_ERROR"
    assert param in body["detail"]


def test_pagination_skip_limit_and_total(alice, client_of):
    logs = [make_log(alice, title=f"Issue {i}") for i in range(5)]
    newest_first = [log.id for log in reversed(logs)]
    response = client_of(alice).get(LOGS, {"skip": 1, "limit": 2})
    assert [log["id"] for log in response.json()] == newest_first[1:3]
    assert response["X-Total-Count"] == "5"
    assert client_of(alice).get(LOGS, {"limit": 1000}).status_code == 200


def test_users_see_their_own_logs_staff_see_all(alice, bob, staff, client_of, admin_client):
    mine = make_log(alice, title="Alice's")
    theirs = make_log(bob, title="Bob's")
    assert [log["id"] for log in client_of(alice).get(LOGS).json()] == [mine.id]
    assert [log["id"] for log in client_of(bob).get(LOGS).json()] == [theirs.id]
    assert {log["id"] for log in client_of(staff).get(LOGS).json()} == {mine.id, theirs.id}
    assert {log["id"] for log in admin_client.get(LOGS).json()} == {mine.id, theirs.id}
    # Someone else's log is a 404, for reading and for updating.
    assert client_of(alice).get(f"{LOGS}/{theirs.id}").status_code == 404
    response = client_of(alice).put(f"{LOGS}/{theirs.id}", {"title": "mine now"}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
    assert CustomerLog.objects.get(pk=theirs.pk).title == "Bob's"
    # The admin secret has no user row to own a log.
    assert admin_client.post(LOGS, SEED_CREATE, format="json").status_code == 403


def test_seed_003_update_example_and_the_status_rules(alice, staff, client_of):
    log = make_log(alice, **SEED_CREATE)
    url = f"{LOGS}/{log.id}"
    owner, agent = client_of(alice), client_of(staff)

    # The owner edits the text, category and priority; updated_at appears.
    response = owner.put(url, {"description": "Updated description", "priority": "high", "category": "Technical"},
                         format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["description"], body["priority"], body["category"]) == ("Updated description", "high", "technical")
    assert body["updated_at"] is not None and body["status"] == "open"

    # Seed 003's example body, sent by the log's owner: {"status": "resolved", "description": ...}.
    seed_body = {"status": "resolved", "description": "Updated description with resolution details"}
    response = owner.put(url, seed_body, format="json")
    assert response.status_code == 200, response.content
    resolved = response.json()
    assert resolved["status"] == "resolved" and resolved["resolved_at"] is not None
    assert resolved["description"] == seed_body["description"]
    first_resolved_at = resolved["resolved_at"]
    assert owner.put(url, {"status": "in_progress"}, format="json").status_code == 403  # reopening is staff work
    assert CustomerLog.objects.get(pk=log.pk).status == "resolved"
    again = agent.put(url, {"status": "resolved"}, format="json").json()
    assert again["resolved_at"] == first_resolved_at  # re-sending the same status changes nothing

    reopened = agent.put(url, {"status": "in_progress"}, format="json").json()
    assert reopened["status"] == "in_progress" and reopened["resolved_at"] is None

    closed = owner.put(url, {"status": "closed"}, format="json").json()  # owners may close
    assert closed["status"] == "closed"
    assert owner.put(url, {"status": "open"}, format="json").status_code == 403  # ... not reopen
    assert agent.put(url, {"status": "open"}, format="json").json()["status"] == "open"
    assert owner.patch(url, {"title": "PATCH works too"}, format="json").json()["title"] == "PATCH works too"


def test_update_validation(alice, client_of):
    log = make_log(alice)
    url = f"{LOGS}/{log.id}"
    assert client_of(alice).put(url, {}, format="json").status_code == 422
    response = client_of(alice).put(url, {"status": "done"}, format="json")
    assert response.status_code == 422 and "status" in response.json()["details"]
    assert client_of(alice).get(f"{LOGS}/log_nope").status_code == 404


def test_seed_003_summary_breakdowns(alice, bob, staff, client_of):
    specs = [("technical", "urgent"), ("technical", "high"), ("technical", "medium"), ("billing", "medium"),
             ("billing", "low"), ("account", "medium")]
    logs = [make_log(alice, title=f"Issue {i}", category=c, priority=p) for i, (c, p) in enumerate(specs)]
    services.customer_log_update(log=logs[0], actor=staff, status="in_progress")
    services.customer_log_update(log=logs[1], actor=staff, status="resolved")
    make_log(alice, title="Too old", category="general", hours_ago=100)
    make_log(bob, title="Bob's", category="general", priority="high")

    response = client_of(alice).get(SUMMARY)
    assert response.status_code == 200
    assert response.json() == {
        "timeframe_hours": 24,
        "total_logs": 6,
        "status_breakdown": {"open": 4, "in_progress": 1, "resolved": 1, "closed": 0},
        "category_breakdown": {"technical": 3, "billing": 2, "account": 1},
        "priority_breakdown": {"urgent": 1, "high": 1, "medium": 3, "low": 1},
    }
    assert list(response.json()["category_breakdown"]) == ["technical", "billing", "account"]  # biggest first

    wide = client_of(alice).get(SUMMARY, {"hours": 200}).json()
    assert wide["timeframe_hours"] == 200 and wide["total_logs"] == 7 and wide["category_breakdown"]["general"] == 1
    everyone = client_of(staff).get(SUMMARY).json()
    assert everyone["total_logs"] == 7 and everyone["priority_breakdown"]["high"] == 2
    empty = client_of(make_user_for(alice)).get(SUMMARY).json()
    assert empty["total_logs"] == 0
    assert empty["status_breakdown"] == {"open": 0, "in_progress": 0, "resolved": 0, "closed": 0}
    assert empty["priority_breakdown"] == {"urgent": 0, "high": 0, "medium": 0, "low": 0}
    assert empty["category_breakdown"] == {}
    assert client_of(alice).get(SUMMARY, {"hours": "x"}).status_code == 422
    assert APIClient().get(SUMMARY).status_code == 401


def make_user_for(user):
    from accounts.models import User

    return User.objects.create_user(username=f"{user.username}-friend", email=f"friend-{user.email}",
                                    password="irrelevant-pass-123")


def test_trending_is_admin_only(alice, staff, client_of, admin_client):
    make_log(alice, title="Login broken")
    assert APIClient().get(TRENDING).status_code == 401
    refused = client_of(alice).get(TRENDING)
    assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
    assert client_of(staff).get(TRENDING).status_code == 200
    assert admin_client.get(TRENDING).status_code == 200


def test_trending_terms_come_from_real_titles_and_descriptions(alice, bob, staff, client_of):
    make_log(alice, title="Unable to login", description="Login page says invalid password. Login again fails!")
    make_log(alice, title="Password reset email", description="The password reset email never arrives")
    make_log(bob, title="Can't login after password change", description="I changed my password and now I can't log in")
    make_log(bob, title="Billing: charged twice", description="The billing page shows two charges")
    make_log(bob, title="Refund for the double billing", description="")
    make_log(alice, title="Login loop", description="login login login", hours_ago=48)  # outside 24 h

    response = client_of(staff).get(TRENDING)
    assert response.status_code == 200
    trending = response.json()
    # Most frequent first, ties alphabetical; ten terms by default.
    assert trending[:4] == [{"issue": "password", "count": 3}, {"issue": "billing", "count": 2},
                            {"issue": "login", "count": 2}, {"issue": "page", "count": 2}]
    assert len(trending) == 10 and all(t["count"] == 1 for t in trending[4:])
    counts = {t["issue"]: t["count"] for t in trending}
    # Counted once per log, however often a log repeats it; the 48-hour-old log is outside the window.
    assert counts["login"] == 2 and counts["password"] == 3 and counts["billing"] == 2
    # Stop-words, short words and punctuation are gone.
    for noise in ("the", "to", "and", "can't", "cant", "now", "after", "i", "unable"):
        assert noise not in counts
    assert [t["count"] for t in trending] == sorted((t["count"] for t in trending), reverse=True)

    wide = {t["issue"]: t["count"] for t in client_of(staff).get(TRENDING, {"hours": 72, "limit": 50}).json()}
    assert wide["login"] == 3 and wide["loop"] == 1
    assert len(client_of(staff).get(TRENDING, {"limit": 2}).json()) == 2
    assert client_of(staff).get(TRENDING, {"limit": 0}).status_code == 422


def test_issue_terms_tokenisation():
    from support.selectors import issue_terms

    assert issue_terms("The user's Login page isn't loading; LOGIN fails at 10:30 (error 500)") == {
        "user", "login", "page", "loading", "fails", "error"}


def test_customer_log_open_from_chat_opens_once_per_conversation(alice):
    log = services.customer_log_open_from_chat(user=alice, question="I was charged twice, I want a human",
                                               conversation_id="conv_abc")
    assert (log.log_type, log.status, log.conversation_id, log.user_id) == ("support", "open", "conv_abc", alice.id)
    assert log.title == "I was charged twice, I want a human"
    assert "conv_abc" in log.description
    again = services.customer_log_open_from_chat(user=alice, question="Hello? Anyone there?", conversation_id="conv_abc")
    assert again.id == log.id and "Hello? Anyone there?" in again.description and again.updated_at is not None
    assert CustomerLog.objects.filter(conversation_id="conv_abc").count() == 1
    services.customer_log_update(log=again, actor=alice, status="closed")
    third = services.customer_log_open_from_chat(user=alice, question="x" * 200, conversation_id="conv_abc")
    assert third.id != log.id and len(third.title) <= 80
    assert "ticket " + third.id in services.escalation_notice(third)
    no_conversation = services.customer_log_open_from_chat(user=alice, question="Help", conversation_id=None)
    assert no_conversation.conversation_id == ""


def test_someone_elses_log_is_404_for_every_change(alice, bob, client_of):
    log = make_log(alice)
    url = f"{LOGS}/{log.id}"
    for body in ({"status": "resolved"}, {"status": "closed"}, {"description": "hijack"}):
        response = client_of(bob).put(url, body, format="json")
        assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
    unchanged = CustomerLog.objects.get(pk=log.pk)
    assert unchanged.status == "open" and unchanged.description != "hijack"
