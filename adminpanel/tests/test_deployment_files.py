"""Deployment files stay in step with settings.py.

Every environment variable settings.py reads must be passed to the app containers by
docker-compose.yml and documented in .env.example, so adding a setting without documenting it fails
here. No database needed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "chatplatform" / "settings.py"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"

APP_SERVICES = ("web", "worker", "beat")
ALL_SERVICES = (*APP_SERVICES, "db", "redis")

# The variables the design's operations contract names; settings.py must read at least these
# (also guards the extraction regex against silently matching nothing).
CONTRACT_VARS = {
    "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "ALLOWED_ORIGINS", "LOG_LEVEL",
    "ADMIN_SECRET_KEY", "DEFAULT_PROVIDER", "DEFAULT_MODEL", "OPENAI_API_KEY", "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "GEMINI_API_KEY", "GEMINI_BASE_URL", "LOCAL_MODEL_PATH",
    "RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_PER_HOUR", "ANONYMOUS_CHAT", "ALLOW_PRIVATE_OUTBOUND",
}
# Read by Django or management commands rather than settings.py; documented in .env.example.
EXTRA_DOCUMENTED = {
    "DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_EMAIL", "DJANGO_SUPERUSER_PASSWORD",
    "SEED_DEMO_PASSWORD", "POSTGRES_PASSWORD",
}

_ENV_CALL = re.compile(
    r"""\benv(?:\.(?P<kind>\w+))?\(\s*["'](?P<name>[A-Z][A-Z0-9_]*)["']"""
    r"""|\bos\.(?:environ\.get|getenv)\(\s*["'](?P<osname>[A-Z][A-Z0-9_]*)["']"""
    r"""|\bos\.environ\[\s*["'](?P<ositem>[A-Z][A-Z0-9_]*)["']\s*\]"""
)
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
_ENV_LINE = re.compile(r"^\s*(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
_BOOL_WORDS = {"true", "false", "1", "0", "yes", "no", "on", "off", "y", "n", "t", "f"}


def settings_vars() -> dict[str, set[str]]:
    """Variable name -> the env.<kind> readers settings.py uses for it ("str" for os.environ)."""
    found: dict[str, set[str]] = {}
    for m in _ENV_CALL.finditer(SETTINGS.read_text()):
        name = m["name"] or m["osname"] or m["ositem"]
        found.setdefault(name, set()).add(m["kind"] or "str")
    return found


def app_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def resolved(value: str) -> str:
    """The value compose would pass with nothing set in the shell or .env (${X:?..} as "set")."""
    def sub(m: re.Match) -> str:
        return "set" if m["op"] in (":?", "?") else (m["arg"] or "")
    return _INTERPOLATION.sub(sub, value).replace("$$", "$")


def env_example() -> tuple[set[str], dict[str, str]]:
    """(every name mentioned as NAME=..., commented or not; the active, uncommented assignments)."""
    names, active = set(), {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = _ENV_LINE.match(line)
        if m:
            names.add(m["name"])
            if not m["comment"]:
                active[m["name"]] = m["value"].strip()
    return names, active


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def read_vars() -> dict[str, set[str]]:
    return settings_vars()


def test_extraction_finds_the_contract_variables(read_vars):
    missing = CONTRACT_VARS - set(read_vars)
    assert not missing, f"settings.py no longer reads {sorted(missing)} (or the regex broke)"
    assert read_vars["DEBUG"] == {"bool"} and read_vars["RATE_LIMIT_PER_MINUTE"] == {"int"}


def test_compose_services_and_healthchecks(compose):
    assert "version" not in compose, "the top-level version: key is obsolete"
    services = compose["services"]
    assert set(ALL_SERVICES) <= set(services), f"missing services: {set(ALL_SERVICES) - set(services)}"
    for name in ALL_SERVICES:
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    assert "/health" in str(services["web"]["healthcheck"]["test"])
    assert "8000:8000" in [str(p) for p in services["web"].get("ports", [])]
    for dep in ("db", "redis"):
        assert services["web"]["depends_on"][dep]["condition"] == "service_healthy"
    commands = {name: " ".join(map(str, services[name]["command"])) if isinstance(services[name]["command"], list)
                else services[name]["command"] for name in APP_SERVICES}
    assert "manage.py serve" in commands["web"] and "0.0.0.0" in commands["web"]
    assert commands["worker"].startswith("celery -A chatplatform worker")
    assert commands["beat"].startswith("celery -A chatplatform beat")
    assert services["db"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_reach_postgres_and_redis(compose, service):
    env = app_env(compose["services"][service])
    assert resolved(env.get("DATABASE_URL", "")).startswith("postgres://"), env.get("DATABASE_URL")
    assert "@db:5432/" in resolved(env["DATABASE_URL"])
    assert resolved(env.get("REDIS_URL", "")).startswith("redis://redis:6379"), env.get("REDIS_URL")
    assert env.get("DEBUG", "").lower() == "false"
    assert env.get("SECRET_KEY", "").startswith("${SECRET_KEY:?"), "SECRET_KEY must be required, not defaulted"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_compose_passes_every_setting(compose, read_vars, service):
    env = app_env(compose["services"][service])
    missing = set(read_vars) - set(env)
    unknown = set(env) - set(read_vars)
    assert not missing, f"{service}: settings.py reads {sorted(missing)} but docker-compose.yml does not set them"
    assert not unknown, f"{service}: docker-compose.yml sets {sorted(unknown)}, which settings.py never reads"


def test_compose_defaults_parse_as_their_types(compose, read_vars):
    """An empty ${X:-} for a number setting would crash settings.py at startup."""
    env = app_env(compose["services"]["web"])
    for name, kinds in read_vars.items():
        value = resolved(env.get(name, ""))
        if "int" in kinds:
            assert re.fullmatch(r"-?\d+", value), f"{name}={value!r} is not an integer"
        if "float" in kinds:
            assert re.fullmatch(r"-?\d+(\.\d*)?", value), f"{name}={value!r} is not a number"
        if "bool" in kinds:
            assert value.lower() in _BOOL_WORDS, f"{name}={value!r} is not a boolean"


def test_env_example_documents_every_setting(read_vars):
    names, _ = env_example()
    missing = (set(read_vars) | EXTRA_DOCUMENTED) - names
    unknown = names - set(read_vars) - EXTRA_DOCUMENTED
    assert not missing, f".env.example does not document {sorted(missing)}"
    assert not unknown, f".env.example documents {sorted(unknown)}, which nothing reads"


def test_env_example_keeps_embedded_mode():
    """Copying .env.example to .env must not switch to production mode or weaken the defaults."""
    _, active = env_example()
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY"):
        assert name not in active, f".env.example sets {name}; copying it to .env would leave embedded mode"
    assert active.get("DEBUG", "true").lower() not in {"false", "0", "no", "off"}
    assert active.get("ALLOW_PRIVATE_OUTBOUND", "false").lower() not in {"true", "1", "yes", "on"}


def test_dockerfile_installs_requirements_and_exposes_8000():
    text = DOCKERFILE.read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert any(line.startswith("FROM python:3.11-slim") for line in lines)
    assert "EXPOSE 8000" in lines
    assert re.search(r"^COPY\s+requirements\.txt\s", text, re.M)
    assert re.search(r"pip install[^\n]*-r requirements\.txt", text)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}, "the image must run as a non-root user"
    assert re.search(r"^HEALTHCHECK\b.*\n?.*/health", text, re.M)
    assert re.search(r'^CMD \["python", "manage.py", "serve", "--host", "0.0.0.0", "--port", "8000"\]', text, re.M)
