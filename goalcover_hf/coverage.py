"""Coverage: how many samples support each subgoal, and how many each needs. The metric, the report, the card and the
CLI all call this."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from .columns import DEFAULT_THRESHOLD, TRUNCATED_COLUMN, score_columns
from .errors import GoalcoverError
from .spec import GoalSpec

DEFAULT_MIN_COVERAGE = 0.2  # a subgoal is a gap when fewer than this fraction of scored samples support it


@dataclass(frozen=True)
class Target:
    """How much support a subgoal needs: at least ``min_samples`` rows and at least ``min_fraction`` of the scored
    rows (and always at least one).

    Args:
        min_fraction (``float``, defaults to ``DEFAULT_MIN_COVERAGE``): share of the scored rows, 0..1.
        min_samples (``int``, defaults to 0): a number of rows.

    Example:
        >>> Target(min_fraction=0.2, min_samples=10).required(30)
        10
    """

    min_fraction: float = DEFAULT_MIN_COVERAGE
    min_samples: int = 0

    def __post_init__(self):
        if not 0.0 <= self.min_fraction <= 1.0:
            raise GoalcoverError(f"target fraction must be within 0..1, got {self.min_fraction}")
        if self.min_samples < 0:
            raise GoalcoverError(f"target sample count must be >= 0, got {self.min_samples}")

    def required(self, scored: int) -> int:
        """The support a subgoal needs.

        Args:
            scored (``int``): the subgoal's scored rows.

        Returns:
            ``int``: at least 1.
        """
        # round() first: 0.2 * 30 is 6.000000000000001 in floating point
        return max(self.min_samples, math.ceil(round(self.min_fraction * scored, 9)), 1)

    def describe(self) -> str:
        """The target in words, e.g. ``"at least 20% of scored samples and 10 samples"``.

        Returns:
            ``str``
        """
        parts = [f"{self.min_fraction:.0%} of scored samples"] if self.min_fraction else []
        if self.min_samples:
            parts.append(f"{self.min_samples} samples")
        return "at least " + (" and ".join(parts) if parts else "1 sample")


@dataclass
class SubgoalCoverage:
    """How well one subgoal is supported.

    Attributes:
        id (``str``), name (``str``): the subgoal.
        rows (``int``): rows in the dataset.
        scored (``int``): rows with a score (``rows - errors``).
        errors (``int``): rows whose pair has no score.
        support (``int``): scored rows scoring at least the threshold.
        coverage (``float``): ``support / scored`` (0.0 when nothing was scored).
        mean (``float`` or ``None``): mean score over the scored rows.
        distribution (``dict[int, int]``): score -> count, for 1..5.
        gap (``bool``): coverage below the report's ``min_coverage``.
    """

    id: str
    name: str
    rows: int
    scored: int
    errors: int
    support: int
    coverage: float
    mean: float | None
    distribution: dict[int, int]
    gap: bool


@dataclass
class CoverageReport:
    """Coverage of every subgoal of a spec over one dataset: what the metric, the card and the CLI show.

    Attributes:
        threshold (``int``): a sample supports a subgoal when it scores at least this.
        min_coverage (``float``): a subgoal is a gap under this coverage.
        rows (``int``): rows in the dataset.
        subgoals (``list[SubgoalCoverage]``): one entry per subgoal, in spec order.
        truncated_rows (``int``): rows cut in the middle to fit the judge's context (column ``gc_truncated_tokens``).

    Example:
        >>> report = compute_coverage(annotated, spec)
        >>> print(report.table())
    """

    threshold: int
    min_coverage: float
    rows: int
    subgoals: list[SubgoalCoverage] = field(default_factory=list)
    truncated_rows: int = 0

    @property
    def gaps(self) -> list[SubgoalCoverage]:
        """The subgoals whose coverage is under ``min_coverage``, in spec order."""
        return [s for s in self.subgoals if s.gap]

    @property
    def mean_coverage(self) -> float:
        """The mean of the subgoals' coverage (0.0 for a report without subgoals)."""
        return sum(s.coverage for s in self.subgoals) / len(self.subgoals) if self.subgoals else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data, with ``mean_coverage`` and ``gap_ids`` added.

        Returns:
            ``dict[str, Any]``: JSON-serializable.
        """
        data = asdict(self)
        data["mean_coverage"] = self.mean_coverage
        data["gap_ids"] = [s.id for s in self.gaps]
        return data

    def table(self) -> str:
        """The report as a plain-text table for the terminal.

        Returns:
            ``str``: one line per subgoal, then a summary line (and a line about truncated rows, if any).
        """
        head = f"{'subgoal':<28} {'support':>8} {'coverage':>9} {'mean':>5} {'errors':>6}  dist 1..5        gap"
        lines = [head, "-" * len(head)]
        for s in self.subgoals:
            dist = " ".join(f"{s.distribution.get(k, 0):>2}" for k in range(1, 6))
            mean = f"{s.mean:.2f}" if s.mean is not None else "  -"
            lines.append(
                f"{s.id[:28]:<28} {s.support:>4}/{s.scored:<3} {s.coverage:>8.0%} {mean:>5} {s.errors:>6}  {dist}   "
                f"{'GAP' if s.gap else ''}"
            )
        lines.append(
            f"{self.rows} rows; threshold: score >= {self.threshold}; gap: coverage < {self.min_coverage:.0%}; "
            f"mean coverage {self.mean_coverage:.0%}; {len(self.gaps)} gap(s)"
        )
        if self.truncated_rows:
            lines.append(f"{self.truncated_rows} row(s) were longer than the judge's context and were judged with their "
                         f"middle cut out (column {TRUNCATED_COLUMN})")
        return "\n".join(lines)


def coverage_from_scores(
    scores: Mapping[str, Sequence[int | None]],
    names: Mapping[str, str] | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> CoverageReport:
    """Coverage from per-subgoal score lists (``None`` marks a pair that has no score).

    Args:
        scores (``Mapping[str, Sequence[int | None]]``): subgoal id -> one score (1..5 or ``None``) per row; all
            lists have the same length.
        names (``Mapping[str, str]``, *optional*): subgoal id -> name (default: the id).
        threshold (``int``, defaults to ``DEFAULT_THRESHOLD``): the support threshold, 1..5.
        min_coverage (``float``, defaults to ``DEFAULT_MIN_COVERAGE``): the gap line, 0..1.

    Returns:
        :class:`CoverageReport`

    Example:
        >>> coverage_from_scores({"a": [5, 1, None]}).subgoals[0].coverage
        0.5
    """
    if not 1 <= threshold <= 5:
        raise GoalcoverError(f"threshold must be within 1..5, got {threshold}")
    if not 0.0 <= min_coverage <= 1.0:
        raise GoalcoverError(f"min_coverage must be within 0..1, got {min_coverage}")
    lengths = {len(v) for v in scores.values()}
    if len(lengths) > 1:
        raise GoalcoverError(f"score lists differ in length: {sorted(lengths)}")
    rows = lengths.pop() if lengths else 0
    report = CoverageReport(threshold=threshold, min_coverage=min_coverage, rows=rows)
    for sid, values in scores.items():
        for k, v in enumerate(values):
            if v is not None and v not in (1, 2, 3, 4, 5):
                raise GoalcoverError(f"subgoal {sid!r}, row {k}: score {v!r} is not an integer within 1..5")
        valid = [v for v in values if v is not None]
        support = sum(1 for v in valid if v >= threshold)
        coverage = support / len(valid) if valid else 0.0
        report.subgoals.append(
            SubgoalCoverage(
                id=sid,
                name=(names or {}).get(sid, sid),
                rows=rows,
                scored=len(valid),
                errors=rows - len(valid),
                support=support,
                coverage=coverage,
                mean=sum(valid) / len(valid) if valid else None,
                distribution={k: valid.count(k) for k in range(1, 6)},
                gap=coverage < min_coverage,
            )
        )
    return report


def compute_coverage(
    annotated: Any,
    spec: GoalSpec,
    threshold: int = DEFAULT_THRESHOLD,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> CoverageReport:
    """Coverage of an annotated dataset for every subgoal of ``spec``.

    Args:
        annotated (``datasets.Dataset`` or ``dict``): the scored rows, or a dict of their columns.
        spec (:class:`GoalSpec`): the spec it was scored with.
        threshold (``int``, defaults to ``DEFAULT_THRESHOLD``): the support threshold, 1..5.
        min_coverage (``float``, defaults to ``DEFAULT_MIN_COVERAGE``): the gap line, 0..1.

    Returns:
        :class:`CoverageReport`: a :class:`GoalcoverError` names a missing score column.

    Example:
        >>> compute_coverage(annotated, GoalSpec.load("goal.yaml")).gaps
    """
    columns = annotated.column_names if hasattr(annotated, "column_names") else list(annotated)
    scores = {}
    for sub in spec.subgoals:
        col = score_columns(sub.id)["score"]
        if col not in columns:
            raise GoalcoverError(f"column {col!r} is missing: was this dataset scored with this spec (subgoal {sub.id!r})?")
        scores[sub.id] = list(annotated[col])
    report = coverage_from_scores(scores, {s.id: s.name for s in spec.subgoals}, threshold, min_coverage)
    if TRUNCATED_COLUMN in columns:  # a plain dict of score columns has none
        report.truncated_rows = sum(1 for n in annotated[TRUNCATED_COLUMN] if n)
    return report


def iter_low(annotated: Any, spec: GoalSpec, subgoal_id: str, limit: int = 5) -> Iterable[dict[str, Any]]:
    """The lowest-scoring rows of one subgoal, with their explanations (pairs without a score left out).

    Args:
        annotated (``datasets.Dataset``): the scored rows.
        spec (:class:`GoalSpec`): the spec it was scored with.
        subgoal_id (``str``): the subgoal.
        limit (``int``, defaults to 5): how many rows.

    Returns:
        ``list[dict]``: ``{"row", "id", "score", "expected", "explanation"}``, lowest score (then expected value) first.
    """
    cols = score_columns(subgoal_id)
    ids = annotated["id"] if "id" in annotated.column_names else list(range(len(annotated)))
    rows = [
        {"row": k, "id": ids[k], "score": s, "expected": e, "explanation": x}
        for k, (s, e, x) in enumerate(zip(annotated[cols["score"]], annotated[cols["expected"]], annotated[cols["explanation"]]))
        if s is not None
    ]
    rows.sort(key=lambda r: (r["score"], r["expected"] if r["expected"] is not None else r["score"], r["row"]))
    return rows[:limit]
