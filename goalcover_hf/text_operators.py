"""The deterministic corruption operators: each takes one field's text and returns a copy missing one capability.

Code goes through ``ast``/``tokenize``, prose through patterns. An operator returns its input unchanged when it has
nothing to remove (no docstring, no number, a single sentence); :mod:`goalcover_hf.corrupt` applies them to rows.

Example:
    >>> TEXT_OPERATORS["remove_numbers"]("Revenue rose 12% to $3.1 billion.")
    'Revenue rose to.'
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from typing import Callable


# ---- code ----------------------------------------------------------------------------------------------------------
def _cut_spans(source: str, spans: list[tuple[int, int, int, int]]) -> str:
    """Remove (line, col, end_line, end_col) spans (ast coordinates: 1-based lines, 0-based columns), last first."""
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    text = source
    for line, col, end_line, end_col in sorted(spans, reverse=True):
        start = offsets[line - 1] + col
        stop = offsets[end_line - 1] + end_col
        text = text[:start] + text[stop:]
    return text


def strip_docstrings(code: str) -> str:
    """Remove module, class and function docstrings (whole lines); the code must parse.

    Args:
        code (``str``): Python source.

    Returns:
        ``str``: the code without them (it must parse: a ``SyntaxError`` otherwise).
    """
    tree = ast.parse(code)
    lines = code.splitlines(keepends=True)
    drop: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                drop.update(range(first.lineno - 1, first.end_lineno))
    return "".join(line for k, line in enumerate(lines) if k not in drop)


def strip_comments(code: str) -> str:
    """Remove ``#`` comments (a line holding only a comment goes entirely); strings are left alone.

    Args:
        code (``str``): Python source.

    Returns:
        ``str``: the code without them.
    """
    lines = code.splitlines(keepends=True)
    cuts: dict[int, int] = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            cuts[tok.start[0] - 1] = tok.start[1]
    out = []
    for k, line in enumerate(lines):
        if k in cuts:
            kept = line[: cuts[k]].rstrip()
            if not kept:
                continue
            line = kept + ("\n" if line.endswith("\n") else "")
        out.append(line)
    return "".join(out)


_EXAMPLE_HEADER = re.compile(r"^\s*(for )?(examples?|usage)\s*:?\s*$", re.I)


def strip_doctests(code: str) -> str:
    """Remove doctest examples (``>>>`` lines and the output lines under them) and a bare "Example:" header.

    Args:
        code (``str``): Python source.

    Returns:
        ``str``: the code without them.
    """
    out, in_example, indent = [], False, 0
    for line in code.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith(">>>"):
            in_example, indent = True, len(line) - len(line.lstrip())
            continue
        if in_example:
            ends = (not stripped or stripped.startswith(('"""', "'''"))
                    or len(line) - len(line.lstrip()) < indent)
            if not ends:
                continue
            in_example = False
        out.append(line)
    if len(out) != len(code.splitlines()):
        out = [line for line in out if not _EXAMPLE_HEADER.match(line)]
    return "".join(out)


def strip_type_hints(code: str) -> str:
    """Remove argument and return annotations from function signatures; the code must parse.

    Args:
        code (``str``): Python source.

    Returns:
        ``str``: the code without them (it must parse: a ``SyntaxError`` otherwise).
    """
    tree = ast.parse(code)
    lines = code.splitlines(keepends=True)
    spans = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        a = node.args
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
            if arg is not None and arg.annotation is not None:
                # From just after the name to the annotation's end: drops ": List[int]".
                spans.append((arg.lineno, arg.col_offset + len(arg.arg), arg.annotation.end_lineno,
                              arg.annotation.end_col_offset))
        if node.returns is not None:
            line = lines[node.returns.lineno - 1]
            arrow = line.rfind("->", 0, node.returns.col_offset)
            start = len(line[:arrow].rstrip()) if arrow >= 0 else node.returns.col_offset
            spans.append((node.returns.lineno, start, node.returns.end_lineno, node.returns.end_col_offset))
    return _cut_spans(code, spans)


def stub_body(code: str) -> str:
    """Replace an implementation with ``pass`` (keeps the first line's indentation): the solution is gone.

    Args:
        code (``str``): Python source.

    Returns:
        ``str``: ``pass`` at the first line's indentation (``code`` itself when it is empty or already ``pass``).
    """
    first = next((line for line in code.splitlines() if line.strip()), "")
    if not first or first.strip() == "pass":
        return code
    return first[: len(first) - len(first.lstrip())] + "pass\n"


# ---- prose ---------------------------------------------------------------------------------------------------------
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_NUMBER = re.compile(
    r"(?:[$€£]\s?|(?<![\w.]))\d(?:[\d,]*\d)?(?:\.\d+)?(?:\s?(?:%|percent\b|per cent\b|million\b|billion\b|thousand\b|bn\b|mln\b))?"
)
_DOSE = re.compile(
    r"\b\d[\d,]*(?:\.\d+)?\s?(?:-|to)?\s?(?:\d[\d,]*(?:\.\d+)?\s?)?"
    r"(?:mg/kg|mg/m2|mg|mcg|µg|μg|micrograms?|milligrams?|grams?|g|ml|mL|units?|IU|tablets?|capsules?|drops?|puffs?)\b"
    r"|\b(?:once|twice|three times|four times)\s(?:a|per)\s(?:day|week)\b|\b(?:once|twice)\sdaily\b"
    r"|\bevery\s\d+(?:\s?(?:-|to)\s?\d+)?\s(?:hours?|hrs?|h)\b|\b(?:q\d+h|b\.?i\.?d\.?|t\.?i\.?d\.?|q\.?i\.?d\.?)(?=\s|$|[,;.])",
    re.I,
)
_CITATION = re.compile(
    r"\s?\((?:[^()]*?(?:et al\.?|\b(?:19|20)\d{2}\b)[^()]*)\)|\s?\[\d+(?:\s?[,–-]\s?\d+)*\]|\s?§+\s?[\d.()a-z]+", re.I
)
_AUX = ("can", "may", "will", "must", "should", "would", "could", "is", "are", "was", "were", "does", "do", "did",
        "has", "have")
