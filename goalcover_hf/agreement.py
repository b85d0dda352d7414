"""How far the judge agrees with a person's labels: the figures behind ``goalcover check``.

Two questions, asked per subgoal and over all labels: does the judge rank samples the way the person does (AUC of its
expected score), and is its threshold in the right place (accuracy, precision, recall, Cohen's kappa, and the bias:
the share it calls supporting minus the share the person does)? Every figure comes with a seeded bootstrap interval, and
each subgoal gets a plain verdict. Labels are picked stratified by score level, so these figures describe the labelled
pairs, not the dataset's mix; the dataset's coverage is :func:`goalcover_hf.ppi.calibrated_coverage`'s job.

Example:
    >>> report = agreement({"cites": expected}, labels.pairs(), threshold=4)
    >>> print(report.table())
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .calibration import labelled_positions, score_array
from .columns import DEFAULT_THRESHOLD

MIN_AGREEMENT_LABELS = 10
GOOD_AUC = 0.8  # from here a judge "ranks well"; above chance but below it "ranks weakly"
FIGURES = ("auc", "accuracy", "precision", "recall", "kappa", "bias")


@dataclass
class Figure:
    """A figure and its bootstrap interval (None where it is undefined, e.g. precision with no predicted positive)."""

    value: float | None
    low: float | None
    high: float | None

    def __str__(self) -> str:
        if self.value is None:
            return "-"
        if self.low is None:
            return f"{self.value:.2f}"
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


@dataclass
class Agreement:
    """The judge against the labels, for one subgoal (or ``"overall"``, all labels pooled)."""

    subgoal: str
    labelled: int
    positives: int
    negatives: int
    auc: Figure
    accuracy: Figure
    precision: Figure
    recall: Figure
    kappa: Figure
    bias: Figure
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain JSON values."""
        return asdict(self)


@dataclass
class AgreementReport:
    """Per-subgoal and overall agreement at one threshold."""

    threshold: float
    confidence: float
    subgoals: dict[str, Agreement]
    overall: Agreement

    def to_dict(self) -> dict[str, Any]:
        """Per subgoal and overall figures as plain JSON values (what ``goalcover check --json`` prints)."""
        return {"threshold": self.threshold, "confidence": self.confidence,
                "subgoals": {k: v.to_dict() for k, v in self.subgoals.items()}, "overall": self.overall.to_dict()}

    def table(self) -> str:
        """Plain-text table for the terminal."""
        head = f"{'subgoal':<24} {'labels':>6} {'+/-':>7}  {'AUC':<18} {'kappa':<19} verdict"
        lines = [head, "-" * len(head)]
        for a in [*self.subgoals.values(), self.overall]:
            lines.append(f"{a.subgoal[:24]:<24} {a.labelled:>6} {f'{a.positives}/{a.negatives}':>7}  "
                         f"{str(a.auc):<18} {str(a.kappa):<19} {a.verdict}")
        lines.append(f"threshold: score >= {self.threshold:g}; [..]: {self.confidence:.0%} bootstrap intervals")
        return "\n".join(lines)


def _auc(s: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """AUC (ties count half) of scores ``s`` for labels ``y``, for each row of ``counts`` (how often each pair is
    drawn): O(draws x pairs), through cumulative counts of negatives in score order."""
    order = np.argsort(s, kind="stable")
    s, y, counts = s[order], y[order], counts[:, order]
    neg = np.concatenate([np.zeros((len(counts), 1)), np.cumsum(counts * (1 - y), axis=1)], axis=1)
    first = np.searchsorted(s, s, side="left")  # where each score's tie group starts and ends
    last = np.searchsorted(s, s, side="right")
    below = neg[:, first]
    ties = neg[:, last] - below
    pos_counts = counts * y
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos_counts * (below + 0.5 * ties)).sum(axis=1) / (pos_counts.sum(axis=1) * neg[:, -1])


def auc(expected: Sequence[float], labels: Sequence[int]) -> float | None:
    """Probability that a random positive scores above a random negative (ties half); None without both classes.

    Example:
        >>> auc([1, 2, 3, 4], [0, 0, 1, 1])
        1.0
    """
    s, y = np.asarray(expected, dtype=float), np.asarray(labels, dtype=float)
    value = float(_auc(s, y, np.ones((1, len(s))))[0]) if len(s) else float("nan")
    return None if np.isnan(value) else value


