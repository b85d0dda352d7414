"""The trust benchmark (benchmarks/bench_trust.py): its JSON lines, the controlled judge, and the score cache.

No model: the controlled judge is synthetic, and the model path runs on an engine whose answers the test writes.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_trust as bt  # noqa: E402
import trust_truth as tt  # noqa: E402
from fake_engine import FakeEngine  # noqa: E402

from goalcover_hf.agreement import auc  # noqa: E402
from goalcover_hf.errors import GoalcoverError  # noqa: E402
from goalcover_hf.scorer import Scorer  # noqa: E402

pytestmark = pytest.mark.skipif(not (tt.data_dir() / tt.DATA_FILE).is_file(), reason="external data absent")

FIELDS = {"bench", "judge", "rows", "subgoals", "threshold", "labels_per_subgoal", "seeds", "draw", "estimate",
          "error_raw", "error_estimate", "bias_estimate", "coverage_rate", "mean_width", "labels_only_width",
          "labels_only_coverage_rate", "calibrated_share", "width_ratio", "auc_mean", "oracle_width_ratio",
          "oracle_neyman_width_ratio", "per_subgoal", "cache",
          "score_seconds", "wall_seconds"}
SUBGOAL_FIELDS = {"true", "raw", "auc", "error_raw", "error_estimate", "bias_estimate", "coverage_rate", "mean_width",
                  "labels_only_width", "labels_only_coverage_rate", "calibrated_share", "oracle_width_ratio",
                  "oracle_neyman_width_ratio"}


def run(capsys, *argv, scorer=None):
    assert bt.main(list(argv), scorer=scorer) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_controlled_judge_lines_and_calibration_beats_the_raw_figure(capsys, tmp_path):
    cache = tmp_path / "scores"  # its own folder: the suite's pair cache lives in tmp_path too
    lines = run(capsys, "--judge", "controlled", "--seeds", "8", "--n-labels", "0,10,20", "--cache-dir", str(cache))
    assert [line["labels_per_subgoal"] for line in lines] == [0, 10, 20]
    ids = [s.id for s in tt.load_spec().subgoals]
    _, _, truth = tt.load_truth()
    for line in lines:
        assert FIELDS <= set(line) and line["bench"] == "trust" and line["judge"] == "controlled"
        assert line["rows"] == 328 and line["subgoals"] == 6 and line["seeds"] == 8
        assert list(line["per_subgoal"]) == ids
        for sid, p in line["per_subgoal"].items():
            assert SUBGOAL_FIELDS <= set(p)
            assert p["true"] == pytest.approx(np.mean(truth[sid]), abs=1e-4)
            assert p["error_raw"] >= 0.25  # built to be far off at the threshold ...
            assert p["auc"] > 0.8  # ... while ranking well
            assert 0 <= p["coverage_rate"] <= 1 and 0 <= p["mean_width"] <= 1
    zero, *labelled = lines
    assert zero["estimate"] == "judge" and zero["draw"] is None and zero["calibrated_share"] == 0
    assert zero["error_estimate"] == zero["error_raw"]  # without labels the estimate is the raw figure
    assert zero["mean_width"] == 0 and zero["coverage_rate"] == 0  # every row scored: the raw interval is a point
    assert zero["labels_only_width"] == 1  # no labels: Wilson is [0, 1]
    for line in labelled:
        assert line["estimate"] == "calibrated" and line["calibrated_share"] == 1
        assert 0 < line["oracle_neyman_width_ratio"] <= line["oracle_width_ratio"] < 1  # a judge that ranks well
        assert line["error_estimate"] < line["error_raw"] / 2
        for p in line["per_subgoal"].values():
            assert p["error_estimate"] < p["error_raw"]
            assert 0 < p["mean_width"] < 1 and 0 < p["labels_only_width"] < 1
        assert set(line["uniform"]) == {"error_estimate", "coverage_rate", "mean_width", "width_ratio"}
        assert line["uniform"]["error_estimate"] < line["error_raw"] / 2
    assert labelled[1]["labels_only_width"] < labelled[0]["labels_only_width"]  # more labels, narrower
    assert not cache.exists() or not any(cache.iterdir())  # the controlled judge has nothing to cache


def test_oracle_width_ratios_bound_what_the_scores_can_give():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 0])
    assert bt.oracle_width_ratios([1, 1, 5, 5, 2, 4, 1, 2], y) == pytest.approx((0.0, 0.0))  # a perfect ranking
    assert bt.oracle_width_ratios([3] * 8, y) == pytest.approx((1.0, 1.0))  # scores that say nothing
    backwards = bt.oracle_width_ratios([5, 5, 1, 1, 4, 2, 5, 4], y)
    assert backwards == pytest.approx((0.0, 0.0))  # a ranking read the other way round is as good
    # two levels: rows at score 1 are 1 in 4 positive, at score 5 3 in 4: E[p(1-p)] = 3/16 against 1/4
    ratio, neyman = bt.oracle_width_ratios([1, 1, 1, 1, 5, 5, 5, 5], [1, 0, 0, 0, 1, 1, 1, 0])
    assert ratio == pytest.approx(np.sqrt(3 / 4)) and neyman == pytest.approx(np.sqrt(3 / 16) / 0.5)
    assert bt.oracle_width_ratios([1, 2, 3], [1, 1, 1]) == (None, None)


def test_controlled_judge_is_seeded_monotone_and_biased():
    _, _, truth = tt.load_truth(n_rows=200, seed=1)
    expected, scores = bt.controlled_judge(truth, seed=3)
    assert bt.controlled_judge(truth, seed=3) == (expected, scores)
    assert bt.controlled_judge(truth, seed=4)[0] != expected
    for sid, y in truth.items():
        e = np.asarray(expected[sid])
        assert e.min() >= 1 and e.max() <= 5 and auc(e, y) > 0.8
        true, raw = np.mean(y), np.mean(np.asarray(scores[sid]) >= 4)
        assert raw == pytest.approx(true + 0.3 if true < 0.5 else true - 0.3, abs=0.02)
        # the integer score is the expected score's level: the higher expected score never has the lower score
        order = np.argsort(e, kind="stable")
        assert np.all(np.diff(np.asarray(scores[sid])[order]) >= 0)


def test_uniform_pairs_draw_distinct_scored_rows():
    expected = {"a": [1.0, None, 2.0, 5.0, 4.0, 3.0], "b": [None] * 3 + [2.0] * 3}
    pairs = bt.uniform_pairs(expected, 3, seed=0)
    assert pairs == bt.uniform_pairs(expected, 3, seed=0)
    rows_a = [r for r, s in pairs if s == "a"]
    assert len(rows_a) == len(set(rows_a)) == 3 and 1 not in rows_a
    assert sorted(r for r, s in pairs if s == "b") == [3, 4, 5]


def digit_scorer(spec, fail_after=None, fail_on=None):
    """A scorer whose engine puts its weight on 5 when the subgoal's key word is in the sample, else on 1; it raises
    after ``fail_after`` chats, as a run that is interrupted, and gives no answer (a failed pair) on samples holding
    ``fail_on``."""
    words = {"type_hints": "->", "doctest_example": ">>>", "comment": "#", "docstring": '"""', "while_loop": "while",
             "compares_values": "=="}

    def probs(chat, choices):
        if fail_after is not None and len(engine.scored) > fail_after:
            raise KeyboardInterrupt
        sample, subgoal = chat[-1]["content"].split("SAMPLE>>>")
        if fail_on is not None and fail_on in sample:
            return None  # this pair cannot be scored, as a server's failed request
        sub = next(s for s in spec.subgoals if s.description in subgoal)
        return [0.05, 0.05, 0.1, 0.2, 0.6] if words[sub.id] in sample else [0.6, 0.2, 0.1, 0.05, 0.05]

    engine = FakeEngine(probs, name="digits", identity="digit-engine@test")
    return Scorer(spec, engine=engine, explain="none", cache=False), engine


