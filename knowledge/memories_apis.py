"""Seed 004's memory routes: thin DRF views over ``knowledge.memories_services``/``_selectors``.
Another user's memory is a 404; lists are bare arrays with the total in ``X-Total-Count``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from knowledge import memories_selectors as selectors
from knowledge import memories_services as services
from knowledge.memories_serializers import (
    MemoryCreateInput,
    MemoryListQuery,
    MemoryOutput,
    MemorySearchInput,
    MemorySearchOutput,
    MemoryUpdateInput,
)

TAGS = ["memories"]
TOTAL_HEADER = OpenApiParameter("X-Total-Count", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[200],
                                description="Total number of memories (the body is one page).")


def _valid(serializer_class, data: Any) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class MemoryListApi(APIView):
    @extend_schema(tags=TAGS, parameters=[MemoryListQuery, TOTAL_HEADER], responses={200: MemoryOutput(many=True)},
                   description="Your memories, newest first; `memory_type` filters. `limit` 1-100 (default 50).")
    def get(self, request: Request) -> Response:
        query = _valid(MemoryListQuery, request.query_params.dict())
        memories = selectors.memory_list(user=request.user, memory_type=query.get("memory_type"))
        limit, offset = query["limit"], query["offset"]
        return Response(MemoryOutput(memories[offset:offset + limit], many=True).data,
                        headers={"X-Total-Count": str(memories.count())})

    @extend_schema(tags=TAGS, request=MemoryCreateInput, responses={201: MemoryOutput},
                   description="Store a memory (embedded for search). `importance_score` 0-1 (default 0.5).")
    def post(self, request: Request) -> Response:
        data = _valid(MemoryCreateInput, request.data)
        memory = services.memory_create(user=request.user, **data)
        return Response(MemoryOutput(memory).data, status=status.HTTP_201_CREATED)


class MemoryDetailApi(APIView):
    @extend_schema(tags=TAGS, responses={200: MemoryOutput})
    def get(self, request: Request, memory_id: str) -> Response:
        return Response(MemoryOutput(selectors.memory_get(user=request.user, memory_id=memory_id)).data)

    @extend_schema(tags=TAGS, request=MemoryUpdateInput, responses={200: MemoryOutput},
                   description="Partial update of content (re-embedded), memory_type, importance_score, metadata.")
    def patch(self, request: Request, memory_id: str) -> Response:
        memory = selectors.memory_get(user=request.user, memory_id=memory_id)
        data = _valid(MemoryUpdateInput, request.data)
        return Response(MemoryOutput(services.memory_update(memory=memory, **data)).data)

    @extend_schema(tags=TAGS, request=None, responses={204: None})
    def delete(self, request: Request, memory_id: str) -> Response:
        services.memory_delete(memory=selectors.memory_get(user=request.user, memory_id=memory_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemorySearchApi(APIView):
    @extend_schema(tags=TAGS, request=MemorySearchInput, responses={200: MemorySearchOutput},
                   description="Your memories ranked by meaning: cosine similarity of MiniLM embeddings blended "
                               "with importance, recency and keyword match; best first.")
    def post(self, request: Request) -> Response:
        data = _valid(MemorySearchInput, request.data)
        hits = selectors.memory_search(user=request.user, query=data["query"], memory_type=data.get("memory_type"),
                                       limit=data["limit"])
        results = [{**MemoryOutput(h.memory).data, "score": h.score, "similarity": h.similarity} for h in hits]
        return Response(MemorySearchOutput({"query": data["query"], "results": results, "total": len(results)}).data)
