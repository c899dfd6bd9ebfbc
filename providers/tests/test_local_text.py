"""Prompt and text shaping for the local model (no model needed)."""

from providers.adapters.base import ChatMessage, ChatRequest
from providers.adapters.local import _transcript, _WhitespaceTrimmer


def test_reply_whitespace_is_trimmed_while_streaming():
    trim = _WhitespaceTrimmer()
    chunks = [" ", " Hi", " there", "!\n", "\n", " More", "\n", " "]
    out = [trim(c) for c in chunks]
    assert "".join(out) == "Hi there!\n\n More"
    assert out[0] == "" and out[1] == "Hi"  # nothing emitted until text arrives


def test_transcript_prompt():
    request = ChatRequest(model="m", system="Be brief.", messages=[
        ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello."), ChatMessage("user", " Capital of France? ")])
    assert _transcript(request) == "Be brief.\n\nUser: Hi\nAssistant: Hello.\nUser: Capital of France?\nAssistant:"