def test_model_judge_scores_are_cached_and_an_interrupted_run_resumes(capsys, tmp_path):
    spec = tt.load_spec()
    argv = ["--judge", "digits", "--n-rows", "12", "--row-seed", "5", "--chunk", "4", "--seeds", "3",
            "--n-labels", "0,10", "--cache-dir", str(tmp_path)]
    scorer, engine = digit_scorer(spec, fail_after=4 * 6)  # dies while scoring the second chunk of 4 rows
    with pytest.raises(KeyboardInterrupt):
        bt.main(argv, scorer=scorer)
    capsys.readouterr()
    files = list(tmp_path.glob("trust_*.json"))
    assert len(files) == 1
    cached = json.loads(files[0].read_text())
    assert len(cached["rows"]) == 4 and cached["judge"]["spec_hash"] == spec.content_hash()
    row = next(iter(cached["rows"].values()))
    assert set(row["expected"]) == set(row["score"]) == {s.id for s in spec.subgoals}

    scorer, engine = digit_scorer(spec)
    lines = run(capsys, *argv, scorer=scorer)
    assert len(engine.scored) == 8 * 6  # only the rows the first run did not finish
    assert lines[0]["cache"] == str(files[0]) and lines[0]["rows"] == 12 and lines[0]["model"] == "digit-engine@test"
    assert len(json.loads(files[0].read_text())["rows"]) == 12
    rows, _, truth = tt.load_truth(12, 5)
    for sid, p in lines[0]["per_subgoal"].items():  # the raw figure is what the engine said
        assert p["true"] == pytest.approx(np.mean(truth[sid]), abs=1e-4)
    assert lines[0]["per_subgoal"]["while_loop"]["raw"] == pytest.approx(
        np.mean(["while" in r["text"] for r in rows]), abs=1e-4)

    scorer, engine = digit_scorer(spec)
    again = run(capsys, *argv, scorer=scorer)
    assert engine.scored == []  # every row read back
    strip = ("wall_seconds", "measure_seconds", "score_seconds", "rows_scored_now")
    assert [{k: v for k, v in line.items() if k not in strip} for line in again] == [
        {k: v for k, v in line.items() if k not in strip} for line in lines]


