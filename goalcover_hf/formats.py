"""Turn a dataset row into the text the judge reads.

Formats are detected from the column names. A user template (Jinja, sandboxed) overrides detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from .errors import GoalcoverError

KNOWN_ROLES = {"system", "user", "assistant", "tool"}


class RowFormatError(GoalcoverError):
    """A row (or a whole dataset) that cannot be turned into text; the message names the row and field."""


def _text(row: Mapping[str, Any], field: str, *, allow_empty: bool = False) -> str:
    value = row.get(field)
    if value is None:
        if allow_empty:
            return ""
        raise RowFormatError(f"field {field!r} is missing or None")
    if not isinstance(value, str):
        raise RowFormatError(f"field {field!r} is {type(value).__name__}, expected text")
    if not value.strip() and not allow_empty:
        raise RowFormatError(f"field {field!r} is empty")
    return value


def _render_messages(row: Mapping[str, Any]) -> str:
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RowFormatError("field 'messages' is empty or not a list of {role, content}")
    parts = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or "role" not in msg or "content" not in msg:
            raise RowFormatError(f"messages[{i}] is not a {{role, content}} mapping")
        role = msg["role"]
        if role not in KNOWN_ROLES:
            raise RowFormatError(f"messages[{i}].role {role!r} is unknown; expected one of {sorted(KNOWN_ROLES)}")
        content = msg["content"]
        if not isinstance(content, str):
            raise RowFormatError(f"messages[{i}].content is {type(content).__name__}, expected text")
        parts.append(f"{role.upper()}: {content}")
    if not any(m["role"] == "assistant" for m in messages):
        raise RowFormatError("messages has no assistant turn: there is no response to judge")
    return "\n\n".join(parts)


def _render_prompt_completion(row):
    return f"PROMPT: {_text(row, 'prompt')}\n\nCOMPLETION: {_text(row, 'completion')}"


def _render_instruction(row):
    text = f"INSTRUCTION: {_text(row, 'instruction')}"
    extra = _text(row, "input", allow_empty=True)
    if extra.strip():
        text += f"\n\nINPUT: {extra}"
    return text + f"\n\nOUTPUT: {_text(row, 'output')}"


def _render_qa(row):
    return f"QUESTION: {_text(row, 'question')}\n\nANSWER: {_text(row, 'answer')}"


def _render_text(row):
    return _text(row, "text")


@dataclass(frozen=True)
class RowFormat:
    """A known dataset layout.

    Attributes:
        name (``str``): e.g. ``"question_answer"``.
        columns (``tuple[str, ...]``): the columns that identify it.
        render (``Callable``): row -> the text the judge reads; a :class:`RowFormatError` names a bad field.
    """

    name: str
    columns: tuple[str, ...]
    render: Callable[[Mapping[str, Any]], str]


# Checked in order: the first whose columns are all present wins.
FORMATS = (
    RowFormat("messages", ("messages",), _render_messages),
    RowFormat("prompt_completion", ("prompt", "completion"), _render_prompt_completion),
    RowFormat("instruction", ("instruction", "output"), _render_instruction),
    RowFormat("question_answer", ("question", "answer"), _render_qa),
    RowFormat("text", ("text",), _render_text),
)

_SANDBOX = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


def detect_format(columns: list[str]) -> RowFormat:
    """Pick the row format from a dataset's column names.

    Args:
        columns (``list[str]``): the dataset's columns.

    Returns:
        :class:`RowFormat`: the first of :data:`FORMATS` whose columns are all there; a :class:`RowFormatError`
        lists the known layouts and suggests a template otherwise.
    """
    for fmt in FORMATS:
        if all(c in columns for c in fmt.columns):
            return fmt
    known = "; ".join(f"{f.name}: {', '.join(f.columns)}" for f in FORMATS)
    raise RowFormatError(
        f"cannot tell how to read rows with columns {sorted(columns)}. Known layouts ({known}). "
        "Pass a template instead, e.g. --template '{{ prompt }}\\n{{ canonical_solution }}'"
    )


class RowRenderer:
    """Renders rows with a detected format or a user template.

    Args:
        columns (``list[str]``, *optional*): the dataset's columns (for detection, and to check a template's names).
        template (``str``, *optional*): a Jinja template over the row's columns; replaces detection.

    Example:
        >>> RowRenderer(columns=["question", "answer"]).render({"question": "Q?", "answer": "A."})
        'QUESTION: Q?\\n\\nANSWER: A.'
    """

    def __init__(self, columns: list[str] | None = None, template: str | None = None):
        if template is None and columns is None:
            raise ValueError("give the dataset's columns or a template")
        self.template_source = template
        if template is not None:
            try:
                self._template = _SANDBOX.from_string(template)
            except TemplateError as err:
                raise RowFormatError(f"template is not valid Jinja: {err}") from None
            self.format_name = "template"
            if columns is not None:
                from jinja2 import meta

                used = meta.find_undeclared_variables(_SANDBOX.parse(template))
                missing = sorted(used - set(columns))
                if missing:
                    raise RowFormatError(
                        f"template uses column(s) {missing} that the data does not have; columns: {sorted(columns)}"
                    )
        else:
            self._format = detect_format(list(columns))
            self.format_name = self._format.name

    def check_features(self, features: Mapping[str, Any]) -> None:
        """Refuse, once and up front, a detected layout whose text columns hold something else (numbers, lists):
        every row would fail the same way. A column of nulls passes: those rows get their own errors.

        Args:
            features (``Mapping[str, Any]``): the dataset's ``features``.
        """
        if self.template_source is not None or self.format_name == "messages":
            return
        for column in self._format.columns:
            dtype = getattr(features.get(column), "dtype", None)
            if dtype not in ("string", "large_string", "null"):
                raise RowFormatError(
                    f"column {column!r} holds {dtype or type(features.get(column)).__name__}, not text; convert it to "
                    "text or pass --template to say how to turn a row into text"
                )

    def render(self, row: Mapping[str, Any]) -> str:
        """The text the judge reads for one row.

        Args:
            row (``Mapping[str, Any]``): the row.

        Returns:
            ``str``: never empty; a :class:`RowFormatError` names the field that stops it.
        """
        if self.template_source is not None:
            try:
                text = self._template.render(**row)
            except TemplateError as err:
                raise RowFormatError(f"template failed: {err}") from None
            if not text.strip():
                raise RowFormatError("template rendered to empty text")
            return text
        return self._format.render(row)