def _figures(s: np.ndarray, y: np.ndarray, pred: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every figure, once per row of ``counts``."""
    n = counts.sum(axis=1)
    tp, fp = counts @ (pred * y), counts @ (pred * (1 - y))
    fn, tn = counts @ ((1 - pred) * y), counts @ ((1 - pred) * (1 - y))
    with np.errstate(invalid="ignore", divide="ignore"):
        chance = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / n ** 2
        accuracy = (tp + tn) / n
        return {
            "auc": _auc(s, y, counts),
            "accuracy": accuracy,
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "kappa": np.where(chance < 1, (accuracy - chance) / (1 - chance), np.nan),
            "bias": (fp - fn) / n,
        }


def _verdict(positives: int, negatives: int, figs: Mapping[str, Figure]) -> str:
    if not positives or not negatives:
        return "too few labels (need both classes)"
    if positives + negatives < MIN_AGREEMENT_LABELS:
        return f"too few labels ({positives + negatives}; need at least {MIN_AGREEMENT_LABELS})"
    rank, bias = figs["auc"], figs["bias"]
    if rank.low is None or rank.low <= 0.5:
        return "no better than chance on these labels"
    how = "ranks well" if rank.value >= GOOD_AUC else "ranks weakly"
    if bias.low is not None and bias.low > 0:
        return f"{how}, threshold biased (too lenient): use calibrated coverage"
    if bias.high is not None and bias.high < 0:
        return f"{how}, threshold biased (too strict): use calibrated coverage"
    return f"{how}, threshold agrees with the labels"


def _agreement(name: str, s: np.ndarray, y: np.ndarray, pred: np.ndarray, draws: int, rng: np.random.Generator,
               confidence: float) -> Agreement:
    n = len(y)
    positives = int(y.sum())
    point = _figures(s, y, pred, np.ones((1, n))) if n else {k: np.array([np.nan]) for k in FIGURES}
    boot = _figures(s, y, pred, rng.multinomial(n, np.full(n, 1 / n), size=draws).astype(float)) if n else None
    figs = {}
    for key in FIGURES:
        value = float(point[key][0])
        low = high = None
        if boot is not None and not np.isnan(value):
            sample = boot[key][~np.isnan(boot[key])]
            if len(sample):
                low, high = (float(q) for q in np.quantile(sample, [(1 - confidence) / 2, (1 + confidence) / 2]))
        figs[key] = Figure(None if np.isnan(value) else value, low, high)
    return Agreement(name, n, positives, n - positives, **figs, verdict=_verdict(positives, n - positives, figs))


def agreement(
    expected: Mapping[str, Sequence[float | None]],
    labels: Mapping[tuple[int, str], int],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    scores: Mapping[str, Sequence[int | None]] | None = None,
    row_ids: Sequence[int] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> AgreementReport:
    """The judge's agreement with the labels, per subgoal and over all labels.

    Args:
        expected: per subgoal, the judge's expected score of each row (None: no score); AUC ranks by it.
        labels: (dataset row, subgoal id) -> 1 (supports) or 0, e.g. ``Labels.pairs()``.
        threshold (`float`, defaults to 4): the judge says "supports" when the score reaches this.
        scores (*optional*): per subgoal, the integer scores the threshold applies to (default: ``expected``).
        row_ids (*optional*): the dataset row of each position of the score lists (default: 0, 1, 2, ...).
        bootstrap (`int`, defaults to 1000): bootstrap resamples for the intervals.
        seed (`int`, defaults to 0): seeds the bootstrap.
        confidence (`float`, defaults to 0.95): the intervals' confidence level.

    Returns:
        :class:`AgreementReport`.
    """
    arrays = {sub: score_array(values) for sub, values in expected.items()}
    judged = {sub: score_array(scores[sub]) for sub in arrays} if scores is not None else arrays
    labelled, _ = labelled_positions(arrays, labels, row_ids)
    rng = np.random.default_rng(seed)
    per, pooled = {}, []
    for sub, (pos, lab) in labelled.items():
        s, y = arrays[sub][pos], np.asarray(lab, dtype=float)
        pred = (judged[sub][pos] >= threshold).astype(float)
        pooled.append((s, y, pred))
        per[sub] = _agreement(sub, s, y, pred, bootstrap, rng, confidence)
    s, y, pred = (np.concatenate([p[i] for p in pooled]) if pooled else np.zeros(0) for i in range(3))
    overall = _agreement("overall", s, y, pred, bootstrap, rng, confidence)
    return AgreementReport(threshold, confidence, per, overall)
