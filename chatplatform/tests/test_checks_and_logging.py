"""System checks for unsafe production settings; secret redaction in logs; client IPs."""

from __future__ import annotations

import logging

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from chatplatform.api.checks import check_production_settings
from chatplatform.api.logging import RedactSecretsFilter, redact
from chatplatform.api.net import client_ip_from


def _ids(settings_obj) -> set[str]:
    return {m.id for m in check_production_settings()}


def test_dev_secret_key_is_an_error_without_debug(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = settings.DEV_SECRET_KEY
    assert "chatplatform.E001" in _ids(settings)
    settings.DEBUG = True
    assert "chatplatform.E001" not in _ids(settings)


def test_missing_redis_is_warning_for_one_worker_error_for_many(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = "x" * 60
    settings.REDIS_URL = ""
    settings.WEB_CONCURRENCY = 1
    assert _ids(settings) == {"chatplatform.W001"}
    settings.WEB_CONCURRENCY = 4
    assert _ids(settings) == {"chatplatform.E002"}
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    assert _ids(settings) == set()


def test_check_command_fails_on_dev_key_in_production(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = settings.DEV_SECRET_KEY
    with pytest.raises(SystemCheckError):
        call_command("check")


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijk",
        "key=cpk_AbCdEf1234_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        "openai sk-proj-abcdefghijklmnop1234",
        '{"password": "hunter2hunter2"}',
        "X-API-Key sent: ApiKey cpk_AbCdEf1234_secretsecretsecret",
    ],
)
def test_secrets_are_redacted(text):
    cleaned = redact(text)
    for secret in ("eyJzdWIiOiIxIn0", "zzzzzzzz", "abcdefghijklmnop1234", "hunter2", "secretsecret"):
        assert secret not in cleaned


def test_redact_filter_rewrites_log_records():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", ("Bearer abcdefghijklmnop",), None)
    assert RedactSecretsFilter().filter(record)
    assert "abcdefghijklmnop" not in record.getMessage()


def test_forwarded_for_ignored_without_trusted_proxies(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip_from("10.0.0.5", "1.2.3.4") == "10.0.0.5"


def test_forwarded_for_used_from_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    # Rightmost untrusted hop wins: a client cannot prepend a fake address.
    assert client_ip_from("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.9") == "1.2.3.4"
    # A peer outside the trusted range cannot set the header at all.
    assert client_ip_from("8.8.8.8", "1.2.3.4") == "8.8.8.8"


def test_json_log_lines_carry_request_id_and_redact(capsys):
    import json
    import logging.config

    from django.conf import settings

    from chatplatform.api.context import reset_request_id, set_request_id

    config = {**settings.LOGGING, "root": {"handlers": ["console"], "level": "INFO"}}
    config["handlers"] = {**config["handlers"], "console": {**config["handlers"]["console"], "formatter": "json",
                                                            "stream": "ext://sys.stdout"}}
    logging.config.dictConfig(config)
    try:
        token = set_request_id("req_test123")
        logging.getLogger("chatplatform.test").info("login with Bearer abcdefghijklmnopqrstu")
        reset_request_id(token)
        line = capsys.readouterr().out.strip().splitlines()[-1]
        record = json.loads(line)
        assert record["request_id"] == "req_test123"
        assert record["level"] == "INFO" and record["logger"] == "chatplatform.test"
        assert "abcdefghijklmnopqrstu" not in record["message"]
    finally:
        logging.config.dictConfig(settings.LOGGING)


def test_security_middleware_replacements_are_required(settings):
    from chatplatform.api.checks import check_security_middleware

    assert check_security_middleware() == []
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("XFrameOptionsMiddleware")]
    assert [m.id for m in check_security_middleware()] == ["chatplatform.E003"]


@pytest.mark.django_db
def test_security_headers_on_api_responses(client, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    response = client.get("/health", secure=True)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Strict-Transport-Security"].startswith("max-age=3600")
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_admin_still_gets_sessions_and_csrf(client, admin_user):
    page = client.get("/admin/login/")
    assert page.status_code == 200 and "csrftoken" in page.cookies
    # A login POST without the CSRF token is refused (the admin is protected).
    csrf_client = type(client)(enforce_csrf_checks=True)
    refused = csrf_client.post("/admin/login/", {"username": "admin", "password": "password"})
    assert refused.status_code == 403
    assert client.login(username="admin", password="password")
    assert client.get("/admin/").status_code == 200
