"""SSO across worker processes: the login starts on one worker, the identity provider's callback
lands on the other, and the hand-off code is redeemed on the first again. The state, nonce and
PKCE verifier, and the one-time code, live in the shared cache (Redis), so any worker finishes
what another began."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from accounts.tests.fake_oidc import CLIENT_ID, CLIENT_SECRET, serving_oidc
from tests.live import LiveServer

pytestmark = pytest.mark.slow

APP = "https://app.example.com/auth/callback"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_an_sso_login_hops_between_workers(live):
    with serving_oidc() as idp:
        env = {**live.server.env, "OIDC_ISSUER": idp.url, "OIDC_CLIENT_ID": CLIENT_ID,
               "OIDC_CLIENT_SECRET": CLIENT_SECRET, "OIDC_ALLOWED_REDIRECT_URIS": APP}
        server = LiveServer(env=env, log=live.server.log.parent / "sso-server.log")
        server.start(workers=2)
        try:
            with server.http_client_on_worker() as (first, first_pid, _):
                login = first.get("/api/v1/auth/sso/login", params={"redirect_uri": APP, "state": "s1"})
                assert login.status_code == 302, login.text
                at_idp = httpx.get(login.headers["location"], follow_redirects=False, timeout=10)
                callback = at_idp.headers["location"]
                with server.http_client_on_worker(other_than=first_pid) as (second, second_pid, _):
                    back = second.get(_path(callback))
                    assert back.status_code == 302, back.text
                assert second_pid != first_pid
                final = urlsplit(back.headers["location"])
                query = dict(parse_qsl(final.query))
                assert f"{final.scheme}://{final.netloc}{final.path}" == APP and query["state"] == "s1"
                tokens = first.post("/api/v1/auth/sso/token", json={"code": query["code"], "redirect_uri": APP})
                assert tokens.status_code == 200, tokens.text
                me = first.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
                assert me.json()["email"] == "sso.user@example.com"
                # Single use on every worker: the state and the code are gone.
                again = first.post("/api/v1/auth/sso/token", json={"code": query["code"], "redirect_uri": APP})
                assert again.status_code == 400
                assert first.get(_path(callback)).status_code == 400
        finally:
            server.stop()
