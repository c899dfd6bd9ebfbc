"""Provider reads."""

from __future__ import annotations

from django.conf import settings


def providers_configured() -> dict[str, bool]:
    """Which providers have credentials. ``local`` needs none: it is always available."""
    return {
        "openai": bool(settings.OPENAI_API_KEY),
        "anthropic": bool(settings.ANTHROPIC_API_KEY),
        "gemini": bool(settings.GEMINI_API_KEY),
        "local": True,
    }
