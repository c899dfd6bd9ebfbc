"""The model catalogue shipped with the product (the models the seeds name, plus the local one).

Loaded by data migrations and by ``seed_data``; operators edit rows in the Django admin.
Costs are USD per 1,000 tokens (input, output). ``public`` models are the ones seed 001's open
routes offer anonymous callers: at least one inexpensive model of every provider kind.
"""

from __future__ import annotations

from decimal import Decimal

LOCAL_MODEL_ID = "gemma-3-270m"

CHAT = ["chat", "completion", "streaming"]
# Gateway capabilities: tool calling, JSON output (any object / against a schema), images in, and
# the OpenAI request parameters only some providers take (seed; presence/frequency penalties).
TOOLS = ["tools", "json_object", "json_schema"]
OPENAI_EXTRAS = ["seed", "penalties"]

CATALOGUE: list[dict] = [
    # OpenAI
    dict(id="gpt-3.5-turbo", provider="openai", upstream_name="gpt-3.5-turbo", name="GPT-3.5 Turbo",
         description="Fast, inexpensive model for simple tasks", context_length=16385, max_output_tokens=4096,
         capabilities=[*CHAT, "code", "tools", "json_object", *OPENAI_EXTRAS], input_cost_per_1k="0.0005", output_cost_per_1k="0.0015", public=True),
    dict(id="gpt-4", provider="openai", upstream_name="gpt-4", name="GPT-4",
         description="Most capable GPT-4 model", context_length=8192, max_output_tokens=8192,
         capabilities=[*CHAT, "code", "analysis", "tools", "json_object", *OPENAI_EXTRAS],
         input_cost_per_1k="0.03", output_cost_per_1k="0.06"),
    dict(id="gpt-4o", provider="openai", upstream_name="gpt-4o", name="GPT-4o",
         description="Multimodal flagship model", context_length=128000, max_output_tokens=16384,
         capabilities=[*CHAT, "code", "analysis", "vision", *TOOLS, *OPENAI_EXTRAS],
         input_cost_per_1k="0.0025", output_cost_per_1k="0.01"),
    dict(id="gpt-4o-mini", provider="openai", upstream_name="gpt-4o-mini", name="GPT-4o mini",
         description="Small, fast multimodal model", context_length=128000, max_output_tokens=16384,
         capabilities=[*CHAT, "code", "vision", *TOOLS, *OPENAI_EXTRAS], input_cost_per_1k="0.00015", output_cost_per_1k="0.0006",
         public=True),
    # Anthropic
    dict(id="claude-sonnet-4.5", provider="anthropic", upstream_name="claude-sonnet-4-5", name="Claude Sonnet 4.5",
         description="Claude Sonnet 4.5 (Anthropic)", context_length=200000, max_output_tokens=64000,
         capabilities=[*CHAT, "code", "analysis", "vision", "extended_thinking", *TOOLS],
         input_cost_per_1k="0.003",
         output_cost_per_1k="0.015", max_temperature=1.0),
    dict(id="claude-haiku-4.5", provider="anthropic", upstream_name="claude-haiku-4-5", name="Claude Haiku 4.5",
         description="Claude Haiku 4.5 (Anthropic): fast and inexpensive", context_length=200000,
         max_output_tokens=64000, capabilities=[*CHAT, "code", "vision", "extended_thinking", *TOOLS],
         input_cost_per_1k="0.001",
         output_cost_per_1k="0.005", max_temperature=1.0, public=True),
    dict(id="claude-opus-4.1", provider="anthropic", upstream_name="claude-opus-4-1", name="Claude Opus 4.1",
         description="Claude Opus 4.1 (Anthropic)", context_length=200000, max_output_tokens=32000,
         capabilities=[*CHAT, "code", "analysis", "vision", "extended_thinking", *TOOLS],
         input_cost_per_1k="0.015",
         output_cost_per_1k="0.075", max_temperature=1.0),
    # Google
    dict(id="gemini-2.5-flash", provider="gemini", upstream_name="gemini-2.5-flash", name="Gemini 2.5 Flash",
         description="Gemini 2.5 Flash (Google)", context_length=1048576, max_output_tokens=65536,
         capabilities=[*CHAT, "vision", "extended_thinking", "web_grounding", *TOOLS, *OPENAI_EXTRAS],
         input_cost_per_1k="0.0003",
         output_cost_per_1k="0.0025", public=True),
    dict(id="gemini-2.5-pro", provider="gemini", upstream_name="gemini-2.5-pro", name="Gemini 2.5 Pro",
         description="Gemini 2.5 Pro (Google)", context_length=1048576, max_output_tokens=65536,
         capabilities=[*CHAT, "code", "analysis", "vision", "extended_thinking", "web_grounding", *TOOLS,
                       *OPENAI_EXTRAS],
         input_cost_per_1k="0.00125", output_cost_per_1k="0.01"),
    dict(id="gemini-pro", provider="gemini", upstream_name="gemini-2.5-flash", name="Gemini Pro",
         description="Seed 000's gemini-pro; Google retired it, served by gemini-2.5-flash",
         context_length=1048576, max_output_tokens=8192, capabilities=[*CHAT, *TOOLS, *OPENAI_EXTRAS],
         input_cost_per_1k="0.0003", output_cost_per_1k="0.0025"),
    dict(id="gemini-pro-vision", provider="gemini", upstream_name="gemini-2.5-flash", name="Gemini Pro Vision",
         description="Seed 000's gemini-pro-vision; served by gemini-2.5-flash", context_length=1048576,
         max_output_tokens=8192, capabilities=[*CHAT, "vision", *TOOLS, *OPENAI_EXTRAS], input_cost_per_1k="0.0003",
         output_cost_per_1k="0.0025"),
    dict(id="gemma-7b", provider="gemini", upstream_name="gemma-3-12b-it", name="Gemma 7B",
         description="Gemma 7B (Google); the Gemini API serves the Gemma 3 12B successor", context_length=8192,
         max_output_tokens=8192, capabilities=CHAT),
    dict(id="gemma-2b", provider="gemini", upstream_name="gemma-3-4b-it", name="Gemma 2B",
         description="Gemma 2B (Google); the Gemini API serves the Gemma 3 4B successor", context_length=8192,
         max_output_tokens=8192, capabilities=CHAT),
    # Embedded
    dict(id=LOCAL_MODEL_ID, provider="local", upstream_name=LOCAL_MODEL_ID, name="Gemma 3 270M (local)",
         description="Runs on this server with llama.cpp; no API key needed", context_length=4096,
         max_output_tokens=1024, capabilities=CHAT, public=True, sort_order=10),
]


def sync_capabilities(model_class) -> int:
    """Add the catalogue's capabilities a stored model lacks (a capability the product gained);
    the capabilities an operator added stay."""
    changed = 0
    for spec in CATALOGUE:
        row = model_class.objects.filter(id=spec["id"]).first()
        if row is None:
            continue
        missing = [c for c in spec.get("capabilities", []) if c not in (row.capabilities or [])]
        if missing:
            row.capabilities = [*(row.capabilities or []), *missing]
            row.save(update_fields=["capabilities"])
            changed += 1
    return changed


def sync_catalogue(model_class) -> int:
    """Insert catalogue models that are missing; never overwrite an operator's edits."""
    created = 0
    for spec in CATALOGUE:
        values = dict(spec)
        for key in ("input_cost_per_1k", "output_cost_per_1k"):
            values[key] = Decimal(values.get(key, "0"))
        _, was_created = model_class.objects.get_or_create(id=values.pop("id"), defaults=values)
        created += int(was_created)
    return created
