"""Idempotent demo data: an admin and a demo user (other apps add their own sections).

Passwords are random and printed once, when a user is first created, unless
``SEED_DEMO_PASSWORD`` is set. Existing rows are left as they are; ``--reset`` deletes the demo
users (and, through cascades, what they own) first.
"""

from __future__ import annotations

import os
import secrets

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User

DEMO_USERS = [
    {"username": "admin", "email": "admin@example.com", "full_name": "Demo Admin", "is_staff": True,
     "is_superuser": True},
    {"username": "demo", "email": "demo@example.com", "full_name": "Demo User"},
]


class Command(BaseCommand):
    help = "Create demo users (and, from other apps, demo data). Safe to run repeatedly."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--reset", action="store_true", help="Delete the demo data first.")

    @transaction.atomic
    def handle(self, *args, reset: bool = False, **options) -> None:
        if reset:
            deleted, _ = User.objects.filter(username__in=[u["username"] for u in DEMO_USERS]).delete()
            self.stdout.write(f"Reset: deleted {deleted} rows")
        total = len(DEMO_USERS)
        for index, spec in enumerate(DEMO_USERS, start=1):
            user = User.objects.filter(username__iexact=spec["username"]).first()
            if user is not None:
                self.stdout.write(f"[{index}/{total}] user {spec['username']}: exists")
                continue
            password = os.environ.get("SEED_DEMO_PASSWORD") or secrets.token_urlsafe(12)
            user = User(**spec)
            user.set_password(password)
            user.save()
            self.stdout.write(self.style.SUCCESS(
                f"[{index}/{total}] user {spec['username']}: created (password: {password})"
            ))
        self.stdout.write(f"Users: {User.objects.count()}")
