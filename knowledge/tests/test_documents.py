"""Documents (seed 004): upload as JSON or multipart (text, Markdown, HTML, PDF), background
ingestion, owner scoping, limits, deletion, hybrid search (PostgreSQL full-text or SQLite FTS5),
chunking, and the reindex command. Real MiniLM embeddings throughout."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from knowledge import chunking, documents, retrieval
from knowledge.models import Chunk, Document

pytestmark = pytest.mark.django_db(transaction=True)

SEED_REQUEST = {"title": "API Documentation", "content": "# API Docs\n\nThis document describes the chat API.",
                "mime_type": "text/markdown", "metadata": {"source": "manual"}}
ZEBRA = ("# Zebras\n\nThe plains zebra named Quillon lives at the Harbourview wildlife park. "
         "Its keeper feeds it hay every morning.\n\n## Diet\n\nZebras graze on tall grasses.")
VOLCANO = "# Volcanoes\n\nMount Tambora erupted in 1815 and caused the year without a summer."


def pdf_bytes(text: str) -> bytes:
    """A one-page PDF showing ``text`` in Helvetica (objects and xref offsets written by hand)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = io.BytesIO(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


@pytest.fixture
def other_client(make_user, tokens_for) -> APIClient:
    bob = make_user("bob")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(bob)['access_token']}")
    client.user = bob
    return client


