"""The card's charts: coverage per subgoal with the target line, and the score distribution per subgoal."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .coverage import CoverageReport
from .files import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    try:
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:  # a chart is never left half-written under its final name
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    finally:
        _pyplot().close(fig)
    return path


def _label(name: str, limit: int = 32) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


COLORS = {"gap": "#d9534f", "uncertain": "#f0ad4e", "covered": "#4a90d9", "no evidence": "#aaaaaa"}


def coverage_plot(report: CoverageReport, path: str | Path, gap_ids: Iterable[str] | None = None,
                  target_fraction: float | None = None, target_label: str | None = None) -> Path:
    """Horizontal bars: each subgoal's coverage with its interval as an error bar, coloured by its decision (red:
    gap, orange: uncertain, blue: covered, grey: no evidence), dashed line at the target.

    Args:
        report (:class:`CoverageReport`): the coverage to draw.
        path (``str`` or ``Path``): the PNG to write (its folder is created).
        gap_ids (``Iterable[str]``, *optional*): the subgoals to draw as gaps (default: the report's own gaps).
        target_fraction (``float``, *optional*): where the dashed line goes (default: ``report.min_coverage``).
        target_label (``str``, *optional*): the line's legend.

    Returns:
        ``Path``: ``path``.
    """
    plt = _pyplot()
    path = Path(path)
    subs = report.subgoals
    gap_ids = {s.id for s in report.gaps} if gap_ids is None else set(gap_ids)
    target = report.min_coverage if target_fraction is None else target_fraction
    decisions = ["gap" if s.id in gap_ids else "covered" if s.decision == "gap" else s.decision for s in subs]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(subs) + 1.5), dpi=110)
    seen = [s.decision != "no evidence" for s in subs]
    values = [s.coverage * 100 if ok else 0.0 for s, ok in zip(subs, seen)]
    errors = [[max(0.0, v - s.low * 100) if ok else 0.0 for s, v, ok in zip(subs, values, seen)],
              [max(0.0, s.high * 100 - v) if ok else 0.0 for s, v, ok in zip(subs, values, seen)]]
    bars = ax.barh(range(len(subs)), values, color=[COLORS[d] for d in decisions], xerr=errors,
                   error_kw={"ecolor": "#333", "capsize": 3, "linewidth": 1})
    for bar, s, d, ok in zip(bars, subs, decisions, seen):
        end = (s.high * 100 if ok else 0.0) + 1
        text = (f"{s.coverage:.0%} calibrated ({s.labels} labels)" if s.method == "calibrated"
                else f"{s.support}/{s.scored}" if ok else "no evidence")
        ax.text(end, bar.get_y() + bar.get_height() / 2, text + (f" {d}" if d in ("gap", "uncertain") else ""),
                va="center", fontsize=8, color="#b52b27" if d == "gap" else "#222")
    ax.axvline(target * 100, color="#333", linestyle="--", linewidth=1,
               label=target_label or f"target: {target:.0%} of samples")
    ax.set_yticks(range(len(subs)), [_label(s.name) for s in subs])
    for tick, d in zip(ax.get_yticklabels(), decisions):
        tick.set_color("#b52b27" if d == "gap" else "#222")
    ax.invert_yaxis()
    ax.set_xlim(0, 135)
    basis = "; calibrated where labelled" if any(s.method == "calibrated" for s in subs) else ""
    ax.set_xlabel(f"% of samples supporting it (judge: score >= {report.threshold}{basis})\n"
                  f"whiskers: {report.confidence:.0%} interval")
    ax.set_title("Capability coverage per subgoal (red: gap, orange: uncertain)")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def score_heatmap(report: CoverageReport, path: str | Path) -> Path:
    """Heatmap: rows are subgoals, columns scores 1..5; each cell is the share of scored samples (count printed).

    Args:
        report (:class:`CoverageReport`): the score distributions to draw.
        path (``str`` or ``Path``): the PNG to write (its folder is created).

    Returns:
        ``Path``: ``path``.
    """
    plt = _pyplot()
    path = Path(path)
    subs = report.subgoals
    counts = [[s.distribution.get(k, 0) for k in range(1, 6)] for s in subs]
    shares = [[c / s.scored if s.scored else 0.0 for c in row] for s, row in zip(subs, counts)]
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(subs) + 1.6), dpi=110)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(counts):
        for k, c in enumerate(row):
            ax.text(k, i, str(c), ha="center", va="center", fontsize=8,
                    color="white" if shares[i][k] > 0.6 else "#222")
    ax.axvline(report.threshold - 1.5, color="#d9534f", linewidth=1.5)  # left of it: does not support
    ax.set_xticks(range(5), [str(k) for k in range(1, 6)])
    ax.set_yticks(range(len(subs)), [_label(s.name) for s in subs])
    ax.set_xlabel(f"score (red line: support threshold {report.threshold})")
    ax.set_title("Score distribution per subgoal")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of scored samples")
    return _save(fig, path)
