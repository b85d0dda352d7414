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
    assert not a.gap and a.decision == "covered"  # 2 of the 4 rows seen; the 5th could go either way
    assert (b.support, b.coverage, b.gap, b.decision) == (0, 0.0, True, "gap")
    assert (c.scored, c.coverage, c.mean, c.gap, c.decision) == (0, 0.0, None, False, "no evidence")
    assert (c.low, c.high) == (None, None)
    assert [g.id for g in report.gaps] == ["b"]
    assert report.mean_coverage == pytest.approx(0.5 / 2)  # a subgoal without evidence is left out


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
    # 0 of the 2 rows seen: the third row could still support it, so warn is not yet a gap
    assert result["decision/warn"] == "uncertain" and result["low/warn"] == 0.0 and result["high/warn"] > 0.2
    assert result["gaps"] == [] and result["uncertain"] == ["warn"]
    assert result["low/dose"] == result["high/dose"] == pytest.approx(2 / 3)  # every row seen
    assert result["method/dose"] == "judge" and result["labels/dose"] == 0
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


# ---- intervals, decisions and calibrated figures ------------------------------------------------------------------
def test_without_labels_the_interval_is_the_sampling_of_rows_only():
    from goalcover_hf.ppi import wilson_interval

    full = coverage_from_scores({"a": [5] * 3 + [1] * 7}).subgoals[0]
    assert (full.coverage, full.low, full.high, full.method, full.labels) == (0.3, 0.3, 0.3, "judge", 0)
    assert full.basis == "judge's opinion" and full.decision == "covered"
    with_errors = coverage_from_scores({"a": [5] * 3 + [1] * 5 + [None] * 2}).subgoals[0]
    assert (with_errors.low, with_errors.high) == pytest.approx(wilson_interval(3, 8, population=10))
    assert with_errors.low < 3 / 8 < with_errors.high
    sampled = coverage_from_scores({"a": [5] * 3 + [1] * 7}, sample={"rows": 10, "of": 1000, "seed": 0})
    s = sampled.subgoals[0]
    assert (s.low, s.high) == pytest.approx(wilson_interval(3, 10, population=1000))
    assert s.decision == "uncertain" and sampled.population == 1000 and sampled.uncertain == [s]
    assert "estimated from 10 of 1000 rows" in sampled.table()


def test_a_subgoal_with_no_scored_row_is_no_evidence_never_a_gap():
    report = coverage_from_scores({"a": [None, None], "b": [1, 1]}, min_samples=5)
    a, b = report.subgoals
    assert a.decision == "no evidence" and not a.gap and a.labels_needed(0.05) is None
    assert b.decision == "gap" and report.gaps == [b]
    line = next(line for line in report.table().splitlines() if line.startswith("a "))
    assert "no evidence" in line and "GAP" not in line and "0/0" in line


@pytest.mark.parametrize("scores, sample, expected", [
    ([5] * 25 + [1] * 75, None, "covered"),  # 25% of every row
    ([5] * 15 + [1] * 85, None, "gap"),  # 15% of every row
    ([5] * 15 + [1] * 85, {"rows": 100, "of": 100000, "seed": 1}, "uncertain"),  # 15% of a sample: 8%..23%
    ([5] * 2 + [1] * 98, {"rows": 100, "of": 100000, "seed": 1}, "gap"),  # 2% of a sample: at most 7%
])
def test_gap_decisions_follow_the_interval(scores, sample, expected):
    s = coverage_from_scores({"a": scores}, min_coverage=0.2, sample=sample).subgoals[0]
    assert s.decision == expected and s.gap == (expected == "gap")


def test_min_samples_counts_rows_of_the_whole_dataset():
    report = coverage_from_scores({"a": [5] * 3 + [1] * 7}, min_coverage=0.0, min_samples=4)
    assert report.subgoals[0].decision == "gap" and report.target.fraction(10) == 0.4
    assert coverage_from_scores({"a": [5] * 3 + [1] * 7}, min_coverage=0.0, min_samples=3).subgoals[0].decision \
        == "covered"


