"""The Django admin goes through the services: FAQ embeddings are computed (by the task enqueued on
commit), chatbot endpoints are SSRF-checked, log status changes keep resolved_at right."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.test import Client

from support import services
from support.models import FAQ, Chatbot, CustomerLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_site(make_user) -> Client:
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_faq_admin_add_and_change_embed(admin_site, minilm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_site.post("/admin/support/faq/add/", {
            "question": "Can I export my data?", "answer": "Yes, from Settings > Export.", "category": "account",
            "published": "on", "order": "5"})
    assert response.status_code == 302, response.content[:2000]
    faq = FAQ.objects.get()
    assert len(faq.embedding) == 384 and faq.category == "account"
    before = list(faq.embedding)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_site.post(f"/admin/support/faq/{quote(faq.pk)}/change/", {
            "question": "How do I download all my conversations?", "answer": "Settings > Export.",
            "category": "account", "published": "on", "order": "5"})
    assert response.status_code == 302
    faq.refresh_from_db()
    assert faq.question.startswith("How do I download") and faq.embedding != before
    assert admin_site.get("/admin/support/faq/").status_code == 200


def test_chatbot_admin_refuses_private_endpoints(admin_site, alice):
    response = admin_site.post("/admin/support/chatbot/add/", {
        "name": "Sneaky", "owner": alice.pk, "llm_endpoint_url": "http://169.254.169.254/latest/", "model": "m",
        "system_prompt": "", "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0"})
    assert response.status_code == 200 and b"link-local" in response.content
    assert not Chatbot.objects.exists()
    response = admin_site.post("/admin/support/chatbot/add/", {
        "name": "Fine", "owner": alice.pk, "llm_endpoint_url": "", "model": "", "system_prompt": "Hi",
        "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0"})
    assert response.status_code == 302, response.content[:3000]
    assert Chatbot.objects.get().owner == alice


def test_customer_log_admin_status_change(admin_site, alice):
    log = services.customer_log_create(user=alice, title="Broken", description="It broke")
    response = admin_site.post(f"/admin/support/customerlog/{quote(log.pk)}/change/", {
        "user": alice.pk, "title": "Broken", "description": "It broke", "log_type": "inquiry",
        "status": "resolved", "priority": "medium", "category": "general"})
    assert response.status_code == 302, response.content[:3000]
    log = CustomerLog.objects.get(pk=log.pk)
    assert log.status == "resolved" and log.resolved_at is not None and log.updated_at is not None
