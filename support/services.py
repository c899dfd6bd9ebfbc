"""Support writes: FAQs (with their embeddings), customer logs, chatbots and chatbot API keys.

An FAQ's embedding is computed in the background: a write that creates an FAQ or changes its
question or answer clears the vector and enqueues ``support.tasks.faq_embed`` once the
transaction commits (eager, in-process, in the embedded mode; a Celery worker in production).
Until then search and grounding embed the FAQ on the fly (see ``support.selectors``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import string
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts import team_selectors
from accounts.models import Team, TeamRole
from chatplatform.api.exceptions import AppError
from chatplatform.api.outbound import check_outbound_url
from support.models import CHATBOT_KEY_PREFIX, FAQ, Chatbot, ChatbotAPIKey, CustomerLog

_KEY_ALPHABET = string.ascii_letters + string.digits
logger = logging.getLogger(__name__)
LAST_USED_EVERY = timedelta(seconds=60)
REOPENED = {CustomerLog.Status.OPEN, CustomerLog.Status.IN_PROGRESS}


def normalize_category(value: str | None) -> str:
    """Categories are compared lower-cased; blank means ``general``."""
    return (value or "").strip().lower() or "general"


# --- FAQs ---------------------------------------------------------------------------------------


def faq_embedding_text(*, question: str, answer: str) -> str:
    """What an FAQ's vector is computed from: the question, then the answer."""
    return f"{question.strip()}\n{answer.strip()}"


def _embed_faq(question: str, answer: str) -> list[float]:
    from providers.embeddings import embed_texts

    return embed_texts([faq_embedding_text(question=question, answer=answer)])[0]


def _embed_after_commit(faq_id: str) -> None:
    """Enqueue the embedding once the row is committed (a worker must be able to read it)."""
    from support.tasks import faq_embed

    # robust: the FAQ is saved either way; a failed enqueue (or eager run) is logged, and the
    # FAQ is embedded on the fly by searches until a re-index catches it.
    transaction.on_commit(lambda: faq_embed.delay(faq_id), robust=True)


@transaction.atomic
def faq_create(*, question: str, answer: str, category: str = "general", published: bool = True,
               order: int = 0, embedding: list[float] | None = None) -> FAQ:
    """Create an FAQ. Its MiniLM embedding is computed by a background task after the commit,
    unless ``embedding`` is given (a caller that embedded a batch itself)."""
    faq = FAQ.objects.create(question=question.strip(), answer=answer.strip(),
                             category=normalize_category(category), published=published,
                             order=order, embedding=embedding)
    if embedding is None:
        _embed_after_commit(faq.id)
    return faq


@transaction.atomic
def faq_update(*, faq: FAQ, question: str | None = None, answer: str | None = None,
               category: str | None = None, published: bool | None = None, order: int | None = None) -> FAQ:
    """Change the given fields. When the question or answer changed, the old vector is dropped
    (it no longer describes the text) and a new one is computed in the background."""
    new_question = question.strip() if question is not None else faq.question
    new_answer = answer.strip() if answer is not None else faq.answer
    text_changed = (new_question, new_answer) != (faq.question, faq.answer)
    faq.question, faq.answer = new_question, new_answer
    if text_changed:
        faq.embedding = None
    if category is not None:
        faq.category = normalize_category(category)
    if published is not None:
        faq.published = published
    if order is not None:
        faq.order = order
    faq.save()
    if faq.embedding is None:
        _embed_after_commit(faq.id)
    return faq


@transaction.atomic
def faq_delete(*, faq: FAQ) -> None:
    faq.delete()


@transaction.atomic
def faq_record_view(*, faq_id: str, include_unpublished: bool = False) -> FAQ:
    """Count one view (an atomic ``F()`` increment, safe under concurrency) and return the FAQ."""
    rows = FAQ.objects.filter(pk=faq_id)
    if not include_unpublished:
        rows = rows.filter(published=True)
    if not rows.update(view_count=F("view_count") + 1):
        raise AppError("FAQ not found.", status_code=404)
    return FAQ.objects.get(pk=faq_id)


