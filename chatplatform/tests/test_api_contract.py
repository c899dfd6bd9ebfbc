"""The error envelope, request ids, timing, gzip and CORS, on DRF and plain Django paths."""

from __future__ import annotations

import gzip
import json

import pytest
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import path

from chatplatform.api.exceptions import AppError
from chatplatform.urls import urlpatterns as real_urlpatterns

ENVELOPE_KEYS = {"detail", "message", "error", "code", "status_code", "request_id", "timestamp", "details"}


def _boom(request):
    raise RuntimeError("secret internal detail")


def _big(request):
    return HttpResponse(json.dumps({"data": "x" * 5000}), content_type="application/json")


def _html_404(request):
    return HttpResponse("<h1>nope</h1>", status=404)


urlpatterns = [
    path("api/v1/test/boom", _boom),
    path("api/v1/test/big", _big),
    path("api/v1/test/html404", _html_404),
    *real_urlpatterns,
]


def assert_envelope(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert ENVELOPE_KEYS <= set(body), body
    assert body["status_code"] == status
    assert body["request_id"] == response["X-Request-ID"]
    assert body["detail"] == body["message"]
    if code:
        assert body["code"] == code
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_unknown_api_path_is_json_404_in_debug_and_production(settings, debug):
    settings.DEBUG = debug
    response = Client().get("/api/v1/does-not-exist")
    body = assert_envelope(response, 404, "NOT_FOUND")
    assert body["error"] == "not_found"


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_unhandled_exception_is_json_500_without_internals(settings, debug):
    settings.DEBUG = debug
    with override_settings(ROOT_URLCONF=__name__):
        response = Client(raise_request_exception=False).get("/api/v1/test/boom")
    body = assert_envelope(response, 500, "INTERNAL_ERROR")
    assert "secret internal detail" not in response.content.decode()
    assert body["error"] == "internal_error"


@pytest.mark.django_db
def test_html_error_from_a_plain_view_becomes_envelope():
    with override_settings(ROOT_URLCONF=__name__):
        response = Client().get("/api/v1/test/html404")
    assert_envelope(response, 404)


@pytest.mark.django_db
def test_malformed_json_is_400_not_500():
    response = Client().post("/api/v1/auth/login", data="{not json", content_type="application/json")
    body = assert_envelope(response, 400, "INVALID_REQUEST")
    assert body["error"] == "bad_request"


@pytest.mark.django_db
def test_method_not_allowed_is_405_envelope():
    response = Client().get("/api/v1/auth/login")
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")


@pytest.mark.django_db
def test_validation_error_is_422_with_fields():
    response = Client().post("/api/v1/auth/register", data={"username": "x"}, content_type="application/json")
    body = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert {"email", "password", "username"} <= set(body["details"])


@pytest.mark.django_db
def test_request_id_is_echoed_or_generated():
    echoed = Client().get("/health", HTTP_X_REQUEST_ID="my-trace-123")
    assert echoed["X-Request-ID"] == "my-trace-123"
    generated = Client().get("/health")
    assert generated["X-Request-ID"].startswith("req_")
    # Header injection / junk is replaced, not echoed.
    junk = Client().get("/health", HTTP_X_REQUEST_ID="bad id with spaces\r\nx")
    assert junk["X-Request-ID"].startswith("req_")
    assert float(echoed["X-Process-Time"]) >= 0


@pytest.mark.django_db
def test_large_bodies_are_gzipped_when_accepted():
    with override_settings(ROOT_URLCONF=__name__):
        plain = Client().get("/api/v1/test/big")
        zipped = Client().get("/api/v1/test/big", HTTP_ACCEPT_ENCODING="gzip")
    assert "Content-Encoding" not in plain
    assert zipped["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(zipped.content))["data"] == "x" * 5000


@pytest.mark.django_db
def test_cors_allows_configured_origin_only(settings):
    allowed = Client().get("/health", HTTP_ORIGIN="http://localhost:3000")
    assert allowed["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "X-Request-ID" in allowed["Access-Control-Expose-Headers"]
    denied = Client().get("/health", HTTP_ORIGIN="http://evil.example")
    assert "Access-Control-Allow-Origin" not in denied


def test_app_error_renders_with_custom_code_and_headers(rf):
    from chatplatform.api.exceptions import exception_handler

    response = exception_handler(
        AppError("slow down", status_code=429, code="RATE_LIMITED", headers={"Retry-After": "7"}), {}
    )
    assert response.status_code == 429
    assert response["Retry-After"] == "7"
    assert response.data["code"] == "RATE_LIMITED"
    assert response.data["error"] == "rate_limit_exceeded"


def test_non_api_paths_keep_html(settings):
    # The Django admin serves HTML on purpose; its login page must not be turned into JSON.
    response = Client().get("/admin/login/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/chat/faqs?skip=10000000000000000000000",
                                  "/api/v1/chats?offset=10000000000000000000000",
                                  "/api/v1/chat/conversations?skip=10000000000000000000000",
                                  "/api/v1/logs/logs?skip=10000000000000000000000",
                                  "/api/v1/chatbots?skip=10000000000000000000000"])
def test_huge_offsets_are_422_not_500(auth_client, path):
    # Found by schemathesis: an unbounded integer offset overflowed the database driver.
    response = auth_client.get(path)
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "VALIDATION_ERROR"
