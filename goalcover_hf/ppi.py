"""Coverage a user can trust: an interval on every coverage figure, and calibrated coverage from a few human labels.

What a subgoal's coverage rests on decides the estimate:

- nothing scored: no evidence;
- scores, no labels: the judge's coverage (rows scoring >= threshold) with the interval of the sample of rows it was
  computed on (zero width when every row was scored): the judge's opinion, not the truth;
- scores and labels: calibrated coverage, the share of rows a person would say support the subgoal, estimated by
  prediction-powered inference (PPI, Angelopoulos et al., Science 2023) with power tuning (PPI++, Angelopoulos, Duchi
  & Zrnic 2023) and cross-fitted calibration (cross-PPI, Zrnic & Candès, PNAS 2024).

The estimand is the coverage of the dataset's own rows (a finite population), so the labelled rows, drawn from the
scored rows, get a finite-population correction, and the scored rows, when only a seeded uniform sample of the dataset
was scored, add their own sampling term (two-phase sampling). Labels are picked stratified by score level
(:func:`goalcover_hf.labels.pick_pairs`: at least one per level, the rest in proportion to the levels' rows), so the
rectifier is a stratified mean with each level weighted by its share of the rows (post-stratification: labels imported
from elsewhere are weighted the same way).

The estimate's variance is estimated level by level from the labels' own spread plus :data:`PRIOR_LABELS`
pseudo-labels at the variance the calibrated predictions imply (a level's two or three labels alone say little about
its variance, and a few that agree would claim none). The interval is the Wilson score interval at the estimate's
effective number of labels, ``p (1 - p) / variance``, with the normal quantile: like the labels' own Wilson interval it
bends away from 0 and 1, where a draw that comes out low also claims a small variance. When every label of a subgoal
gives the same answer, the labels show neither the judge's ranking nor any variance, and the interval is widened to at
least the Wilson interval those labels would give on their own.

Example:
    >>> est = calibrated_coverage({"cites": expected}, labels.pairs(), target=0.2)["cites"]
    >>> est.estimate, est.low, est.high, est.decision
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .calibration import cross_fit, labelled_positions, score_array, score_strata
from .columns import DEFAULT_THRESHOLD
from .intervals import (  # noqa: F401  (DECISIONS, normal_quantile, wilson_interval: re-exported)
    DECISIONS,
    fpc,
    gap_decision,
    normal_quantile,
    t_quantile,
    wilson_bounds,
    wilson_interval,
)

# Each stratum's variance is estimated as if this many more labels had shown what the calibrated predictions imply
# (the variance analogue of Agresti-Coull's pseudo-observations): two or three labels alone do not show a variance.
PRIOR_LABELS = 2.0
MIN_LABELS = 10  # fewer labels on a subgoal and the normal approximation behind its interval is not to be trusted
WORST_CASE_VARIANCE = 0.25  # of a 0/1 label: what planning assumes before the labels say better


@dataclass
class PPIResult:
    """A prediction-powered estimate of a mean.

    Attributes:
        estimate, low, high: the point estimate and its confidence interval (not clipped).
        se: its standard error.
        lam: the power-tuning weight used (0: labels only; 1: plain PPI).
        n, N: labelled and unlabelled sample sizes.
        rectifier_var, imputed_var: the two parts of ``se ** 2``.
        quantile: the multiplier of ``se`` in the interval (normal, or Student's t).
    """

    estimate: float
    low: float
    high: float
    se: float
    lam: float
    n: int
    N: int
    rectifier_var: float
    imputed_var: float
    quantile: float


def _merge_strata(strata: np.ndarray, strata_all: np.ndarray, min_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge each stratum holding fewer than ``min_labels`` labels into its upper neighbour (the top one into its
    lower), until every stratum has enough; returns the merged stratum index of each labelled and each row."""
    levels = np.unique(np.concatenate([strata, strata_all]))
    counts = {v: int(np.sum(strata == v)) for v in levels.tolist()}
    groups = [[v] for v in levels.tolist()]
    while len(groups) > 1:
        short = next((i for i, g in enumerate(groups) if sum(counts[v] for v in g) < min_labels), None)
        if short is None:
            break
        lo = short - 1 if short == len(groups) - 1 else short
        groups[lo:lo + 2] = [groups[lo] + groups[lo + 1]]
    index = {v: i for i, g in enumerate(groups) for v in g}
    return np.array([index[v] for v in strata.tolist()], dtype=int), np.array(
        [index[v] for v in strata_all.tolist()], dtype=int)


def _var(x: np.ndarray, ddof: int) -> float:
    return float(np.var(x, ddof=ddof)) if len(x) > ddof else 0.0


def _implied_var(f: np.ndarray, lam: float) -> float:
    """The variance of ``y - lam * f`` over rows whose 0/1 label ``y`` has probability ``f`` (calibrated
    predictions): ``mean(f(1-f)) + (1-lam)^2 var(f)``."""
    return float(np.mean(f * (1 - f))) + (1 - lam) ** 2 * _var(f, 0) if len(f) else 0.0


def ppi_mean(
    y: Sequence[float],
    yhat: Sequence[float],
    yhat_all: Sequence[float] | np.ndarray,
    *,
    lam: float | None = None,
    strata: Sequence[int] | None = None,
    strata_all: Sequence[int] | None = None,
    finite: bool = False,
    prior_labels: float = 0.0,
    ddof: int = 1,
    satterthwaite: bool = False,
    confidence: float = 0.95,
) -> PPIResult:
    """Prediction-powered (PPI++) estimate of the mean of ``y`` and its normal confidence interval.

    The estimate is ``lam * mean(yhat_all) + sum_h W_h * mean_h(y - lam * yhat)``, where ``h`` runs over strata and
    ``W_h`` is stratum ``h``'s share of ``yhat_all`` (one stratum: the published PPI++ estimator). With ``lam=None``
    the weight minimizing the estimated variance is used, clipped to [0, 1] (PPI++ power tuning).

    Args:
        y: the labels of the labelled sample.
        yhat: the predictions for the labelled sample (cross-fitted ones for cross-PPI).
        yhat_all: the predictions for the unlabelled sample, or an (N, K) array of K cross-fitted models' predictions,
            averaged per row (cross-PPI).
        lam (`float`, *optional*): a fixed power-tuning weight: 1 is plain PPI, 0 the labels-only (classical) mean.
        strata, strata_all (*optional*): the stratum of each labelled and each unlabelled item; a stratum with fewer
            than ``ddof + 1`` labels (without ``prior_labels``; with them, without a label) is merged into a
            neighbour.
        finite (`bool`, defaults to False): the target is the mean over the items of ``yhat_all`` themselves, the
            labelled items being a sample without replacement of them: the imputed mean then has no sampling error
            and each stratum's rectifier gets a finite-population correction. False: both samples are i.i.d. draws
            from one distribution, whose mean is the target (the setting of the PPI papers).
        prior_labels (`float`, defaults to 0): for probabilities as predictions of 0/1 labels: estimate each
            stratum's rectifier variance as if this many more labels had shown the variance calibrated predictions
            imply over the stratum's rows, ``v = mean(f(1-f)) + (1-lam)^2 var(f)``: ``(SS + prior_labels * v) /
            (n_h - ddof + prior_labels)``, ``SS`` the labels' sum of squared deviations. A few labels that happen to
            agree (a rare class not drawn) then do not claim zero variance, a stratum with a single label stands on
            its own, and as labels accumulate they outweigh the predictions. The degrees of freedom of the stratum's
            variance grow by the same count.
        ddof (`int`, defaults to 1): delta degrees of freedom of the variances; 0 (without ``prior_labels``)
            reproduces the reference implementation (ppi_py) exactly.
        satterthwaite (`bool`, defaults to False): use Student's t with Welch-Satterthwaite degrees of freedom (each
            stratum's variance with ``n_h - 1 + prior_labels``) instead of the normal quantile.
        confidence (`float`, defaults to 0.95): the interval's confidence level.

    Returns:
        :class:`PPIResult`.

    Example:
        >>> r = ppi_mean(y=[1, 0, 1, 1], yhat=[0.9, 0.2, 0.7, 0.8], yhat_all=np.random.rand(1000))
        >>> r.estimate, r.low, r.high, r.lam
    """
    y, yhat = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    f_all = np.asarray(yhat_all, dtype=float)
    if f_all.ndim == 2:
        f_all = f_all.mean(axis=1)
    n, big_n = len(y), len(f_all)
    if len(yhat) != n:
        raise ValueError(f"ppi_mean: {n} labels but {len(yhat)} predictions")
    if n <= ddof or big_n == 0:
        raise ValueError(f"ppi_mean: needs more than {ddof} labels and at least one unlabelled item (got {n}, {big_n})")
    strata = np.zeros(n, dtype=int) if strata is None else np.asarray(strata)
    strata_all = np.zeros(big_n, dtype=int) if strata_all is None else np.asarray(strata_all)
    if prior_labels < 0:
        raise ValueError(f"ppi_mean: prior_labels must be >= 0, not {prior_labels}")
    g, g_all = _merge_strata(strata, strata_all, 1 if prior_labels > 0 else ddof + 1)
    parts = []  # per stratum: (weight of its variance terms, labelled mask, rows mask)
    for h in np.unique(np.concatenate([g, g_all])).tolist():
        lab, rows = g == h, g_all == h
        n_h, big_n_h = int(lab.sum()), int(rows.sum())
        correction = max(0.0, 1 - n_h / big_n_h) if finite and big_n_h else 1.0
        parts.append(((big_n_h / big_n) ** 2 * correction / n_h, lab, rows))
    if lam is None:
        num = sum(c * np.sum((y[m] - y[m].mean()) * (yhat[m] - yhat[m].mean())) / (m.sum() - ddof)
                  for c, m, _ in parts if m.sum() > ddof)  # a stratum's single label shows no covariance
        den = sum(c * _var(np.concatenate([yhat[m], f_all[r]]), 1) for c, m, r in parts)
        if not finite:
            den += _var(np.concatenate([yhat, f_all]), 1) / big_n
        lam = float(np.clip(num / den, 0.0, 1.0)) if den > 0 else 0.0
    resid = y - lam * yhat
    estimate = lam * float(f_all.mean())
    rectifier_var = 0.0
    terms = []  # per stratum: (its share of the rectifier variance, its labels), for the degrees of freedom
    for c, m, r in parts:
        estimate += float(r.sum()) / big_n * float(resid[m].mean())
        ss = float(np.sum((resid[m] - resid[m].mean()) ** 2))
        prior = prior_labels * _implied_var(f_all[r], lam) if prior_labels else 0.0
        dof = int(m.sum()) - ddof + prior_labels
        var_h = (ss + prior) / dof if dof > 0 else 0.0
        rectifier_var += c * var_h
        terms.append((c * var_h, int(m.sum()) - 1 + prior_labels))
    imputed_var = 0.0 if finite else lam ** 2 * _var(f_all, 0) / big_n
    se = math.sqrt(rectifier_var + imputed_var)
    q = normal_quantile(confidence)
    if satterthwaite:
        den = sum(v ** 2 / k for v, k in terms if k > 0)
        df = rectifier_var ** 2 / den if rectifier_var > 0 and den > 0 else math.inf
        q = t_quantile(confidence, df)
    return PPIResult(estimate, estimate - q * se, estimate + q * se, se, lam, n, big_n, rectifier_var, imputed_var, q)


@dataclass
class CoverageEstimate:
    """One subgoal's coverage with its interval, and what it rests on.

    Attributes:
        subgoal: the subgoal id.
        method: ``"calibrated"`` (labels and scores), ``"judge"`` (the judge's opinion: no or too few labels) or
            ``"none"`` (nothing scored).
        estimate, low, high: the coverage and its interval (None when ``method == "none"``).
        decision: :func:`gap_decision` against ``target`` (None when no target was given).
        rows: rows in the dataset; scored: rows with a score for this subgoal.
        labelled, positives: the labels used, and how many of them say the sample supports the subgoal.
        judge_coverage, judge_low, judge_high: share of scored rows at or above the threshold, with its sampling
            interval.
        lam: PPI++ power-tuning weight (None unless calibrated).
        quantile: the multiplier of the standard error in the calibrated (Wilson) interval: the normal quantile.
        rectifier_var, sampling_var: the parts of the estimate's variance due to the labels and to the row sample.
        confidence: the intervals' confidence level.
        notes: plain sentences on what limits the figure.
    """

    subgoal: str
    method: str
    estimate: float | None
    low: float | None
    high: float | None
    decision: str | None
    rows: int
    scored: int
    labelled: int = 0
    positives: int = 0
    judge_coverage: float | None = None
    judge_low: float | None = None
    judge_high: float | None = None
    lam: float | None = None
    quantile: float | None = None
    rectifier_var: float = 0.0
    sampling_var: float = 0.0
    confidence: float = 0.95
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The estimate as plain JSON values."""
        return asdict(self)


def calibrated_coverage(
    expected: Mapping[str, Sequence[float | None]],
    labels: Mapping[tuple[int, str], int],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    scores: Mapping[str, Sequence[int | None]] | None = None,
    row_ids: Sequence[int] | None = None,
    rows: int | None = None,
    target: float | None = None,
    method: str = "logistic",
    folds: int = 5,
    seed: int = 0,
    confidence: float = 0.95,
    min_labels: int = MIN_LABELS,
    lam: float | None = None,
) -> dict[str, CoverageEstimate]:
    """Each subgoal's coverage with an interval: calibrated where it has labels, the judge's (with its sampling
    interval) where it has not.

    Args:
        expected: per subgoal, the judge's expected score (1..5) of each scored row, None where the pair has no score.
        labels: (dataset row, subgoal id) -> 1 (supports) or 0, e.g. ``Labels.pairs()``.
        threshold (`float`, defaults to 4): a row supports a subgoal in the judge's opinion when its score reaches this.
        scores (*optional*): per subgoal, the integer scores the judge's coverage counts (default: ``expected``).
        row_ids (*optional*): the dataset row of each position of the score lists (default: 0, 1, 2, ...); labels on
            other rows are not used.
        rows (`int`, *optional*): rows in the dataset when only a uniform sample of them was scored (default: the
            length of the score lists).
        target (`float`, *optional*): the coverage below which a subgoal is a gap; sets ``decision``.
        method (`str`, defaults to ``"logistic"``): the calibration curve (see :class:`~.calibration.Calibrator`).
        folds (`int`, defaults to 5): cross-fitting folds.
        seed (`int`, defaults to 0): seeds the fold assignment.
        confidence (`float`, defaults to 0.95): the intervals' confidence level.
        min_labels (`int`, defaults to 10): fewer labels on a subgoal and it keeps the judge's coverage.

    Returns:
        subgoal id -> :class:`CoverageEstimate`, in the order of ``expected``.
    """
    arrays = {sub: score_array(values) for sub, values in expected.items()}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise ValueError(f"calibrated_coverage: score lists of different lengths {sorted(lengths)}")
    size = lengths.pop() if lengths else 0
    ids = list(range(size)) if row_ids is None else [int(r) for r in row_ids]
    if len(ids) != size:
        raise ValueError(f"calibrated_coverage: {len(ids)} row ids for {size} scored rows")
    population = size if rows is None else rows
    if population < size:
        raise ValueError(f"calibrated_coverage: {size} scored rows cannot come from a dataset of {population} rows")
    labelled, unusable = labelled_positions(arrays, labels, ids)
    enough = [sub for sub, (pos, _) in labelled.items() if len(pos) >= min_labels]
    fit = cross_fit(arrays, {s: lab for s, lab in labelled.items() if lab[0]}, folds=folds, seed=seed,
                    method=method) if enough else None
    out = {}
    for sub, e in arrays.items():
        scored = ~np.isnan(e)
        big_n = int(scored.sum())
        est = CoverageEstimate(sub, "none", None, None, None, None, population, big_n, confidence=confidence)
        out[sub] = est
        if unusable[sub]:
            est.notes.append(f"{unusable[sub]} label(s) fall on rows without a score for this subgoal; not used")
        if big_n == 0:
            est.decision = gap_decision(None, None, target, 0) if target is not None else None
            est.notes.append("no row has a score for this subgoal")
            continue
        judged = score_array(scores[sub]) if scores is not None else e
        k = int(np.sum(judged[scored] >= threshold))
        p = k / big_n
        est.judge_coverage = p
        est.judge_low, est.judge_high = wilson_interval(k, big_n, confidence, population)
        est.labelled, est.positives = len(labelled[sub][0]), int(sum(labelled[sub][1]))
        sampling = fpc(big_n, population) / big_n  # times the variance of a 0/1 label over the rows
        if sub not in enough:
            est.method, est.estimate, est.low, est.high = "judge", p, est.judge_low, est.judge_high
            est.sampling_var = p * (1 - p) * sampling
            est.notes.append(f"{est.labelled} label(s): the judge's uncalibrated coverage; calibrated coverage needs "
                             f"at least {min_labels} labels")
        else:
            pos = fit.positions[sub]
            r = ppi_mean(fit.labels[sub], fit.out_of_fold[sub], fit.all_rows[sub][scored],
                         strata=score_strata(e[pos]), strata_all=score_strata(e[scored]),
                         lam=lam, finite=True, prior_labels=PRIOR_LABELS, ddof=1, confidence=confidence)
            theta = min(max(r.estimate, 0.5 / big_n), 1 - 0.5 / big_n)
            est.sampling_var = theta * (1 - theta) * sampling
            est.method, est.lam, est.rectifier_var, est.quantile = "calibrated", r.lam, r.rectifier_var, r.quantile
            est.estimate = min(max(r.estimate, 0.0), 1.0)
            # a share's spread shrinks with it near 0 or 1, so a draw that happens to come out low also claims a
            # small variance: the Wilson interval at the estimate's effective number of labels bends the same way
            # (n labels cannot tell a share nearer 0 or 1 than half a label: no effective count of nearly none)
            var, resolved = r.rectifier_var + est.sampling_var, min(max(r.estimate, 0.5 / r.n), 1 - 0.5 / r.n)
            if var > 0:
                est.low, est.high = wilson_bounds(est.estimate, resolved * (1 - resolved) / var, quantile=r.quantile)
            else:
                est.low = est.high = est.estimate
            if min(est.positives, est.labelled - est.positives) == 0:
                # labels that all agree show neither the judge's ranking nor any variance: claim no more than they do
                low, high = wilson_bounds(est.estimate, est.labelled, confidence, big_n)
                est.low, est.high = min(est.low, low), max(est.high, high)
                est.notes.append("every label gives the same answer: the interval is at least the labels' own")
            if len(set(score_strata(e[pos]).tolist())) < len(set(score_strata(e[scored]).tolist())):
                est.notes.append("some score levels have no labels: they borrow their neighbours' correction")
        if target is not None:
            est.decision = gap_decision(est.low, est.high, target, big_n)
    return out


def labels_needed(estimate: CoverageEstimate, half_width: float) -> int | None:
    """How many more labels would bring ``estimate``'s interval to +- ``half_width`` (at its confidence level).

    Projects from the variances estimated so far: the labels' part shrinks as 1/n (with the finite-population
    correction), the row sample's part does not. Before a subgoal has enough labels for calibration, planning assumes
    the worst case, a label variance of 0.25.

    Returns:
        The number of additional labels (0 when the interval is already that narrow), or None when labels alone cannot
        get there: the sampling of rows leaves it wider (score more rows) or there is nothing scored.
    """
    if estimate.scored == 0 or half_width <= 0:
        return None
    z = estimate.quantile or normal_quantile(estimate.confidence)
    big_n, n = estimate.scored, estimate.labelled if estimate.method == "calibrated" else 0
    room = (half_width / z) ** 2 - estimate.sampling_var
    if room <= 0:
        return None
    if estimate.method == "calibrated":
        if (estimate.high - estimate.low) / 2 <= half_width:
            return 0
        unit = estimate.rectifier_var * n / max(1 - n / big_n, 1e-12)  # variance per label, as if drawn with replacement
    else:
        unit = WORST_CASE_VARIANCE
    if unit == 0:
        return 0
    total = math.ceil(1 / (room / unit + 1 / big_n))
    return max(0, min(total, big_n) - estimate.labelled)
