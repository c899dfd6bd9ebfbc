"""Support reads: FAQ listing and semantic search, the support chat's FAQ grounding, customer log
listing/summary/trending, chatbots, users (seed 002), database status, and the chat overrides a
chatbot key brings."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts import team_selectors
from accounts.models import TeamRole
from chatplatform.api.outbound import recheck_outbound_url
from providers.adapters.base import ProviderSettings
from providers.profiles import CredentialProfile
from support.models import FAQ, Chatbot, ChatbotAPIKey, CustomerLog
from support.services import faq_embedding_text, normalize_category

# MiniLM cosine (query vs. an FAQ's question + answer) below which an FAQ is not taken to answer a
# question (grounding). Measured on the demo FAQs: paraphrases of a question score 0.42-0.80,
# unrelated questions ("weather in Paris?", "hello", "do you ship to Canada?") 0.06-0.24.
FAQ_GROUNDING_MIN_SCORE = 0.4
FAQ_SEARCH_MIN_SCORE = 0.25
# FAQs whose embedding the background task has not stored yet (just created or edited, or the
# worker is behind) are embedded with the query, in the same model call, up to this many per
# search; the rest wait for the task. Bounds the work a public search can cause.
FAQ_EMBED_ON_THE_FLY_MAX = 32


def _is_staff(actor: Any) -> bool:
    return bool(actor is not None and getattr(actor, "is_staff", False))


# --- FAQs -------------------------------------------------------------------------------------------


def faq_list(*, category: str | None = None, include_unpublished: bool = False) -> QuerySet[FAQ]:
    qs = FAQ.objects.all() if include_unpublished else FAQ.objects.filter(published=True)
    if category:
        qs = qs.filter(category=normalize_category(category))
    return qs.order_by("order", "created_at")


def faq_get(*, faq_id: str, include_unpublished: bool = False) -> FAQ | None:
    return faq_list(include_unpublished=include_unpublished).filter(pk=faq_id).first()


def _rank(vector: list[float], candidates: Iterable[FAQ], *, limit: int, min_score: float,
          fresh: dict[str, list[float]] | None = None) -> list[tuple[FAQ, float]]:
    """Candidates by cosine to ``vector``; ``fresh``: vectors computed on the fly, by FAQ id."""
    from providers.embeddings import cosine

    fresh = fresh or {}
    scored = [(faq, cosine(vector, faq.embedding or fresh[faq.pk])) for faq in candidates
              if faq.embedding or faq.pk in fresh]
    scored = [(faq, round(score, 4)) for faq, score in scored if score >= min_score]
    scored.sort(key=lambda pair: (-pair[1], pair[0].order, pair[0].question))
    return scored[:limit]


def _candidates(category: str | None) -> list[FAQ]:
    return list(faq_list(category=category))


def _texts(query: str, candidates: list[FAQ]) -> tuple[list[str], list[FAQ]]:
    """What to embed in one model call: the query, then the candidates still without a vector
    (at most FAQ_EMBED_ON_THE_FLY_MAX); and those candidates."""
    pending = [faq for faq in candidates if not faq.embedding][:FAQ_EMBED_ON_THE_FLY_MAX]
    return [query, *(faq_embedding_text(question=f.question, answer=f.answer) for f in pending)], pending


def _ranked(vectors: list[list[float]], pending: list[FAQ], candidates: list[FAQ], *, limit: int,
            min_score: float) -> list[tuple[FAQ, float]]:
    query_vector, *on_the_fly = vectors
    fresh = {faq.pk: vector for faq, vector in zip(pending, on_the_fly, strict=True)}
    return _rank(query_vector, candidates, limit=limit, min_score=min_score, fresh=fresh)


def faq_search(*, query: str, limit: int = 5, category: str | None = None,
               min_score: float = FAQ_SEARCH_MIN_SCORE) -> list[tuple[FAQ, float]]:
    """Published FAQs ranked by MiniLM cosine similarity to ``query`` (best first). FAQs whose
    stored embedding is not computed yet are embedded on the fly (not stored: the task does)."""
    from providers.embeddings import embed_texts

    query = query.strip()
    if not query:
        return []
    candidates = _candidates(category)
    texts, pending = _texts(query, candidates)
    return _ranked(embed_texts(texts), pending, candidates, limit=limit, min_score=min_score)


def faqs_relevant_to(question: str, limit: int = 3, min_score: float = FAQ_GROUNDING_MIN_SCORE,
                     *, category: str | None = None) -> list[tuple[FAQ, float]]:
    """The FAQs that answer ``question`` well enough to ground a reply, best first (may be empty)."""
    return faq_search(query=question, limit=limit, category=category, min_score=min_score)


async def afaqs_relevant_to(question: str, limit: int = 3, min_score: float = FAQ_GROUNDING_MIN_SCORE,
                            *, category: str | None = None) -> list[tuple[FAQ, float]]:
    """:func:`faqs_relevant_to` for async callers (the model runs in a worker thread)."""
    from providers.embeddings import aembed_texts

    question = question.strip()
    if not question:
        return []
    candidates = await sync_to_async(_candidates)(category)
    texts, pending = _texts(question, candidates)
    return _ranked(await aembed_texts(texts), pending, candidates, limit=limit, min_score=min_score)


# --- support chat grounding ---------------------------------------------------------------------------

SUPPORT_SYSTEM_PROMPT = (
    "You are a friendly, concise customer service assistant. Answer from the FAQ entries below "
    "when they cover the question, in your own words; do not invent policies, prices or steps that "
    "are not there. If they do not cover it, say so briefly and offer to pass the question to a "
    "human agent."
)
_HUMAN_REQUEST = re.compile(
    r"\b("
    r"(talk|speak|chat|connect|transfer)\w*\s+(me\s+)?(to|with)\s+(a\s+|an\s+|the\s+|your\s+|some\s+)?"
    r"(human|person|agent|someone|somebody|representative|rep|staff|support team|operator)"
    r"|real (person|human)|live (agent|person|chat|support)|human (agent|being|support)"
    r"|(want|need)\s+(a|an)\s+(human|person|agent|representative)|escalate|open a (ticket|case)"
    r")\b",
    re.IGNORECASE,
)


QUESTION_MIN_WORDS = 6


def is_question(message: str) -> bool:
    """A substantive request: a question mark, or a message of several words."""
    text = (message or "").strip()
    return "?" in text or len(text.split()) >= QUESTION_MIN_WORDS


def wants_human(message: str) -> bool:
    """Whether the user is asking to be handed over to a person."""
    return bool(_HUMAN_REQUEST.search(message or ""))


@dataclass(frozen=True)
class SupportGrounding:
    """What the support chat needs for one turn: the system prompt (with the relevant FAQs), the
    FAQs used, and whether to hand over to a human (asked for, or nothing to ground a reply on)."""

    system_prompt: str
    faqs: list[tuple[FAQ, float]] = field(default_factory=list)
    wants_human: bool = False
    is_question: bool = True

    @property
    def grounded(self) -> bool:
        return bool(self.faqs)

    @property
    def should_escalate(self) -> bool:
        """Asked for a person, or a real question that no FAQ grounds (small talk such as
        "Thanks!" opens no ticket)."""
        return self.wants_human or (not self.grounded and self.is_question)


def support_system_prompt(faqs: list[tuple[FAQ, float]], *, base: str = SUPPORT_SYSTEM_PROMPT) -> str:
    """``base`` followed by the FAQ entries (question and answer), best match first."""
    if not faqs:
        return f"{base}\n\nNo FAQ entry matches this question."
    entries = "\n\n".join(f"Q: {faq.question}\nA: {faq.answer}" for faq, _score in faqs)
    return f"{base}\n\nRelevant FAQ entries:\n\n{entries}"


def _grounding(question: str, faqs: list[tuple[FAQ, float]], base: str) -> SupportGrounding:
    return SupportGrounding(system_prompt=support_system_prompt(faqs, base=base), faqs=faqs,
                            wants_human=wants_human(question), is_question=is_question(question))


def support_grounding(question: str, *, limit: int = 3, min_score: float = FAQ_GROUNDING_MIN_SCORE,
                      base: str = SUPPORT_SYSTEM_PROMPT) -> SupportGrounding:
    return _grounding(question, faqs_relevant_to(question, limit, min_score), base)


async def asupport_grounding(question: str, *, limit: int = 3, min_score: float = FAQ_GROUNDING_MIN_SCORE,
                             base: str = SUPPORT_SYSTEM_PROMPT) -> SupportGrounding:
    return _grounding(question, await afaqs_relevant_to(question, limit, min_score), base)


# --- customer logs ------------------------------------------------------------------------------------


def _window(hours: int) -> Q:
    return Q(created_at__gte=timezone.now() - timedelta(hours=hours))


def customer_logs_visible_to(actor: Any) -> QuerySet[CustomerLog]:
    """Staff see every log; everyone else their own."""
    if _is_staff(actor):
        return CustomerLog.objects.all()
    return CustomerLog.objects.filter(user_id=getattr(actor, "pk", None))


def customer_log_list(*, actor: Any, status: str | None = None, category: str | None = None,
                      priority: str | None = None, hours: int = 24) -> QuerySet[CustomerLog]:
    qs = customer_logs_visible_to(actor).filter(_window(hours))
    if status:
        qs = qs.filter(status=status)
    if category:
        qs = qs.filter(category=normalize_category(category))
    if priority:
        qs = qs.filter(priority=priority)
    return qs.order_by("-created_at")


def customer_log_get(*, actor: Any, log_id: str) -> CustomerLog | None:
    return customer_logs_visible_to(actor).filter(pk=log_id).first()


def customer_log_summary(*, actor: Any, hours: int = 24) -> dict[str, Any]:
    """Seed 003's summary: totals by status and priority (every value listed) and by category."""
    qs = customer_logs_visible_to(actor).filter(_window(hours))

    def breakdown(field_name: str) -> dict[str, int]:
        rows = qs.order_by().values(field_name).annotate(n=Count("pk"))
        return {row[field_name]: row["n"] for row in rows}

    statuses = breakdown("status")
    priorities = breakdown("priority")
    categories = breakdown("category")
    return {
        "timeframe_hours": hours,
        "total_logs": sum(statuses.values()),
        "status_breakdown": {s.value: statuses.get(s.value, 0) for s in CustomerLog.Status},
        "category_breakdown": dict(sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))),
        "priority_breakdown": {p: priorities.get(p, 0) for p in ("urgent", "high", "medium", "low")},
    }


