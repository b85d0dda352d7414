"""Gaps: subgoals the data does not support, with the lowest-scoring rows as evidence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .coverage import CoverageReport, iter_low
from .spec import GoalSpec


@dataclass
class Gap:
    subgoal: str
    name: str
    coverage: float
    support: int
    scored: int
    evidence: list[dict[str, Any]] = field(default_factory=list)  # lowest-scoring rows: id, score, explanation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_gaps(annotated: Any, spec: GoalSpec, report: CoverageReport, evidence: int = 3) -> list[Gap]:
    """Gap subgoals, most under-covered first, each with its ``evidence`` lowest-scoring rows."""
    gaps = [
        Gap(s.id, s.name, s.coverage, s.support, s.scored, list(iter_low(annotated, spec, s.id, evidence)))
        for s in report.gaps
    ]
    gaps.sort(key=lambda g: (g.coverage, g.support, g.subgoal))
    return gaps


def gaps_text(gaps: list[Gap]) -> str:
    if not gaps:
        return "No gaps: every subgoal reaches the minimum coverage."
    lines = []
    for g in gaps:
        lines.append(f"GAP {g.subgoal} ({g.name}): {g.support}/{g.scored} samples support it ({g.coverage:.0%})")
        for ev in g.evidence:
            why = (ev["explanation"] or "(no explanation)").replace("\n", " ")
            lines.append(f"    row {ev['id']}: score {ev['score']}: {why[:140]}")
    return "\n".join(lines)
