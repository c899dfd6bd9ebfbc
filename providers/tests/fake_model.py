"""A tiny, deterministic stand-in for a model's judgement, shared by the fake upstreams.

Each fake turns its provider's request into a :class:`Prompt` and its :class:`Answer` back into
that provider's wire format, so a test (or LangChain's standard suite) gets the behaviour it asks
for: when tools are offered (and not switched off) and the conversation does not end with a
tool's result, it calls one (the forced one, one named in the question, else the first), with
arguments made from its JSON Schema and the numbers and quoted words in the question; when a JSON
schema is asked for, it answers an instance of it (JSON mode: an object
with the keys the question names in quotes); after a tool result, it reports the result.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_INTEGER = re.compile(r"-?\d+")
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


@dataclass
class Prompt:
    question: str  # the last user text
    tools: list[dict] = field(default_factory=list)  # [{"name", "parameters"}]
    tool_choice: str | None = None  # "auto", "none", "required" or a tool name
    tool_result: str | None = None  # set when the conversation ends with a tool's result
    schema: dict | None = None  # a JSON Schema the answer must follow
    json_object: bool = False


@dataclass
class Answer:
    text: str = ""
    tool_calls: list[dict] = field(default_factory=list)  # [{"name", "arguments": dict}]


def respond(prompt: Prompt) -> Answer:
    if prompt.tools and prompt.tool_choice != "none" and prompt.tool_result is None:
        tool = _pick(prompt)
        return Answer(tool_calls=[{"name": tool["name"],
                                   "arguments": instance(tool.get("parameters") or {}, prompt.question)}])
    if prompt.schema is not None and not _any_object(prompt.schema):
        return Answer(text=json.dumps(instance(prompt.schema, prompt.question)))
    if prompt.json_object or prompt.schema is not None:  # JSON mode (any object will do)
        # Keys the question names in quotes ("... with 'setup' and 'punchline' keys"), else "answer".
        keys = _QUOTED.findall(prompt.question)
        return Answer(text=json.dumps({key: f"{key} text" for key in keys} if keys
                                      else {"answer": prompt.question[:80]}))
    if prompt.tool_result is not None:
        return Answer(text=f"The tool answered: {prompt.tool_result}")
    return Answer(text=f"You said: {prompt.question}" if prompt.question else "Hello!")


def _any_object(schema: dict) -> bool:
    """Whether any JSON object is valid (``{"type": "object"}``: how JSON mode reaches Anthropic)."""
    return (schema.get("type") == "object" and not schema.get("properties")
            and schema.get("additionalProperties", True) is not False)


def _pick(prompt: Prompt) -> dict:
    if prompt.tool_choice not in (None, "auto", "required", "none"):
        named = [t for t in prompt.tools if t["name"] == prompt.tool_choice]
        if named:
            return named[0]
    mentioned = [t for t in prompt.tools if t["name"] in prompt.question]
    return (mentioned or prompt.tools)[0]


def instance(schema: dict, text: str, defs: dict | None = None) -> Any:
    """A value valid against ``schema`` (the common subset: objects, arrays, scalars, enums,
    ``anyOf``/``oneOf``, local ``$ref``), filled from ``text`` where it can be."""
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    numbers = [int(n) for n in _INTEGER.findall(text)]
    words = _QUOTED.findall(text)
    return _value(schema, defs, numbers, words, "value")


def _value(schema: dict, defs: dict, numbers: list[int], words: list[str], name: str) -> Any:
    if "$ref" in schema:
        return _value(defs.get(schema["$ref"].split("/")[-1], {}), defs, numbers, words, name)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return _value(options[0], defs, numbers, words, name)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        return {key: _value(sub, defs, numbers, words, key) for key, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [_value(schema.get("items") or {"type": "string"}, defs, numbers, words, name)]
    if kind == "integer":
        return numbers.pop(0) if numbers else 1
    if kind == "number":
        return float(numbers.pop(0)) if numbers else 1.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return words.pop(0) if words else f"{name} text"
