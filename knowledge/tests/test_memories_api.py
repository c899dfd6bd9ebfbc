"""Seed 004's memory routes: CRUD, semantic search, owner scoping, validation."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.models import Memory

pytestmark = pytest.mark.django_db

URL = "/api/v1/memories"


def _create(client, content: str, **extra):
    response = client.post(URL, {"content": content, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_documented_create_then_list_get_patch_delete(auth_client, minilm):
    body = _create(auth_client, "User prefers dark mode", memory_type="preference", importance_score=0.8,
                   metadata={})
    assert body["content"] == "User prefers dark mode" and body["memory_type"] == "preference"
    assert body["importance_score"] == 0.8 and body["metadata"] == {} and body["id"].startswith("mem")
    stored = Memory.objects.get(id=body["id"])
    vector = np.frombuffer(stored.embedding, dtype=np.float32)
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-3
    _create(auth_client, "Lives in Lisbon")  # memory_type defaults to global

    listed = auth_client.get(f"{URL}?memory_type=global&limit=50&offset=0")
    assert listed.status_code == 200 and listed["X-Total-Count"] == "1"
    assert [m["content"] for m in listed.json()] == ["Lives in Lisbon"]
    assert auth_client.get(URL)["X-Total-Count"] == "2"
    assert len(auth_client.get(f"{URL}?limit=1&offset=1").json()) == 1

    assert auth_client.get(f"{URL}/{body['id']}").json()["content"] == "User prefers dark mode"
    patched = auth_client.patch(f"{URL}/{body['id']}", {"content": "User prefers light mode",
                                                         "importance_score": 0.3}, format="json")
    assert patched.status_code == 200 and patched.json()["importance_score"] == 0.3
    assert Memory.objects.get(id=body["id"]).embedding != stored.embedding  # re-embedded

    assert auth_client.delete(f"{URL}/{body['id']}").status_code == 204
    assert auth_client.get(f"{URL}/{body['id']}").status_code == 404


def test_search_ranks_a_paraphrase_above_unrelated_memories(auth_client, minilm):
    target = _create(auth_client, "User prefers dark mode in every application", memory_type="preference")
    for content in ("Has a dog called Rex", "Works as a civil engineer in Porto",
                    "Allergic to peanuts", "Favourite football club is Benfica"):
        _create(auth_client, content, memory_type="preference", importance_score=0.9)
    response = auth_client.post(f"{URL}/search", {"query": "likes a black background theme on screens",
                                                  "memory_type": "preference", "limit": 10}, format="json")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert results[0]["id"] == target["id"]
    assert results[0]["score"] > results[1]["score"] and results[0]["similarity"] > results[1]["similarity"]
    assert len(results) == 5 and response.json()["total"] == 5
    limited = auth_client.post(f"{URL}/search", {"query": "dark mode", "limit": 2}, format="json").json()
    assert len(limited["results"]) == 2 and limited["results"][0]["id"] == target["id"]
    other_type = auth_client.post(f"{URL}/search", {"query": "dark mode", "memory_type": "global"},
                                  format="json").json()
    assert other_type["results"] == []


def test_other_users_memories_never_appear(auth_client, make_user, tokens_for, minilm):
    from rest_framework.test import APIClient

    mine = _create(auth_client, "User prefers dark mode")
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(make_user('bob'))['access_token']}")
    _create(bob, "Bob prefers dark mode too")
    assert bob.get(f"{URL}/{mine['id']}").status_code == 404
    assert bob.patch(f"{URL}/{mine['id']}", {"content": "x"}, format="json").status_code == 404
    assert bob.delete(f"{URL}/{mine['id']}").status_code == 404
    assert [m["content"] for m in bob.get(URL).json()] == ["Bob prefers dark mode too"]
    found = bob.post(f"{URL}/search", {"query": "dark mode"}, format="json").json()["results"]
    assert [m["content"] for m in found] == ["Bob prefers dark mode too"]
    assert Memory.objects.filter(id=mine["id"]).exists()


@pytest.mark.parametrize("body, field", [
    ({"content": "x", "importance_score": 1.5}, "importance_score"),
    ({"content": "x", "importance_score": -0.1}, "importance_score"),
    ({"content": "x", "importance_score": "0.5"}, "importance_score"),
    ({"content": "x", "colour": "red"}, "colour"),
    ({"content": ""}, "content"),
    ({"content": 5}, "content"),
    ({"content": "x", "memory_type": "Not A Slug!"}, "memory_type"),
    ({"content": "x" * 10_001}, "content"),
    ({"importance_score": 0.5}, "content"),
])
def test_invalid_input_is_a_4xx_with_the_envelope(auth_client, body, field):
    response = auth_client.post(URL, body, format="json")
    assert 400 <= response.status_code < 500, response.content
    payload = response.json()
    assert field in payload["details"] and payload["request_id"] and payload["status_code"] == response.status_code
    assert not Memory.objects.exists()


def test_invalid_search_patch_and_list_queries(auth_client, minilm):
    memory = _create(auth_client, "Likes tea")
    assert auth_client.post(f"{URL}/search", {"query": "tea", "top_k": 3}, format="json").json()["details"] == {
        "top_k": ["Unknown field."]}
    assert auth_client.post(f"{URL}/search", {"query": "tea", "limit": 0}, format="json").status_code == 422
    assert auth_client.post(f"{URL}/search", {}, format="json").status_code == 422
    bad = auth_client.patch(f"{URL}/{memory['id']}", {"importance_score": 2}, format="json")
    assert bad.status_code == 422 and "importance_score" in bad.json()["details"]
    assert auth_client.get(f"{URL}?limit=500").status_code == 422
    assert auth_client.get(f"{URL}?sort=x").json()["details"] == {"sort": ["Unknown field."]}


def test_anonymous_callers_are_refused(api_client):
    assert api_client.get(URL).status_code == 401
    assert api_client.post(f"{URL}/search", {"query": "x"}, format="json").status_code == 401


def test_importance_and_recency_break_ties_of_equal_meaning(auth_client, user, minilm):
    from datetime import timedelta

    from django.utils import timezone

    low = _create(auth_client, "Prefers tea over coffee", importance_score=0.1)
    high = _create(auth_client, "Prefers tea over coffee", importance_score=0.9)
    old = _create(auth_client, "Prefers tea over coffee", importance_score=0.9)
    Memory.objects.filter(id=old["id"]).update(updated_at=timezone.now() - timedelta(days=365))
    results = auth_client.post(f"{URL}/search", {"query": "tea or coffee?"}, format="json").json()["results"]
    assert [r["id"] for r in results] == [high["id"], old["id"], low["id"]]
    assert results[0]["similarity"] == pytest.approx(results[2]["similarity"], abs=1e-5)
