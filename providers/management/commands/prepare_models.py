"""Prepare the embedded models ahead of the first request (``make run`` calls this).

Assembles the packaged local GGUF (or checks LOCAL_MODEL_PATH) and, with ``--load``, loads the
local model and the MiniLM embedder once so their load times are visible.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from providers.adapters.base import ProviderSettings
from providers.catalogue import LOCAL_MODEL_ID


class Command(BaseCommand):
    help = "Assemble/check the local model file (and optionally load the local and embedding models)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--load", action="store_true", help="Also load both models once.")

    def handle(self, *args, load: bool = False, **options) -> None:
        from providers.adapters import local

        steps = 3 if load else 1
        started = time.perf_counter()
        self.stdout.write(f"[1/{steps}] local model file ({LOCAL_MODEL_ID})...")
        try:
            path = local.resolve_model_path()
        except (FileNotFoundError, ImportError) as exc:
            raise CommandError(f"Local model unavailable: {exc}") from exc
        size_mb = path.stat().st_size / 1e6
        self.stdout.write(f"      {path} ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f}s")
        if not load:
            return
        started = time.perf_counter()
        self.stdout.write(f"[2/{steps}] loading the local model...")
        local.get_model(ProviderSettings(name="local", kind="local"))
        self.stdout.write(f"      loaded in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        self.stdout.write(f"[3/{steps}] loading the embedding model...")
        from providers import embeddings

        embeddings.embed_texts(["warm-up"])
        self.stdout.write(f"      loaded in {time.perf_counter() - started:.1f}s")