STOP_WORDS = frozenset("""
a about above after again against all also am an and any are aren arent as at be because been before
being below between both but by can cannot cant could couldn couldnt did didn didnt do does doesn doesnt
doing don dont down during each either else even ever every few for from further get gets getting got
gotten had hadn hadnt has hasn hasnt have haven havent having he her here hers herself him himself his
how however i if im in into is isn isnt it its itself ive just keep keeps kept let lets like me might
more most much must mustn my myself need needs no nor not now of off on once one only or other our ours
ourselves out over own per please pls same shan she should shouldn so some still such than thank thanks
that thats the their theirs them themselves then there these they this those though through thus to too
try tried trying under until up upon us use used using very via want wants was wasn wasnt way we were
weren what whats when where which while who whom why will with within without won wont would wouldn
yet you your youre yours yourself yourselves hi hello hey help anyone someone something anything
able unable again already always another since yes okay ok really lot lots never says said
""".split())
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def issue_terms(text: str) -> set[str]:
    """The distinct meaningful terms of ``text``: lower-cased words, possessives and apostrophes
    folded, stop-words, numbers and words under three letters dropped."""
    terms = set()
    for token in _TOKEN.findall((text or "").lower()):
        token = token[:-2] if token.endswith("'s") else token.replace("'", "")
        if len(token) >= 3 and not token.isdigit() and token not in STOP_WORDS:
            terms.add(token)
    return terms


