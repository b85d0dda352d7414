"""GoalCover coverage as an `evaluate` metric. Thin: the numbers come from goalcover_hf.coverage."""

import datasets
import evaluate

from goalcover_hf.columns import DEFAULT_THRESHOLD
from goalcover_hf.coverage import DEFAULT_MIN_COVERAGE, coverage_from_scores
from goalcover_hf.errors import GoalcoverError

_DESCRIPTION = """
Per-subgoal coverage of a fine-tuning dataset: for each subgoal, how many samples score at or above the threshold
(support), the fraction of scored samples that do (coverage), the mean score, the score distribution, errors, and
whether the subgoal is a gap (coverage below `min_coverage`).
"""

_KWARGS_DESCRIPTION = f"""
Args:
    predictions: one list per sample with its scores (1..5) in subgoal order; 0 marks a pair without a score.
    subgoal_ids: the subgoal ids, in the same order as each prediction list.
    threshold: score at which a sample supports a subgoal (default {DEFAULT_THRESHOLD}).
    min_coverage: coverage under which a subgoal is a gap (default {DEFAULT_MIN_COVERAGE}).
Returns:
    mean_coverage, gaps (ids), rows, and per subgoal `coverage/<id>`, `support/<id>`, `mean/<id>`, `errors/<id>`.
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

    def _compute(self, predictions, subgoal_ids=None, threshold=DEFAULT_THRESHOLD, min_coverage=DEFAULT_MIN_COVERAGE):
        width = len(predictions[0]) if predictions else len(subgoal_ids or [])
        ids = list(subgoal_ids) if subgoal_ids is not None else [f"subgoal_{j}" for j in range(width)]
        for k, row in enumerate(predictions):
            if len(row) != len(ids):
                raise GoalcoverError(f"prediction row {k} has {len(row)} scores, expected {len(ids)} (one per subgoal)")
        scores = {sid: [row[j] or None for row in predictions] for j, sid in enumerate(ids)}
        report = coverage_from_scores(scores, threshold=threshold, min_coverage=min_coverage)
        out = {"mean_coverage": report.mean_coverage, "gaps": [s.id for s in report.gaps], "rows": report.rows}
        for s in report.subgoals:
            out[f"coverage/{s.id}"] = s.coverage
            out[f"support/{s.id}"] = s.support
            out[f"mean/{s.id}"] = s.mean
            out[f"errors/{s.id}"] = s.errors
        return out
