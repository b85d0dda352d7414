from pathlib import Path

import pytest

from goalcover_hf.columns import score_columns
from goalcover_hf.coverage import compute_coverage, coverage_from_scores
from goalcover_hf.errors import GoalcoverError

METRIC = str(Path(__file__).resolve().parents[1] / "metrics" / "goalcover")


def test_hand_computed_figures():
    report = coverage_from_scores(
        {"a": [5, 4, 3, 1, None], "b": [1, 2, 2, 1, 1], "c": [None, None, None, None, None]},
        threshold=4, min_coverage=0.2,
    )
    a, b, c = report.subgoals
    assert (a.rows, a.scored, a.errors, a.support) == (5, 4, 1, 2)
    assert a.coverage == 0.5 and a.mean == pytest.approx(13 / 4)
    assert a.distribution == {1: 1, 2: 0, 3: 1, 4: 1, 5: 1}
    assert not a.gap
    assert (b.support, b.coverage, b.gap) == (0, 0.0, True)
    assert (c.scored, c.coverage, c.mean, c.gap) == (0, 0.0, None, True)
    assert [g.id for g in report.gaps] == ["b", "c"]
    assert report.mean_coverage == pytest.approx(0.5 / 3)


def test_threshold_moves_support():
    scores = {"a": [3, 3, 4, 5]}
    assert coverage_from_scores(scores, threshold=3).subgoals[0].support == 4
    assert coverage_from_scores(scores, threshold=5).subgoals[0].support == 1


@pytest.mark.parametrize("kwargs, message", [({"threshold": 0}, "threshold"), ({"min_coverage": 1.5}, "min_coverage")])
def test_out_of_range_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        coverage_from_scores({"a": [1]}, **kwargs)


def test_bad_scores_name_the_row():
    with pytest.raises(ValueError, match="subgoal 'a', row 1: score 7"):
        coverage_from_scores({"a": [1, 7]})


def test_compute_coverage_reads_dataset_columns(spec):
    from datasets import Dataset

    cols = {score_columns(s.id)["score"]: v for s, v in zip(spec.subgoals, ([5, 1, 4], [1, 1, None]))}
    report = compute_coverage(Dataset.from_dict(cols), spec)
    assert [s.support for s in report.subgoals] == [2, 0]
    assert report.subgoals[0].name == "States a dose"


def test_compute_coverage_missing_column(spec):
    from datasets import Dataset

    with pytest.raises(GoalcoverError, match="gc_states_dose_score"):
        compute_coverage(Dataset.from_dict({"x": [1]}), spec)


def test_evaluate_metric_from_checkout_matches_module():
    import evaluate

    metric = evaluate.load(METRIC)
    result = metric.compute(predictions=[[5, 1], [4, 0], [2, 1]], subgoal_ids=["dose", "warn"], threshold=4)
    assert result["coverage/dose"] == pytest.approx(2 / 3)
    assert result["support/dose"] == 2
    assert result["errors/warn"] == 1
    assert result["coverage/warn"] == 0.0
    assert result["gaps"] == ["warn"]
    assert result["mean/dose"] == pytest.approx(11 / 3)


def test_evaluate_metric_via_installed_path_and_add_batch():
    import evaluate

    import goalcover_hf

    metric = evaluate.load(goalcover_hf.metric_path())
    metric.add_batch(predictions=[[5], [1]])
    metric.add_batch(predictions=[[4]])
    result = metric.compute(subgoal_ids=["only"], min_coverage=0.9)
    assert result["coverage/only"] == pytest.approx(2 / 3)
    assert result["gaps"] == ["only"]


def test_metric_rejects_ragged_rows():
    import evaluate

    with pytest.raises(ValueError, match="prediction row 1 has 1 scores, expected 2"):
        evaluate.load(METRIC).compute(predictions=[[5, 1], [4]], subgoal_ids=["a", "b"])
