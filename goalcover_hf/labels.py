"""Human labels: a person's yes/no on whether a sample supports a subgoal, kept beside a run in ``RUN/labels.jsonl``.

The file is a journal: every answer is appended (and flushed to disk) the moment it is given, an undo appends an undo
record, and nothing already written is ever rewritten, so a session ended by Ctrl-C, end of input or ``kill -9`` keeps
every answer given. The latest label of a (row, subgoal) pair is the one that counts.

Example:
    >>> labels = Labels.load("runs/medqa")  # RUN/labels.jsonl; empty if there is none yet
    >>> labels.add(row=17, subgoal="states_dose", label=1)
    >>> labels.pairs()
    {(17, 'states_dose'): 1}
"""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .calibration import score_strata
from .errors import GoalcoverError
from .logging import get_logger

logger = get_logger(__name__)

LABELS_FILE = "labels.jsonl"
SOURCES = ("session", "import")
CUT_SHORT = "cut_short"  # key of the record that marks the line before it as a write cut short
MIN_PER_LEVEL = 1  # labels every score level the rows reach gets, whatever its size


class LabelsError(GoalcoverError):
    """A labels file that cannot be read, or a label that cannot be kept; the message names the file and line."""


def _record(row: int, subgoal: str, label: int, source: str, id: Any = None) -> dict[str, Any]:
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or row < 0:
        raise LabelsError(f"row must be a row index (an integer >= 0), not {row!r}")
    if label not in (0, 1) or isinstance(label, float):
        raise LabelsError(f"label must be 1 (supports) or 0 (does not), not {label!r}")
    if source not in SOURCES:
        raise LabelsError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    rec = {"row": int(row), "subgoal": str(subgoal), "label": int(label), "source": source}
    if id is not None:
        rec["id"] = id.item() if isinstance(id, np.generic) else id
    rec["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return rec


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """A line of labels.jsonl as (record, None), (None, why it is not one), or (None, None) when blank."""
    if not raw.strip():
        return None, None
    try:
        rec = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"not valid JSON ({err})"
    problem = _check_line(rec)
    return (None, problem) if problem else (rec, None)


def _check_line(rec: Any) -> str | None:
    """Why a parsed line of labels.jsonl is not a record, or None."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    if CUT_SHORT in rec:
        return None
    if "undo" in rec:
        target = rec["undo"]
        if not (isinstance(target, dict) and {"row", "subgoal", "label"} <= set(target)):
            return "an undo record without the row, subgoal and label it undoes"
        return None
    for key in ("row", "subgoal", "label"):
        if key not in rec:
            return f"missing field {key!r}"
    if isinstance(rec["row"], bool) or not isinstance(rec["row"], int) or rec["row"] < 0:
        return f"field 'row' must be an integer >= 0, not {rec['row']!r}"
    if not isinstance(rec["subgoal"], str):
        return f"field 'subgoal' must be a string, not {rec['subgoal']!r}"
    if isinstance(rec["label"], bool) or rec["label"] not in (0, 1):
        return f"field 'label' must be 0 or 1, not {rec['label']!r}"
    return None


class Labels:
    """The human labels of one run, appended to ``path`` as they are given.

    Args:
        path (*optional*): the journal file (``RUN/labels.jsonl``); None keeps labels in memory until :meth:`save`.

    Example:
        >>> labels = Labels.load("runs/medqa")
        >>> labels.add(3, "states_dose", 0)
        >>> labels.undo()
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else None
        self._records: list[dict[str, Any]] = []  # every label and undo record, in order
        self._pending: list[dict[str, Any]] = []  # records not yet written to a file

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Labels":
        """Read a run's labels: ``path`` is the run folder or its labels file (missing: no labels yet).

        A line cut short by a kill (the last line, or one marked so when the next label was written) is skipped;
        any other line that is not a label record is an error naming the file and line.
        """
        path = Path(path)
        if path.suffix != ".jsonl":  # a run folder
            if not path.is_dir():
                raise LabelsError(f"{path}: no such run folder (labels live in RUN/{LABELS_FILE})")
            path = path / LABELS_FILE
        labels = cls(path)
        if not path.exists():
            return labels
        lines = path.read_bytes().split(b"\n")
        parsed = [_parse(raw) for raw in lines]
        for lineno, (rec, problem) in enumerate(parsed, 1):
            if rec is None and problem is None:
                continue
            if problem:
                if lineno == len(lines):  # no newline after it: a write cut short, never a finished record
                    logger.warning(f"{path}, line {lineno}: an unfinished last line (the labelling was killed while "
                                   f"writing it); ignored")
                    continue
                if lineno < len(parsed) and CUT_SHORT in (parsed[lineno][0] or {}):
                    continue  # marked when the next label was written
                raise LabelsError(f"{path}, line {lineno}: {problem}; fix or remove that line")
            if CUT_SHORT not in rec:
                labels._records.append(rec)
        return labels

    def _write(self, records: list[dict[str, Any]]) -> None:
        if self.path is None:
            self._pending.extend(records)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with open(self.path, "ab") as fh:
            if fh.tell() > 0:
                with open(self.path, "rb") as tail:
                    tail.seek(-1, os.SEEK_END)
                    if tail.read(1) != b"\n":  # a line cut short by a kill: never glue a record onto it
                        prefix = "\n"
                        if _parse(self.path.read_bytes().rsplit(b"\n", 1)[-1])[1]:  # and say it is no record
                            prefix += json.dumps({CUT_SHORT: "the line above was cut short by a kill; ignored"}) + "\n"
                        text = prefix + text
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        if new and hasattr(os, "O_DIRECTORY"):  # the new file's directory entry must survive a crash too
            fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def add(self, row: int, subgoal: str, label: int, source: str = "session", id: Any = None) -> dict[str, Any]:
        """Record a label (written to disk before this returns when the labels have a file).

        Args:
            row: the dataset row index (0-based).
            subgoal: the subgoal id.
            label: 1 if the sample supports the subgoal, 0 if not.
            source (`str`, defaults to ``"session"``): ``"session"`` or ``"import"``.
            id (*optional*): the row's value in the dataset's id column, kept so the label can be matched again.

        Returns:
            The record written.
        """
        rec = _record(row, subgoal, label, source, id)
        self._write([rec])
        self._records.append(rec)
        return rec

    def add_many(self, items: Iterable[tuple[int, str, int, Any]], source: str = "import") -> int:
        """Record several labels, (row, subgoal, label, id) each, with one write: all of them or, if one is not
        valid, none.

        Returns:
            How many were added.
        """
        records = [_record(row, subgoal, label, source, id) for row, subgoal, label, id in items]
        if records:
            self._write(records)
            self._records.extend(records)
        return len(records)

    def _active(self) -> list[dict[str, Any]]:
        """The label records not undone, in order."""
        active: list[dict[str, Any]] = []
        for rec in self._records:
            if "undo" not in rec:
                active.append(rec)
                continue
            target = rec["undo"]
            for i in range(len(active) - 1, -1, -1):
                a = active[i]
                if (a["row"], a["subgoal"], a["label"]) == (target["row"], target["subgoal"], target["label"]):
                    del active[i]
                    break
        return active

    def undo(self, source: str | None = None) -> dict[str, Any] | None:
        """Take back the latest label (of ``source``, if given) by appending an undo record.

        Returns:
            The label record undone, or None when there is none.
        """
        active = [r for r in self._active() if source is None or r.get("source") == source]
        if not active:
            return None
        last = active[-1]
        self._write([{"undo": {k: last[k] for k in ("row", "subgoal", "label")},
                      "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}])
        self._records.append({"undo": {k: last[k] for k in ("row", "subgoal", "label")}})
        return last

    def save(self, path: str | os.PathLike | None = None) -> int:
        """Append the labels not yet on disk to ``path`` (default: the labels' own file); never rewrites a line.

        Returns:
            How many records were written (0: everything was already saved).
        """
        if path is not None:
            self.path = Path(path) if Path(path).suffix == ".jsonl" else Path(path) / LABELS_FILE
        if self.path is None:
            raise LabelsError("these labels have no file yet: save(path) with the run folder or its labels.jsonl")
        pending, self._pending = self._pending, []
        if pending:
            self._write(pending)
        return len(pending)

    def pairs(self) -> dict[tuple[int, str], int]:
        """The latest label of each (row, subgoal) pair."""
        return {(r["row"], r["subgoal"]): r["label"] for r in self._active()}

    def for_subgoal(self, subgoal: str) -> dict[int, int]:
        """row -> latest label, for one subgoal."""
        return {row: label for (row, sub), label in self.pairs().items() if sub == subgoal}

    def __len__(self) -> int:
        return len(self.pairs())


def _allocate(sizes: Sequence[int], total: int) -> list[int]:
    """Split ``total`` labels over strata of ``sizes`` rows: ``MIN_PER_LEVEL`` each (every score level is seen), the
    rest so that each stratum's count comes as close as it can to its share of the rows, never more than it holds.

    Proportional allocation: each label stands for about as many rows as any other, the most precise split while
    nothing is known yet of how much the strata vary; labels spent on oversampling small strata are lost to the rest.
    """
    total = min(total, sum(sizes))
    share = [total * s / sum(sizes) for s in sizes]
    alloc = [min(MIN_PER_LEVEL, s) for s in sizes]
    while sum(alloc) > total:  # fewer labels than levels: the levels furthest above their share go without
        over = max((i for i, a in enumerate(alloc) if a), key=lambda i: (alloc[i] - share[i], -sizes[i]))
        alloc[over] -= 1
    while sum(alloc) < total:
        room = [i for i, s in enumerate(sizes) if alloc[i] < s]
        best = max(room, key=lambda i: (share[i] - alloc[i], sizes[i]))
        alloc[best] += 1
    return alloc


def pick_pairs(
    scores_by_subgoal: Mapping[str, Sequence[float | None]],
    per_subgoal: int,
    seed: int = 0,
    already: Mapping[tuple[int, str], int] | Iterable[tuple[int, str]] = (),
    row_ids: Sequence[int] | None = None,
) -> list[tuple[int, str]]:
    """Which (row, subgoal) pairs to ask a person about next.

    For each subgoal, ``per_subgoal`` labels in all (those already given count) are spread over the judge's score
    levels 1..5: at least one in every level the rows reach (when there are as many labels as levels), so pairs the
    judge thinks support the subgoal and pairs it thinks do not are both seen, and the rest in proportion to how many
    rows each level holds (each label then stands for about as many rows as any other, which keeps the calibrated
    coverage's interval narrow). Within a level, rows are taken in a seeded random order, so the labels of a level are
    a uniform sample of it (what the calibrated coverage assumes) and a second session with the same seed continues
    the plan where the first stopped.

    Args:
        scores_by_subgoal: per subgoal, the judge's expected score of each row (None: no score; never picked).
        per_subgoal: labels wanted per subgoal.
        seed (`int`, defaults to 0): seeds the order.
        already: pairs already labelled (e.g. ``Labels.pairs()``): never picked again.
        row_ids (*optional*): the dataset row of each position of the score lists (default: 0, 1, 2, ...).

    Returns:
        (row, subgoal) pairs, a row's subgoals next to each other (one reading of a sample serves several answers).

    Example:
        >>> pick_pairs({"cites": [1.0, 4.8, 2.2, 5.0]}, per_subgoal=2, seed=0)
    """
    done = set(already)
    picked: dict[int, list[str]] = {}
    order = list(scores_by_subgoal)
    for sub, values in scores_by_subgoal.items():
        expected = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
        ids = np.arange(len(expected)) if row_ids is None else np.asarray(row_ids, dtype=int)
        scored = ~np.isnan(expected)
        levels = score_strata(expected[scored])
        rows = ids[scored]
        rng = np.random.default_rng([seed, zlib.crc32(sub.encode("utf-8"))])
        strata = [rng.permutation(rows[levels == lv]) for lv in np.unique(levels)]
        if not strata:
            continue
        labelled = np.array(sorted(r for r, s in done if s == sub), dtype=int)
        for stratum, want in zip(strata, _allocate([len(s) for s in strata], per_subgoal)):
            seen = np.isin(stratum, labelled)
            for r in stratum[~seen][:max(0, want - int(seen.sum()))].tolist():
                picked.setdefault(r, []).append(sub)
    # a row's place depends on the seed and the row alone, so a continued session keeps the first one's order
    place = {r: zlib.crc32(f"{seed}:{r}".encode()) for r in picked}
    return [(r, sub) for r in sorted(picked, key=lambda r: (place[r], r))
            for sub in sorted(picked[r], key=order.index)]
