"""System checks for the single sign-on configuration (shown by ``manage.py check``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

from accounts.oidc import insecure_issuer, providers


def _redirect_problem(uri: str) -> str:
    parts = urlsplit(uri)
    if not parts.scheme or not (parts.netloc or parts.path):
        return "is not an absolute URI"
    if parts.fragment or "#" in uri:
        return "has a fragment (the code is added to its query)"
    return ""


@register()
def check_oidc_settings(app_configs=None, **kwargs):
    errors = []
    raw = settings.OIDC_PROVIDERS
    if not isinstance(raw, dict):
        raw = {}
        errors.append(Error("OIDC_PROVIDERS must be a JSON object of providers by name.", id="accounts.E001"))
    for name, conf in raw.items():
        if not isinstance(conf, dict) or not conf.get("issuer") or not conf.get("client_id"):
            errors.append(Error(f"OIDC_PROVIDERS[{name!r}] needs at least 'issuer' and 'client_id'.",
                                id="accounts.E002"))
    if bool(settings.OIDC_ISSUER) != bool(settings.OIDC_CLIENT_ID):
        errors.append(Error("Set both OIDC_ISSUER and OIDC_CLIENT_ID (or neither).", id="accounts.E003"))
    for provider in providers().values():
        if insecure_issuer(provider.issuer):
            errors.append(Error(f"SSO provider {provider.name!r}: the issuer must be an https URL "
                                "(http only on a loopback address).", id="accounts.E004"))
        if not provider.allowed_redirect_uris:
            errors.append(Error(f"SSO provider {provider.name!r} has no allowed redirect URI: nobody could sign in.",
                                hint="Set OIDC_ALLOWED_REDIRECT_URIS (comma-separated, exact URIs).",
                                id="accounts.E005"))
        for uri in provider.allowed_redirect_uris:
            problem = _redirect_problem(uri)
            if problem:
                errors.append(Error(f"Allowed redirect URI {uri!r} {problem}.", id="accounts.E006"))
    return errors
