"""Verified credentials kept in process for a few seconds, dropped everywhere on any change.

Looking an API key or a token's session up cost a query on every request (a quarter of a
``/v1/chat/completions`` request's CPU in the profile, ``bench/results.md``). Here a credential that
checked out is remembered per worker for ``CREDENTIAL_CACHE_SECONDS`` (0 turns this off) in a
:class:`~chatplatform.api.memo.SharedVersionMemo`: every change to an API key, a session or a user
(their save and delete signals, and the services that update rows in bulk call :func:`invalidate`)
replaces the shared version, so a revoked key, an ended session or a deactivated user is refused by
every worker on its next request, not after the entry expires. The expiry only bounds edits made
behind the application's back (SQL by hand). Without Redis in production nothing is remembered and
every request asks the database, as before. Only successful checks are kept: a wrong, unknown or
revoked credential is looked up every time.
"""

from __future__ import annotations

from django.conf import settings

from chatplatform.api.memo import SharedVersionMemo

_memo = SharedVersionMemo("credentials", lambda: settings.CREDENTIAL_CACHE_SECONDS)

remembered = _memo.remembered
invalidate = _memo.invalidate
watch = _memo.watch