def _store_embeddings(faqs: Sequence[FAQ], vectors: Sequence[list[float]]) -> int:
    """Write each vector if its FAQ still has the text it was computed from (a newer edit has
    queued its own embedding); returns how many rows were written."""
    written = 0
    with transaction.atomic():
        for faq, vector in zip(faqs, vectors, strict=True):
            written += FAQ.objects.filter(pk=faq.pk, question=faq.question, answer=faq.answer).update(embedding=vector)
    return written


def faq_embed_now(*, faq_id: str) -> bool:
    """Compute and store one FAQ's embedding from its current text (the ``faq_embed`` task's
    work; the model runs outside any transaction). False if the FAQ is gone or was edited
    meanwhile."""
    faq = FAQ.objects.filter(pk=faq_id).only("pk", "question", "answer").first()
    if faq is None:
        return False
    return bool(_store_embeddings([faq], [_embed_faq(faq.question, faq.answer)]))


def faq_reindex_enqueue(*, only_missing: bool = False, faq_ids: Sequence[str] | None = None) -> None:
    """Re-index in the background (``support.tasks.faqs_reindex``) once the transaction commits."""
    from support.tasks import faqs_reindex

    ids = list(faq_ids) if faq_ids is not None else None
    transaction.on_commit(lambda: faqs_reindex.delay(only_missing=only_missing, faq_ids=ids))


def faq_reindex(*, only_missing: bool = True, faq_ids: Sequence[str] | None = None, batch_size: int = 32,
                progress: Callable[[int, int], None] | None = None) -> int:
    """(Re)compute FAQ embeddings in batches: every FAQ, those without one (``only_missing``), or
    the given ids. ``progress(done, total)`` is called after each batch. Returns how many rows
    were written."""
    from providers.embeddings import embed_texts

    rows = FAQ.objects.only("pk", "question", "answer").order_by("pk")
    if faq_ids is not None:
        rows = rows.filter(pk__in=list(faq_ids))
    if only_missing:
        rows = rows.filter(embedding__isnull=True)
    faqs = list(rows)
    written = 0
    for start in range(0, len(faqs), batch_size):
        batch = faqs[start:start + batch_size]
        vectors = embed_texts([faq_embedding_text(question=f.question, answer=f.answer) for f in batch],
                              batch_size=batch_size)
        written += _store_embeddings(batch, vectors)
        if progress is not None:
            progress(start + len(batch), len(faqs))
    logger.info("Re-indexed %d of %d FAQs", written, len(faqs))
    return written


# --- customer logs --------------------------------------------------------------------------------


@transaction.atomic
def customer_log_create(*, user, title: str, description: str = "",
                        log_type: str = CustomerLog.LogType.INQUIRY,
                        priority: str = CustomerLog.Priority.MEDIUM, category: str = "general",
                        conversation_id: str = "") -> CustomerLog:
    """Open a log for ``user`` (status ``open``; ``updated_at`` stays null until an update)."""
    if not getattr(user, "pk", None):
        raise AppError("Customer logs belong to a user account; the admin secret cannot open one.",
                       status_code=403)
    return CustomerLog.objects.create(user=user, title=title.strip(), description=description.strip(),
                                      log_type=log_type, priority=priority, category=normalize_category(category),
                                      conversation_id=conversation_id)


def _set_status(log: CustomerLog, status: str) -> None:
    now = timezone.now()
    if status == CustomerLog.Status.RESOLVED and log.status != CustomerLog.Status.RESOLVED:
        log.resolved_at = now
    elif status in REOPENED:
        log.resolved_at = None
    log.status = status


OWNER_STATUSES = {CustomerLog.Status.RESOLVED, CustomerLog.Status.CLOSED}


