"""Seed 004's document routes: upload (JSON or multipart), list, read, delete, and hybrid search.
Thin: the work is :mod:`knowledge.documents`, :mod:`knowledge.documents_selectors` and
:mod:`knowledge.retrieval`."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatplatform.api.fields import validated_known
from knowledge import documents, documents_selectors, parsing, retrieval
from knowledge.documents_serializers import (
    DocumentCreateInput,
    DocumentListQuery,
    DocumentOutput,
    DocumentSearchInput,
    DocumentSearchOutput,
    DocumentUploadInput,
)

TAGS = ["Documents"]
TOTAL_HEADER = OpenApiParameter("X-Total-Count", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[200],
                                description="Total number of documents (the body is one page).")


def _valid(serializer_class, data) -> dict:
    return validated_known(serializer_class, data, what="field", code="UNSUPPORTED_FIELD")


class DocumentListApi(APIView):
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(tags=TAGS, parameters=[DocumentListQuery, TOTAL_HEADER], responses={200: DocumentOutput(many=True)},
                   description="Your documents, newest first (`limit` 1-100, default 50; `offset`).")
    def get(self, request: Request) -> Response:
        query = _valid(DocumentListQuery, request.query_params)
        found = documents_selectors.document_list(owner=request.user, status=query.get("status"))
        page = found[query["offset"]:query["offset"] + query["limit"]]
        return Response(DocumentOutput(page, many=True).data, headers={"X-Total-Count": str(found.count())})

    @extend_schema(tags=TAGS, request={"application/json": DocumentCreateInput,
                                       "multipart/form-data": DocumentUploadInput},
                   responses={202: DocumentOutput},
                   description="Upload a document: JSON `content` (seed 004) or a multipart `file` (text, Markdown, "
                               "HTML, PDF). It is parsed, chunked, embedded and indexed in the background: "
                               "`status` goes `pending` → `processing` → `ready` (or `failed`, with `error`). "
                               "Too large: 413; unsupported type or field: 400.")
    def post(self, request: Request) -> Response:
        if request.content_type.startswith("multipart/"):
            data = _valid(DocumentUploadInput, request.data)
            upload = data["file"]
            mime_type = (data.get("mime_type") or parsing.type_from_name(upload.name or "")
                         or (upload.content_type if upload.content_type != "application/octet-stream" else None)
                         or upload.content_type or "")
            raw = upload.read(documents.max_document_bytes() + 1)  # one byte over is enough to refuse (413)
            document = documents.document_create(owner=request.user, title=data.get("title") or upload.name,
                                                 data=raw, mime_type=mime_type, metadata=data["metadata"], field="file")
        else:
            data = _valid(DocumentCreateInput, request.data)
            document = documents.document_create(owner=request.user, title=data["title"],
                                                 data=data["content"].encode(), mime_type=data["mime_type"],
                                                 metadata=data["metadata"])
        document.refresh_from_db()
        return Response(DocumentOutput(document).data, status=status.HTTP_202_ACCEPTED)


class DocumentDetailApi(APIView):
    @extend_schema(tags=TAGS, responses={200: DocumentOutput})
    def get(self, request: Request, document_id: str) -> Response:
        return Response(DocumentOutput(documents_selectors.document_get(owner=request.user,
                                                                        document_id=document_id)).data)

    @extend_schema(tags=TAGS, request=None, responses={204: None},
                   description="Delete a document with its chunks, vectors and full-text entries.")
    def delete(self, request: Request, document_id: str) -> Response:
        document = documents_selectors.document_get(owner=request.user, document_id=document_id)
        documents.document_delete(document=document)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentSearchApi(APIView):
    @extend_schema(tags=TAGS, request=DocumentSearchInput, responses={200: DocumentSearchOutput},
                   description="Hybrid search over your ready documents: exact cosine similarity (MiniLM) and "
                               "keyword search fused by reciprocal rank.")
    def post(self, request: Request) -> Response:
        data = _valid(DocumentSearchInput, request.data)
        hits = retrieval.hybrid_search(owner=request.user, query=data["query"], limit=data["limit"],
                                       document_ids=data.get("document_ids"))
        results = [{"document_id": h.document_id, "title": h.title, "chunk_index": h.chunk_index, "score": h.score,
                    "snippet": h.snippet, "similarity": h.similarity, "text": h.text} for h in hits]
        return Response(DocumentSearchOutput({"query": data["query"], "results": results}).data)