_FLIP = {"cannot": "can", "not": ""} | {a: f"{a} not" for a in _AUX} | {"can": "cannot"}
# Contractions, with or without the apostrophe (some corpora strip it: "don t").
for _neg, _pos in {"don": "do", "doesn": "does", "didn": "did", "can": "can", "won": "will", "isn": "is",
                   "aren": "are", "wasn": "was", "weren": "were", "shouldn": "should", "mustn": "must"}.items():
    _FLIP[f"{_neg}'t"] = _FLIP[f"{_neg} t"] = _pos
_FLIP_WORD = re.compile(
    r"\b(?:(" + "|".join(_AUX) + r")\s+not|(" + "|".join(map(re.escape, sorted(_FLIP, key=len, reverse=True))) + r"))\b",
    re.I,
)


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r" +([.,;:!?%)])", r"\1", text)
    return re.sub(r"\(\s*\)", "", text).strip(" ")


def _remove(pattern: re.Pattern, text: str) -> str:
    # the text itself, untouched, when nothing matches: _tidy would still reflow its spacing
    return _tidy(pattern.sub("", text)) if pattern.search(text) else text


def sentences(text: str) -> list[str]:
    """Split prose into sentences (and lines).

    Args:
        text (``str``): prose.

    Returns:
        ``list[str]``: the non-blank sentences, in order.
    """
    return [s for s in _SENTENCE.split(text.strip()) if s.strip()]


def _separator(text: str) -> str:
    return "\n" if "\n" in text.strip() else " "


def remove_numbers(text: str) -> str:
    """Remove numbers with their unit or scale ("12%", "$3.1 billion", "60 days" keeps "days").

    Args:
        text (``str``): prose.

    Returns:
        ``str``: the text without them (``text`` itself when it has none).
    """
    return _remove(_NUMBER, text)


def alter_numbers(text: str) -> str:
    """Change every digit d to (d + 5) mod 10: same format, wrong figures ("$0.83" -> "$5.38").

    Args:
        text (``str``): prose.

    Returns:
        ``str``: the text with every digit changed.
    """
    return re.sub(r"\d", lambda m: str((int(m.group()) + 5) % 10), text)


def remove_dosage(text: str) -> str:
    """Remove dose amounts with units ("200 mg", "5-10 mL") and dosing frequencies ("twice daily", "every 6 hours").

    Args:
        text (``str``): prose.

    Returns:
        ``str``: the text without them (``text`` itself when it has none).
    """
    return _remove(_DOSE, text)


def drop_citations(text: str) -> str:
    """Remove citations: "(Smith et al., 2019)", "(WHO 2020)", "[3]", "[1, 2]", "§ 12(b)".

    Args:
        text (``str``): prose.

    Returns:
        ``str``: the text without them (``text`` itself when it has none).
    """
    return _remove(_CITATION, text)


def drop_last_sentence(text: str) -> str:
    """Drop the last sentence (or line); a one-sentence text is left as it is.

    Args:
        text (``str``): prose.

    Returns:
        ``str``: the text without its last sentence.
    """
    parts = sentences(text)
    return _separator(text).join(parts[:-1]) if len(parts) > 1 else text


def keep_first_sentence(text: str) -> str:
    """Keep only the first sentence (or line): every further point is gone.

    Args:
        text (``str``): prose.

    Returns:
        ``str``: the first sentence.
    """
    parts = sentences(text)
    return parts[0] if len(parts) > 1 else text


def negate(text: str) -> str:
    """Flip the first auxiliary or modal of every sentence ("can" -> "cannot", "is" -> "is not", "not" -> "").

    Args:
        text (``str``): prose.

    Returns:
        ``str``: the text with its claims reversed (``text`` itself when nothing can be flipped).
    """
    def flip(sentence: str) -> str:
        def repl(m):
            word = m.group(1) if m.group(1) else _FLIP[m.group(2).lower()]
            return word.capitalize() if m.group(0)[0].isupper() and word else word
        return _tidy(_FLIP_WORD.sub(repl, sentence, count=1))

    parts = sentences(text)
    return _separator(text).join(flip(s) for s in parts) if _FLIP_WORD.search(text) else text


def hedge(text: str) -> str:
    """Wrap the text in uncertainty: a plain statement becomes a guess.

    Args:
        text (``str``): prose.

    Returns:
        ``str``: the hedged text (``text`` itself when it is blank).
    """
    body = text.strip()
    if not body:
        return text
    return f"It is unclear, but perhaps {body[0].lower()}{body[1:]} This remains uncertain and may well be wrong."


def blank(text: str) -> str:
    """Empty the field (for a field that is the capability: a verdict, a label).

    Args:
        text (``str``): prose.

    Returns:
        ``str``: ``""``.
    """
    return ""


TEXT_OPERATORS: dict[str, Callable[[str], str]] = {
    f.__name__: f
    for f in (strip_docstrings, strip_comments, strip_doctests, strip_type_hints, stub_body, remove_numbers,
              alter_numbers, remove_dosage, drop_citations, drop_last_sentence, keep_first_sentence, negate, hedge,
              blank)
}
