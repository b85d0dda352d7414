"""GoalCover coverage as an `evaluate` metric. Thin: the numbers come from goalcover_hf.coverage."""

import datasets
import evaluate

from goalcover_hf.columns import DEFAULT_THRESHOLD
from goalcover_hf.coverage import DEFAULT_MIN_COVERAGE, coverage_from_scores
from goalcover_hf.errors import GoalcoverError

_DESCRIPTION = """
Per-subgoal coverage of a fine-tuning dataset: for each subgoal, how many samples score at or above the threshold
(support), the coverage with its 95% interval, the mean score, errors, and a decision against `min_coverage`: gap (the
interval lies below it), covered (it reaches it), uncertain (it straddles it) or no evidence (nothing scored). Without
human labels the coverage is the judge's opinion (the share of scored samples at or above the threshold, its interval
counting the sampling of rows); with at least 10 labels on a subgoal it is calibrated on them (prediction-powered
inference).
"""

_KWARGS_DESCRIPTION = f"""
Args:
    predictions: one list per sample with its scores (1..5) in subgoal order; 0 marks a pair without a score.
    subgoal_ids: the subgoal ids, in the same order as each prediction list.
    threshold: score at which a sample supports a subgoal (default {DEFAULT_THRESHOLD}).
    min_coverage: the coverage each subgoal should reach (default {DEFAULT_MIN_COVERAGE}).
    labels: optional human labels, `[{{"row": i, "subgoal": id, "label": 1 or 0}}, ...]` (`row`: index into
        predictions); a subgoal with at least 10 gets calibrated coverage.
    expected: optional expected scores (floats 1..5), one list per sample like predictions; calibration ranks by them.
    rows: optional number of rows in the whole dataset when the predictions are a uniform random sample of it.
Returns:
    mean_coverage, gaps (ids), uncertain (ids), rows, and per subgoal `coverage/<id>` with its interval `low/<id>`
    and `high/<id>`, `decision/<id>`, `method/<id>` ("judge" or "calibrated"), `labels/<id>`,
    `judge_coverage/<id>`, `support/<id>`, `mean/<id>`, `errors/<id>`.
Example:
    >>> metric = evaluate.load("metrics/goalcover")
    >>> metric.compute(predictions=[[5, 1], [4, 0]], subgoal_ids=["a", "b"])["coverage/a"]
    1.0
"""

_CITATION = """@article{sun2026goalcover, title={Diagnosing Capability Gaps in Fine-Tuning Data}, author={Sun et al.}, year={2026}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Goalcover(evaluate.Metric):
    """Per-subgoal coverage as an ``evaluate`` metric; the figures come from :func:`goalcover_hf.coverage_from_scores`."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("int32"))}),
        )

    def _compute(self, predictions, subgoal_ids=None, threshold=DEFAULT_THRESHOLD, min_coverage=DEFAULT_MIN_COVERAGE,
                 labels=None, expected=None, rows=None):
        width = len(predictions[0]) if predictions else len(subgoal_ids or [])
        ids = list(subgoal_ids) if subgoal_ids is not None else [f"subgoal_{j}" for j in range(width)]
        for name, table in (("prediction", predictions), ("expected", expected or [])):
            for k, row in enumerate(table):
                if len(row) != len(ids):
                    raise GoalcoverError(f"{name} row {k} has {len(row)} scores, expected {len(ids)} (one per subgoal)")
        if expected is not None and len(expected) != len(predictions):
            raise GoalcoverError(f"expected has {len(expected)} rows, predictions {len(predictions)}")
        scores = {sid: [row[j] or None for row in predictions] for j, sid in enumerate(ids)}
        means = {sid: [row[j] for row in expected] for j, sid in enumerate(ids)} if expected is not None else None
        report = coverage_from_scores(scores, threshold=threshold, min_coverage=min_coverage, expected=means,
                                      labels=_labels(labels, ids, len(predictions)),
                                      sample={"rows": len(predictions), "of": rows, "seed": None} if rows else None)
        out = {"mean_coverage": report.mean_coverage, "gaps": [s.id for s in report.gaps],
               "uncertain": [s.id for s in report.uncertain], "rows": report.rows}
        for s in report.subgoals:
            for key in ("coverage", "low", "high", "decision", "method", "labels", "judge_coverage", "support", "mean",
                        "errors"):
                out[f"{key}/{s.id}"] = getattr(s, key)
        return out


def _labels(labels, ids, rows):
    """``[{"row", "subgoal", "label"}, ...]`` as ``{(row, subgoal): label}``; a bad entry is named."""
    pairs = {}
    for k, item in enumerate(labels or []):
        try:
            row, sub, label = item["row"], item["subgoal"], item["label"]
        except (KeyError, TypeError):
            raise GoalcoverError(f"labels[{k}]: expected {{'row', 'subgoal', 'label'}}, got {item!r}") from None
        if sub not in ids:
            raise GoalcoverError(f"labels[{k}]: unknown subgoal {sub!r} (subgoal_ids: {', '.join(ids)})")
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < rows:
            raise GoalcoverError(f"labels[{k}]: row {row!r} is not an index into the {rows} predictions")
        if isinstance(label, bool) or label not in (0, 1):
            raise GoalcoverError(f"labels[{k}]: label {label!r} is not 1 (supports) or 0 (does not)")
        pairs[(row, sub)] = label
    return pairs
