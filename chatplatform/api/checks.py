"""System checks for unsafe production configuration."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=False)
def check_production_settings(app_configs=None, **kwargs):
    messages = []
    if settings.DEBUG:
        return messages
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        messages.append(Error(
            "SECRET_KEY is the development key while DEBUG is off.",
            hint="Set SECRET_KEY to a long random value (python -c 'import secrets; print(secrets.token_urlsafe(50))').",
            id="chatplatform.E001",
        ))
    if not settings.REDIS_URL:
        if settings.WEB_CONCURRENCY > 1:
            messages.append(Error(
                f"WEB_CONCURRENCY={settings.WEB_CONCURRENCY} without REDIS_URL: each worker would keep "
                "its own rate limits, cache and channel layer, silently splitting them.",
                hint="Set REDIS_URL, or run one worker.",
                id="chatplatform.E002",
            ))
        else:
            messages.append(Warning(
                "DEBUG is off and REDIS_URL is unset: cache, rate limits and the channel layer are "
                "in this process only, and Celery runs tasks inline.",
                hint="Fine for a single worker; set REDIS_URL before scaling out.",
                id="chatplatform.W001",
            ))
    return messages


# Subclasses standing in for Django's own security middleware (see settings.MIDDLEWARE).
REQUIRED_MIDDLEWARE = {
    "django.middleware.security.SecurityMiddleware": "HSTS, nosniff, referrer policy, SSL redirect",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "X-Frame-Options",
    "django.middleware.csrf.CsrfViewMiddleware": "CSRF protection for the Django admin",
}


@register(Tags.security)
def check_security_middleware(app_configs=None, **kwargs):
    """Django's W001-W003 are silenced because they match dotted paths; check by class instead."""
    from django.utils.module_loading import import_string

    installed = [import_string(path) for path in settings.MIDDLEWARE]
    messages = []
    for path, purpose in REQUIRED_MIDDLEWARE.items():
        base = import_string(path)
        if not any(isinstance(cls, type) and issubclass(cls, base) for cls in installed):
            messages.append(Error(f"{path} (or a subclass) is missing from MIDDLEWARE: no {purpose}.",
                                  id="chatplatform.E003"))
    return messages
