"""Filtering: keep the rows of an annotated dataset that support the subgoals you care about, optionally balanced.

A row is kept when it passes every rule that is set (over the subgoal set ``subgoals``, default all):

- ``require="any"`` (default) / ``"all"``: it supports at least one / every subgoal of the set, where a row supports
  subgoal ``s`` when its score is at least ``min_scores.get(s, threshold)``; ``require=None`` turns this rule off;
- ``min_mean``: the mean of its scores over the set is at least this;
- ``min_score``: its lowest score over the set is at least this.

A pair without a score (a judge error) never supports a subgoal, and a row missing any score of the set fails the
``min_mean``/``min_score`` rules: filtering never guesses a score.

Balancing (``cap``): rows that passed are visited rarest capability first (the row whose least-supported subgoal has
the fewest supporting rows comes first, ties by row order); a row is kept while at least one subgoal it supports has
fewer than ``cap`` kept rows, and dropped for balance once every subgoal it supports already has ``cap``. Rows that
carry a rare capability are thus never dropped to trim a common one; a kept row may push a common subgoal past ``cap``.

Example:
    >>> result = goalcover_hf.filter(annotated, spec, subgoals=["states_dose"], threshold=4, cap=500)
    >>> result.dataset.push_to_hub("me/meds-filtered")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from .columns import DEFAULT_THRESHOLD, score_columns
from .coverage import DEFAULT_MIN_COVERAGE, CoverageReport, compute_coverage
from .errors import GoalcoverError
from .spec import GoalSpec

REQUIRE = ("any", "all")


@dataclass
class FilterRule:
    """A filtering rule (see the module docstring), as recorded in ``run.json`` under ``filter``.

    Attributes:
        subgoals (``list[str]``): the subgoal set the rule looks at (empty: all).
        threshold (``int``): the default support threshold.
        min_scores (``dict[str, int]``): per-subgoal thresholds that replace it.
        require (``str`` or ``None``): ``"any"``, ``"all"`` or ``None`` (no support rule).
        min_mean (``float``, *optional*), min_score (``int``, *optional*): the mean and lowest score a row needs.
        cap (``int``, *optional*): the balancing cap.
    """

    subgoals: list[str]
    threshold: int = DEFAULT_THRESHOLD
    min_scores: dict[str, int] = field(default_factory=dict)
    require: str | None = "any"
    min_mean: float | None = None
    min_score: int | None = None
    cap: int | None = None

    def describe(self) -> str:
        """The rule in one sentence for people.

        Returns:
            ``str``: e.g. ``"rows kept when supports any of [all subgoals] (score >= 4)"``.
        """
        parts = []
        set_text = "all subgoals" if not self.subgoals else ", ".join(self.subgoals)
        if self.require:
            levels = ", ".join(f"{s} >= {self.min_scores[s]}" for s in self.min_scores)
            parts.append(f"supports {self.require} of [{set_text}] (score >= {self.threshold}"
                         + (f"; {levels}" if levels else "") + ")")
        if self.min_mean is not None:
            parts.append(f"mean score over [{set_text}] >= {self.min_mean:g}")
        if self.min_score is not None:
            parts.append(f"lowest score over [{set_text}] >= {self.min_score}")
        text = "rows kept when " + (" and ".join(parts) if parts else "always")
        if self.cap is not None:
            text += f"; balanced: a row is dropped once every subgoal it supports has {self.cap} kept rows"
        return text


@dataclass
class FilterResult:
    """What :func:`filter` kept and what it changed.

    Attributes:
        dataset (``datasets.Dataset``): the kept rows, in their original order.
        rule (:class:`FilterRule`): the rule applied.
        before (:class:`CoverageReport`), after (:class:`CoverageReport`): coverage of the input and of the result.
        dropped (``dict[str, int]``): rows dropped, by the rule that dropped them (``require``, ``min_mean``,
            ``min_score``, ``balance``).
        kept_indices (``list[int]``): positions of the kept rows in the input.
    """

    dataset: Any
    rule: FilterRule
    before: CoverageReport
    after: CoverageReport
    dropped: dict[str, int]
    kept_indices: list[int]

    def provenance(self) -> dict[str, Any]:
        """What ``run.json`` records under ``filter``.

        Returns:
            ``dict[str, Any]``: the rule, its description, row counts, drops and coverage before and after.
        """
        return {"rule": asdict(self.rule), "description": self.rule.describe(), "rows_before": self.before.rows,
                "rows_after": self.after.rows, "dropped": self.dropped,
                "coverage_before": {s.id: round(s.coverage, 4) for s in self.before.subgoals},
                "coverage_after": {s.id: round(s.coverage, 4) for s in self.after.subgoals}}


def _check(spec: GoalSpec, subgoals, threshold, min_scores, require, min_mean, min_score, cap):
    for sid in [*subgoals, *min_scores]:
        spec.subgoal(sid)  # UnknownSubgoalError naming the known ids
    for name, v in [("threshold", threshold), ("min_score", min_score), *(
            (f"min_scores[{s}]", v) for s, v in min_scores.items())]:
        if v is not None and not 1 <= v <= 5:
            raise GoalcoverError(f"{name} must be within 1..5, got {v}")
    if min_mean is not None and not 1 <= min_mean <= 5:
        raise GoalcoverError(f"min_mean must be within 1..5, got {min_mean}")
    if require not in (*REQUIRE, None):
        raise GoalcoverError(f"require must be 'any', 'all' or None, got {require!r}")
    if cap is not None and cap < 1:
        raise GoalcoverError(f"cap must be at least 1, got {cap}")


def filter(  # noqa: A001 - the public name the issue asks for; the module is filtering.py
    annotated,
    spec: GoalSpec,
    *,
    subgoals: Sequence[str] | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    min_scores: Mapping[str, int] | None = None,
    require: str | None = "any",
    min_mean: float | None = None,
    min_score: int | None = None,
    cap: int | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> FilterResult:
    """Keep the rows of ``annotated`` that pass the rule (see the module docstring).

    Args:
        annotated (``datasets.Dataset``): the scored rows.
        spec (:class:`GoalSpec`): the spec they were scored with.
        subgoals (``Sequence[str]``, *optional*): the subgoal set the rules look at (default: all).
        threshold (``int``, defaults to ``DEFAULT_THRESHOLD``): the support threshold.
        min_scores (``Mapping[str, int]``, *optional*): per-subgoal thresholds that replace ``threshold``.
        require (``str`` or ``None``, defaults to ``"any"``): a row supports ``"any"`` or ``"all"`` of the set;
            ``None`` turns the rule off.
        min_mean (``float``, *optional*): the mean score over the set a row needs.
        min_score (``int``, *optional*): the lowest score over the set a row may have.
        cap (``int``, *optional*): balance: drop a row once every subgoal it supports has this many kept rows.
        min_coverage (``float``, defaults to ``DEFAULT_MIN_COVERAGE``): the gap line of the before/after reports.

    Returns:
        :class:`FilterResult`: the kept rows, coverage before and after, drop counts by reason.

    Example:
        >>> r = filter(annotated, spec, require="all", subgoals=["states_dose", "warns_side_effects"])
        >>> print(r.rule.describe()); print(r.after.table())
    """
    if not hasattr(annotated, "column_names"):
        raise TypeError("annotated must be a datasets.Dataset with goalcover score columns")
    subgoals = list(subgoals or [])
    min_scores = dict(min_scores or {})
    _check(spec, subgoals, threshold, min_scores, require, min_mean, min_score, cap)
    before = compute_coverage(annotated, spec, threshold=threshold, min_coverage=min_coverage)
    chosen = subgoals or [s.id for s in spec.subgoals]
    scores = {s.id: list(annotated[score_columns(s.id)["score"]]) for s in spec.subgoals}
    level = {s.id: min_scores.get(s.id, threshold) for s in spec.subgoals}
    rows = len(annotated)

    def supports(k, sid):
        v = scores[sid][k]
        return v is not None and v >= level[sid]

    dropped = {"require": 0, "min_mean": 0, "min_score": 0, "balance": 0}
    passed = []
    for k in range(rows):
        values = [scores[s][k] for s in chosen]
        hits = [supports(k, s) for s in chosen]
        if (require == "any" and not any(hits)) or (require == "all" and not all(hits)):
            dropped["require"] += 1
        elif min_mean is not None and (None in values or sum(values) / len(values) < min_mean):
            dropped["min_mean"] += 1
        elif min_score is not None and (None in values or min(values) < min_score):
            dropped["min_score"] += 1
        else:
            passed.append(k)
    kept = passed
    if cap is not None:
        support = {s.id: sum(supports(k, s.id) for k in passed) for s in spec.subgoals}
        row_subgoals = {k: [s.id for s in spec.subgoals if supports(k, s.id)] for k in passed}
        order = sorted(passed, key=lambda k: (min((support[s] for s in row_subgoals[k]), default=rows + 1), k))
        counts = dict.fromkeys(support, 0)
        kept = []
        for k in order:
            if any(counts[s] < cap for s in row_subgoals[k]):
                kept.append(k)
                for s in row_subgoals[k]:
                    counts[s] += 1
            else:
                dropped["balance"] += 1
        kept.sort()
    rule = FilterRule(subgoals, threshold, min_scores, require, min_mean, min_score, cap)
    dataset = annotated.select(kept)
    after = compute_coverage(dataset, spec, threshold=threshold, min_coverage=min_coverage)
    return FilterResult(dataset, rule, before, after, {k: v for k, v in dropped.items() if v}, kept)


def compare_table(before: CoverageReport, after: CoverageReport) -> str:
    """Coverage before and after, side by side, for the terminal (``goalcover filter --dry-run``).

    Args:
        before (:class:`CoverageReport`), after (:class:`CoverageReport`): reports over the same spec.

    Returns:
        ``str``: one line per subgoal, then rows, mean coverage and gap counts.
    """
    head = f"{'subgoal':<28} {'before':>14} {'after':>14} {'change':>8}"
    lines = [head, "-" * len(head)]
    for b, a in zip(before.subgoals, after.subgoals):
        lines.append(f"{b.id[:28]:<28} {b.support:>5}/{b.scored:<4}{b.coverage:>4.0%} {a.support:>5}/{a.scored:<4}"
                     f"{a.coverage:>4.0%} {(a.coverage - b.coverage) * 100:>+7.0f}pt")
    lines.append(f"rows: {before.rows} -> {after.rows}; mean coverage {before.mean_coverage:.0%} -> "
                 f"{after.mean_coverage:.0%}; gaps {len(before.gaps)} -> {len(after.gaps)}")
    return "\n".join(lines)
