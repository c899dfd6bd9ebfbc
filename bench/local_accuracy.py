"""Accuracy of the embedded ``local`` model on simple questions (facts, arithmetic, one-line
instructions), asked through the real ``LocalProvider.stream()``: the path a chat turn takes.

Each question is a new one-turn conversation, sent as a chat turn sends it when the client sets
nothing: no system prompt, no sampling parameters (the adapter's defaults apply) and the
``max_tokens`` a turn asks for unasked (a quarter of the model's context); options change these.
A reply is correct when its first non-empty line matches the question's pattern (a
case-insensitive regular expression); answers are never looked up, the model writes them.

Reruns agree: before each question the model's sampling seed is reset to ``--seed`` and its
evaluated state is cleared (llama-cpp-python derives each call's seed from the previous one and
reuses a shared prompt prefix), so a question's result does not depend on what ran before it.

Usage: ``python bench/local_accuracy.py`` (``--help`` for options). Needs no database and no
Django settings; the model is the one the adapter resolves (``LOCAL_MODEL_PATH`` is not read
here, pass ``--model-path`` for another GGUF). Prints one line per question and the accuracy;
``--json FILE`` also writes the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from providers.adapters import local  # noqa: E402
from providers.adapters.base import ChatMessage, ChatRequest, Finish, ProviderSettings, TextDelta, Usage  # noqa: E402
from providers.catalogue import CATALOGUE  # noqa: E402
from providers.params import GenerationParams  # noqa: E402

_MODEL = next(m for m in CATALOGUE if m["id"] == local.LOCAL_MODEL_ID)
# What a chat turn sends when the client sets no max_tokens (providers.services._request_for).
CHAT_MAX_TOKENS = min(_MODEL["context_length"] // 4, _MODEL["max_output_tokens"])


def number(value: int, word: str) -> str:
    """A pattern for a number in digits or words: "4." ends a sentence, but "-4", "44" and "4.5" are
    other numbers."""
    return rf"(?<![\d.-]){value}(?![\d]|[.,]\d)|\b{word}\b"


# (category, question, pattern the first line of the reply must match)
QUESTIONS: list[tuple[str, str, str]] = [
    ("fact", "What is the capital of France?", r"\bparis\b"),
    ("fact", "What is the capital of Japan?", r"\btokyo\b"),
    ("fact", "What is the capital of Italy?", r"\brome\b"),
    ("fact", "What is the capital of Germany?", r"\bberlin\b"),
    ("fact", "What is the capital of Spain?", r"\bmadrid\b"),
    ("fact", "What is the largest planet in our solar system?", r"\bjupiter\b"),
    ("fact", "What color is the sky on a clear day?", r"\bblue\b"),
    ("fact", "How many days are there in a week?", number(7, "seven")),
    ("fact", "How many legs does a spider have?", number(8, "eight")),
    ("fact", "What is the chemical formula of water?", r"\bh2o\b|h₂o"),
    ("fact", "Who wrote Romeo and Juliet?", r"\bshakespeare\b"),
    ("fact", "At what temperature in degrees Celsius does water freeze?", number(0, "zero")),
    ("fact", "What is the opposite of hot?", r"\bcold\b"),
    ("fact", "Which animal says moo?", r"\bcows?\b"),
    ("fact", "What is the largest ocean on Earth?", r"\bpacific\b(?! garbage)"),
    ("fact", "What language is spoken in Brazil?", r"\bportuguese\b"),
    ("fact", "How many continents are there?", number(7, "seven")),
    ("fact", "What is the currency of Japan?", r"\byen\b"),
    ("fact", "Who painted the Mona Lisa?", r"\bleonardo\b|\bda vinci\b"),
    ("fact", "How many hours are there in a day?", number(24, "twenty-four")),
    ("fact", "What day comes after Monday?", r"\btuesday\b"),
    ("arithmetic", "What is 2 + 2?", number(4, "four")),
    ("arithmetic", "What is 7 + 5?", number(12, "twelve")),
    ("arithmetic", "What is 10 minus 3?", number(7, "seven")),
    ("arithmetic", "What is 6 times 7?", number(42, "forty-two")),
    ("arithmetic", "What is 9 multiplied by 3?", number(27, "twenty-seven")),
    ("arithmetic", "What is 100 divided by 4?", number(25, "twenty-five")),
    ("arithmetic", "What is 15 plus 20?", number(35, "thirty-five")),
    ("arithmetic", "What is half of 50?", number(25, "twenty-five")),
    ("arithmetic", "What is 3 + 3?", number(6, "six")),
    ("instruction", "Say only the word yes.", r"^\W*yes\W*$"),
    ("instruction", "Reply with the word hello and nothing else.", r"^\W*hello\W*$"),
    ("instruction", "Repeat after me: blue sky.", r"^\W*blue sky\W*$"),
    ("instruction", "Answer with one word: what is frozen water called?", r"^\W*ice\W*$"),
    ("instruction", "Write the number twelve in digits.", r"^\D*12\D*$"),
    ("instruction", "Translate thank you into French.", r"\bmerci\b"),
    ("instruction", "Name one primary color.", r"\b(red|blue|yellow)\b"),
    ("instruction", "Write the word cat in capital letters.", r"(?-i:\bCAT\b)"),
    ("instruction", "Give me a word that rhymes with cat.", r"\b(bat|hat|mat|rat|sat|fat|pat|vat|chat|flat|that|gnat|brat|spat)\b"),
    ("instruction", "Answer yes or no: is the sun hot?", r"^\W*yes\b"),
]


@dataclass
class Result:
    category: str
    question: str
    pattern: str
    reply: str
    correct: bool
    prompt_tokens: int
    completion_tokens: int
    finish: str
    seconds: float


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def is_correct(reply: str, pattern: str) -> bool:
    return re.search(pattern, first_line(reply), re.IGNORECASE) is not None


def provider_settings(args: argparse.Namespace) -> ProviderSettings:
    extra: dict = {}
    if args.model_path:
        extra["model_path"] = args.model_path
    if args.threads:
        extra["n_threads"] = args.threads
    # The settings chat gives the local provider (providers.selectors), minus the database.
    return ProviderSettings(name="local", kind="local", default_model=local.LOCAL_MODEL_ID, timeout=300.0,
                            max_retries=0, extra=extra)


async def ask(provider: local.LocalProvider, question: str, args: argparse.Namespace) -> tuple[str, Usage, str]:
    request = ChatRequest(model=local.LOCAL_MODEL_ID, messages=[ChatMessage("user", question)], system=args.system,
                          params=GenerationParams(temperature=args.temperature, max_tokens=args.max_tokens or None))
    text: list[str] = []
    usage, finish = Usage(0, 0), ""
    async for event in provider.stream(request):
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, Usage):
            usage = event
        elif isinstance(event, Finish):
            finish = event.reason
    return "".join(text), usage, finish


async def run(args: argparse.Namespace) -> list[Result]:
    settings = provider_settings(args)
    provider = local.LocalProvider(settings)
    model = local.get_model(settings)
    results = []
    for number, (category, question, pattern) in enumerate(QUESTIONS, 1):
        if args.only and not re.search(args.only, question, re.IGNORECASE):
            continue
        while local.pending_generations():  # the previous job is still winding down on its thread
            await asyncio.sleep(0.01)
        model.llama.reset()
        model.llama.set_seed(args.seed)
        started = time.perf_counter()
        reply, usage, finish = await ask(provider, question, args)
        result = Result(category, question, pattern, reply, is_correct(reply, pattern), usage.prompt_tokens,
                        usage.completion_tokens, finish, round(time.perf_counter() - started, 3))
        results.append(result)
        mark = "ok " if result.correct else "BAD"
        shown = reply.replace("\n", "\\n")
        if len(shown) > 100:
            shown = shown[:97] + "..."
        print(f"{number:3d} {mark} [{category}] {question} -> {shown!r} ({usage.completion_tokens} tok, "
              f"{result.seconds:.1f}s)", flush=True)
    return results


def summary(results: list[Result]) -> dict:
    by_category: dict[str, list[int]] = {}
    for result in results:
        counts = by_category.setdefault(result.category, [0, 0])
        counts[0] += result.correct
        counts[1] += 1
    correct = sum(r.correct for r in results)
    return {
        "correct": correct, "total": len(results),
        "accuracy": round(correct / len(results), 4) if results else 0.0,
        "by_category": {k: {"correct": c, "total": t} for k, (c, t) in by_category.items()},
        "completion_tokens": sum(r.completion_tokens for r in results),
        "seconds": round(sum(r.seconds for r in results), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", default=None, help="system prompt for every question (default: none)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="request temperature (default: unset, the adapter's default applies)")
    parser.add_argument("--max-tokens", type=int, default=CHAT_MAX_TOKENS,
                        help=f"request max_tokens (default: {CHAT_MAX_TOKENS}, what a chat turn sends; "
                             "0: unset, the adapter's default applies)")
    parser.add_argument("--seed", type=int, default=1234, help="sampling seed set before each question")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: the adapter's)")
    parser.add_argument("--model-path", default=None, help="a GGUF file instead of the packaged model")
    parser.add_argument("--only", default=None, help="run only the questions matching this regular expression")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the results to FILE as JSON")
    args = parser.parse_args(argv)

    results = asyncio.run(run(args))
    report = summary(results)
    print(f"\naccuracy: {report['correct']}/{report['total']} ({report['accuracy']:.0%}); "
          + ", ".join(f"{k} {v['correct']}/{v['total']}" for k, v in report["by_category"].items())
          + f"; {report['completion_tokens']} tokens generated in {report['seconds']}s")
    if args.json:
        options = {k: getattr(args, k) for k in ("system", "temperature", "max_tokens", "seed", "threads", "model_path")}
        Path(args.json).write_text(json.dumps({"options": options, **report,
                                               "results": [asdict(r) for r in results]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
