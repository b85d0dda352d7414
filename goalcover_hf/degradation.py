"""The statistics of the corruption experiment (:mod:`goalcover_hf.validate`): relative degradation, Cohen's d and
row-bootstrap intervals. Pure functions over score arrays.

Cohen's d = (mean target - mean non-target) / pooled SD, the pooled SD being
``sqrt(((n1 - 1) var1 + (n2 - 1) var2) / (n1 + n2 - 2))`` with sample variances. Confidence intervals (95%, percentile)
come from a bootstrap over rows: each replicate resamples, with replacement, the rows of every target's sample and
recomputes every ``deg(t, s)``, both group means and d.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np


def relative_degradation(clean: Sequence[float], corrupted: Sequence[float]) -> float:
    """(mean(clean) - mean(corrupted)) / mean(clean), over the pairs where both are numbers.

    Args:
        clean (``Sequence[float]``), corrupted (``Sequence[float]``): paired scores; NaN where one has none.

    Returns:
        ``float``: NaN when no pair has both, or the clean mean is 0.

    Example:
        >>> relative_degradation([4, 4], [3, 2])
        0.375
    """
    c, x = np.asarray(clean, dtype=float), np.asarray(corrupted, dtype=float)
    ok = ~(np.isnan(c) | np.isnan(x))
    if not ok.any() or c[ok].mean() == 0:
        return math.nan
    return float((c[ok].mean() - x[ok].mean()) / c[ok].mean())


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """Cohen's d: (mean(a) - mean(b)) / pooled SD (sample variances), NaN values left out.

    Args:
        a (``Sequence[float]``), b (``Sequence[float]``): the two groups.

    Returns:
        ``float``: NaN when undefined (fewer than 3 values in all, or a pooled SD of 0).

    Example:
        >>> round(cohens_d([3, 5], [1, 3]), 3)
        1.414
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 1 or len(b) < 1 or len(a) + len(b) < 3:
        return math.nan
    va = a.var(ddof=1) if len(a) > 1 else 0.0
    vb = b.var(ddof=1) if len(b) > 1 else 0.0
    pooled = math.sqrt(((len(a) - 1) * va + (len(b) - 1) * vb) / (len(a) + len(b) - 2))
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else math.nan


Part = tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray], Sequence[str]]  # clean, corrupted, subgoal ids


def _groups(parts: Sequence[Part], picks: Sequence[Mapping[str, np.ndarray]] | None = None):
    """Target and non-target degradation values. A part: per-target (rows x subgoals) clean and corrupted score
    arrays of one domain, keyed by target id, and that domain's subgoal ids; ``picks`` resample each target's rows."""
    target, nontarget = [], []
    for k, (clean, corrupted, subgoals) in enumerate(parts):
        for t, c in clean.items():
            x = corrupted[t]
            if picks is not None:
                c, x = c[picks[k][t]], x[picks[k][t]]
            for j, s in enumerate(subgoals):
                (target if s == t else nontarget).append(relative_degradation(c[:, j], x[:, j]))
    return target, nontarget


def _nanmean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


@dataclass
class GroupSummary:
    """Target vs non-target degradation of one domain (or several pooled), with bootstrap 95% CIs.

    Attributes:
        target (``float``), nontarget (``float``): the groups' mean relative degradation.
        d (``float``): Cohen's d between the groups.
        target_ci, nontarget_ci, d_ci (``tuple[float, float]``): their 95% percentile-bootstrap intervals.
        n_target (``int``): values in the target group (target subgoals).
        n_nontarget (``int``): values in the non-target group ((target, other subgoal) pairs).
        bootstrap (``int``): bootstrap replicates.
    """

    target: float
    nontarget: float
    d: float
    target_ci: tuple[float, float]
    nontarget_ci: tuple[float, float]
    d_ci: tuple[float, float]
    n_target: int
    n_nontarget: int
    bootstrap: int


def summarize(parts: Sequence[Part], bootstrap: int = 1000, seed: int = 0) -> GroupSummary:
    """Group means, Cohen's d and row-bootstrap percentile CIs over one domain's part (or several domains' parts).

    Args:
        parts (``Sequence[Part]``): per domain, ``(clean, corrupted, subgoal ids)``: per target, rows x subgoals
            score arrays (see :meth:`ValidationResult.part`).
        bootstrap (``int``, defaults to 1000): replicates (0: no intervals).
        seed (``int``, defaults to 0): seeds the resampling.

    Returns:
        :class:`GroupSummary`

    Example:
        >>> clean = {"a": np.array([[4.0, 4.0], [4.0, 4.0]]), "b": np.array([[4.0, 4.0], [4.0, 4.0]])}
        >>> bad = {"a": np.array([[2.0, 4.0], [2.0, 4.0]]), "b": np.array([[4.0, 3.0], [4.0, 3.0]])}
        >>> summarize([(clean, bad, ["a", "b"])], bootstrap=0).target
        0.375
    """
    target, nontarget = _groups(parts)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(bootstrap):
        picks = [{t: rng.integers(0, len(c), len(c)) for t, c in clean.items()} for clean, _, _ in parts]
        bt, bn = _groups(parts, picks)
        boots.append((_nanmean(bt), _nanmean(bn), cohens_d(bt, bn)))

    def ci(k):
        values = np.array([b[k] for b in boots], dtype=float)
        values = values[~np.isnan(values)]
        if not len(values):
            return (math.nan, math.nan)
        return (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))

    return GroupSummary(_nanmean(target), _nanmean(nontarget), cohens_d(target, nontarget), ci(0), ci(1), ci(2),
                        sum(not math.isnan(v) for v in target), sum(not math.isnan(v) for v in nontarget), bootstrap)
