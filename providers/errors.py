"""Provider errors, mapped onto the API error envelope.

Adapters translate their SDK's exceptions into these. Messages are ours: the provider's raw
error text (which may echo prompts or key fragments) never reaches the client; it is logged
(redacted) at most.
"""

from __future__ import annotations

from chatplatform.api.exceptions import AppError


class ProviderError(AppError):
    """The provider failed (502 PROVIDER_ERROR). ``retryable`` errors may be retried/fallen back."""

    status_code = 502
    code = "PROVIDER_ERROR"
    retryable = False

    def __init__(self, message: str = "The AI provider returned an error.", *, provider: str = "",
                 retryable: bool | None = None, retry_after: float | None = None,
                 upstream_status: int | None = None, **kwargs) -> None:
        details = kwargs.pop("details", None) or {}
        if provider:
            details.setdefault("provider", provider)
        super().__init__(message, details=details, **kwargs)
        self.provider = provider
        self.retry_after = retry_after
        self.upstream_status = upstream_status
        if retryable is not None:
            self.retryable = retryable


class ProviderTimeout(ProviderError):
    status_code = 504
    code = "TIMEOUT"
    retryable = True

    def __init__(self, message: str = "The AI provider did not answer in time.", **kwargs) -> None:
        super().__init__(message, **kwargs)


class ProviderRateLimited(ProviderError):
    """The provider said 429; passed through with ``Retry-After`` when all retries are spent."""

    status_code = 429
    code = "RATE_LIMITED"
    retryable = True

    def __init__(self, message: str = "The AI provider is rate limiting requests.", **kwargs) -> None:
        super().__init__(message, **kwargs)
        if self.retry_after:
            self.headers["Retry-After"] = str(max(1, int(round(self.retry_after))))


class ProviderUnavailable(ProviderError):
    """Connection refused, 5xx, or a circuit breaker that is open: try another provider."""

    retryable = True

    def __init__(self, message: str = "The AI provider is unavailable.", **kwargs) -> None:
        super().__init__(message, **kwargs)


class ProviderAuthError(ProviderError):
    """The provider rejected our credentials (a configuration problem, not the caller's)."""

    def __init__(self, message: str = "The AI provider rejected the configured credentials.", **kwargs) -> None:
        super().__init__(message, retryable=False, **kwargs)


class UnknownModel(AppError):
    """A model id the catalogue does not have (422 naming ``model``; OpenAI's API says 404)."""

    status_code = 422

    def __init__(self, model_id: str) -> None:
        super().__init__(f"Unknown model '{model_id}'.", details={
            "model": [f"Unknown model '{model_id}'. See GET /api/v1/models."]})


class ProviderNotConfigured(AppError):
    status_code = 400
    code = "PROVIDER_NOT_CONFIGURED"


class UnsupportedFeature(ProviderError):
    def __init__(self, message: str = "This provider does not support that feature.", **kwargs) -> None:
        super().__init__(message, retryable=False, status_code=400, code="UNSUPPORTED", **kwargs)


def retry_after_from_headers(headers) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``) header, if present and sane."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def from_http_status(status: int, *, provider: str, retry_after: float | None = None) -> ProviderError:
    """The error for an upstream HTTP status (used by every adapter)."""
    if status == 429:
        return ProviderRateLimited(provider=provider, retry_after=retry_after, upstream_status=status)
    if status in (401, 403):
        return ProviderAuthError(provider=provider, upstream_status=status)
    if status in (408, 504):
        return ProviderTimeout(provider=provider, upstream_status=status)
    if status >= 500:
        return ProviderUnavailable(provider=provider, retry_after=retry_after, upstream_status=status)
    return ProviderError("The AI provider rejected the request.", provider=provider,
                         retryable=False, upstream_status=status)
