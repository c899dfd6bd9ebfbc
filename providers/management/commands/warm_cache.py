"""``manage.py warm_cache``: store shared response-cache entries for common prompts, with a progress bar."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from providers import cache_services

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Warm the response cache: ask each model the prompts of each pattern once (shared entries)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("patterns", nargs="*", default=sorted(cache_services.PATTERN_PROMPTS),
                            help="Patterns (greeting, help, about) or literal prompts (default: all patterns).")
        parser.add_argument("--model", action="append", dest="models", default=[],
                            help="A catalogue model id (repeatable; default: the default model).")
        parser.add_argument("--limit", type=int, default=10, help="Prompts at most (default 10).")

    def handle(self, *args, patterns: list[str], models: list[str], limit: int, **options) -> None:
        result = cache_services.cache_warm(patterns=patterns, models=models, limit=max(1, limit),
                                           progress=self._progress)
        self.stdout.write(self.style.SUCCESS(
            f"Warmed {result['warmed']} of {result['total']} entries ({result['failed']} failed)"))

    def _progress(self, done: int, total: int) -> None:
        filled = BAR_WIDTH * done // max(1, total)
        self.stdout.write(f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")
