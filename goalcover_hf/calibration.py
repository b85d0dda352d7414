"""Calibration: the judge's expected score (1..5) -> the probability that a person says a sample supports a subgoal.

A judge usually fails in one way: it ranks samples well but its threshold sits in the wrong place, differently for
each subgoal. So one monotone curve is fitted on every label of the run (all subgoals pooled: a subgoal with few labels
borrows the others' strength), and each subgoal gets its own shift on the logit scale, shrunk toward zero the fewer
labels it has. The curve only has to be good, not right: prediction-powered inference (:mod:`.ppi`) corrects what it
gets wrong with the labels themselves, provided each labelled pair's prediction was made without its own label; hence
:func:`cross_fit` (cross-PPI, Zrnic & Candès, PNAS 2024).

Example:
    >>> cal = Calibrator().fit(expected=[1.2, 4.8, 4.9, 2.0], labels=[0, 1, 0, 0], subgoals=["a"] * 4)
    >>> cal.predict([1.0, 5.0], "a")  # nondecreasing in the score
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

METHODS = ("logistic", "isotonic")
SCORE_LEVELS = (1, 2, 3, 4, 5)
# Weak prior on the pooled logistic curve (intercept, slope per score point): keeps it finite when the labels separate.
CURVE_RIDGE = 0.1
_NEWTON_STEPS = 100


def score_strata(expected: Sequence[float] | np.ndarray) -> np.ndarray:
    """The score level (1..5) of each expected score, rounding halves up: the strata of label picking and weighting.

    Example:
        >>> score_strata([1.2, 3.5, 4.49, 5.0]).tolist()
        [1, 4, 4, 5]
    """
    values = np.floor(np.asarray(expected, dtype=float) + 0.5)
    return np.clip(values, SCORE_LEVELS[0], SCORE_LEVELS[-1]).astype(int)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _stretch(expected: np.ndarray) -> np.ndarray:
    """The expected score on the judge's own logit scale: a confident judge's scores bunch up near 1 and 5, and 4.9
    against 4.99 is as telling a difference as 2.5 against 3.5."""
    return _logit(np.clip((expected - 1.0) / 4.0, 1e-3, 1 - 1e-3))


def _logistic_fit(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Penalized logistic regression by Newton's method; ``x`` holds the features (intercept included)."""
    theta = np.zeros(x.shape[1])
    for _ in range(_NEWTON_STEPS):
        p = _sigmoid(x @ theta)
        grad = x.T @ (p - y) + ridge * theta
        hess = (x * (p * (1 - p))[:, None]).T @ x + ridge * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta


def _shift_fit(offset: np.ndarray, y: np.ndarray, shrinkage: float) -> float:
    """The logit shift delta maximizing the likelihood of ``y`` under sigmoid(offset + delta), with a N(0, 1/shrinkage)
    prior on delta."""
    delta = 0.0
    for _ in range(_NEWTON_STEPS):
        p = _sigmoid(offset + delta)
        grad = np.sum(p - y) + shrinkage * delta
        step = grad / (np.sum(p * (1 - p)) + shrinkage)
        delta -= step
        if abs(step) < 1e-10:
            break
    return float(delta)


