"""How far to trust a run's coverage: the run's labels, row sample and corruption experiment read into its coverage,
and the figures ``goalcover check`` prints and the card's "How far to trust this" section shows.

Example:
    >>> report = run_coverage(Run.load("runs/medqa"))  # calibrated where RUN/labels.jsonl has enough labels
    >>> check_figures(report)["subgoals"]["states_dose"]["coverage"]
    {'raw': 0.75, 'estimate': 0.42, 'low': 0.3, 'high': 0.55, 'method': 'calibrated', ...}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .agreement import FIGURES
from .coverage import DEFAULT_MIN_COVERAGE, CoverageReport, compute_coverage
from .errors import GoalcoverError
from .labels import Labels
from .ppi import MIN_LABELS
from .spec import GoalSpec

VALIDATION_FILE = "validation.json"  # `goalcover validate -o RUN` writes it into the run folder
DEFAULT_HALF_WIDTH = 0.05
NO_LABELS = "no labels yet"


def run_sample(run: Any) -> dict[str, Any] | None:
    """The run's ``sample`` record (``score --sample``) while its dataset is still that sample (not filtered or
    extended since)."""
    sample = run.provenance.get("sample")
    if not sample or "source_run" in run.provenance or sample.get("rows") != len(run.dataset):
        return None
    return dict(sample)


def run_coverage(run: Any, threshold: int | None = None, min_coverage: float = DEFAULT_MIN_COVERAGE,
                 min_samples: int = 0, *, labels: Any = None, min_labels: int = MIN_LABELS) -> CoverageReport:
    """Coverage of a run folder with everything it holds: its threshold, its human labels (``RUN/labels.jsonl``),
    its row sample (``score --sample``) and its corruption experiment (``RUN/validation.json``).

    Args:
        run (:class:`~goalcover_hf.results.Run`): the run.
        threshold (``int``, *optional*): the support threshold (default: the run's).
        min_coverage, min_samples: the target (see :class:`Target`).
        labels (*optional*): labels to use instead of the run's.
        min_labels (``int``, defaults to 10): labels a subgoal needs before its coverage is calibrated.

    Returns:
        :class:`CoverageReport`

    Example:
        >>> report = run_coverage(Run.load("runs/medqa"))
    """
    if labels is None and run.path is not None:
        labels = Labels.load(run.path)
    report = compute_coverage(run.dataset, run.spec, threshold or run.threshold, min_coverage, labels=labels,
                              min_samples=min_samples, sample=run_sample(run), min_labels=min_labels)
    if run.path is not None:
        report.validation = validation_summary(Path(run.path) / VALIDATION_FILE, run.spec)
    return report


def validation_summary(path: str | Path, spec: GoalSpec) -> dict[str, Any] | None:
    """The figures of a corruption experiment (``validation.json``) on this spec's subgoals, or None when there is no
    such file (or it is about other subgoals)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        summary, targets = doc["summary"], doc["targets"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise GoalcoverError(f"{path}: not a validation report written by `goalcover validate` ({err})") from None
    if not set(doc.get("subgoals", [])) <= {s.id for s in spec.subgoals}:
        return None
    return {"domain": doc.get("domain"), **{k: summary.get(k) for k in (
                "target", "target_ci", "nontarget", "nontarget_ci", "d", "d_ci", "n_target", "n_nontarget")},
            "targets": {t["target"]: t["degradation"].get(t["target"]) for t in targets}}


def _figures(agreement) -> dict[str, Any]:
    """One agreement's counts, figures, their intervals and its verdict (no labels: counts 0, figures None)."""
    if agreement is None:
        return {"labels": 0, "positives": 0, "negatives": 0, **{k: None for k in FIGURES},
                "intervals": {k: None for k in FIGURES}, "verdict": NO_LABELS}
    figs = {k: getattr(agreement, k) for k in FIGURES}
    return {"labels": agreement.labelled, "positives": agreement.positives, "negatives": agreement.negatives,
            **{k: f.value for k, f in figs.items()},
            "intervals": {k: None if f.low is None else [f.low, f.high] for k, f in figs.items()},
            "verdict": agreement.verdict if agreement.labelled else NO_LABELS}


def check_figures(report: CoverageReport, half_width: float = DEFAULT_HALF_WIDTH) -> dict[str, Any]:
    """What ``goalcover check`` reports, as plain data: per subgoal and overall, the labels and the judge's agreement
    with them (AUC of its expected score; accuracy, precision, recall, Cohen's kappa and bias at the threshold; each
    with its bootstrap interval) and a verdict; per subgoal, its coverage and how many more labels would bring its
    interval to +- ``half_width``.

    Args:
        report (:class:`~goalcover_hf.coverage.CoverageReport`): e.g. from :func:`run_coverage`.
        half_width (``float``, defaults to 0.05): the interval half-width to plan labels for.

    Returns:
        ``dict``: ``{"threshold", "confidence", "target", "labels", "sample", "half_width", "overall", "subgoals":
        {id: {"labels", "positives", "negatives", "auc", ..., "intervals", "verdict", "coverage": {"raw",
        "estimate", "low", "high", "method", "basis", "decision"}, "labels_needed"}}}``; coverage fractions are in
        0..1 (None with no evidence); ``labels_needed`` is None when labels alone cannot reach that width.
    """
    per = report.agreement.subgoals if report.agreement is not None else {}
    subgoals = {}
    for s in report.subgoals:
        seen = s.decision != "no evidence"
        subgoals[s.id] = {
            "name": s.name, **_figures(per.get(s.id)),
            "coverage": {"raw": s.judge_coverage if seen else None, "estimate": s.coverage if seen else None,
                         "low": s.low, "high": s.high, "method": s.method, "basis": s.basis, "decision": s.decision},
            "labels_needed": s.labels_needed(half_width),
        }
    return {"threshold": report.threshold, "confidence": report.confidence,
            "target": report.target.fraction(report.population), "labels": report.labels, "sample": report.sample,
            "half_width": half_width, "overall": _figures(report.agreement and report.agreement.overall),
            "subgoals": subgoals}
