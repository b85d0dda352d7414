"""Turn a dataset row into the text the judge reads.

Formats are detected from the column names. A user template (Jinja, sandboxed) overrides detection.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from .errors import GoalcoverError

KNOWN_ROLES = {"system", "user", "assistant", "tool"}
TEXT_PARTS = {"text", "input_text", "output_text"}  # the part types of chat content that hold text
SKIPPED_PART = "[{type} part skipped]"  # what the judge reads in place of a part it cannot see


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


def _content_text(content: Any, turn: str) -> tuple[str, list[str]]:
    """A turn's text and the types of the parts left out of it.

    ``content`` is text, or a list of parts (``{"type": "text", "text": ...}``, ``{"type": "image", ...}``, ...) as
    in multimodal chat datasets: text parts are joined, and every other part is replaced by a visible
    ``[TYPE part skipped]`` so that the judge knows something was there.
    """
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise RowFormatError(f"{turn}.content is {type(content).__name__}, expected text or a list of parts")
    texts, skipped, has_text = [], [], False
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if not isinstance(kind, str) or not kind:
            raise RowFormatError(f"{turn}.content[{j}] is not a {{type, ...}} part (got {_describe(part)})")
        if kind in TEXT_PARTS:
            value = part.get("text")
            if not isinstance(value, str):
                raise RowFormatError(f"{turn}.content[{j}] is a text part whose 'text' is {_describe(value)}")
            texts.append(value)
            has_text = True
        else:
            texts.append(SKIPPED_PART.format(type=kind))
            skipped.append(kind)
    if not has_text:
        found = ", ".join(sorted(set(skipped))) or "none"
        raise RowFormatError(f"{turn}.content has no text part (parts: {found}); the judge reads text only")
    return "\n".join(texts), skipped


def _describe(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _messages_text(row: Mapping[str, Any]) -> tuple[str, list[str]]:
    """A chat row's text and the types of the non-text parts left out of it."""
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RowFormatError("field 'messages' is empty or not a list of {role, content}")
    parts, skipped = [], []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or "role" not in msg or "content" not in msg:
            raise RowFormatError(f"messages[{i}] is not a {{role, content}} mapping")
        role = msg["role"]
        if role not in KNOWN_ROLES:
            raise RowFormatError(f"messages[{i}].role {role!r} is unknown; expected one of {sorted(KNOWN_ROLES)}")
        text, left_out = _content_text(msg["content"], f"messages[{i}]")
        parts.append(f"{role.upper()}: {text}")
        skipped += left_out
    if not any(m["role"] == "assistant" for m in messages):
        raise RowFormatError("messages has no assistant turn: there is no response to judge")
    return "\n\n".join(parts), skipped


def _render_messages(row: Mapping[str, Any]) -> str:
    return _messages_text(row)[0]


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

    def skipped_parts(self, dataset: Any, batch_size: int = 1000) -> str | None:
        """Count, once and up front, the chat parts that are not text (images, audio, ...): the judge cannot see
        them, and reads ``[TYPE part skipped]`` in their place. Rows that cannot be read are left to their own errors.

        Args:
            dataset (``datasets.Dataset``): the rows to score.
            batch_size (``int``, defaults to 1000): rows read at a time.

        Returns:
            ``str`` or ``None``: a warning that says how many rows and parts of each type, or ``None`` when the
            layout is not ``messages`` or every part is text.

        Example:
            >>> RowRenderer(columns=ds.column_names).skipped_parts(ds)
            "1 of 2 rows hold chat parts that are not text (1 image); the judge cannot see them and reads '[image part skipped]' in their place"
        """
        if self.template_source is not None or self.format_name != "messages":
            return None
        kinds: Counter[str] = Counter()
        rows = total = 0
        for batch in dataset.select_columns(["messages"]).iter(batch_size=batch_size):
            for messages in batch["messages"]:
                total += 1
                try:
                    _, skipped = _messages_text({"messages": messages})
                except RowFormatError:
                    continue
                rows += bool(skipped)
                kinds.update(skipped)
        if not kinds:
            return None
        counts = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        marker = SKIPPED_PART.format(type=kinds.most_common(1)[0][0])
        return (f"{rows} of {total} rows hold chat parts that are not text ({counts}); the judge cannot see them "
                f"and reads {marker!r} in their place")

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
