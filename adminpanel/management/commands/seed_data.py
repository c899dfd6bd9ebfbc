"""Idempotent demo data: an admin and a demo user, the model catalogue, demo chatbots with API
keys, FAQs in several categories and a few customer logs.

Passwords are random and printed once, when a user is first created, unless
``SEED_DEMO_PASSWORD`` is set; chatbot keys are printed once, when their chatbot is created.
Existing rows are left as they are, so running it again changes nothing. ``--reset`` first
deletes the demo data: the demo users (and, through cascades, their chatbots, keys and logs)
and the demo FAQs. It lives in ``adminpanel``, the top layer, because it seeds every app.
"""

from __future__ import annotations

import os
import secrets

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from providers.catalogue import sync_catalogue
from providers.models import Model
from support import services as support_services
from support.models import FAQ, Chatbot, ChatbotAPIKey, CustomerLog

DEMO_USERS = [
    {"username": "admin", "email": "admin@example.com", "full_name": "Demo Admin", "is_staff": True,
     "is_superuser": True},
    {"username": "demo", "email": "demo@example.com", "full_name": "Demo User"},
]

DEMO_CHATBOTS = [
    {"owner": "demo", "name": "Support Assistant", "model": "gemma-3-270m",
     "system_prompt": "You are the helpful support assistant of Example Inc. Answer briefly and politely."},
    {"owner": "demo", "name": "Docs Helper", "model": "gemma-3-270m",
     "system_prompt": "You answer questions about the Example Inc. product documentation, citing the section."},
    {"owner": "admin", "name": "Ops Bot", "model": "gemma-3-270m",
     "system_prompt": "You help the operations team with short, factual answers."},
]

DEMO_FAQS = [
    ("account", "How do I reset my password?",
     "Click 'Forgot password' on the login page and enter your email address. We send a reset link "
     "that is valid for one hour; follow it and choose a new password of at least 8 characters."),
    ("account", "How do I change the email address on my account?",
     "Open Settings > Profile, enter the new address and save. Your login stays the same; future "
     "receipts and notifications go to the new address."),
    ("account", "How can I delete my account?",
     "Go to Settings > Account and choose 'Delete account'. You will be asked for your password; "
     "deletion removes your conversations and data permanently."),
    ("billing", "Which payment methods do you accept?",
     "We accept Visa, Mastercard and American Express cards, and PayPal. Annual plans can also be paid "
     "by bank transfer against an invoice."),
    ("billing", "How do I get a refund?",
     "Refunds are available within 14 days of a charge. Open a support ticket with the invoice number "
     "and we refund to the original payment method within 5 business days."),
    ("billing", "Where can I download my invoices?",
     "Invoices are under Settings > Billing > Invoices; each one can be downloaded as a PDF."),
    ("technical", "Why am I getting an 'invalid credentials' error when I log in?",
     "Check that Caps Lock is off and that you are using the email or username you registered with. "
     "After five failed attempts logins are paused for 15 minutes; if it persists, reset your password."),
    ("technical", "How do I create an API key?",
     "Log in, open Settings > API keys and click 'Generate key', or call POST /api/v1/auth/generate-api-key. "
     "The key is shown once, so store it safely; you can revoke it at any time."),
    ("technical", "The app is slow or not loading. What can I do?",
     "Refresh the page, clear your browser cache and check status.example.com for incidents. If the "
     "problem continues, send us your browser version and the time it happened."),
    ("general", "What are your support hours?",
     "Our support team is available Monday to Friday, 9:00-18:00 CET. The assistant answers around the clock."),
    ("general", "How do I contact a human agent?",
     "Ask the assistant to talk to a person, or create a customer log; an agent replies by email, "
     "usually within one business day."),
]

DEMO_LOGS = [
    {"title": "Unable to login to account", "description": "I keep getting invalid credentials error",
     "log_type": "support", "priority": "medium", "category": "account"},
    {"title": "Charged twice this month", "description": "My card was billed twice for the monthly plan",
     "log_type": "support", "priority": "high", "category": "billing"},
    {"title": "Question about annual plans", "description": "Is there a discount for paying yearly?",
     "log_type": "inquiry", "priority": "low", "category": "billing"},
    {"title": "Password reset email never arrives", "description": "Tried three times, nothing in spam either",
     "log_type": "support", "priority": "urgent", "category": "account"},
]


