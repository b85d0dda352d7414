"""Coverage: how many samples support each subgoal, with an interval, and whether each falls short of a target.
The metric, the report, the card and the CLI all call this.

Every coverage figure carries a 95% interval and says what it rests on (see :mod:`goalcover_hf.ppi`):

- no scored row: **no evidence**, never a gap;
- scores only: the judge's coverage (rows scoring >= threshold) with the interval of the sampling of rows (pairs
  without a score, and rows left out by ``score --sample``, are rows not seen): the judge's opinion, uncalibrated;
- scores and at least ``min_labels`` human labels: calibrated coverage (PPI++ with cross-fitted calibration).

A subgoal is then a **gap** (the interval lies below the target), **covered** (it reaches the target) or
**uncertain** (it straddles the target).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from .columns import DEFAULT_THRESHOLD, TRUNCATED_COLUMN, score_columns
from .errors import GoalcoverError
from .ppi import MIN_LABELS, CoverageEstimate, calibrated_coverage, gap_decision, labels_needed
from .spec import GoalSpec

DEFAULT_MIN_COVERAGE = 0.2  # a subgoal is a gap when its coverage interval lies below this fraction of the rows
CONFIDENCE = 0.95


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

    def fraction(self, rows: int) -> float:
        """The coverage a subgoal needs in a dataset of ``rows`` rows: ``min_fraction``, ``min_samples`` of the rows,
        and at least one row.

        Example:
            >>> Target(min_fraction=0.2, min_samples=10).fraction(30)
            0.3333333333333333
        """
        return max(self.min_fraction, self.min_samples / rows, 1 / rows) if rows else self.min_fraction

    def describe(self) -> str:
        """The target in words, e.g. ``"at least 20% of samples and 10 samples"``.

        Returns:
            ``str``
        """
        parts = [f"{self.min_fraction:.0%} of samples"] if self.min_fraction else []
        if self.min_samples:
            parts.append(f"{self.min_samples} samples")
        return "at least " + (" and ".join(parts) if parts else "1 sample")


def interval_text(low: float | None, high: float | None) -> str:
    """``"[12%, 30%]"``, or ``"-"`` without an interval."""
    return "-" if low is None or high is None else f"[{low:.0%}, {high:.0%}]"


@dataclass
class SubgoalCoverage:
    """How well one subgoal is supported.

    Attributes:
        id (``str``), name (``str``): the subgoal.
        rows (``int``): rows scored (the annotated dataset's rows).
        scored (``int``): rows with a score (``rows - errors``).
        errors (``int``): rows whose pair has no score.
        support (``int``): scored rows scoring at least the threshold (the judge's count).
        coverage (``float``): the figure to show: calibrated coverage when ``method == "calibrated"``, else the
            judge's ``support / scored`` (0.0 when nothing was scored: see ``decision``).
        mean (``float`` or ``None``): mean score over the scored rows.
        distribution (``dict[int, int]``): score -> count, for 1..5.
        gap (``bool``): ``decision == "gap"``.
        low, high (``float`` or ``None``): the 95% interval of ``coverage`` (None with no evidence).
        decision (``str``): ``"gap"``, ``"covered"``, ``"uncertain"`` or ``"no evidence"``, against the target.
        method (``str``): ``"calibrated"`` (on human labels) or ``"judge"`` (the judge's opinion, uncalibrated).
        labels (``int``): human labels on this subgoal's scored rows; positives: how many of them are 1.
        judge_coverage (``float``): ``support / scored`` (0.0 when nothing was scored).
        notes (``list[str]``): what limits the figure, in plain sentences.
        estimate (:class:`~goalcover_hf.ppi.CoverageEstimate`): the estimate behind the figures (not in ``to_dict``).
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
    low: float | None = None
    high: float | None = None
    decision: str = "no evidence"
    method: str = "judge"
    labels: int = 0
    positives: int = 0
    judge_coverage: float = 0.0
    notes: list[str] = field(default_factory=list)
    estimate: CoverageEstimate | None = field(default=None, repr=False, compare=False)

    @property
    def basis(self) -> str:
        """What the figure rests on, in words: ``"calibrated (24 labels)"`` or ``"judge's opinion"``."""
        if self.method == "calibrated":
            return f"calibrated ({self.labels} labels)"
        return "judge's opinion" + (f" ({self.labels} label{'s' if self.labels > 1 else ''}, too few)"
                                    if self.labels else "")

    @property
    def fully_labelled(self) -> bool:
        """Calibrated on a label for every scored row: the figure is the labels' own share, exactly."""
        return self.method == "calibrated" and self.labels >= self.scored

    @property
    def interval(self) -> str:
        """The interval as text, e.g. ``"[12%, 30%]"`` (``"-"`` with no evidence)."""
        return interval_text(self.low, self.high)

    def labels_needed(self, half_width: float) -> int | None:
        """More labels that would narrow the interval to +- ``half_width`` (:func:`goalcover_hf.ppi.labels_needed`);
        None when labels alone cannot (score more rows) or nothing was scored."""
        return None if self.estimate is None else labels_needed(self.estimate, half_width)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "estimate"}
        data["basis"] = self.basis
        return data


@dataclass
class CoverageReport:
    """Coverage of every subgoal of a spec over one dataset: what the metric, the card and the CLI show.

    Attributes:
        threshold (``int``): a sample supports a subgoal when it scores at least this.
        min_coverage (``float``), min_samples (``int``): the target (see :class:`Target`).
        rows (``int``): rows scored.
        subgoals (``list[SubgoalCoverage]``): one entry per subgoal, in spec order.
        truncated_rows (``int``): rows cut in the middle to fit the judge's context (column ``gc_truncated_tokens``).
        confidence (``float``): the intervals' confidence level.
        sample (``dict`` or ``None``): ``{"rows": N, "of": M, "seed": S}`` when the rows are a seeded uniform sample
            of a dataset of M rows (the intervals include that sampling).
        agreement (:class:`~goalcover_hf.agreement.AgreementReport` or ``None``): the judge against the human labels.
        validation (``dict`` or ``None``): the corruption experiment's summary, when the run has ``validation.json``.

    Example:
        >>> report = compute_coverage(annotated, spec)
        >>> print(report.table())
    """

    threshold: int
    min_coverage: float
    rows: int
    subgoals: list[SubgoalCoverage] = field(default_factory=list)
    truncated_rows: int = 0
    min_samples: int = 0
    confidence: float = CONFIDENCE
    sample: dict[str, Any] | None = None
    agreement: Any = None
    validation: dict[str, Any] | None = None

    @property
    def target(self) -> Target:
        """The coverage target the decisions were made against."""
        return Target(self.min_coverage, self.min_samples)

    @property
    def population(self) -> int:
        """Rows in the dataset the figures are about (``sample["of"]`` for a sampled run)."""
        return int(self.sample["of"]) if self.sample else self.rows

    @property
    def gaps(self) -> list[SubgoalCoverage]:
        """The subgoals whose interval lies below the target, in spec order."""
        return [s for s in self.subgoals if s.decision == "gap"]

    @property
    def uncertain(self) -> list[SubgoalCoverage]:
        """The subgoals whose interval straddles the target, in spec order."""
        return [s for s in self.subgoals if s.decision == "uncertain"]

    def decide(self, s: SubgoalCoverage, target: Target | None = None) -> str:
        """``s``'s decision against ``target``: its own for the report's target, else decided afresh on its
        interval."""
        if target is None or target == self.target:
            return s.decision
        return gap_decision(s.low, s.high, target.fraction(self.population), s.scored)

    @property
    def labels(self) -> int:
        """Human labels used, over all subgoals."""
        return sum(s.labels for s in self.subgoals)

    @property
    def mean_coverage(self) -> float:
        """The mean coverage of the subgoals with evidence (0.0 when none has any)."""
        seen = [s.coverage for s in self.subgoals if s.decision != "no evidence"]
        return sum(seen) / len(seen) if seen else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data, with ``mean_coverage``, ``gap_ids`` and ``uncertain_ids`` added.

        Returns:
            ``dict[str, Any]``: JSON-serializable.
        """
        data = {k: v for k, v in asdict(self).items() if k not in ("subgoals", "agreement")}
        data["subgoals"] = [s.to_dict() for s in self.subgoals]
        data["agreement"] = self.agreement.to_dict() if self.agreement is not None else None
        data["mean_coverage"] = self.mean_coverage
        data["gap_ids"] = [s.id for s in self.gaps]
        data["uncertain_ids"] = [s.id for s in self.uncertain]
        return data

    def table(self) -> str:
        """The report as a plain-text table for the terminal.

        Returns:
            ``str``: one line per subgoal, then what the figures mean.
        """
        ci = f"{self.confidence:.0%} interval"
        head = (f"{'subgoal':<26} {'judge':>10} {'coverage':>8} {ci:>13}  {'decision':<11} {'mean':>5} {'errors':>6}"
                f"  dist 1..5        basis")
        lines = [head, "-" * len(head)]
        for s in self.subgoals:
            dist = " ".join(f"{s.distribution.get(k, 0):>2}" for k in range(1, 6))
            mean = f"{s.mean:.2f}" if s.mean is not None else "  -"
            shown = f"{s.coverage:.0%}" if s.decision != "no evidence" else "-"
            lines.append(f"{s.id[:26]:<26} {f'{s.support}/{s.scored}':>10} {shown:>8} {s.interval:>13}  "
                         f"{s.decision.upper() if s.gap else s.decision:<11} {mean:>5} {s.errors:>6}  {dist}   "
                         f"{s.basis if s.decision != 'no evidence' else 'nothing scored'}")
        missing = sum(1 for s in self.subgoals if s.decision == "no evidence")
        lines.append(f"{self.rows} rows; threshold: score >= {self.threshold}; target: {self.target.describe()}; "
                     f"mean coverage {self.mean_coverage:.0%}; {len(self.gaps)} gap(s), {len(self.uncertain)} "
                     f"uncertain" + (f", {missing} without evidence" if missing else ""))
        lines.extend(self.notes())
        if self.truncated_rows:
            lines.append(f"{self.truncated_rows} row(s) were longer than the judge's context and were judged with their "
                         f"middle cut out (column {TRUNCATED_COLUMN})")
        return "\n".join(lines)

    def notes(self) -> list[str]:
        """What the figures mean and rest on, in plain sentences (the table's footnotes)."""
        lines = []
        if self.sample:
            lines.append(f"estimated from {self.sample['rows']} of {self.sample['of']} rows (a seeded random sample, "
                         f"seed {self.sample.get('seed')}); the intervals include that sampling")
        lines.append(f"gap: the {self.confidence:.0%} interval lies below the target; covered: it reaches the target; "
                     "uncertain: it straddles the target")
        if any(s.method == "judge" and s.decision != "no evidence" for s in self.subgoals):
            lines.append("judge's opinion: the share of scored rows the judge scores at or above the threshold, "
                         "uncalibrated; its interval counts only the sampling of rows, not whether the judge is right")
        if any(s.method == "calibrated" for s in self.subgoals):
            lines.append("calibrated: the share of rows a person would say support the subgoal, estimated from the "
                         "human labels and the judge's scores (prediction-powered inference)")
        full = [s.id for s in self.subgoals if s.fully_labelled]
        if full:
            lines.append(f"every scored row is labelled for {', '.join(full)}: the figure is the labels' own share, "
                         "so its interval has no width" + ("" if not self.sample else " beyond the sampling of rows"))
        return lines


def _pairs(labels: Any) -> dict[tuple[int, str], int]:
    """(row, subgoal) -> 0/1 from a mapping or a :class:`~goalcover_hf.labels.Labels`."""
    if labels is None:
        return {}
    return dict(labels.pairs()) if hasattr(labels, "pairs") else dict(labels)


def coverage_from_scores(
    scores: Mapping[str, Sequence[int | None]],
    names: Mapping[str, str] | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    *,
    expected: Mapping[str, Sequence[float | None]] | None = None,
    labels: Any = None,
    min_samples: int = 0,
    sample: Mapping[str, Any] | None = None,
    min_labels: int = MIN_LABELS,
    confidence: float = CONFIDENCE,
) -> CoverageReport:
    """Coverage from per-subgoal score lists (``None`` marks a pair that has no score).

    Args:
        scores (``Mapping[str, Sequence[int | None]]``): subgoal id -> one score (1..5 or ``None``) per row; all
            lists have the same length.
        names (``Mapping[str, str]``, *optional*): subgoal id -> name (default: the id).
        threshold (``int``, defaults to ``DEFAULT_THRESHOLD``): the support threshold, 1..5.
        min_coverage (``float``, defaults to ``DEFAULT_MIN_COVERAGE``): the gap line, 0..1.
        expected (*optional*): subgoal id -> the judge's expected score per row (default: ``scores``); calibration
            ranks by it.
        labels (*optional*): human labels, ``{(row, subgoal id): 0 or 1}`` or a :class:`~goalcover_hf.labels.Labels`
            (``row``: position in the score lists).
        min_samples (``int``, defaults to 0): a subgoal also needs this many supporting rows in the dataset.
        sample (``dict``, *optional*): ``{"rows": N, "of": M, "seed": S}`` when the N rows are a uniform random
            sample of a dataset of M rows.
        min_labels (``int``, defaults to 10): labels a subgoal needs before its coverage is calibrated.
        confidence (``float``, defaults to 0.95): the intervals' confidence level.

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
    for sid, values in scores.items():
        for k, v in enumerate(values):
            if v is not None and v not in (1, 2, 3, 4, 5):
                raise GoalcoverError(f"subgoal {sid!r}, row {k}: score {v!r} is not an integer within 1..5")
    if sample is not None:
        sample = dict(sample)
        if sample.get("rows") != rows or not isinstance(sample.get("of"), int) or sample["of"] < rows:
            raise GoalcoverError(f"sample {sample} does not describe these {rows} scored rows (rows: {rows}, of: the "
                                 "dataset's row count, at least that)")
    report = CoverageReport(threshold=threshold, min_coverage=min_coverage, rows=rows, min_samples=min_samples,
                            confidence=confidence, sample=sample)
    expected = {sid: [s if e is None else e for s, e in zip(scores[sid], (expected or {}).get(sid, scores[sid]))]
                for sid in scores}
    pairs = _pairs(labels)
    estimates = calibrated_coverage(expected, pairs, threshold=threshold, scores=scores, rows=report.population,
                                    target=report.target.fraction(report.population), confidence=confidence,
                                    min_labels=min_labels)
    for sid, values in scores.items():
        est = estimates[sid]
        valid = [v for v in values if v is not None]
        judged = est.judge_coverage or 0.0
        report.subgoals.append(SubgoalCoverage(
            id=sid, name=(names or {}).get(sid, sid), rows=rows, scored=len(valid), errors=rows - len(valid),
            support=sum(1 for v in valid if v >= threshold),
            coverage=est.estimate if est.method == "calibrated" else judged,
            mean=sum(valid) / len(valid) if valid else None, distribution={k: valid.count(k) for k in range(1, 6)},
            gap=est.decision == "gap", low=est.low, high=est.high, decision=est.decision,
            method="calibrated" if est.method == "calibrated" else "judge", labels=est.labelled,
            positives=est.positives, judge_coverage=judged, notes=list(est.notes), estimate=est,
        ))
    if any(s.labels for s in report.subgoals):
        from .agreement import agreement

        report.agreement = agreement(expected, pairs, threshold=threshold, scores=scores, confidence=confidence)
    return report


def compute_coverage(
    annotated: Any,
    spec: GoalSpec,
    threshold: int = DEFAULT_THRESHOLD,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    *,
    labels: Any = None,
    min_samples: int = 0,
    sample: Mapping[str, Any] | None = None,
    min_labels: int = MIN_LABELS,
    confidence: float = CONFIDENCE,
) -> CoverageReport:
    """Coverage of an annotated dataset for every subgoal of ``spec``.

    Args:
        annotated (``datasets.Dataset`` or ``dict``): the scored rows, or a dict of their columns.
        spec (:class:`GoalSpec`): the spec it was scored with.
        threshold (``int``, defaults to ``DEFAULT_THRESHOLD``): the support threshold, 1..5.
        min_coverage (``float``, defaults to ``DEFAULT_MIN_COVERAGE``): the gap line, 0..1.
        labels, min_samples, sample, min_labels, confidence: as in :func:`coverage_from_scores` (labels name rows by
            their position in ``annotated``).

    Returns:
        :class:`CoverageReport`: a :class:`GoalcoverError` names a missing score column.

    Example:
        >>> compute_coverage(annotated, GoalSpec.load("goal.yaml"), labels=Labels.load("runs/medqa")).gaps
    """
    columns = annotated.column_names if hasattr(annotated, "column_names") else list(annotated)
    scores, expected = {}, {}
    for sub in spec.subgoals:
        cols = score_columns(sub.id)
        if cols["score"] not in columns:
            raise GoalcoverError(f"column {cols['score']!r} is missing: was this dataset scored with this spec "
                                 f"(subgoal {sub.id!r})?")
        scores[sub.id] = list(annotated[cols["score"]])
        if cols["expected"] in columns:
            expected[sub.id] = list(annotated[cols["expected"]])
    report = coverage_from_scores(scores, {s.id: s.name for s in spec.subgoals}, threshold, min_coverage,
                                  expected=expected, labels=labels, min_samples=min_samples, sample=sample,
                                  min_labels=min_labels, confidence=confidence)
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
