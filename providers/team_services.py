"""A team's own provider configurations (``ProviderConfig`` rows with a ``team``).

Team admins and owners add and change them; the key is checked with a real call before it is
saved (like the operator's ``/providers`` route) and stored encrypted. A ``base_url`` comes from a
team admin, not the operator, so it must pass the outbound rules (the SSRF guard) when saved and
again before each call. They serve only requests of the team's members that name them
(``providers.selectors.team_provider_settings``)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import TeamMembership, TeamRole
from accounts.team_selectors import require_role
from chatplatform.api.exceptions import AppError
from chatplatform.api.outbound import check_outbound_url
from providers import selectors
from providers.models import ProviderConfig, ProviderKind
from providers.services import provider_key_validate

TEAM_KINDS = (ProviderKind.OPENAI, ProviderKind.ANTHROPIC, ProviderKind.GEMINI)
RESERVED_NAMES = frozenset(kind.value for kind in ProviderKind)
MAX_PROVIDERS_PER_TEAM = 20


def _checked(*, kind: str, api_key: str, base_url: str, default_model: str) -> str:
    """Validate the reachable parts of a team provider; returns the base URL to store."""
    if kind not in TEAM_KINDS:
        raise AppError("A team provider is openai, anthropic or gemini.", status_code=422,
                       details={"kind": [f"One of: {', '.join(TEAM_KINDS)}."]})
    url = check_outbound_url(base_url, field="base_url") if base_url else ""
    if not (api_key or url):
        raise AppError("A team provider needs an api_key or a base_url.", status_code=422,
                       details={"api_key": ["Required unless base_url points at a server that needs none."]})
    model = selectors.catalogue_model(default_model) if default_model else None
    if model is not None and model.provider != kind:
        raise AppError(f"Model '{default_model}' is not served by a {kind} provider.", status_code=422,
                       details={"default_model": ["Not served by this kind of provider."]})
    return url


def _apply(row: ProviderConfig, fields: dict[str, Any]) -> None:
    extra = dict(row.settings or {})
    for key in ("temperature", "max_tokens"):
        if key in fields:
            value = fields.pop(key)
            if value is None:
                extra.pop(key, None)
            else:
                extra[key] = value
    row.settings = extra
    for key, value in fields.items():
        setattr(row, key, value)


def team_provider_create(*, membership: TeamMembership, name: str, kind: str, api_key: str = "",
                         base_url: str = "", validate_key: bool = True, **fields: Any) -> ProviderConfig:
    require_role(membership, TeamRole.ADMIN)
    if name in RESERVED_NAMES or selectors.provider_settings(name) or ProviderConfig.objects.filter(name=name).exists():
        raise AppError(f"The provider name '{name}' is taken.", status_code=409, code="CONFLICT",
                       details={"name": ["Taken: provider names are unique on this server."]})
    if selectors.team_provider_rows(team_id=membership.team_id).count() >= MAX_PROVIDERS_PER_TEAM:
        raise AppError(f"A team may have at most {MAX_PROVIDERS_PER_TEAM} providers.", status_code=409,
                       code="TEAM_LIMIT_REACHED")
    url = _checked(kind=kind, api_key=api_key, base_url=base_url, default_model=fields.get("default_model", ""))
    if api_key and validate_key:
        provider_key_validate(kind=kind, api_key=api_key, base_url=url, name=name)
    row = ProviderConfig(name=name, kind=kind, team_id=membership.team_id, base_url=url)
    row.api_key = api_key
    _apply(row, fields)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError as exc:  # a concurrent create took the name
        raise AppError(f"The provider name '{name}' is taken.", status_code=409, code="CONFLICT") from exc
    return row


def team_provider_update(*, membership: TeamMembership, row: ProviderConfig, api_key: str | None = None,
                         base_url: str | None = None, validate_key: bool = True, **fields: Any) -> ProviderConfig:
    """Change the fields given; ``api_key`` left out keeps the stored key (``""`` clears it)."""
    require_role(membership, TeamRole.ADMIN)
    new_key = row.api_key if api_key is None else api_key
    url = _checked(kind=row.kind, api_key=new_key, base_url=row.base_url if base_url is None else base_url,
                   default_model=fields.get("default_model", row.default_model))
    if api_key and validate_key:
        provider_key_validate(kind=row.kind, api_key=api_key, base_url=url, name=row.name)
    with transaction.atomic():
        row = ProviderConfig.objects.select_for_update().get(pk=row.pk)
        row.base_url = url
        if api_key is not None:
            row.api_key = api_key
        _apply(row, fields)
        row.save()
    return row


@transaction.atomic
def team_provider_delete(*, membership: TeamMembership, row: ProviderConfig) -> None:
    require_role(membership, TeamRole.ADMIN)
    row.delete()
