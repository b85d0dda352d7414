"""The card's chart: coverage per subgoal with the gap line."""

from __future__ import annotations

from pathlib import Path

from .coverage import CoverageReport


def coverage_plot(report: CoverageReport, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    path = Path(path)
    subs = report.subgoals
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(subs) + 1.4), dpi=110)
    labels = [s.name if len(s.name) <= 32 else s.name[:31] + "…" for s in subs]
    colors = ["#d9534f" if s.gap else "#4a90d9" for s in subs]
    bars = ax.barh(range(len(subs)), [s.coverage * 100 for s in subs], color=colors)
    for bar, s in zip(bars, subs):
        ax.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2, f"{s.support}/{s.scored}", va="center", fontsize=8)
    ax.axvline(report.min_coverage * 100, color="#333", linestyle="--", linewidth=1, label="gap line")
    ax.set_yticks(range(len(subs)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 110)
    ax.set_xlabel(f"% of samples scoring >= {report.threshold}")
    ax.set_title("Capability coverage (red: gap)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
