"""Document retrieval: latency at 1k, 10k and 100k chunks, and recall@5 on a small labelled set.

Latency: one owner's chunks with synthetic unit vectors (384 float32) and short texts, in a fresh
database (a temporary SQLite file unless ``DATABASE_URL`` is set); each query runs the real
``knowledge.retrieval.hybrid_search`` (vectors read from the database, exact cosine in numpy,
keyword search, RRF) with a given query vector, so only retrieval is timed. The first search
reads the owner's vectors from the database (cold); later ones use the process's cached matrix,
checked against the database by one aggregate query per search. The numpy top-k alone
is timed too, to show where the time goes.

Recall@5: 12 short documents ingested for real (parse, chunk, MiniLM), 24 questions each labelled
with the phrase its answer chunk holds; a question scores when a chunk holding the phrase is in the
top 5. Reported for vector-only, keyword-only and hybrid rankings.

Usage: ``python bench/knowledge_retrieval.py [--sizes 1000,10000,100000] [--queries 30]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOCS = {
    "Lisbon office": "# Lisbon office\n\nThe Lisbon office wifi password is heron-teapot-42.\n\n"
                     "## Parking\n\nVisitors to Lisbon park on level minus two of the garage.",
    "Expense policy": "# Expenses\n\nMeals are reimbursed up to 45 euros per day when travelling.\n\n"
                      "## Receipts\n\nReceipts must be uploaded within 30 days of the purchase.",
    "Onboarding": "# Onboarding\n\nNew employees receive a laptop on their first morning.\n\n"
                  "## Mentors\n\nEvery newcomer is paired with a mentor for the first three months.",
    "Security": "# Security\n\nPasswords must be at least 14 characters long.\n\n"
                "## Incidents\n\nReport a lost badge to the security desk within one hour.",
    "Holidays": "# Holidays\n\nStaff get 25 days of paid leave per year.\n\n"
                "## Carry-over\n\nUp to five unused days carry over to the next year.",
    "Kitchen": "# Kitchen\n\nThe coffee machine is descaled every Friday afternoon.\n\n"
               "## Fridge\n\nThe fridge is emptied on the last working day of each month.",
    "Servers": "# Servers\n\nThe production database runs PostgreSQL 15 on two replicas.\n\n"
               "## Backups\n\nBackups are taken nightly at 02:00 UTC and kept for 35 days.",
    "Release process": "# Releases\n\nReleases ship every second Tuesday after the QA sign-off.\n\n"
                       "## Hotfixes\n\nA hotfix needs approval from two senior engineers.",
    "Zoo guide": "# Zebras\n\nThe plains zebra Quillon lives at Harbourview park and eats hay.\n\n"
                 "## Penguins\n\nThe penguins are fed sardines at noon.",
    "Volcanoes": "# Volcanoes\n\nMount Tambora erupted in 1815, causing the year without a summer.\n\n"
                 "## Iceland\n\nEyjafjallajokull erupted in 2010 and halted European air travel.",
    "Cooking": "# Bread\n\nSourdough needs a starter fed with flour and water.\n\n"
               "## Pasta\n\nFresh pasta cooks in about three minutes in salted water.",
    "Astronomy": "# Moon\n\nThe Moon is about 384,400 kilometres from Earth.\n\n"
                 "## Mars\n\nA day on Mars lasts 24 hours and 37 minutes.",
}
QUERIES = [
    ("What is the wifi password in Lisbon?", "heron-teapot-42"),
    ("Where should visitors park?", "level minus two"),
    ("How much can I spend on food per day on a trip?", "45 euros"),
    ("How long do I have to submit receipts?", "30 days of the purchase"),
    ("When do new hires get their computer?", "laptop"),
    ("Do newcomers get a mentor?", "mentor"),
    ("How long must a password be?", "14 characters"),
    ("I lost my badge, what do I do?", "lost badge"),
    ("How many vacation days do we get?", "25 days"),
    ("Can unused leave roll over?", "carry over"),
    ("When is the coffee machine cleaned?", "descaled"),
    ("When is the fridge cleared out?", "fridge is emptied"),
    ("Which database do we run in production?", "PostgreSQL 15"),
    ("How long are backups retained?", "35 days"),
    ("How often do we release?", "second Tuesday"),
    ("Who must approve a hotfix?", "two senior engineers"),
    ("What does the zebra eat?", "hay"),
    ("What do penguins get for lunch?", "sardines"),
    ("Which eruption caused a year without summer?", "Tambora"),
    ("Which volcano stopped flights in Europe?", "Eyjafjallajokull"),
    ("What does sourdough need?", "starter"),
    ("How long does fresh pasta take to cook?", "three minutes"),
    ("How far away is the Moon?", "384,400"),
    ("How long is a Martian day?", "37 minutes"),
]


def setup_django(db_path: str) -> None:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{db_path}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatplatform.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(sizes: list[int], queries: int) -> list[dict]:
    import numpy as np

    from accounts.models import User
    from knowledge import retrieval
    from knowledge.models import Chunk, Document

    rng = np.random.default_rng(7)
    words = ["river", "bridge", "policy", "server", "holiday", "coffee", "zebra", "volcano", "bread", "moon"]
    rows = []
    for size in sizes:
        user = User.objects.create(username=f"bench{size}", email=f"bench{size}@example.com")
        document = Document.objects.create(owner=user, title=f"bench {size}", mime_type="text/plain", source=b"",
                                           status=Document.Status.READY)
        vectors = rng.standard_normal((size, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        started = time.perf_counter()
        Chunk.objects.bulk_create([Chunk(document=document, index=i, text=f"chunk {i} about {words[i % 10]} "
                                         f"and {words[(i * 7) % 10]}", token_count=6, embedding=vectors[i].tobytes())
                                   for i in range(size)], batch_size=2000)
        load_s = time.perf_counter() - started
        query_vectors = rng.standard_normal((queries, 384)).astype(np.float32)
        query_vectors /= np.linalg.norm(query_vectors, axis=1, keepdims=True)
        full, vector_only, numpy_only = [], [], []
        t = time.perf_counter()
        retrieval.hybrid_search(owner=user, query="river policy", limit=5, query_vector=query_vectors[0].tolist())
        cold_ms = (time.perf_counter() - t) * 1000  # reads every vector from the database once
        for qv in query_vectors:
            t = time.perf_counter()
            retrieval.hybrid_search(owner=user, query="river policy", limit=5, query_vector=qv.tolist())
            full.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            retrieval.vector_search(owner=user, query_vector=qv.tolist())
            vector_only.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            retrieval.top_k(vectors, qv, 50)
            numpy_only.append((time.perf_counter() - t) * 1000)
        rows.append({"chunks": size, "insert_s": round(load_s, 1), "cold_ms": round(cold_ms, 1),
                     "hybrid_p50_ms": round(statistics.median(full), 2),
                     "hybrid_p95_ms": round(percentile(full, 0.95), 2),
                     "vector_p50_ms": round(statistics.median(vector_only), 2),
                     "numpy_topk_p50_ms": round(statistics.median(numpy_only), 3)})
        print(rows[-1], flush=True)
    return rows


def recall() -> dict:
    from accounts.models import User
    from knowledge import documents, retrieval
    from knowledge.models import Chunk
    from providers import embeddings

    user = User.objects.create(username="recall", email="recall@example.com")
    for title, text in DOCS.items():
        documents.document_ingest(document_id=documents.document_create(
            owner=user, title=title, data=text.encode(), mime_type="text/markdown").id)
    texts = dict(Chunk.objects.filter(document__owner=user).values_list("id", "text"))
    scores = {"vector": 0, "keyword": 0, "hybrid": 0}
    for question, phrase in QUERIES:
        vector = embeddings.embed_texts([question])[0]
        rankings = {
            "vector": [cid for cid, _ in retrieval.vector_search(owner=user, query_vector=vector, limit=5)],
            "keyword": retrieval.keyword_search(owner=user, query=question, limit=5),
            "hybrid": [h.chunk_id for h in retrieval.hybrid_search(owner=user, query=question, limit=5,
                                                                   query_vector=vector)],
        }
        for name, ids in rankings.items():
            scores[name] += any(phrase.lower() in texts[cid].lower() for cid in ids)
    return {name: round(hits / len(QUERIES), 3) for name, hits in scores.items()} | {"queries": len(QUERIES),
                                                                                      "chunks": len(texts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(str(Path(tmp) / "bench.sqlite3"))
        from django.db import connection

        print(f"database: {connection.vendor}", flush=True)
        rows = latency([int(s) for s in args.sizes.split(",")], args.queries)
        print({"recall@5": recall()}, flush=True)
        print("| chunks | first search (cold) ms | hybrid p50 ms | hybrid p95 ms | vector p50 ms | numpy top-k p50 ms |")
        for row in rows:
            print(f"| {row['chunks']} | {row['cold_ms']} | {row['hybrid_p50_ms']} | {row['hybrid_p95_ms']} | "
                  f"{row['vector_p50_ms']} | {row['numpy_topk_p50_ms']} |")


if __name__ == "__main__":
    main()
