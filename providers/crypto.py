"""Encryption at rest for provider API keys (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from ``PROVIDER_ENCRYPTION_KEY`` when set (rotate SECRET_KEY freely then), else it
is derived from ``SECRET_KEY`` with HKDF.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(material: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"chatplatform-provider-keys",
               info=b"fernet").derive(material.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _material() -> str:
    return settings.PROVIDER_ENCRYPTION_KEY or settings.SECRET_KEY


def encrypt(plain: str) -> str:
    return _fernet(_material()).encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt; an undecryptable value (key changed) reads as no key rather than crashing."""
    try:
        return _fernet(_material()).decrypt(token.encode()).decode()
    except InvalidToken:
        return ""


def mask(last4: str, *, kind: str = "") -> str:
    """``sk-...abcd`` style display of a key from its last four characters."""
    prefix = {"openai": "sk-", "anthropic": "sk-ant-", "gemini": "AIza"}.get(kind, "")
    return f"{prefix}...{last4}"
