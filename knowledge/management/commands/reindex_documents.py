"""``manage.py reindex_documents``: parse, chunk and embed documents again (after a chunking or
model change), with a progress bar."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from tqdm import tqdm

from knowledge import documents
from knowledge.models import Document


class Command(BaseCommand):
    help = "Re-ingest documents (all, one user's, failed ones, or the given ids) with a progress bar."

    def add_arguments(self, parser) -> None:
        parser.add_argument("ids", nargs="*", help="Document ids (default: all).")
        parser.add_argument("--user", help="Only this user's documents (id, email or username).")
        parser.add_argument("--failed", action="store_true", help="Only documents whose ingestion failed.")

    def handle(self, *args, ids: list[str], user: str | None, failed: bool, **options) -> None:
        found = Document.objects.order_by("created_at").only("id")
        if ids:
            found = found.filter(id__in=ids)
        if user:
            from django.db.models import Q

            found = found.filter(Q(owner__id=user) | Q(owner__email=user) | Q(owner__username=user))
        if failed:
            found = found.filter(status=Document.Status.FAILED)
        found = list(found)
        with tqdm(total=len(found), desc="Reindexing documents", unit="doc", file=self.stderr._out,
                  disable=options.get("verbosity", 1) == 0) as bar:
            outcome = documents.documents_reindex(documents=found, progress=lambda _document: bar.update(1))
        self.stdout.write(f"Reindexed {outcome[Document.Status.READY]} document(s); "
                          f"{outcome[Document.Status.FAILED]} failed.")
