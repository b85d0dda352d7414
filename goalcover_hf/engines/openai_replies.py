"""Reading an OpenAI-compatible server's replies: the answer apart from any reasoning, a JSON object, the first
token and its top logprobs."""

from __future__ import annotations

import json
import re

THINK = re.compile(r"<\|?/?(think|thinking|thought|reasoning)\b", re.IGNORECASE)  # a reasoning marker token
_THINK_END = re.compile(r"</(think|thinking|thought|reasoning)>", re.IGNORECASE)


def answer_text(text: str | None) -> str | None:
    """The answer in a reply's content: what follows the last ``</think>`` (or ``</thinking>``, ...) when the content
    is not JSON as it stands, i.e. when a reasoning block comes first."""
    if not text or json_object(text) is not None:
        return text
    ends = list(_THINK_END.finditer(text))
    return text[ends[-1].end():].strip() if ends else text


def strip_lengths(schema):
    """``schema`` without string length bounds (OpenAI's strict mode refuses them; the reply is validated after)."""
    if isinstance(schema, dict):
        return {k: strip_lengths(v) for k, v in schema.items() if k not in ("maxLength", "minLength")}
    if isinstance(schema, list):
        return [strip_lengths(v) for v in schema]
    return schema


def json_object(text: str | None) -> dict | None:
    """The first JSON object in a reply's text (after any reasoning block), or None."""
    try:
        # strict=False: some grammars (llama-cpp-python's) let raw newlines into strings; the content is still JSON.
        value = json.loads(text or "", strict=False)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def first_token(reply: dict) -> str | None:
    """The first generated token as the logprobs report it (chat format), else the reply's content."""
    choice = reply["choices"][0]
    content = (choice.get("logprobs") or {}).get("content")
    if content and isinstance(content[0], dict) and "token" in content[0]:
        return content[0]["token"]
    return (choice.get("message") or {}).get("content")


def top_logprobs(reply: dict) -> list[tuple[str, float]] | None:
    """``[(token, logprob)]`` for the first generated token, in the chat format or the legacy completions format."""
    try:
        logprobs = reply["choices"][0].get("logprobs") or {}
    except (KeyError, IndexError, AttributeError):
        return None
    content = logprobs.get("content")
    if content:
        return [(t["token"], float(t["logprob"])) for t in content[0].get("top_logprobs") or []] or None
    legacy = logprobs.get("top_logprobs")
    if legacy and isinstance(legacy[0], dict):
        return [(t, float(lp)) for t, lp in legacy[0].items()] or None
    return None
