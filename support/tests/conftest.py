"""Fixtures for the support tests: callers (two users, staff, the admin secret) and demo FAQs (the
real MiniLM model, ``minilm``, comes from the root conftest; the fake OpenAI upstream from
providers.tests.fixtures)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

ADMIN_SECRET = "support-admin-secret-0123456789abcdef"

FAQS = [
    ("account", "How do I reset my password?",
     "Click 'Forgot password' on the login page and follow the link we email you."),
    ("account", "How do I change the email address on my account?",
     "Open Settings > Profile, enter the new address and save."),
    ("billing", "Which payment methods do you accept?", "Visa, Mastercard, American Express and PayPal."),
    ("billing", "How do I get a refund?", "Refunds are available within 14 days; open a ticket with the invoice number."),
    ("technical", "How do I create an API key?", "Open Settings > API keys and click 'Generate key'."),
    ("general", "What are your support hours?", "Monday to Friday, 9:00-18:00 CET."),
]


@pytest.fixture(autouse=True)
def _support_settings(settings):
    settings.RATE_LIMIT_ENABLED = False
    settings.ADMIN_SECRET_KEY = ADMIN_SECRET
    settings.ALLOW_PRIVATE_OUTBOUND = False


@pytest.fixture
def client_of(tokens_for):
    """An APIClient authenticated as ``user`` with a JWT."""

    def _client(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(user)['access_token']}")
        client.user = user
        return client

    return _client


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def staff(make_user):
    return make_user("agent", is_staff=True)


@pytest.fixture
def admin_client() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ADMIN_SECRET}")
    return client


@pytest.fixture
def faqs(db, minilm, django_capture_on_commit_callbacks):
    """The FAQ table above, created through the service; the embedding tasks it enqueues on
    commit run (eagerly) before the test starts, so each FAQ has its embedding."""
    from support import services

    with django_capture_on_commit_callbacks(execute=True):
        created = [services.faq_create(category=c, question=q, answer=a, order=i)
                   for i, (c, q, a) in enumerate(FAQS)]
    for faq in created:
        faq.refresh_from_db()
    return created
