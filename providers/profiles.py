"""What a credential imposes on every chat turn made with it.

A credential object (``request.auth``) may offer ``turn_profile()`` returning a
:class:`CredentialProfile`: a chatbot's key does (its chatbot's system prompt, model and endpoint,
see ``support``). The turn service reads it without knowing which app the credential comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.adapters.base import ProviderSettings


@dataclass(frozen=True)
class CredentialProfile:
    """``system_prompt`` and ``model`` replace the request's; ``endpoint``, when set, is the only
    provider called (no fallback). Usage is the credential owner's, not an API key's."""

    system_prompt: str | None = None
    model: str | None = None
    endpoint: ProviderSettings | None = None
    label: str = ""


def profile_of(credential: Any) -> CredentialProfile | None:
    """The profile a credential imposes (``None`` for plain user credentials)."""
    build = getattr(credential, "turn_profile", None)
    return build() if callable(build) else None
