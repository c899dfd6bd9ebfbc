"""Document reads, owner-scoped (another user's document is a 404)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from chatplatform.api.exceptions import AppError
from knowledge.models import Document


def document_list(*, owner: Any, status: str | None = None) -> QuerySet[Document]:
    documents = Document.objects.filter(owner=owner).defer("source")
    return documents.filter(status=status) if status else documents


def document_get(*, owner: Any, document_id: str) -> Document:
    document = Document.objects.filter(owner=owner, id=document_id).defer("source").first()
    if document is None:
        raise AppError("Document not found.", status_code=404)
    return document