def customer_log_trending(*, hours: int = 24, limit: int = 10) -> list[dict[str, Any]]:
    """Seed 003's trending issues over every log in the window: each term counted once per log
    (in its title or description), most frequent first, ties alphabetical."""
    counts: Counter[str] = Counter()
    rows = CustomerLog.objects.filter(_window(hours)).values_list("title", "description")
    for title, description in rows.iterator(chunk_size=2000):
        counts.update(issue_terms(f"{title}\n{description}"))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"issue": term, "count": n} for term, n in ranked]


# --- chatbots and users (seed 002) --------------------------------------------------------------------


def chatbots_visible_to(actor: Any) -> QuerySet[Chatbot]:
    """Staff: every chatbot; anyone else: their own and those shared with their teams."""
    qs = Chatbot.objects.select_related("owner")
    if _is_staff(actor):
        return qs
    return qs.filter(Q(owner_id=getattr(actor, "pk", None)) | Q(team_id__in=team_selectors.team_ids_of(actor)))


def chatbot_manageable(*, actor: Any, chatbot: Chatbot) -> bool:
    """Who may change a chatbot, its keys, or delete it: staff, its owner, its team's admins and owners."""
    if _is_staff(actor) or chatbot.owner_id == getattr(actor, "pk", None):
        return True
    return bool(chatbot.team_id) and team_selectors.has_role(user=actor, team_id=chatbot.team_id,
                                                             role=TeamRole.ADMIN)


