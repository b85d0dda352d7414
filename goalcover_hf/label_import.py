"""Importing labels given elsewhere (a spreadsheet, another tool) into a run's labels: CSV, JSONL or parquet.

All of a file or, on any bad line, none of it: every bad line is named with its field, and a pair the file labels both
ways, or differently from the run's own labels, is a conflict that says where the other label is.

Example:
    >>> result = import_labels(Labels.load(run_dir), "reviewed.csv", run.dataset, run.spec)
    >>> result.added, result.present
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data import json_object
from .labels import LABELS_FILE, Labels, LabelsError

_MAX_REPORTED = 10  # errors listed in one message before "... and N more"


class LabelImportError(LabelsError):
    """A file of labels to import with a bad line: unknown subgoal or row, a label that is not 0/1, a missing column."""


class LabelConflictError(LabelImportError):
    """The same (row, subgoal) pair labelled both 1 and 0, within the imported file or against the run's labels."""


@dataclass
class ImportResult:
    """What :func:`import_labels` did: labels added, and labels the run already had (same answer)."""

    added: int
    present: int


def _read_table(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], set[str] | None]:
    """The records of a CSV, JSONL or parquet file, each with where it is ("line 3"), and the columns when the format
    has a header."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise LabelImportError(f"{path}: no such file")
    if suffix == ".csv":
        import csv

        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = []
            for rec in reader:
                rows.append((f"line {reader.line_num}", {k: v for k, v in rec.items() if k is not None}))
            return rows, set(reader.fieldnames or [])
    if suffix in (".jsonl", ".json"):
        rows = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            rows.append((f"line {lineno}", json_object(line, f"{path}, line {lineno}", LabelImportError)))
        return rows, None
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return [(f"record {i}", rec) for i, rec in enumerate(table.to_pylist(), 1)], set(table.column_names)
    raise LabelImportError(f"{path}: unknown file type {path.suffix!r}; use .csv, .jsonl or .parquet")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and np.isnan(value))


def _as_int(value: Any) -> int | None:
    """An integer given as int, integral float or digits, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def import_labels(labels: Labels, file: str | os.PathLike, dataset, spec, id_column: str | None = None) -> ImportResult:
    """Add labels given elsewhere (CSV, JSONL or parquet) to a run's labels; all of them or, on any error, none.

    The file has a column ``subgoal`` (a subgoal id of ``spec``), ``label`` (1: supports, 0: does not) and either
    ``row`` (the 0-based row index) or ``id`` (the row's value in the dataset's id column).

    Args:
        labels: the run's :class:`Labels`.
        file: the file to import.
        dataset: the run's dataset (anything with ``len()`` and, for ``id``, ``dataset[id_column]``).
        spec: the run's :class:`~goalcover_hf.spec.GoalSpec`.
        id_column (`str`, *optional*): the dataset column the file's ``id`` values refer to (default: ``"id"``).

    Returns:
        :class:`ImportResult`.

    Raises:
        LabelImportError: a missing column, an unknown subgoal, row or id, a label that is not 0/1 (every bad line is
            named, with its field).
        LabelConflictError: a pair given both labels in the file, or a label that contradicts the run's.
    """
    path = Path(file)
    records, columns = _read_table(path)
    if columns is not None:
        missing = [repr(c) for c in ("subgoal", "label") if c not in columns]
        if "row" not in columns and "id" not in columns:
            missing.append("'row' or 'id'")
        if missing:
            raise LabelImportError(f"{path}: missing column {', '.join(missing)} "
                                   f"(columns: {', '.join(sorted(columns)) or 'none'})")
    ids = {s.id for s in spec.subgoals}
    size = len(dataset)
    id_rows: dict[str, list[int]] | None = None
    errors: list[str] = []
    conflicts: list[str] = []
    seen: dict[tuple[int, str], tuple[int, str]] = {}  # pair -> (label, where)
    new: list[dict[str, Any]] = []
    known = labels.pairs()
    present = 0
    for where, rec in records:
        fail = []
        sub = rec.get("subgoal")
        if _blank(sub):
            fail.append("missing field 'subgoal'")
        elif str(sub) not in ids:
            fail.append(f"field 'subgoal': unknown subgoal {sub!r} (ids: {', '.join(sorted(ids))})")
        label = rec.get("label")
        value = 1 if label is True else 0 if label is False else _as_int(label)
        if _blank(label):
            fail.append("missing field 'label'")
        elif value not in (0, 1):
            fail.append(f"field 'label': {label!r} is not 0 or 1 (1: supports, 0: does not)")
        row, row_id = None, rec.get("id")
        if not _blank(rec.get("row")):
            row = _as_int(rec["row"])
            if row is None or not 0 <= row < size:
                fail.append(f"field 'row': {rec['row']!r} is not a row of the dataset (0..{size - 1})")
                row = -1
        if not _blank(row_id):
            if id_rows is None:
                id_rows = _id_index(dataset, id_column, path)
            matches = id_rows.get(str(row_id), [])
            if not matches:
                fail.append(f"field 'id': unknown id {row_id!r} (no row has it in column {id_column or 'id'!r})")
            elif len(matches) > 1:
                fail.append(f"field 'id': id {row_id!r} is on {len(matches)} rows of the dataset; use 'row'")
            elif row is None:
                row = matches[0]
            elif row >= 0 and row != matches[0]:
                fail.append(f"fields 'row' and 'id' disagree: row {row}, but id {row_id!r} is row {matches[0]}")
        elif row is None:
            fail.append("missing field 'row' or 'id'")
        if fail:
            errors.extend(f"{path}, {where}: {f}" for f in fail)
            continue
        pair = (row, str(sub))
        if pair in seen:
            if seen[pair][0] != value:
                conflicts.append(f"{path}, {where}: row {row}, subgoal {sub!r} is labelled {value} here but "
                                 f"{seen[pair][0]} on {seen[pair][1]}")
            continue
        seen[pair] = (value, where)
        if pair in known:
            if known[pair] != value:
                conflicts.append(f"{path}, {where}: row {row}, subgoal {sub!r} is labelled {value} here but "
                                 f"{known[pair]} in the run's {LABELS_FILE}")
            else:
                present += 1
            continue
        new.append((row, str(sub), value, None if _blank(row_id) else row_id))
    for problems, kind in ((errors, LabelImportError), (conflicts, LabelConflictError)):
        if problems:
            more = f"\n  ... and {len(problems) - _MAX_REPORTED} more" if len(problems) > _MAX_REPORTED else ""
            raise kind(f"cannot import {path} (nothing was imported):\n  "
                       + "\n  ".join(problems[:_MAX_REPORTED]) + more)
    return ImportResult(added=labels.add_many(new, source="import"), present=present)


def _id_index(dataset, id_column: str | None, path: Path) -> dict[str, list[int]]:
    column = id_column or "id"
    names = getattr(dataset, "column_names", None) or []
    if column not in names:
        hint = "" if id_column else "; name the dataset's id column (id_column)"
        raise LabelImportError(f"{path}: the file names rows by 'id', but the dataset has no column {column!r} "
                               f"(columns: {', '.join(names)}){hint}")
    index: dict[str, list[int]] = {}
    for i, value in enumerate(dataset[column]):
        index.setdefault(str(value), []).append(i)
    return index
