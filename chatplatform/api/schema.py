"""OpenAPI declarations for our authentication classes."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "chatplatform.api.authentication.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Access token from /api/v1/auth/login (an API key `cpk_…` is accepted too).",
        }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "chatplatform.api.authentication.ApiKeyAuthentication"
    name = ["apiKeyHeader", "apiKeyAuthorization"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            {"type": "apiKey", "in": "header", "name": "Authorization",
             "description": "`ApiKey <key>`"},
        ]


class AdminSecretScheme(OpenApiAuthenticationExtension):
    target_class = "chatplatform.api.authentication.AdminSecretAuthentication"
    name = "adminSecret"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "`Bearer <ADMIN_SECRET_KEY>` (admin routes only)."}


def drop_root_aliases(endpoints):
    """Preprocessing hook: routes served both at the root and under /api/v1 (health, seed 002)
    appear once in the schema, under /api/v1, so operation ids stay unique."""
    versioned = {path for path, *_ in endpoints if path.startswith("/api/v1/")}
    return [e for e in endpoints if f"/api/v1{e[0]}" not in versioned]
