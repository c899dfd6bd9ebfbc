"""Seed 003's support chat: answers grounded in the most relevant FAQs (MiniLM), and a customer
log opened when the user asks for a person or a question cannot be grounded."""

from __future__ import annotations

import pytest

from providers.tests.fakeserver import Step
from support.models import CustomerLog
from support.services import faq_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def faqs(db):
    return [
        faq_create(question="How do I reset my password?", category="account",
                   answer="Click 'Forgot Password' on the login page and follow the emailed link."),
        faq_create(question="How can I update my billing information?", category="billing",
                   answer="Go to Settings > Billing and edit your payment method."),
    ]


def system_prompt_sent(upstream) -> str:
    return upstream.calls[-1].body["messages"][0]["content"]


def test_reply_is_grounded_in_the_relevant_faq(openai_configured, auth_client, faqs):
    openai_configured.push(Step(text="Use 'Forgot Password' on the login page."))
    response = auth_client.post("/api/v1/chat/chat", {"message": "I forgot my password, how can I change it?"},
                                format="json")
    body = response.json()
    assert response.status_code == 200
    assert body["response"] == "Use 'Forgot Password' on the login page."
    assert body["grounded"] is True and body["escalated"] is False and body["customer_log_id"] is None
    assert body["faqs"][0]["id"] == faqs[0].id and body["faqs"][0]["score"] > 0.4
    prompt = system_prompt_sent(openai_configured)
    assert "Click 'Forgot Password' on the login page" in prompt
    assert "Settings > Billing" not in prompt  # only the relevant entry
    assert not CustomerLog.objects.exists()


def test_asking_for_a_human_opens_a_customer_log_and_says_so(openai_configured, auth_client, faqs):
    openai_configured.push(Step(text="I understand."))
    response = auth_client.post("/api/v1/chat/chat", {"message": "I want to talk to a human agent please"},
                                format="json")
    body = response.json()
    assert body["escalated"] is True
    log = CustomerLog.objects.get(id=body["customer_log_id"])
    assert log.user == auth_client.user and log.status == "open" and log.log_type == "support"
    assert log.id in body["response"] and body["response"].startswith("I understand.")
    # The user sees it among their logs.
    listed = auth_client.get("/api/v1/logs/logs").json()
    assert [entry["id"] for entry in listed] == [log.id]


def test_ungrounded_question_escalates_but_small_talk_does_not(openai_configured, auth_client, faqs):
    openai_configured.push(Step(text="I am not sure."), Step(text="You're welcome!"))
    first = auth_client.post("/api/v1/chat/chat", {"message": "Why does the export to my tax software fail?"},
                             format="json").json()
    assert first["grounded"] is False and first["escalated"] is True
    assert "No FAQ entry matches this question." in system_prompt_sent(openai_configured)
    second = auth_client.post("/api/v1/chat/chat", {"message": "Thanks!", "conversation_id": first["conversation_id"]},
                              format="json").json()
    assert second["escalated"] is False and second["response"] == "You're welcome!"
    assert CustomerLog.objects.count() == 1