@transaction.atomic
def customer_log_update(*, log: CustomerLog, actor, title: str | None = None, description: str | None = None,
                        category: str | None = None, priority: str | None = None, log_type: str | None = None,
                        status: str | None = None) -> CustomerLog:
    """Edit a log. The owner may change its text, category, priority and type, and may mark it
    resolved or closed (seed 003's example has the owner send ``{"status": "resolved", ...}``);
    reopening it (open / in_progress) is staff work. Staff may do anything; anyone else gets 404.
    ``resolved_at`` is set on resolving and cleared on reopening."""
    is_staff = bool(getattr(actor, "is_staff", False))
    if not is_staff and log.user_id != getattr(actor, "pk", None):
        raise AppError("Customer log not found.", status_code=404)
    if status is not None and status != log.status and not is_staff and status not in OWNER_STATUSES:
        raise AppError("Only support staff can reopen a log or set it in progress (you may resolve or close "
                       "your own log).", status_code=403,
                       details={"status": ["Owners may only set 'resolved' or 'closed'."]})
    for field, value in (("title", title), ("description", description)):
        if value is not None:
            setattr(log, field, value.strip())
    if category is not None:
        log.category = normalize_category(category)
    if priority is not None:
        log.priority = priority
    if log_type is not None:
        log.log_type = log_type
    if status is not None and status != log.status:
        _set_status(log, status)
    log.updated_at = timezone.now()
    log.save()
    return log


def _chat_title(question: str) -> str:
    line = " ".join(question.split())
    return line if len(line) <= 80 else line[:77].rstrip() + "..."


@transaction.atomic
def customer_log_open_from_chat(*, user, question: str, conversation_id: str | None,
                                category: str = "general", priority: str = CustomerLog.Priority.MEDIUM) -> CustomerLog:
    """The support chat's "hand over to a human": open a ``support`` log for the question, or,
    when this conversation already has an open one, add the question to it (no duplicates)."""
    conversation_id = str(conversation_id or "")[:40]
    if conversation_id:
        existing = (CustomerLog.objects.select_for_update()
                    .filter(user=user, conversation_id=conversation_id, status__in=list(REOPENED))
                    .order_by("-created_at").first())
        if existing is not None:
            existing.description = f"{existing.description}\n\nFollow-up: {question.strip()}".strip()
            existing.updated_at = timezone.now()
            existing.save(update_fields=["description", "updated_at"])
            return existing
    origin = f"\n\n(Opened from support chat conversation {conversation_id}.)" if conversation_id else ""
    return customer_log_create(user=user, title=_chat_title(question) or "Support request",
                               description=f"{question.strip()}{origin}", log_type=CustomerLog.LogType.SUPPORT,
                               priority=priority, category=category, conversation_id=conversation_id)


def escalation_notice(log: CustomerLog) -> str:
    """What the support assistant tells the user after :func:`customer_log_open_from_chat`."""
    return (f"I've passed this to our support team as ticket {log.id}; a person will follow up with you. "
            "You can check its status under your customer logs.")


# --- chatbots -------------------------------------------------------------------------------------


def chatbot_validate_fields(*, llm_endpoint_url: str, model: str) -> str:
    """Validate endpoint and model together (422 naming the field); returns the URL to store."""
    from providers import selectors as provider_selectors

    url = (llm_endpoint_url or "").strip()
    if url:
        url = check_outbound_url(url, field="llm_endpoint_url")
        if not model:
            raise AppError("A model is required with llm_endpoint_url.", status_code=422,
                           details={"model": ["Name the model the endpoint serves."]})
    elif model and provider_selectors.catalogue_model(model) is None:
        raise AppError(f"Unknown model '{model}'.", status_code=422,
                       details={"model": [f"Unknown model '{model}'. See GET /api/v1/models, or set llm_endpoint_url."]})
    return url


def chatbot_team_for(*, actor, team_id: str | None) -> Team | None:
    """The team a chatbot is to be shared with (``None``: none). Sharing needs the team's admin
    role (403); a team the actor does not belong to is, as everywhere, unknown (422 naming
    ``team_id``). Staff may share with any team."""
    if not team_id:
        return None
    if getattr(actor, "is_staff", False):
        team = Team.objects.filter(pk=team_id).first()
    else:
        membership = team_selectors.membership_of(user=actor, team_id=team_id)
        if membership is not None:
            team_selectors.require_role(membership, TeamRole.ADMIN)
        team = membership.team if membership else None
    if team is None:
        raise AppError("Unknown team.", status_code=422, details={"team_id": ["No such team of yours."]})
    return team