class Command(BaseCommand):
    help = "Create demo users, chatbots with keys, FAQs and customer logs. Safe to run repeatedly."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--reset", action="store_true", help="Delete the demo data first.")

    def handle(self, *args, reset: bool = False, **options) -> None:
        if reset:
            self._reset()
        with transaction.atomic():
            users = self._users()
            self._catalogue()
            self._chatbots(users)
        # FAQs embed with MiniLM: done outside the big transaction so no write lock is held meanwhile.
        self._faqs()
        with transaction.atomic():
            self._logs(users)
        self.stdout.write(self.style.SUCCESS(
            f"Done. Users: {User.objects.count()}, chatbots: {Chatbot.objects.count()}, "
            f"chatbot keys: {ChatbotAPIKey.objects.count()}, FAQs: {FAQ.objects.count()}, "
            f"customer logs: {CustomerLog.objects.count()}, models: {Model.objects.count()}"
        ))

    @transaction.atomic
    def _reset(self) -> None:
        deleted_faqs, _ = FAQ.objects.filter(question__in=[q for _c, q, _a in DEMO_FAQS]).delete()
        deleted, _ = User.objects.filter(username__in=[u["username"] for u in DEMO_USERS]).delete()
        self.stdout.write(f"Reset: deleted {deleted} rows for the demo users (with their chatbots, keys "
                          f"and logs) and {deleted_faqs} demo FAQs")

    def _users(self) -> dict[str, User]:
        users: dict[str, User] = {}
        total = len(DEMO_USERS)
        for index, spec in enumerate(DEMO_USERS, start=1):
            user = User.objects.filter(username__iexact=spec["username"]).first()
            if user is not None:
                self.stdout.write(f"[{index}/{total}] user {spec['username']}: exists")
            else:
                password = os.environ.get("SEED_DEMO_PASSWORD") or secrets.token_urlsafe(12)
                user = User(**spec)
                user.set_password(password)
                user.save()
                self.stdout.write(self.style.SUCCESS(
                    f"[{index}/{total}] user {spec['username']}: created (password: {password})"
                ))
            users[spec["username"]] = user
        self.stdout.write(f"Users: {User.objects.count()}")
        return users

    def _catalogue(self) -> None:
        created = sync_catalogue(Model)
        self.stdout.write(f"Model catalogue: {created} added, {Model.objects.count()} in total")

    def _chatbots(self, users: dict[str, User]) -> None:
        total = len(DEMO_CHATBOTS)
        for index, spec in enumerate(DEMO_CHATBOTS, start=1):
            owner = users[spec["owner"]]
            label = f"[{index}/{total}] chatbot {spec['name']!r} ({owner.username})"
            if Chatbot.objects.filter(owner=owner, name=spec["name"]).exists():
                self.stdout.write(f"{label}: exists")
                continue
            values = {k: v for k, v in spec.items() if k != "owner"}
            chatbot = support_services.chatbot_create(owner=owner, **values)
            _key, raw = support_services.chatbot_api_key_create(chatbot=chatbot, name="demo")
            self.stdout.write(self.style.SUCCESS(f"{label}: created {chatbot.id}, API key (shown once): {raw}"))
        self.stdout.write(f"Chatbots: {Chatbot.objects.count()}")

    def _faqs(self) -> None:
        existing = set(FAQ.objects.filter(question__in=[q for _c, q, _a in DEMO_FAQS])
                       .values_list("question", flat=True))
        missing = [(order, spec) for order, spec in enumerate(DEMO_FAQS) if spec[1] not in existing]
        vectors: list[list[float]] = []
        if missing:
            from providers.embeddings import embed_texts

            self.stdout.write(f"Embedding {len(missing)} FAQs with all-MiniLM-L6-v2 ...")
            vectors = embed_texts([support_services.faq_embedding_text(question=q, answer=a)
                                   for _order, (_c, q, a) in missing])
        by_question = {spec[1]: vector for (_order, spec), vector in zip(missing, vectors, strict=True)}
        total = len(DEMO_FAQS)
        for index, (category, question, answer) in enumerate(DEMO_FAQS, start=1):
            if question not in by_question:
                self.stdout.write(f"[{index}/{total}] FAQ ({category}) {question!r}: exists")
                continue
            support_services.faq_create(question=question, answer=answer, category=category, order=index * 10,
                                        embedding=by_question[question])
            self.stdout.write(self.style.SUCCESS(f"[{index}/{total}] FAQ ({category}) {question!r}: created"))
        self.stdout.write(f"FAQs: {FAQ.objects.count()}")

    def _logs(self, users: dict[str, User]) -> None:
        demo = users["demo"]
        total = len(DEMO_LOGS)
        for index, spec in enumerate(DEMO_LOGS, start=1):
            label = f"[{index}/{total}] customer log {spec['title']!r}"
            if CustomerLog.objects.filter(user=demo, title=spec["title"]).exists():
                self.stdout.write(f"{label}: exists")
                continue
            support_services.customer_log_create(user=demo, **spec)
            self.stdout.write(self.style.SUCCESS(f"{label}: created"))
        self.stdout.write(f"Customer logs: {CustomerLog.objects.count()}")
