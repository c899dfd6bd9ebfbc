"""Reading a gateway call's usage records in tests: for streams they are written just after the last
event goes out, so a client that has read the whole stream may look before they are there."""

from __future__ import annotations

import time

from providers.models import UsageRecord


def recorded(count: int = 1, *, timeout: float = 10) -> UsageRecord:
    """The newest usage record, once ``count`` of them are written (AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while UsageRecord.objects.count() < count and time.monotonic() < deadline:
        time.sleep(0.05)
    records = list(UsageRecord.objects.order_by("created_at"))
    assert len(records) == count, f"{len(records)} usage records, expected {count}"
    return records[-1]
