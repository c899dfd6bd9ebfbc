"""The provider-administration services and selectors behind the /providers and /gemini routes,
called directly (the routes themselves are tested in test_routes.py)."""

from __future__ import annotations

import pytest

from chatplatform.api.exceptions import AppError
from providers import selectors, services
from providers.models import ProviderConfig

pytestmark = pytest.mark.django_db


def test_create_needs_name_and_kind_and_a_free_name():
    with pytest.raises(AppError) as missing:
        services.provider_create(name="vllm")
    assert missing.value.status_code == 422 and set(missing.value.details) == {"kind"}
    services.provider_create(name="vllm", kind="openai", base_url="http://127.0.0.1:9/v1", api_key="sk-x-1234",
                             validate_key=False)
    with pytest.raises(AppError) as taken:
        services.provider_create(name="vllm", kind="openai")
    assert taken.value.status_code == 409


def test_save_keeps_settings_and_key_unless_given(monkeypatch):
    monkeypatch.setattr(services, "provider_key_validate", lambda **kw: pytest.fail("validated without a new key"))
    row = services.provider_save(name="vllm", kind="openai", base_url="http://127.0.0.1:9/v1", temperature=0.2)
    row.api_key = "sk-kept-9999"
    row.save()
    again = services.provider_save(existing=row, max_tokens=50, default_model="gpt-4o")
    assert (again.kind, again.settings, again.default_model) == ("openai", {"temperature": 0.2, "max_tokens": 50},
                                                                 "gpt-4o")
    assert ProviderConfig.objects.get(name="vllm").api_key == "sk-kept-9999"


def test_a_new_key_is_validated_unless_asked_not_to(monkeypatch):
    calls = []
    monkeypatch.setattr(services, "provider_key_validate", lambda **kw: calls.append(kw) or [])
    services.provider_save(name="a", kind="anthropic", api_key="sk-ant-1")
    services.provider_save(name="b", kind="anthropic", api_key="sk-ant-2", validate_key=False)
    services.provider_save(name="c", kind="local", api_key="unused")
    assert [c["api_key"] for c in calls] == ["sk-ant-1"]


def test_update_and_configure_404_for_unknown_providers():
    with pytest.raises(AppError) as update:
        services.provider_update(name="nowhere", default_model="x")
    assert update.value.status_code == 404
    with pytest.raises(AppError) as configure:
        services.provider_configure(name="nowhere", default_model="x")
    assert configure.value.status_code == 404
    # With a kind, an update creates the row.
    created = services.provider_update(name="fresh", kind="openai", base_url="http://127.0.0.1:9/v1")
    assert created.kind == "openai" and selectors.provider_config_get(name="fresh") == created


def test_listing_shows_disabled_rows_and_one_entry_by_name():
    services.provider_save(name="off", kind="openai", base_url="http://127.0.0.1:9/v1", enabled=False)
    listing = {p["name"]: p for p in selectors.provider_listing()}
    assert listing["off"]["status"] == "disabled" and listing["off"]["source"] == "database"
    assert listing["local"]["status"] == "configured"
    assert selectors.provider_listing_get(name="off") == listing["off"]
    assert selectors.provider_listing_get(name="nope") is None
    overview = selectors.provider_overview()
    assert "off" not in overview["available_providers"] and "local" in overview["available_providers"]