def lenient_judge(rows=300, seed=0):
    """A judge that scores 4 or 5 whenever a latent quality is above average, where a person says only the top fifth
    support the subgoal: its coverage (about 50%) is far from the truth (20%)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    quality = rng.normal(size=rows)
    truth = (quality > np.quantile(quality, 0.8)).astype(int)
    expected = np.clip(3.5 + 1.6 * quality + 0.3 * rng.normal(size=rows), 1, 5)
    return [float(e) for e in expected], [int(round(e)) for e in expected], truth


def test_calibrated_figures_replace_the_judges_once_a_subgoal_has_enough_labels():
    expected, scores, truth = lenient_judge()
    judge = coverage_from_scores({"a": scores}, expected={"a": expected}).subgoals[0]
    assert judge.method == "judge" and judge.coverage > 0.4 and judge.decision == "covered"
    rows = list(range(0, 300, 5))  # 60 labelled rows
    labels = {(r, "a"): int(truth[r]) for r in rows}
    few = {k: v for k, v in list(labels.items())[:9]}
    report = coverage_from_scores({"a": scores}, expected={"a": expected}, labels=few)
    assert report.subgoals[0].method == "judge" and report.subgoals[0].labels == 9  # below min_labels
    assert "too few" in report.subgoals[0].basis
    report = coverage_from_scores({"a": scores}, expected={"a": expected}, labels=labels)
    s = report.subgoals[0]
    assert s.method == "calibrated" and s.labels == 60 and s.basis == "calibrated (60 labels)"
    assert s.low < truth.mean() < s.high and s.high < judge.coverage  # the truth, and far from the judge's figure
    assert s.judge_coverage == judge.coverage and s.support == judge.support
    assert s.decision != "covered" and report.agreement.subgoals["a"].labelled == 60
    assert isinstance(s.labels_needed(0.02), int)
    assert "calibrated (60 labels)" in report.table()
    data = report.to_dict()
    assert data["subgoals"][0]["method"] == "calibrated" and "estimate" not in data["subgoals"][0]
    assert data["agreement"]["subgoals"]["a"]["labelled"] == 60
    assert coverage_from_scores({"a": scores}, expected={"a": expected}, labels=labels, min_labels=61) \
        .subgoals[0].method == "judge"


def test_compute_coverage_reads_expected_scores_and_takes_labels(spec):
    from datasets import Dataset

    from goalcover_hf.labels import Labels

    expected, scores, truth = lenient_judge(100, seed=2)
    cols = {}
    for sub in spec.subgoals:
        names = score_columns(sub.id)
        cols[names["score"]], cols[names["expected"]] = scores, expected
    labels = Labels()
    for r in range(0, 100, 4):
        labels.add(r, "states_dose", int(truth[r]))
    report = compute_coverage(Dataset.from_dict(cols), spec, labels=labels)
    dose, warns = report.subgoals
    assert dose.method == "calibrated" and dose.labels == 25 and warns.method == "judge"
    assert report.labels == 25


def test_a_sample_that_does_not_fit_the_scores_is_refused():
    with pytest.raises(GoalcoverError, match="does not describe these 3 scored rows"):
        coverage_from_scores({"a": [1, 2, 3]}, sample={"rows": 4, "of": 10, "seed": 0})


def test_metric_takes_labels_and_returns_calibrated_intervals():
    import evaluate

    expected, scores, truth = lenient_judge()
    labels = [{"row": r, "subgoal": "a", "label": int(truth[r])} for r in range(0, 300, 5)]
    metric = evaluate.load(METRIC)
    result = metric.compute(predictions=[[s] for s in scores], subgoal_ids=["a"], labels=labels,
                            expected=[[e] for e in expected])
    assert result["method/a"] == "calibrated" and result["labels/a"] == 60
    assert result["low/a"] < truth.mean() < result["high/a"] < result["judge_coverage/a"]
    sampled = metric.compute(predictions=[[s] for s in scores], subgoal_ids=["a"], rows=30000)
    assert sampled["low/a"] < sampled["coverage/a"] < sampled["high/a"]
    with pytest.raises(ValueError, match=r"labels\[0\]: unknown subgoal 'b'"):
        metric.compute(predictions=[[5]], subgoal_ids=["a"], labels=[{"row": 0, "subgoal": "b", "label": 1}])
    with pytest.raises(ValueError, match=r"labels\[0\]: row 3 is not an index into the 1 predictions"):
        metric.compute(predictions=[[5]], subgoal_ids=["a"], labels=[{"row": 3, "subgoal": "a", "label": 1}])
