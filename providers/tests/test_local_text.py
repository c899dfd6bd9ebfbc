"""Prompt and text shaping for the local model (no model needed)."""

import importlib.util
import sys
from pathlib import Path

from providers.adapters.base import ChatMessage, ChatRequest
from providers.adapters.local import (
    TRANSCRIPT_EXAMPLES,
    TRANSCRIPT_MAX_TOKENS,
    TRANSCRIPT_PREAMBLE,
    TRANSCRIPT_SAMPLING,
    TRANSCRIPT_STOPS,
    _transcript,
    _transcript_params,
    _WhitespaceTrimmer,
)
from providers.tests.requests import chat_request

BENCH = Path(__file__).resolve().parents[2] / "bench" / "local_accuracy.py"


def chat(*messages: ChatMessage, **kwargs) -> ChatRequest:
    return chat_request(model="m", messages=list(messages), **kwargs)


def test_reply_whitespace_is_trimmed_while_streaming():
    trim = _WhitespaceTrimmer()
    chunks = [" ", " Hi", " there", "!\n", "\n", " More", "\n", " "]
    out = [trim(c) for c in chunks]
    assert "".join(out) == "Hi there!\n\n More"
    assert out[0] == "" and out[1] == "Hi"  # nothing emitted until text arrives


def test_transcript_is_system_prompt_then_examples_then_conversation_then_cue():
    request = chat(ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello."),
                   ChatMessage("user", " Capital of France? "), system="Be brief.")
    examples = "".join(f"User: {q}\nAssistant: {a}\n" for q, a in TRANSCRIPT_EXAMPLES)
    assert _transcript(request) == (
        "Be brief.\n\n" + examples + "User: Hi\nAssistant: Hello.\nUser: Capital of France?\nAssistant:")


def test_transcript_without_a_system_prompt_starts_with_the_preamble():
    prompt = _transcript(chat(ChatMessage("user", "What is 2 + 2?")))
    assert prompt.startswith(TRANSCRIPT_PREAMBLE + "\n\nUser: ")
    assert prompt.endswith("\nUser: What is 2 + 2?\nAssistant:")
    # The few-shot block: a few short exchanges, each answer shorter than a line.
    assert 3 <= len(TRANSCRIPT_EXAMPLES) <= 8
    for question, answer in TRANSCRIPT_EXAMPLES:
        assert f"User: {question}\nAssistant: {answer}\n" in prompt
        assert "\n" not in answer and len(answer) < 80
        assert not any(stop in f"{answer}\n" for stop in TRANSCRIPT_STOPS)


def test_few_shot_examples_are_not_benchmark_questions(monkeypatch):
    spec = importlib.util.spec_from_file_location("local_accuracy", BENCH)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "local_accuracy", bench)  # dataclasses look their module up
    spec.loader.exec_module(bench)
    asked = {question.lower() for _, question, _ in bench.QUESTIONS}
    assert len(asked) >= 30
    assert not asked & {question.lower() for question, _ in TRANSCRIPT_EXAMPLES}


def test_transcript_stops_at_the_next_turn():
    params = _transcript_params(chat(ChatMessage("user", "Hi")), {})
    for marker in ("\nUser:", "\nuser:", "\nAssistant:", "<end_of_turn>"):
        assert marker in params["stop"]
    assert any(stop.strip("\n") == "" and stop.count("\n") >= 2 for stop in params["stop"])  # blank lines
    with_own = _transcript_params(chat(ChatMessage("user", "Hi"), stop=["END"]), {})
    assert with_own["stop"] == [*TRANSCRIPT_STOPS, "END"]


def test_transcript_sampling_defaults_apply_when_the_request_sets_none():
    params = _transcript_params(chat(ChatMessage("user", "Hi")), {})
    assert params["temperature"] == TRANSCRIPT_SAMPLING["temperature"] <= 0.3
    assert params["top_p"] == TRANSCRIPT_SAMPLING["top_p"] < 1
    assert params["top_k"] == TRANSCRIPT_SAMPLING["top_k"] <= 40
    assert params["repeat_penalty"] == TRANSCRIPT_SAMPLING["repeat_penalty"] > 1
    assert params["max_tokens"] == TRANSCRIPT_MAX_TOKENS <= 512
    assert params["stream"] is True


def test_request_parameters_win_over_extra_and_extra_over_defaults():
    extra = {"temperature": 0.5, "top_p": 0.7, "top_k": 5, "repeat_penalty": 1.05, "max_tokens": 99}
    from_extra = _transcript_params(chat(ChatMessage("user", "Hi")), extra)
    assert (from_extra["temperature"], from_extra["top_p"], from_extra["top_k"], from_extra["repeat_penalty"],
            from_extra["max_tokens"]) == (0.5, 0.7, 5, 1.05, 99)
    requested = _transcript_params(chat(ChatMessage("user", "Hi"), temperature=1.2, top_p=0.3, max_tokens=7), extra)
    assert (requested["temperature"], requested["top_p"], requested["max_tokens"]) == (1.2, 0.3, 7)
    # Zero is a setting, not "unset": greedy stays greedy.
    greedy = _transcript_params(chat(ChatMessage("user", "Hi"), temperature=0.0), {})
    assert greedy["temperature"] == 0.0
