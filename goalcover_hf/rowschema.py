"""The text fields of a dataset's rows, and an Outlines/pydantic schema that makes a model write rows of that shape.

Synthesis (new rows) and the LLM corruption operator (rewritten rows) both need the model to answer in the dataset's
own format: the same text columns, a chat as a list of ``{role, content}``, a list of passages as a list of strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal, Mapping, Sequence

from pydantic import BaseModel, Field, create_model

from .formats import RowFormatError, detect_format

TEXT, TEXT_LIST, MESSAGES = "text", "text_list", "messages"
DEFAULT_MAX_CHARS = 600  # per field: the schema's maxLength (large bounds make the automaton slow to build)


@dataclass(frozen=True)
class TextField:
    """A text column of a row.

    Attributes:
        name (``str``): the column.
        kind (``str``): ``TEXT`` (a string), ``TEXT_LIST`` (a list of strings) or ``MESSAGES`` (a chat).
    """

    name: str
    kind: str


def _kind(feature: Any) -> str | None:
    dtype = getattr(feature, "dtype", None)
    if dtype in ("string", "large_string"):
        return TEXT
    # datasets.List / Sequence / LargeList carry .feature; an older-style feature is a plain one-item list.
    inner = feature[0] if isinstance(feature, list) and feature else getattr(feature, "feature", None)
    if getattr(inner, "dtype", None) in ("string", "large_string"):
        return TEXT_LIST
    if isinstance(inner, Mapping) and {"role", "content"} <= set(inner):
        return MESSAGES
    return None


def text_fields(features: Mapping[str, Any], template: str | None = None) -> list[TextField]:
    """The text columns a row is judged on: those the template uses, or those of the detected layout.

    Args:
        features (``Mapping[str, Any]``): the dataset's ``features``.
        template (``str``, *optional*): the Jinja template rows are rendered with.

    Returns:
        ``list[TextField]``: a :class:`RowFormatError` names a column that is not text.

    Example:
        >>> from datasets import Features, Value
        >>> text_fields(Features({"id": Value("string"), "question": Value("string"), "answer": Value("string")}))
        [TextField(name='question', kind='text'), TextField(name='answer', kind='text')]
    """
    columns = list(features)
    if template is not None:
        from jinja2 import meta
        from jinja2.sandbox import SandboxedEnvironment

        used = meta.find_undeclared_variables(SandboxedEnvironment().parse(template))
        names = [c for c in columns if c in used]
    else:
        fmt = detect_format(columns)
        names = list(fmt.columns)
        if fmt.name == "instruction" and "input" in columns:
            names.insert(1, "input")
    fields = []
    for name in names:
        feature = features[name]
        kind = MESSAGES if name == "messages" else _kind(feature)
        if kind is None:
            raise RowFormatError(f"column {name!r} is {feature}, not text: it cannot be written by a model")
        fields.append(TextField(name, kind))
    if not fields:
        raise RowFormatError(f"the template uses none of the columns {columns}")
    return fields


def response_field(features: Mapping[str, Any]) -> str:
    """The column holding the response in a detected layout (what corruption operators change by default).

    Args:
        features (``Mapping[str, Any]``): the dataset's ``features`` (or just its column names).

    Returns:
        ``str``: e.g. ``"answer"`` for question/answer rows.
    """
    fmt = detect_format(list(features))
    return {"messages": "messages", "prompt_completion": "completion", "instruction": "output",
            "question_answer": "answer", "text": "text"}[fmt.name]


@lru_cache(maxsize=32)
def _schema(fields: tuple[TextField, ...], max_chars: int) -> type[BaseModel]:
    message = create_model("Message", role=(Literal["user", "assistant"], ...),
                           content=(Annotated[str, Field(min_length=1, max_length=max_chars)], ...))
    text = Annotated[str, Field(min_length=1, max_length=max_chars)]
    spec: dict[str, Any] = {}
    for f in fields:
        if f.kind == TEXT:
            spec[f.name] = (text, ...)
        elif f.kind == TEXT_LIST:
            spec[f.name] = (list[text], Field(min_length=1, max_length=4))
        else:
            spec[f.name] = (list[message], Field(min_length=2, max_length=2))
    return create_model("Row", **spec)


def row_schema(fields: Sequence[TextField], max_chars: int = DEFAULT_MAX_CHARS) -> type[BaseModel]:
    """A pydantic model with one field per text column (cached, so the engine compiles its automaton once).

    Args:
        fields (``Sequence[TextField]``): the columns.
        max_chars (``int``, defaults to ``DEFAULT_MAX_CHARS``): the maximum length of each string.

    Returns:
        ``type[BaseModel]``

    Example:
        >>> row_schema([TextField("question", "text"), TextField("answer", "text")]).model_json_schema()["required"]
        ['question', 'answer']
    """
    return _schema(tuple(fields), int(max_chars))


def parse_row(raw: str | None, schema: type[BaseModel], fields: Sequence[TextField]) -> dict[str, Any]:
    """Validate a generated row.

    Args:
        raw (``str`` or ``None``): the model's JSON output (``None``: the generation failed).
        schema (``type[BaseModel]``): from :func:`row_schema`.
        fields (``Sequence[TextField]``): the same columns.

    Returns:
        ``dict[str, Any]``: the fields as dataset values; a ``ValueError`` says why the output is not a row.
    """
    if raw is None:
        raise ValueError("generation failed")
    parsed = schema.model_validate_json(raw)
    out = {}
    for f in fields:
        value = getattr(parsed, f.name)
        if f.kind == MESSAGES:
            value = [{"role": m.role, "content": m.content} for m in value]
            if value[-1]["role"] != "assistant":
                raise ValueError("the last message is not the assistant's")
        out[f.name] = value
    return out


def row_json(row: Mapping[str, Any], fields: Sequence[TextField], max_chars: int = DEFAULT_MAX_CHARS) -> dict:
    """The text fields of a real row as shown to a model (style examples, rewrites).

    Args:
        row (``Mapping[str, Any]``): the row.
        fields (``Sequence[TextField]``): the columns to show.
        max_chars (``int``, defaults to ``DEFAULT_MAX_CHARS``): each string is cut to this length.

    Returns:
        ``dict``: one entry per field.
    """
    def cut(text):
        return text if len(text) <= max_chars else text[: max_chars - 3] + "..."

    out = {}
    for f in fields:
        value = row.get(f.name)
        if f.kind == TEXT:
            out[f.name] = cut(value or "")
        elif f.kind == TEXT_LIST:
            out[f.name] = [cut(v) for v in (value or [])][:4]
        else:
            out[f.name] = [{"role": m["role"], "content": cut(m["content"])} for m in (value or [])]
    return out
