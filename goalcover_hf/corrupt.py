"""Corruption operators: damage one capability in a copy of a row and keep everything else.

Deterministic operators (:mod:`goalcover_hf.text_operators`) work on one text field; the ``llm_rewrite`` operator
asks a model to rewrite the row's fields, schema-constrained to the row's format, so that it no longer shows one
subgoal. An operator is named ``NAME`` or ``NAME:FIELD[,FIELD...]``; without fields it changes the response column of
a detected layout (``answer``, ``output``, ``completion``, the assistant turns, ``text``).

An operator returns ``None`` for a row it cannot change (no docstring, no number, a single sentence): such rows are
not corrupted copies, and :mod:`goalcover_hf.validate` samples only rows an operator changes.

Example:
    >>> op = get_operator("remove_numbers:summary")
    >>> op.apply({"summary": "Revenue rose 12% to $3.1 billion."})
    {'summary': 'Revenue rose to.'}
"""

from __future__ import annotations

import json
import tokenize
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .errors import GoalcoverError
from .logging import get_logger
from .rowschema import TEXT, TextField, parse_row, row_json, row_schema
from .text_operators import TEXT_OPERATORS

logger = get_logger(__name__)

LLM_REWRITE = "llm_rewrite"
OPERATOR_NAMES = (*TEXT_OPERATORS, LLM_REWRITE)


# ---- operators on rows ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Operator:
    """A named corruption of some fields of a row.

    Args:
        name (``str``): a :data:`TEXT_OPERATORS` name or ``LLM_REWRITE``.
        fields (``tuple[str, ...]``): the columns to corrupt; empty: the layout's response column (see :meth:`bind`).
    """

    name: str
    fields: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        """The operator as written: ``NAME`` or ``NAME:FIELD,...``."""
        return self.name + (":" + ",".join(self.fields) if self.fields else "")

    @property
    def is_llm(self) -> bool:
        """Whether a model does the corruption (``llm_rewrite``)."""
        return self.name == LLM_REWRITE

    def bind(self, features: Mapping[str, Any]) -> "Operator":
        """Fill in the default field and check the fields exist.

        Args:
            features (``Mapping[str, Any]``): the dataset's ``features``.

        Returns:
            :class:`Operator`: with its fields; a :class:`GoalcoverError` names what to write instead.
        """
        from .formats import RowFormatError
        from .rowschema import response_field

        fields = self.fields
        if not fields:
            try:
                fields = (response_field(features),)
            except RowFormatError:
                raise GoalcoverError(
                    f"operator {self.name!r}: the rows have columns {sorted(features)} and no known layout, so name "
                    f"the column to corrupt, e.g. {self.name}:{next(iter(features))}"
                ) from None
        missing = [f for f in fields if f not in features]
        if missing:
            raise GoalcoverError(f"operator {self.spec!r}: no column {missing[0]!r}; columns: {sorted(features)}")
        return Operator(self.name, tuple(fields))

    def apply(self, row: Mapping[str, Any]) -> dict[str, Any] | None:
        """Corrupt one row with a text operator (a chat's assistant turns only).

        Args:
            row (``Mapping[str, Any]``): the row.

        Returns:
            ``dict`` or ``None``: a corrupted copy, or ``None`` when the operator changes nothing in it (or cannot
            read it).
        """
        if self.is_llm:
            raise TypeError("llm_rewrite needs a model: use corrupt_rows()")
        fn = TEXT_OPERATORS[self.name]
        out = dict(row)
        for name in self.fields:
            value = row.get(name)
            try:
                if isinstance(value, str):
                    out[name] = fn(value)
                elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                    out[name] = [fn(v) for v in value]
                elif isinstance(value, list):  # chat messages: corrupt the assistant turns only
                    out[name] = [dict(m, content=fn(m["content"])) if m.get("role") == "assistant" else m
                                 for m in value]
            except (SyntaxError, tokenize.TokenError, ValueError) as err:
                logger.debug("%s cannot read field %r: %s", self.name, name, err)
                return None
        return out if any(out[f] != row.get(f) for f in self.fields) else None


def get_operator(spec: str) -> Operator:
    """Parse an operator.

    Args:
        spec (``str``): ``NAME`` or ``NAME:FIELD[,FIELD]``.

    Returns:
        :class:`Operator`: unbound (see :meth:`Operator.bind`); a :class:`GoalcoverError` lists the operators there
        are.
    """
    name, _, fields = spec.strip().partition(":")
    if name not in OPERATOR_NAMES:
        raise GoalcoverError(f"unknown corruption operator {name!r}; available: {', '.join(OPERATOR_NAMES)}")
    return Operator(name, tuple(f.strip() for f in fields.split(",") if f.strip()))


def corrupt_rows(rows: Sequence[Mapping[str, Any]], operator: Operator, *, goal: str | None = None, subgoal=None,
                 text_fields: Sequence[TextField] | None = None, model: Any = "embedded",
                 max_new_tokens: int = 320, batch_size: int = 4) -> list[dict[str, Any] | None]:
    """Corrupt rows with an operator.

    ``llm_rewrite`` has the model rewrite only the operator's fields, keeping the rest of their content, under a
    schema of the rows' format.

    Args:
        rows (``Sequence[Mapping[str, Any]]``): the rows.
        operator (:class:`Operator`): a bound operator.
        goal (``str``, *optional*), subgoal (:class:`~goalcover_hf.spec.Subgoal`, *optional*): for
            ``llm_rewrite``: the goal, and the capability to remove.
        text_fields (``Sequence[TextField]``, *optional*): for ``llm_rewrite``: the rows' text fields (their kinds
            set the schema).
        model (``str`` or :class:`~goalcover_hf.engines.Engine`, defaults to ``"embedded"``): for ``llm_rewrite``:
            a model name for ``get_engine`` or an engine already loaded (e.g. the scorer's).
        max_new_tokens (``int``, defaults to 320), batch_size (``int``, defaults to 4): for ``llm_rewrite``.

    Returns:
        ``list``: per row, the corrupted copy, or ``None`` when the operator did not change it.
    """
    if not operator.is_llm:
        return [operator.apply(r) for r in rows]
    from .engines import get_engine
    from .prompts import load_prompt

    kinds = {f.name: f for f in (text_fields or [])}
    fields = [kinds.get(name, TextField(name, TEXT)) for name in operator.fields]
    schema = row_schema(fields)
    prompt = load_prompt("corrupt_v1")
    engine = get_engine(model) if isinstance(model, str) else model  # an Engine keeps its options (remote code)
    chats = [prompt.chat("user", goal=goal, name=subgoal.name, description=subgoal.description, high=subgoal.high,
                         row=json.dumps(row_json(r, fields), ensure_ascii=False, indent=1))
             for r in rows]
    out: list[dict[str, Any] | None] = []
    for start in range(0, len(chats), batch_size):
        raws = engine.generate_json(chats[start: start + batch_size], schema, max_new_tokens)
        for row, raw in zip(rows[start: start + batch_size], raws):
            try:
                new = dict(row) | parse_row(raw, schema, fields)
            except ValueError as err:
                logger.debug("llm_rewrite output invalid: %s", err)
                out.append(None)
                continue
            out.append(new if any(new[f.name] != row.get(f.name) for f in fields) else None)
    return out


__all__ = ["Operator", "get_operator", "corrupt_rows", "TEXT_OPERATORS", "OPERATOR_NAMES", "LLM_REWRITE"]