def test_a_failed_pair_is_not_kept_as_a_score_and_its_row_is_asked_again(capsys, tmp_path):
    spec = tt.load_spec()
    rows, _, _ = tt.load_truth(8, 2)
    argv = ["--judge", "digits", "--n-rows", "8", "--row-seed", "2", "--seeds", "2", "--n-labels", "0",
            "--cache-dir", str(tmp_path)]
    scorer, _ = digit_scorer(spec, fail_on=rows[3]["text"])
    line, = run(capsys, *argv, scorer=scorer)
    assert set(line["unscored_pairs"].values()) == {1}  # every subgoal of that one row
    truth = tt.load_truth(8, 2)[2]["while_loop"]
    assert line["per_subgoal"]["while_loop"]["true"] == pytest.approx(np.mean(truth[:3] + truth[4:]), abs=1e-4)
    scorer, engine = digit_scorer(spec)
    line, = run(capsys, *argv, scorer=scorer)
    assert len(engine.scored) == 6 and set(line["unscored_pairs"].values()) == {0}
    scorer, _ = digit_scorer(spec, fail_on="")  # every pair fails
    with pytest.raises(GoalcoverError, match="the judge scored no pair at all"):
        bt.main([*argv, "--cache-dir", str(tmp_path / "other")], scorer=scorer)


def test_a_cache_file_that_is_not_one_is_an_error_naming_it(capsys, tmp_path):
    spec = tt.load_spec()
    scorer, _ = digit_scorer(spec)
    path = bt.cache_file(tmp_path, bt.judge_key(scorer))
    path.write_text("{not json")
    with pytest.raises(GoalcoverError, match=f"{path}: not a score cache"):
        bt.main(["--judge", "digits", "--n-rows", "4", "--cache-dir", str(tmp_path)], scorer=scorer)
    assert path.read_text() == "{not json"  # left as it was
    path.write_text(json.dumps({"version": bt.CACHE_VERSION, "judge": {"model": "other"}, "rows": {}}))
    with pytest.raises(GoalcoverError, match="another judge"):
        bt.main(["--judge", "digits", "--n-rows", "4", "--cache-dir", str(tmp_path)], scorer=scorer)
