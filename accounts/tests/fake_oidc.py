"""A small OpenID Connect provider on 127.0.0.1 for the SSO tests (not a test module).

Real HTTP (uvicorn, see ``providers.tests.fakeserver``): a discovery document, a JWKS, an
authorization endpoint that redirects back with a code, and a token endpoint that checks the
client's credentials, the redirect URI and the PKCE verifier (S256) and returns an RS256-signed ID
token. Keys are made with ``cryptography`` and tokens signed by hand, so nothing here shares code
with the library under test.

Tests decide who signs in (``identity``) and how the next ID token is spoiled (``spoil``):
``tamper`` (a claim changed after signing), ``nonce``/``aud``/``iss`` (a wrong value), ``expired``,
``foreign_key`` (signed by a key not in the JWKS), ``none_alg`` (unsigned).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from providers.tests.fakeserver import Call, FakeServer, ScriptedUpstream, Step, send_json

CLIENT_ID = "chatplatform-test"
CLIENT_SECRET = "fake-client-secret"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class SigningKey:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}

    def sign(self, claims: dict[str, Any], *, alg: str = "RS256") -> str:
        header = b64url(json.dumps({"alg": alg, "typ": "JWT", "kid": self.kid}).encode())
        payload = b64url(json.dumps(claims).encode())
        signing_input = f"{header}.{payload}".encode()
        if alg == "none":
            return f"{header}.{payload}."
        signature = self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{b64url(signature)}"


class FakeOidcProvider(ScriptedUpstream):
    """The ASGI app. ``url`` (the issuer) is set once it is served."""

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self.key = SigningKey("key-1")
        self.identity: dict[str, Any] = {"sub": "user-123", "email": "sso.user@example.com",
                                         "email_verified": True, "name": "Sso User",
                                         "preferred_username": "sso.user"}
        self.spoil: str = ""
        self.codes: dict[str, dict[str, str]] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []

    # --- endpoints --------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    def authorize(self, query: dict[str, str]) -> str:
        """Sign the configured identity in at once; returns where the browser goes next."""
        self.authorize_requests.append(query)
        code = secrets.token_urlsafe(16)
        self.codes[code] = query
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if authorization != expected:
            return 401, {"error": "invalid_client"}
        asked = self.codes.pop(form.get("code", ""), None)
        if asked is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != asked["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
        verifier = form.get("code_verifier", "")
        if asked.get("code_challenge_method") != "S256" or b64url(
                hashlib.sha256(verifier.encode()).digest()) != asked.get("code_challenge"):
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                     "id_token": self.id_token(nonce=asked.get("nonce", ""))}

    def id_token(self, *, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": nonce,
                  **self.identity}
        spoil = self.spoil
        if spoil == "nonce":
            claims["nonce"] = "not-the-nonce"
        elif spoil == "aud":
            # azp names us, so only the audience check can catch it (a lone foreign aud without azp
            # already fails Authlib's azp rule).
            claims["aud"], claims["azp"] = "some-other-client", CLIENT_ID
        elif spoil == "iss":
            claims["iss"] = "https://evil.example.com"
        elif spoil == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        if spoil == "foreign_key":
            return SigningKey(self.key.kid).sign(claims)
        if spoil == "none_alg":
            return self.key.sign(claims, alg="none")
        token = self.key.sign(claims)
        if spoil == "tamper":
            header, _, signature = token.split(".")
            forged = b64url(json.dumps({**claims, "email": "ceo@example.com", "sub": "someone-else"}).encode())
            token = f"{header}.{forged}.{signature}"
        return token

    # --- HTTP (the ASGI plumbing is ScriptedUpstream's) ---------------------------------------------

    async def handle(self, call: Call, step: Step, send) -> None:
        query = dict(parse_qsl(call.query))
        if call.path == "/.well-known/openid-configuration":
            await send_json(send, 200, self.discovery())
        elif call.path == "/jwks":
            await send_json(send, 200, {"keys": [self.key.jwk()]})
        elif call.path == "/authorize":
            location = self.authorize(query)
            await send({"type": "http.response.start", "status": 302,
                        "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
        elif call.path == "/token" and call.method == "POST":
            form = dict(parse_qsl(call.body if isinstance(call.body, str) else ""))
            status, payload = self.token(form, call.headers.get("authorization", ""))
            await send_json(send, status, payload)
        else:
            await send_json(send, 404, {"error": "not_found"})


class serving_oidc:
    """``with serving_oidc() as idp:`` a fake provider on 127.0.0.1 for the block."""

    def __enter__(self) -> FakeOidcProvider:
        self.provider = FakeOidcProvider()
        self.server = FakeServer(self.provider).__enter__()
        self.provider.url = self.server.url
        return self.provider

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)