def isotonic_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nondecreasing least-squares fit of ``y`` on ``x`` (pool adjacent violators).

    Returns:
        The distinct ``x`` values, sorted, and the fitted value at each.
    """
    xs, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=y)
    counts = np.bincount(inverse).astype(float)
    blocks: list[list[float]] = []  # [sum, count, number of distinct x values]
    for s, c in zip(sums, counts):
        blocks.append([s, c, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s2, c2, k2 = blocks.pop()
            blocks[-1][0] += s2
            blocks[-1][1] += c2
            blocks[-1][2] += k2
    fitted = np.concatenate([np.full(int(k), s / c) for s, c, k in blocks])
    return xs, fitted


class Calibrator:
    """A monotone map from the judge's expected score to P(a person says the sample supports the subgoal).

    Args:
        method (`str`, defaults to ``"logistic"``): the pooled curve: ``"logistic"`` (two parameters, smooth; best
            with few labels) or ``"isotonic"`` (any nondecreasing step curve; needs more labels).
        shrinkage (`float`, defaults to 1.0): precision of the zero-mean prior on each subgoal's logit shift; larger
            keeps subgoals with few labels closer to the pooled curve.

    Example:
        >>> cal = Calibrator("isotonic").fit([1, 2, 4, 5, 5], [0, 0, 1, 0, 1], ["a", "a", "a", "b", "b"])
        >>> cal.predict([3.0], "b")
    """

    def __init__(self, method: str = "logistic", shrinkage: float = 1.0):
        if method not in METHODS:
            raise ValueError(f"calibration method must be one of {', '.join(METHODS)}, not {method!r}")
        self.method, self.shrinkage = method, shrinkage
        self.shifts: dict[str, float] = {}
        self._theta = np.zeros(2)
        self._iso: tuple[np.ndarray, np.ndarray] | None = None
        self._eps = 0.5

    def curve(self, expected: Sequence[float] | np.ndarray) -> np.ndarray:
        """The pooled curve's logit at each expected score (before any subgoal's shift)."""
        s = np.asarray(expected, dtype=float)
        if self.method == "logistic":
            return self._theta[0] + self._theta[1] * _stretch(s)
        xs, fitted = self._iso
        return _logit(np.clip(np.interp(s, xs, fitted), self._eps, 1 - self._eps))

    def fit(self, expected: Sequence[float], labels: Sequence[int], subgoals: Sequence[str]) -> "Calibrator":
        """Fit the pooled curve on every label, then each subgoal's shift.

        Args:
            expected: the judge's expected score of each labelled pair.
            labels: the person's answer for each pair (1: supports, 0: does not).
            subgoals: the subgoal id of each pair.

        Returns:
            ``self``, fitted.
        """
        s = np.asarray(expected, dtype=float)
        y = np.asarray(labels, dtype=float)
        subs = np.asarray(subgoals, dtype=object)
        if not len(s):
            raise ValueError("calibration needs at least one label")
        if self.method == "logistic":
            x = np.column_stack([np.ones_like(s), _stretch(s)])
            self._theta = _logistic_fit(x, y, CURVE_RIDGE)
            if self._theta[1] < 0:  # a judge that ranks backwards earns no slope: the curve must stay monotone
                self._theta = np.array([_logistic_fit(x[:, :1], y, CURVE_RIDGE)[0], 0.0])
        else:
            self._iso = isotonic_fit(s, y)
            self._eps = 0.5 / (len(s) + 1)  # a step at 0 or 1 stays finite on the logit scale
        offset = self.curve(s)
        self.shifts = {sub: _shift_fit(offset[subs == sub], y[subs == sub], self.shrinkage) for sub in np.unique(subs)}
        return self

    def predict(self, expected: Sequence[float] | np.ndarray, subgoal: str) -> np.ndarray:
        """P(supports) at each expected score for ``subgoal`` (a subgoal without labels gets the pooled curve)."""
        return _sigmoid(self.curve(expected) + self.shifts.get(subgoal, 0.0))


@dataclass
class CrossFit:
    """Cross-fitted predictions for every subgoal.

    Attributes:
        folds: how many folds were fitted.
        positions: per subgoal, the positions (into that subgoal's score array) of its labelled pairs.
        labels: per subgoal, the label of each of those pairs.
        out_of_fold: per subgoal, each labelled pair's prediction by the curve fitted without its row's labels.
        all_rows: per subgoal, an (N, folds) array: every fold's curve applied to every row (NaN where unscored).
    """

    folds: int
    positions: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    out_of_fold: dict[str, np.ndarray]
    all_rows: dict[str, np.ndarray]


def cross_fit(
    expected: Mapping[str, np.ndarray],
    labelled: Mapping[str, tuple[Sequence[int], Sequence[int]]],
    *,
    folds: int = 5,
    seed: int = 0,
    method: str = "logistic",
    shrinkage: float = 1.0,
) -> CrossFit:
    """Fit ``folds`` calibrators, each without one fold of the labelled rows, and predict with them.

    Folds split rows, not pairs, so that no curve has seen any label of a row it predicts (a row's labels for different
    subgoals are not independent).

    Args:
        expected: per subgoal, the judge's expected score of every row (NaN where the pair has no score); all arrays are
            indexed by the same row positions.
        labelled: per subgoal, (positions, labels) of its labelled pairs; positions must have a score.
        folds (`int`, defaults to 5): number of folds, reduced to the number of labelled rows if that is smaller.
        seed (`int`, defaults to 0): seeds the assignment of rows to folds.
        method, shrinkage: see :class:`Calibrator`.

    Returns:
        :class:`CrossFit`.
    """
    positions = {sub: np.asarray(pos, dtype=int) for sub, (pos, _) in labelled.items()}
    labels = {sub: np.asarray(lab, dtype=float) for sub, (_, lab) in labelled.items()}
    rows = np.unique(np.concatenate([p for p in positions.values()] or [np.zeros(0, dtype=int)]))
    k = min(folds, len(rows))
    if k < 2:
        raise ValueError(f"cross-fitting needs labels on at least 2 rows, got {len(rows)}")
    fold_of = dict(zip(rows.tolist(), (np.random.default_rng(seed).permutation(len(rows)) % k).tolist()))
    pair_fold = {sub: np.array([fold_of[p] for p in pos.tolist()], dtype=int) for sub, pos in positions.items()}
    out_of_fold = {sub: np.full(len(pos), np.nan) for sub, pos in positions.items()}
    all_rows = {sub: np.full((len(np.asarray(values)), k), np.nan) for sub, values in expected.items()}
    for fold in range(k):
        train = {sub: pair_fold[sub] != fold for sub in positions}
        cal = Calibrator(method, shrinkage).fit(
            np.concatenate([np.asarray(expected[sub], dtype=float)[positions[sub][m]] for sub, m in train.items()]),
            np.concatenate([labels[sub][m] for sub, m in train.items()]),
            np.concatenate([np.full(int(m.sum()), sub, dtype=object) for sub, m in train.items()]),
        )
        for sub, values in expected.items():
            values = np.asarray(values, dtype=float)
            scored = ~np.isnan(values)
            all_rows[sub][scored, fold] = cal.predict(values[scored], sub)
            if sub in positions:
                held = pair_fold[sub] == fold
                out_of_fold[sub][held] = cal.predict(values[positions[sub][held]], sub)
    return CrossFit(k, positions, labels, out_of_fold, all_rows)


def score_array(values: Sequence[float | None]) -> np.ndarray:
    """A score list as floats, NaN where a pair has no score."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def labelled_positions(
    expected: Mapping[str, np.ndarray], labels: Mapping[tuple[int, str], int], row_ids: Sequence[int] | None = None
) -> tuple[dict[str, tuple[list[int], list[int]]], dict[str, int]]:
    """Line labels up with score arrays.

    Args:
        expected: per subgoal, the expected score of each position (NaN: no score).
        labels: (dataset row, subgoal) -> 0/1.
        row_ids (*optional*): the dataset row at each position (default: the position itself).

    Returns:
        Per subgoal, (positions, labels) of its labels that fall on a scored position, and per subgoal how many labels
        could not be used (their row is not among the positions, or has no score).
    """
    size = len(next(iter(expected.values()), ()))
    position = {int(r): i for i, r in enumerate(range(size) if row_ids is None else row_ids)}
    used: dict[str, tuple[list[int], list[int]]] = {sub: ([], []) for sub in expected}
    unusable = {sub: 0 for sub in expected}
    for (row, sub), label in sorted(labels.items()):
        if sub not in expected:
            continue
        pos = position.get(row)
        if pos is None or np.isnan(expected[sub][pos]):
            unusable[sub] += 1
        else:
            used[sub][0].append(pos)
            used[sub][1].append(int(label))
    return used, unusable
