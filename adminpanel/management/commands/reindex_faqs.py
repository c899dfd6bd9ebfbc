"""``manage.py reindex_faqs``: recompute FAQ embeddings (after a model change, or to catch up FAQs
a stopped worker left without one), here with a progress bar, or ``--background`` on a worker."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from support import services as support_services

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Recompute FAQ embeddings: every FAQ, or --missing-only; here, or --background on a Celery worker."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--missing-only", action="store_true", help="Only FAQs without an embedding.")
        parser.add_argument("--background", action="store_true",
                            help="Enqueue the re-index task for a Celery worker instead of running it here.")
        parser.add_argument("--batch-size", type=int, default=32, help="FAQs per model call (default 32).")

    def handle(self, *args, missing_only: bool = False, background: bool = False, batch_size: int = 32,
               **options) -> None:
        if background:
            support_services.faq_reindex_enqueue(only_missing=missing_only)
            self.stdout.write(self.style.SUCCESS("Queued the FAQ re-index for a Celery worker."))
            return
        written = support_services.faq_reindex(only_missing=missing_only, batch_size=max(1, batch_size),
                                               progress=self._progress)
        self.stdout.write(self.style.SUCCESS(f"Re-indexed {written} FAQs"))

    def _progress(self, done: int, total: int) -> None:
        filled = BAR_WIDTH * done // total
        self.stdout.write(f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")
