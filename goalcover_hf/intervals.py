"""Confidence intervals for shares: normal and Student-t quantiles, the Wilson score interval (with a finite-population
correction), and what an interval says about a subgoal against its target coverage.

Example:
    >>> wilson_interval(8, 10)
    (0.49016..., 0.94331...)
"""

from __future__ import annotations

import math
from statistics import NormalDist

DECISIONS = ("gap", "covered", "uncertain", "no evidence")


def normal_quantile(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (1.96 for 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def t_quantile(confidence: float, df: float) -> float:
    """The two-sided Student's t quantile for ``confidence`` with ``df`` degrees of freedom (normal for infinite)."""
    if math.isinf(df):
        return normal_quantile(confidence)
    from scipy.special import stdtrit  # scipy comes with scikit-learn; scipy.special loads much faster than .stats

    return float(stdtrit(max(df, 1.0), 0.5 + confidence / 2))


def fpc(n: float, population: int | None) -> float:
    """The finite-population correction (N - n) / (N - 1) of a uniform sample of ``n`` rows out of ``population``."""
    if population is None or population <= 1:
        return 1.0
    if n > population:
        raise ValueError(f"a sample of {n} rows cannot come from {population} rows")
    return (population - n) / (population - 1)


def wilson_interval(k: int, n: int, confidence: float = 0.95, population: int | None = None) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k / n``.

    Args:
        k: successes.
        n: trials; 0 gives the uninformative (0.0, 1.0).
        confidence (`float`, defaults to 0.95): the interval's confidence level.
        population (`int`, *optional*): when the ``n`` trials are a uniform sample without replacement of this many
            rows, the interval is for the proportion in those rows (finite-population correction: it shrinks to the
            point when ``n == population``).

    Returns:
        (low, high), within [0, 1].

    Example:
        >>> wilson_interval(8, 10)
        (0.49016..., 0.94331...)
    """
    if n == 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval: k={k} is not between 0 and n={n}")
    return wilson_bounds(k / n, n, confidence, population)


def wilson_bounds(p: float, n: float, confidence: float = 0.95, population: int | None = None,
                  quantile: float | None = None) -> tuple[float, float]:
    """The Wilson score interval of :func:`wilson_interval` for an observed share ``p`` of ``n`` (``n > 0``); neither
    need be whole: a weighted or model-assisted estimate stands for an effective number of labels,
    ``p (1 - p) / variance`` (the Wilson interval with an effective sample size, Korn & Graubard 1998).

    Args:
        p: the observed share (clipped to [0, 1]).
        n: the (effective) number of trials.
        confidence, population: as in :func:`wilson_interval`.
        quantile (`float`, *optional*): the multiplier to use instead of the normal one (e.g. Student's t).

    Returns:
        (low, high), within [0, 1].
    """
    p = min(max(float(p), 0.0), 1.0)
    correction = fpc(n, population)
    if correction == 0:
        return p, p
    m = n / correction  # the sample size a with-replacement sample would need for the same variance
    z = normal_quantile(confidence) if quantile is None else quantile
    centre = (p + z * z / (2 * m)) / (1 + z * z / m)
    half = z / (1 + z * z / m) * math.sqrt(p * (1 - p) / m + z * z / (4 * m * m))
    return max(0.0, centre - half), min(1.0, centre + half)


def gap_decision(low: float | None, high: float | None, target: float, n: int | None = None) -> str:
    """What an interval says about a subgoal against the coverage it should reach.

    Args:
        low, high: the coverage interval (None: there is none).
        target: the coverage below which a subgoal is a gap.
        n (`int`, *optional*): rows the interval rests on; 0 means there is no evidence either way.

    Returns:
        ``"gap"`` (upper bound below ``target``), ``"covered"`` (lower bound at or above it), ``"uncertain"`` (the
        interval straddles it) or ``"no evidence"``.

    Example:
        >>> gap_decision(0.02, 0.15, target=0.2)
        'gap'
    """
    if n == 0 or low is None or high is None:
        return "no evidence"
    if high < target:
        return "gap"
    if low >= target:
        return "covered"
    return "uncertain"
