"""`manage.py seed_data`: demo users, catalogue, chatbots with keys, FAQs and customer logs;
idempotent (twice = same counts), keys printed once, `--reset` deletes and recreates the demo data."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from accounts.models import User
from providers.models import Model
from support import selectors, services
from support.models import FAQ, Chatbot, ChatbotAPIKey, CustomerLog

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_data", *args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (User, Chatbot, ChatbotAPIKey, FAQ, CustomerLog, Model)}


def test_seed_data_twice_leaves_the_same_counts(minilm, monkeypatch):
    monkeypatch.setenv("SEED_DEMO_PASSWORD", "demo-password-123")
    first_output = run()
    first = counts()
    assert first["User"] == 2 and first["Chatbot"] == 3 and first["ChatbotAPIKey"] == 3
    assert first["FAQ"] >= 8 and first["CustomerLog"] >= 3 and first["Model"] >= 10
    assert {f.category for f in FAQ.objects.all()} >= {"account", "billing", "technical", "general"}
    assert all(len(f.embedding) == 384 for f in FAQ.objects.all())
    demo = User.objects.get(username="demo")
    assert demo.check_password("demo-password-123") and User.objects.get(username="admin").is_staff
    assert set(CustomerLog.objects.values_list("user_id", flat=True)) == {demo.id}

    # Keys are printed once, when created, and they work.
    raw_keys = re.findall(r"cbk_[A-Za-z0-9]+_[A-Za-z0-9]+", first_output)
    assert len(raw_keys) == 3
    assert all(services.chatbot_api_key_authenticate(raw) is not None for raw in raw_keys)
    assert "Done." in first_output and "[1/" in first_output

    second_output = run()
    assert counts() == first
    assert "cbk_" not in second_output and "password:" not in second_output
    assert "exists" in second_output

    # The seeded FAQs ground the support chat.
    [(faq, _score)] = selectors.faqs_relevant_to("I forgot my password", limit=1)
    assert faq.question == "How do I reset my password?"


def test_seed_data_reset_recreates_the_demo_data(minilm):
    run()
    first = counts()
    services.chatbot_create(owner=User.objects.get(username="demo"), name="Extra bot")
    services.faq_create(question="Not a demo FAQ?", answer="Kept.", embedding=[0.0] * 384)
    old_bot_ids = set(Chatbot.objects.values_list("id", flat=True))

    output = run("--reset")
    assert "Reset: deleted" in output and len(re.findall(r"cbk_[A-Za-z0-9]+_[A-Za-z0-9]+", output)) == 3
    after = counts()
    assert after == {**first, "FAQ": first["FAQ"] + 1}  # the non-demo FAQ stays
    assert not old_bot_ids & set(Chatbot.objects.values_list("id", flat=True))
    assert FAQ.objects.filter(question="Not a demo FAQ?").exists()
