"""Logging helpers: request ids on every record, secrets redacted, a ring buffer of recent logs."""

from __future__ import annotations

import collections
import logging
import re
import threading

from chatplatform.api.context import current_request_id

# Bearer/ApiKey credentials, JWTs, our API keys and common provider key shapes.
_SECRET_PATTERNS = [
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(bearer|apikey)\s+[^\s\"',]+"), r"\1\2 [REDACTED]"),
    (re.compile(r"(?i)\b(bearer|apikey)\s+[A-Za-z0-9._\-]{8,}"), r"\1 [REDACTED]"),
    (re.compile(r"eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"), "[REDACTED_JWT]"),
    (re.compile(r"\bcpk_[A-Za-z0-9]{4,}_[A-Za-z0-9]+"), "[REDACTED_KEY]"),
    (re.compile(r"\b(sk-ant-|sk-|AIza)[A-Za-z0-9_\-]{8,}"), "[REDACTED_KEY]"),
    (re.compile(r"(?i)([\"']?(?:password|api_key|secret|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1[REDACTED]"),
]


def redact(text: str) -> str:
    """Mask anything in ``text`` that looks like a credential."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


class RedactSecretsFilter(logging.Filter):
    """Rewrites the formatted message with credentials masked; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


class RecentLogsHandler(logging.Handler):
    """Keeps the last records of this process in memory for the admin log endpoint."""

    capacity = 2000
    _records: collections.deque = collections.deque(maxlen=capacity)
    _lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        entry = {
            "timestamp": record.created,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        with self._lock:
            self._records.append(entry)

    @classmethod
    def recent(cls) -> list[dict]:
        with cls._lock:
            return list(cls._records)
