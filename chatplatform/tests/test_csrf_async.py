"""The Django admin's CSRF protection on the async (ASGI) request path, where the CSRF
middleware's cookie hooks run inline instead of in a thread: the login page still sets the cookie,
and a POST needs the token that goes with it (the admin's own views are CSRF-protected as well, so
this pins the whole path, not the middleware alone)."""

import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


def _staff():
    return get_user_model().objects.create_user(username="admin", email="admin@example.com", password="Sturdy-pass-1",
                                                is_staff=True, is_superuser=True)


@pytest.mark.asyncio
async def test_admin_login_needs_the_csrf_token_on_the_async_path():
    await sync_to_async(_staff)()
    client = AsyncClient(enforce_csrf_checks=True)
    page = await client.get("/admin/login/")
    assert page.status_code == 200
    assert "csrftoken" in page.cookies  # set by the response hook
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()

    refused = await client.post("/admin/login/", {"username": "admin", "password": "Sturdy-pass-1"})
    assert refused.status_code == 403

    other = AsyncClient(enforce_csrf_checks=True)  # a token from one browser is no good in another
    forged = await other.post("/admin/login/", {"username": "admin", "password": "Sturdy-pass-1",
                                                "csrfmiddlewaretoken": token})
    assert forged.status_code == 403

    accepted = await client.post("/admin/login/", {"username": "admin", "password": "Sturdy-pass-1",
                                                   "csrfmiddlewaretoken": token, "next": "/admin/"})
    assert accepted.status_code == 302 and accepted["Location"] == "/admin/"