def team_chatbot_list(*, team_id: str) -> QuerySet[Chatbot]:
    return Chatbot.objects.select_related("owner").filter(team_id=team_id).order_by("created_at")


def chatbot_list(*, actor: Any, owner_id: str | None = None) -> QuerySet[Chatbot]:
    qs = chatbots_visible_to(actor)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    return qs.order_by("created_at")


def chatbot_get(*, actor: Any, chatbot_id: str) -> Chatbot | None:
    return chatbots_visible_to(actor).filter(pk=chatbot_id).first()


def chatbot_api_key_list(*, chatbot: Chatbot) -> QuerySet[ChatbotAPIKey]:
    return ChatbotAPIKey.objects.filter(chatbot=chatbot).order_by("-created_at")


def user_list() -> QuerySet:
    return apps.get_model(settings.AUTH_USER_MODEL).objects.order_by("created_at")


def users_visible_to(actor: Any) -> QuerySet:
    """Every user for an admin; for anyone else, only themself (seed 002's ``GET /users``)."""
    users = user_list()
    return users if _is_staff(actor) else users.filter(pk=getattr(actor, "pk", None))


def user_get(*, actor: Any, user_id: str):
    """A user for an admin, or for the user themself; None otherwise (the route answers 404)."""
    return users_visible_to(actor).filter(pk=user_id).first()


PROJECT_APPS = ("accounts", "chats", "providers", "knowledge", "support", "adminpanel")


def db_status() -> dict[str, Any]:
    """Seed 002's database status: connection, engine, latency and record counts per table."""
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        latency = round((time.perf_counter() - started) * 1000, 2)
        counts: dict[str, int] = {}
        for label in PROJECT_APPS:
            if not apps.is_installed(label):
                continue
            for model in apps.get_app_config(label).get_models():
                counts[model._meta.db_table] = model._default_manager.count()
    except DatabaseError as exc:
        return {"status": "disconnected", "database": "disconnected", "engine": connection.vendor,
                "error": type(exc).__name__, "latency_ms": None, "record_counts": {}}
    user_table = apps.get_model(settings.AUTH_USER_MODEL)._meta.db_table
    return {
        "status": "connected",
        "database": "connected",
        "engine": connection.vendor,
        "latency_ms": latency,
        "users_count": counts.get(user_table, 0),
        "chatbots_count": counts.get(Chatbot._meta.db_table, 0),
        "api_keys_count": counts.get(ChatbotAPIKey._meta.db_table, 0),
        "record_counts": counts,
        "timestamp": timezone.now(),
    }


# --- chatbot keys in chat -------------------------------------------------------------------------------


def chatbot_turn_profile(key: ChatbotAPIKey) -> CredentialProfile:
    """What a chatbot's key imposes on a chat turn (``ChatbotAPIKey.turn_profile``): the chatbot's
    system prompt and model, and, when it has an ``llm_endpoint_url``, that endpoint as the only
    provider (the URL is re-checked against the outbound rules now; refused -> AppError 502).
    Blocking (name resolution): the turn service calls it off the event loop."""
    chatbot = key.chatbot
    endpoint = None
    if chatbot.llm_endpoint_url:
        url = recheck_outbound_url(chatbot.llm_endpoint_url, field="llm_endpoint_url")
        endpoint = ProviderSettings(
            name=f"chatbot-{chatbot.id}", kind="openai", base_url=url, default_model=chatbot.model,
            api_key="", timeout=settings.PROVIDER_TIMEOUT_SECONDS, max_retries=settings.PROVIDER_MAX_RETRIES,
        )
    return CredentialProfile(system_prompt=chatbot.system_prompt or None, model=chatbot.model or None,
                             endpoint=endpoint, label=f"chatbot {chatbot.id}")
