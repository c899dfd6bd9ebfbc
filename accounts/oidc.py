"""OpenID Connect providers: their configuration, and the protocol through Authlib.

Configuration (``chatplatform/settings.py``): the ``OIDC_ISSUER``/``OIDC_CLIENT_ID``/... variables
define the provider named ``default``; ``OIDC_PROVIDERS`` (JSON) adds more by name. Each provider is
reached by discovery (``<issuer>/.well-known/openid-configuration``).

The protocol is Authlib's: the authorization URL with PKCE (S256), ``state`` and ``nonce``; the code
exchange at the token endpoint; the ID token's signature checked against the provider's JWKS
(refetched once when a token names an unknown key) and its ``iss``, ``aud``, ``exp``, ``iat`` and
``nonce`` claims. Authlib's own ``parse_id_token`` checks ``iss`` and ``nonce`` but not ``aud``
unless told, so the audience is passed explicitly here; only asymmetric signature algorithms are
accepted, whatever the discovery document lists.

Blocking (HTTP with a timeout): called from sync views.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.base_client import BaseApp, FrameworkIntegration, OAuth2Mixin, OAuthError, OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from joserfc.errors import JoseError
from requests import RequestException

from chatplatform.api.exceptions import AppError

DEFAULT_PROVIDER = "default"
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
METADATA_MAX_AGE_SECONDS = 3600
CLOCK_LEEWAY_SECONDS = 60


@dataclass(frozen=True)
class OidcProvider:
    name: str
    issuer: str
    client_id: str
    client_secret: str = ""
    scopes: str = "openid email profile"
    allowed_redirect_uris: tuple[str, ...] = ()
    label: str = ""

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"


class IdentityError(Exception):
    """The identity provider's answer cannot be trusted or used. ``error`` is the OAuth-style code
    handed back to the client's ``redirect_uri``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _scopes(value: Any) -> str:
    scopes = value.split() if isinstance(value, str) else list(value or [])
    if "openid" not in scopes:
        scopes.insert(0, "openid")
    return " ".join(scopes)


def providers() -> dict[str, OidcProvider]:
    """Every configured provider by name (empty: SSO is not configured)."""
    shared = tuple(settings.OIDC_ALLOWED_REDIRECT_URIS)
    found: dict[str, OidcProvider] = {}
    if settings.OIDC_ISSUER and settings.OIDC_CLIENT_ID:
        found[DEFAULT_PROVIDER] = OidcProvider(
            name=DEFAULT_PROVIDER, issuer=settings.OIDC_ISSUER, client_id=settings.OIDC_CLIENT_ID,
            client_secret=settings.OIDC_CLIENT_SECRET, scopes=_scopes(settings.OIDC_SCOPES),
            allowed_redirect_uris=shared, label="Single sign-on")
    for name, conf in (settings.OIDC_PROVIDERS or {}).items():
        if not isinstance(conf, dict) or not conf.get("issuer") or not conf.get("client_id"):
            continue  # reported by the system check (accounts.checks)
        own = conf.get("allowed_redirect_uris") or []
        found[str(name)] = OidcProvider(
            name=str(name), issuer=str(conf["issuer"]), client_id=str(conf["client_id"]),
            client_secret=str(conf.get("client_secret") or ""), scopes=_scopes(conf.get("scopes") or settings.OIDC_SCOPES),
            allowed_redirect_uris=(*shared, *[str(u) for u in own]), label=str(conf.get("label") or name))
    return found


def require_configured() -> dict[str, OidcProvider]:
    """:func:`providers`, or a 404 envelope (SSO_NOT_CONFIGURED) when there are none."""
    configured = providers()
    if not configured:
        raise AppError("Single sign-on is not configured on this server.", status_code=404,
                       code="SSO_NOT_CONFIGURED")
    return configured


def provider_named(name: str | None) -> OidcProvider:
    """The provider ``?provider=`` names, or the default one: 404 when SSO is not configured,
    400 for a name that is not configured (or none given when several are and none is ``default``)."""
    configured = require_configured()
    if not name:
        if DEFAULT_PROVIDER in configured:
            return configured[DEFAULT_PROVIDER]
        if len(configured) == 1:
            return next(iter(configured.values()))
        raise AppError("Several identity providers are configured: name one with ?provider=.", status_code=400,
                       code="SSO_PROVIDER_REQUIRED", details={"provider": sorted(configured)})
    if name not in configured:
        raise AppError(f"Unknown identity provider '{name}'.", status_code=400, code="UNKNOWN_SSO_PROVIDER",
                       details={"provider": [f"Configured: {', '.join(sorted(configured))}."]})
    return configured[name]


