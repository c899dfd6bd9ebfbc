"""Shared fixtures (loaded by the root conftest): fake upstreams on 127.0.0.1 and a configuration pointing at them."""

from __future__ import annotations

import pytest

from providers import registry, selectors
from providers.reliability import breaker
from providers.tests.fake_openai import FakeOpenAI
from providers.tests.fakeserver import serving


@pytest.fixture(scope="session")
def openai_upstream():
    with serving(FakeOpenAI()) as upstream:
        yield upstream


@pytest.fixture(scope="session")
def backup_upstream():
    with serving(FakeOpenAI()) as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _fresh_provider_state():
    breaker.reset()
    registry.clear()
    selectors.invalidate()
    yield
    breaker.reset()
    registry.clear()
    selectors.invalidate()


@pytest.fixture
def openai_configured(settings, openai_upstream, backup_upstream, db):
    """OpenAI configured from the environment (pointing at the fake); the local model disabled so
    a failing chain ends in an error instead of running llama.cpp."""
    from providers.catalogue import sync_catalogue
    from providers.models import Model, ProviderConfig

    sync_catalogue(Model)  # transactional tests flush the data migration's rows
    openai_upstream.reset()
    backup_upstream.reset()
    settings.OPENAI_API_KEY = "sk-test-abcd1234"
    settings.OPENAI_BASE_URL = openai_upstream.url + "/v1"
    settings.ANTHROPIC_API_KEY = ""
    settings.GEMINI_API_KEY = ""
    settings.DEFAULT_PROVIDER = ""
    settings.DEFAULT_MODEL = ""
    ProviderConfig.objects.create(name="local", kind="local", enabled=False)
    selectors.invalidate()
    return openai_upstream


@pytest.fixture
def with_backup(openai_configured, backup_upstream):
    """A second OpenAI-compatible provider, later in the fallback chain."""
    from providers.services import provider_config_save

    provider_config_save(name="backup", kind="openai", api_key="sk-backup-9999",
                         base_url=backup_upstream.url + "/v1", default_model="gpt-4o", priority=50,
                         max_retries=0)
    return backup_upstream


@pytest.fixture(scope="session")
def anthropic_upstream():
    from providers.tests.fake_anthropic import FakeAnthropic

    with serving(FakeAnthropic()) as upstream:
        yield upstream


@pytest.fixture(scope="session")
def gemini_upstream():
    from providers.tests.fake_gemini import FakeGemini

    with serving(FakeGemini()) as upstream:
        yield upstream


@pytest.fixture
def all_providers_configured(openai_configured, anthropic_upstream, gemini_upstream, settings):
    """OpenAI, Anthropic and Gemini all configured from the environment, each at its fake."""
    anthropic_upstream.reset()
    gemini_upstream.reset()
    settings.ANTHROPIC_API_KEY = "sk-ant-test-0000"
    settings.ANTHROPIC_BASE_URL = anthropic_upstream.url
    settings.GEMINI_API_KEY = "AIza-test-0000"
    settings.GEMINI_BASE_URL = gemini_upstream.url
    selectors.invalidate()
    return {"openai": openai_configured, "anthropic": anthropic_upstream, "gemini": gemini_upstream}
