"""``manage.py prune``: delete request-log rows and (when asked) conversations older than a cutoff."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from tqdm import tqdm

from adminpanel import services


class Command(BaseCommand):
    help = "Prune the request log (default REQUEST_LOG_RETENTION_DAYS) and, with --conversations, old conversations."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than", type=int, default=None, metavar="DAYS",
                            help="Age cutoff in days (default: the retention settings).")
        parser.add_argument("--conversations", action="store_true",
                            help="Also delete conversations not updated within the cutoff "
                                 "(default cutoff CONVERSATION_RETENTION_DAYS; 0 skips them).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would go; delete nothing.")

    def handle(self, *args, older_than: int | None = None, conversations: bool = False, dry_run: bool = False,
               **options) -> None:
        if older_than is not None and older_than < 0:
            self.stderr.write("--older-than must be 0 or more days")
            raise SystemExit(2)
        verb = "Would delete" if dry_run else "Deleted"
        with tqdm(desc="request log", unit="row", file=self.stderr, disable=dry_run) as bar:
            rows = services.request_log_prune(older_than_days=older_than, dry_run=dry_run,
                                              progress=_updater(bar))
        self.stdout.write(f"{verb} {rows} request-log rows")
        if conversations:
            with tqdm(desc="conversations", unit="conv", file=self.stderr, disable=dry_run) as bar:
                result = services.conversations_prune(older_than_days=older_than, dry_run=dry_run,
                                                      progress=_updater(bar))
            self.stdout.write(f"{verb} {result['conversations_deleted']} conversations")


def _updater(bar: tqdm):
    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
    return update