def insecure_issuer(issuer: str) -> bool:
    """An issuer must be https, except on a loopback address (development, tests)."""
    parts = urlsplit(issuer)
    if parts.scheme == "https" and parts.hostname:
        return False
    if parts.scheme != "http" or not parts.hostname:
        return True
    if parts.hostname == "localhost":
        return False
    try:
        return not ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return True


# --- the protocol (Authlib) --------------------------------------------------------------------------


class _Framework(FrameworkIntegration):
    """Authlib wants a framework object; ours keeps nothing (state lives in the shared cache)."""

    def update_token(self, token, refresh_token=None, access_token=None) -> None:
        return None


class _Client(OAuth2Mixin, OpenIDMixin, BaseApp):
    client_cls = OAuth2Session


_clients: dict[OidcProvider, _Client] = {}
_lock = threading.Lock()


def _client(provider: OidcProvider) -> _Client:
    """One Authlib client per provider configuration and process (it caches discovery and JWKS)."""
    with _lock:
        client = _clients.get(provider)
        loaded = client.server_metadata.get("_loaded_at") if client else None
        if client is None or (loaded and time.time() - loaded > METADATA_MAX_AGE_SECONDS):
            client = _Client(
                _Framework(provider.name), name=provider.name, client_id=provider.client_id,
                client_secret=provider.client_secret or None, server_metadata_url=provider.discovery_url,
                client_kwargs={
                    "scope": provider.scopes, "code_challenge_method": "S256",
                    "token_endpoint_auth_method": "client_secret_basic" if provider.client_secret else "none",
                    "default_timeout": settings.OIDC_HTTP_TIMEOUT_SECONDS,
                },
            )
            _clients[provider] = client
    return client


def _metadata(provider: OidcProvider) -> dict[str, Any]:
    client = _client(provider)
    try:
        metadata = client.load_server_metadata()
    except (RequestException, ValueError) as exc:
        _clients.pop(provider, None)  # try discovery again next time
        raise IdentityError("temporarily_unavailable", "The identity provider could not be reached.") from exc
    if str(metadata.get("issuer", "")).rstrip("/") != provider.issuer.rstrip("/"):
        _clients.pop(provider, None)
        raise IdentityError("server_error", "The identity provider's discovery document names another issuer.")
    return metadata


def authorization_start(provider: OidcProvider, *, callback_url: str) -> dict[str, str]:
    """``{"url", "state", "code_verifier", "nonce"}``: where to send the browser, and what to keep
    (server-side) until the provider sends it back to ``callback_url``."""
    _metadata(provider)
    return _client(provider).create_authorization_url(redirect_uri=callback_url)


def identity_claims(provider: OidcProvider, *, code: str, callback_url: str, code_verifier: str,
                    nonce: str) -> dict[str, Any]:
    """Exchange ``code`` (with the PKCE verifier) and return the validated ID token's claims."""
    metadata = _metadata(provider)
    client = _client(provider)
    try:
        token = client.fetch_access_token(redirect_uri=callback_url, code=code, code_verifier=code_verifier)
    except OAuthError as exc:
        raise IdentityError("invalid_grant", "The identity provider refused the authorization code.") from exc
    except (RequestException, ValueError) as exc:
        raise IdentityError("temporarily_unavailable", "The identity provider could not be reached.") from exc
    if not isinstance(token, dict) or not token.get("id_token"):
        raise IdentityError("invalid_id_token", "The identity provider returned no ID token.")
    offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    metadata["id_token_signing_alg_values_supported"] = [a for a in offered if a in SIGNING_ALGORITHMS] or ["RS256"]
    options = {"iss": {"essential": True, "values": [metadata["issuer"]]},
               "aud": {"essential": True, "values": [provider.client_id]}}
    try:
        claims = client.parse_id_token(token, nonce=nonce, claims_options=options, leeway=CLOCK_LEEWAY_SECONDS)
    except (JoseError, ValueError) as exc:
        raise IdentityError("invalid_id_token", f"The ID token is not valid ({type(exc).__name__}).") from exc
    except (RequestException, RuntimeError) as exc:
        raise IdentityError("temporarily_unavailable", "The identity provider's keys could not be fetched.") from exc
    if not claims.get("sub"):
        raise IdentityError("invalid_id_token", "The ID token names no subject.")
    return dict(claims)
