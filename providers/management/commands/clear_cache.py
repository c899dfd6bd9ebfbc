"""``manage.py clear_cache``: delete response-cache entries (all, or those matching --pattern)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from providers import cache_services

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Clear the response cache: every entry, or those whose prompt or model contains --pattern."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--pattern", default="", help="Only entries whose prompt or model contains it.")

    def handle(self, *args, pattern: str = "", **options) -> None:
        cleared = cache_services.cache_clear(pattern=pattern, progress=self._progress)
        self.stdout.write(self.style.SUCCESS(f"Cleared {cleared} cache entries"))

    def _progress(self, done: int, total: int) -> None:
        filled = BAR_WIDTH * done // max(1, total)
        self.stdout.write(f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")
