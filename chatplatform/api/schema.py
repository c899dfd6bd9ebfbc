"""OpenAPI schema hooks. The authentication classes' declarations (drf-spectacular extensions)
live beside each class: ``accounts.authentication``, ``support.authentication`` and
``chatplatform.api.credentials``."""


def drop_root_aliases(endpoints):
    """Preprocessing hook: routes served both at the root and under /api/v1 (health, seed 002)
    appear once in the schema, under /api/v1, so operation ids stay unique."""
    versioned = {path for path, *_ in endpoints if path.startswith("/api/v1/")}
    return [e for e in endpoints if f"/api/v1{e[0]}" not in versioned]