_UNCHANGED: Any = object()


def chatbot_create(*, owner, name: str, llm_endpoint_url: str = "", model: str = "",
                   system_prompt: str = "", team: Team | None = None) -> Chatbot:
    """Create a chatbot; its endpoint URL must pass the outbound rules (422 otherwise)."""
    if not getattr(owner, "pk", None):
        raise AppError("A chatbot needs an owner.", status_code=422, details={"owner_id": ["This field is required."]})
    model = (model or "").strip()
    url = chatbot_validate_fields(llm_endpoint_url=llm_endpoint_url, model=model)  # resolves DNS: outside the lock
    with transaction.atomic():
        return Chatbot.objects.create(owner=owner, name=name.strip(), llm_endpoint_url=url, model=model,
                                      system_prompt=system_prompt, team=team)


def chatbot_update(*, chatbot: Chatbot, name: str | None = None, llm_endpoint_url: str | None = None,
                   model: str | None = None, system_prompt: str | None = None,
                   team: Team | None = _UNCHANGED) -> Chatbot:
    """Change the fields given (``team``: leave it out to keep the chatbot's sharing as it is)."""
    new_model = (model if model is not None else chatbot.model).strip()
    new_url = llm_endpoint_url if llm_endpoint_url is not None else chatbot.llm_endpoint_url
    url = chatbot_validate_fields(llm_endpoint_url=new_url, model=new_model)
    with transaction.atomic():
        chatbot.llm_endpoint_url, chatbot.model = url, new_model
        if name is not None:
            chatbot.name = name.strip()
        if system_prompt is not None:
            chatbot.system_prompt = system_prompt
        if team is not _UNCHANGED:
            chatbot.team = team
        chatbot.save()
    return chatbot


@transaction.atomic
def chatbot_delete(*, chatbot: Chatbot) -> None:
    chatbot.delete()


def hash_chatbot_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _random(n: int) -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(n))


@transaction.atomic
def chatbot_api_key_create(*, chatbot: Chatbot, name: str = "default") -> tuple[ChatbotAPIKey, str]:
    """A new key ``cbk_<prefix>_<secret>``: the row and the raw key (never retrievable again)."""
    prefix = _random(10)
    raw = f"{CHATBOT_KEY_PREFIX}_{prefix}_{_random(40)}"
    key = ChatbotAPIKey.objects.create(chatbot=chatbot, name=name or "default", prefix=prefix,
                                       key_hash=hash_chatbot_key(raw))
    return key, raw


@transaction.atomic
def chatbot_api_key_revoke(*, chatbot: Chatbot, key_id: str) -> ChatbotAPIKey:
    key = ChatbotAPIKey.objects.select_for_update().filter(id=key_id, chatbot=chatbot).first()
    if key is None:
        raise AppError("API key not found.", status_code=404)
    if not key.revoked:
        key.revoked, key.revoked_at = True, timezone.now()
        key.save(update_fields=["revoked", "revoked_at"])
    return key


def chatbot_api_key_authenticate(raw: str) -> ChatbotAPIKey | None:
    """The live key matching ``raw`` (chatbot and owner loaded), else None. The hash comparison
    is constant-time; ``last_used_at`` is written at most once a minute."""
    parts = raw.strip().split("_")
    if len(parts) != 3 or parts[0] != CHATBOT_KEY_PREFIX or not parts[1]:
        return None
    key = ChatbotAPIKey.objects.select_related("chatbot", "chatbot__owner").filter(prefix=parts[1]).first()
    digest = hash_chatbot_key(raw.strip())
    if key is None:
        hmac.compare_digest(digest, digest)  # same work either way
        return None
    if not hmac.compare_digest(key.key_hash, digest) or key.revoked or not key.chatbot.owner.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_EVERY:
        ChatbotAPIKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key