def upload(client: APIClient, **body) -> dict:
    response = client.post("/api/v1/documents", body, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def search(client: APIClient, query: str, **extra) -> list[dict]:
    response = client.post("/api/v1/documents/search", {"query": query, **extra}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_seed_upload_is_ingested_and_listed(auth_client, minilm):
    created = upload(auth_client, **SEED_REQUEST)
    assert created["title"] == "API Documentation" and created["mime_type"] == "text/markdown"
    assert created["metadata"] == {"source": "manual"} and created["id"].startswith("doc_")
    # Ingestion ran on commit (eager here): the document is ready with its chunks.
    detail = auth_client.get(f"/api/v1/documents/{created['id']}").json()
    assert detail["status"] == "ready" and detail["chunk_count"] == 1 and detail["error"] == ""
    chunk = Chunk.objects.get(document_id=created["id"])
    assert chunk.text == "API Docs\n\nThis document describes the chat API." and chunk.token_count > 5
    assert len(bytes(chunk.embedding)) == 384 * 4
    upload(auth_client, title="Second", content="Another text.")
    listed = auth_client.get("/api/v1/documents?limit=1&offset=0")
    assert listed.status_code == 200 and listed["X-Total-Count"] == "2"
    assert [d["title"] for d in listed.json()] == ["Second"]
    assert [d["title"] for d in auth_client.get("/api/v1/documents?limit=50&offset=1").json()] == ["API Documentation"]


def test_other_users_documents_are_invisible(auth_client, other_client, minilm):
    mine = upload(auth_client, title="Zebras", content=ZEBRA, mime_type="text/markdown")
    upload(other_client, title="Volcanoes", content=VOLCANO)
    assert other_client.get(f"/api/v1/documents/{mine['id']}").status_code == 404
    assert other_client.delete(f"/api/v1/documents/{mine['id']}").status_code == 404
    assert [d["title"] for d in other_client.get("/api/v1/documents").json()] == ["Volcanoes"]
    # Bob's search never returns Alice's chunks, even for her exact words.
    assert all(hit["title"] == "Volcanoes" for hit in search(other_client, "Quillon zebra Harbourview"))
    assert search(other_client, "Quillon zebra Harbourview", document_ids=[mine["id"]]) == []
    assert search(auth_client, "Quillon zebra Harbourview")[0]["document_id"] == mine["id"]


def test_deleted_document_is_gone_from_retrieval(auth_client, minilm):
    doc = upload(auth_client, title="Zebras", content=ZEBRA, mime_type="text/markdown")
    upload(auth_client, title="Volcanoes", content=VOLCANO)
    assert search(auth_client, "Quillon")[0]["document_id"] == doc["id"]
    assert auth_client.delete(f"/api/v1/documents/{doc['id']}").status_code == 204
    assert auth_client.get(f"/api/v1/documents/{doc['id']}").status_code == 404
    assert not Chunk.objects.filter(document_id=doc["id"]).exists()
    assert all(hit["document_id"] != doc["id"] for hit in search(auth_client, "Quillon zebra"))
    owner = Document.objects.get(title="Volcanoes").owner
    assert retrieval.keyword_search(owner=owner, query="Quillon") == []


def test_search_fuses_vector_and_keyword_rankings(auth_client, minilm):
    zebra = upload(auth_client, title="Zebras", content=ZEBRA, mime_type="text/markdown")
    upload(auth_client, title="Volcanoes", content=VOLCANO)
    # Paraphrase with no shared rare word: the vector ranking finds it.
    hits = search(auth_client, "What do striped horses eat?")
    assert hits[0]["document_id"] == zebra["id"] and hits[0]["similarity"] > 0.3
    # A rare name: the keyword ranking finds it too; the hit carries a snippet and its chunk index.
    hit = search(auth_client, "Tambora", limit=1)[0]
    assert hit["title"] == "Volcanoes" and "Tambora" in hit["snippet"] and hit["chunk_index"] == 0
    assert hit["score"] > 0


def test_multipart_html_upload(auth_client, minilm):
    html = (b"<html><head><title>t</title><script>var secret = 'xyzzy';</script></head><body>"
            b"<h1>Lighthouse</h1><p>The <b>Pelorus</b> lighthouse keeper climbs 212 steps.</p></body></html>")
    response = auth_client.post("/api/v1/documents", {
        "file": SimpleUploadedFile("../../etc/page.html", html, content_type="text/html"),
        "metadata": json.dumps({"source": "web"})}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["mime_type"] == "text/html" and body["status"] == "ready" and body["metadata"] == {"source": "web"}
    assert body["title"] == "page.html"  # a file name is a label only, never a path
    text = Chunk.objects.get(document_id=body["id"]).text
    assert text.startswith("Lighthouse\n\n") and "Pelorus lighthouse keeper climbs 212 steps." in text
    assert "xyzzy" not in text
    assert search(auth_client, "Pelorus")[0]["document_id"] == body["id"]


def test_multipart_pdf_upload(auth_client, minilm):
    response = auth_client.post("/api/v1/documents", {
        "file": SimpleUploadedFile("report.pdf", pdf_bytes("The Orinoco survey counted 4812 river dolphins."),
                                   content_type="application/octet-stream"),
        "title": "Survey"}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["mime_type"] == "application/pdf" and body["status"] == "ready" and body["title"] == "Survey"
    assert "Orinoco survey counted 4812 river dolphins" in Chunk.objects.get(document_id=body["id"]).text


def test_unreadable_pdf_fails_with_reason(auth_client):
    response = auth_client.post("/api/v1/documents", {
        "file": SimpleUploadedFile("broken.pdf", b"%PDF-1.4 this is not a pdf", content_type="application/pdf")},
        format="multipart")
    assert response.status_code == 202
    detail = auth_client.get(f"/api/v1/documents/{response.json()['id']}").json()
    assert detail["status"] == "failed" and detail["chunk_count"] == 0 and detail["error"]


def test_limits_and_bad_input(auth_client, settings):
    settings.DOCUMENT_MAX_BYTES = 100
    big = auth_client.post("/api/v1/documents", {"title": "Big", "content": "x" * 101}, format="json")
    assert big.status_code == 413 and big.json()["status_code"] == 413 and big.json()["details"]["max_bytes"] == 100
    big_file = auth_client.post("/api/v1/documents", {
        "file": SimpleUploadedFile("big.txt", b"y" * 500, content_type="text/plain")}, format="multipart")
    assert big_file.status_code == 413 and "file" in big_file.json()["details"]
    kind = auth_client.post("/api/v1/documents", {"title": "Img", "content": "abc", "mime_type": "image/png"},
                            format="json")
    assert kind.status_code == 400 and "mime_type" in kind.json()["details"]
    exe = auth_client.post("/api/v1/documents", {
        "file": SimpleUploadedFile("tool.exe", b"MZ..", content_type="application/x-msdownload")}, format="multipart")
    assert exe.status_code == 400 and "mime_type" in exe.json()["details"]
    unknown = auth_client.post("/api/v1/documents", {"title": "T", "content": "abc", "path": "/tmp/x"}, format="json")
    assert unknown.status_code == 400 and list(unknown.json()["details"]) == ["path"]
    blank = auth_client.post("/api/v1/documents", {"title": "T", "content": "   "}, format="json")
    assert 400 <= blank.status_code < 500
    assert auth_client.get("/api/v1/documents?limit=1000").status_code in (400, 422)
    assert Document.objects.count() == 0
    assert APIClient().get("/api/v1/documents").status_code == 401


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite FTS5 (embedded mode)")
def test_sqlite_fts5_table_follows_chunks(user, minilm):
    document = documents.document_create(owner=user, title="Z", data=ZEBRA.encode(), mime_type="text/markdown")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM knowledge_chunk_fts WHERE knowledge_chunk_fts MATCH 'quillon'")
        assert cursor.fetchone()[0] == 1
        # Porter stemming: "grazing" finds "graze".
        assert retrieval.keyword_search(owner=user, query="grazing") == [
            Chunk.objects.get(document=document, text__contains="graze").id]
        documents.document_delete(document=document)
        cursor.execute("SELECT count(*) FROM knowledge_chunk_fts WHERE knowledge_chunk_fts MATCH 'quillon'")
        assert cursor.fetchone()[0] == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL full-text (production mode)")
def test_postgresql_full_text_uses_gin_index(user, minilm):
    document = documents.document_create(owner=user, title="Z", data=ZEBRA.encode(), mime_type="text/markdown")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'knowledge_chunk_fts'")
        assert "gin" in cursor.fetchone()[0].lower()
    assert retrieval.keyword_search(owner=user, query="grazing") == [
        Chunk.objects.get(document=document, text__contains="graze").id]
    assert retrieval.keyword_search(owner=user, query="the of and") == []  # stop words only


def test_chunking_follows_headings_overlaps_and_bounds_tokens():
    paragraphs = "\n\n".join(f"Paragraph {i} talks about rivers, bridges and the boats that pass under them."
                             for i in range(30))
    text = f"Preface line.\n\n# Rivers\n\n{paragraphs}\n\n# Mountains\n\nSummits are cold."
    chunks = chunking.chunk_text(text, max_tokens=120, overlap_tokens=30)
    assert chunks[0].text == "Preface line."
    rivers = [c for c in chunks if c.text.startswith("Rivers\n\n")]
    assert len(rivers) > 2 and all(c.token_count <= 120 for c in chunks)
    # Overlap: each later chunk in a section starts with the previous chunk's last paragraph(s).
    for before, after in zip(rivers, rivers[1:], strict=False):
        previous, body = before.text.split("\n\n"), after.text.split("\n\n")[1:]
        assert body[0] in previous[2:] and previous[-1] in body[:3] and body[-1] not in previous
    assert chunks[-1].text == "Mountains\n\nSummits are cold."
    assert [c.index for c in chunks] == list(range(len(chunks)))
    # One giant paragraph is split by sentences, still within the bound.
    long = chunking.chunk_text(" ".join(["A sentence about clouds."] * 200), max_tokens=50)
    assert len(long) > 5 and all(c.token_count <= 50 for c in long)


def test_reindex_command(user, minilm):
    document = documents.document_create(owner=user, title="Z", data=ZEBRA.encode(), mime_type="text/markdown")
    before = set(Chunk.objects.filter(document=document).values_list("id", flat=True))
    Document.objects.filter(id=document.id).update(status=Document.Status.FAILED, error="old")
    out, err = io.StringIO(), io.StringIO()
    call_command("reindex_documents", "--failed", stdout=out, stderr=err)
    document.refresh_from_db()
    assert document.status == "ready" and document.error == "" and document.chunk_count == len(before)
    assert not before & set(Chunk.objects.filter(document=document).values_list("id", flat=True))
    assert "Reindexed 1 document(s); 0 failed." in out.getvalue() and "Reindexing documents" in err.getvalue()
