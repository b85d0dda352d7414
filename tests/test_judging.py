"""Each judging method's arithmetic, proven with judges whose scores the test controls."""

import sys
from pathlib import Path

import pytest

from goalcover_hf import Scorer, judging
from goalcover_hf.columns import Judgement
from goalcover_hf.spec import Subgoal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

DOSE = Subgoal(id="dose", name="States a dose", description="Gives a dose.", low="No dose.", high="Exact dose.")
RISK = Subgoal(id="risk", name="Warns of risks", description="Names a side effect.")


class FakeJudge:
    """judge_texts returns ``table[(sample, wording)]`` where wording tells which rewording the method asked for."""

    def __init__(self, table, default=3.0):
        self.table, self.default, self.calls = table, default, []

    @staticmethod
    def wording(sub: Subgoal) -> str:
        if sub.name.startswith("Lacks: "):
            return "neg"
        if sub.name.startswith("Check: "):
            return "check"
        return "plain" if sub.low or sub.high else "bare"

    def judge_texts(self, samples, subgoals=None, prompt=None):
        self.calls.append((list(samples), list(subgoals)) + ((prompt,) if prompt else ()))
        out = []
        for s in samples:
            row = []
            for sub in subgoals:
                wording = prompt or self.wording(sub)  # a layout method's prompt stands for its wording
                v = self.table.get((s, sub.id, wording), self.table.get((s, sub.id), self.default))
                row.append(Judgement(error=v) if isinstance(v, str) else
                           Judgement(score=judging.to_score(v), expected=float(v), explanation=f"{s}/{sub.id}"))
            out.append(row)
        return out


def test_score_and_expected_methods():
    fake = FakeJudge({("a", "dose"): 4.4, ("a", "risk"): 1.6})
    [[dose, risk]] = judging.judge(fake, ["a"], [DOSE, RISK], "expected")
    assert (dose.expected, dose.score, dose.explanation) == (4.4, 4, "a/dose")
    assert (risk.expected, risk.score) == (1.6, 2)
    [[dose, risk]] = judging.judge(fake, ["a"], [DOSE, RISK], "score")
    assert (dose.expected, risk.expected) == (4.0, 2.0)


def test_expected_keeps_the_judgements_own_score():
    # the argmax digit of a skewed distribution need not be its rounded mean: "expected" keeps the argmax
    class Skewed:
        def judge_texts(self, samples, subgoals=None):
            return [[Judgement(score=2, expected=3.2) for _ in subgoals] for _ in samples]

    [[j]] = judging.judge(Skewed(), ["a"], [DOSE], "expected")
    assert (j.score, j.expected) == (2, 3.2)
    [[j]] = judging.judge(Skewed(), ["a"], [DOSE], "no_anchors")
    assert (j.score, j.expected) == (2, 3.2)


def test_layout_methods_ask_for_their_prompt():
    fake = FakeJudge({("a", "dose", "score_verdict_v1"): 4.5, ("a", "dose", "score_subgoal_first_v1"): 1.5,
                      ("a", "dose", "plain"): 3.0})
    [[v]] = judging.judge(fake, ["a"], [DOSE], "verdict_first")
    [[s]] = judging.judge(fake, ["a"], [DOSE], "subgoal_first")
    assert (v.expected, s.expected) == (4.5, 1.5)
    assert [c[2] for c in fake.calls] == ["score_verdict_v1", "score_subgoal_first_v1"]
    assert judging.prompt_for("verdict_first+cal") == "score_verdict_v1" and judging.prompt_for("contrastive") == "score_v2"


def test_parse_method():
    assert judging.parse_method("consistency+cal") == ("consistency", "cal")
    assert judging.parse_method("expected+calx", ("cal", "calx")) == ("expected", "calx")
    with pytest.raises(ValueError, match=r"unknown judging method 'expected\+calx'.*verdict_first"):
        judging.parse_method("expected+calx")


def test_no_anchors_strips_low_mid_and_high():
    fake = FakeJudge({("a", "dose", "plain"): 5.0, ("a", "dose", "bare"): 2.0})
    [[j]] = judging.judge(fake, ["a"], [DOSE.model_copy(update={"mid": "Some dose."})], "no_anchors")
    assert j.expected == 2.0
    assert all(not s.low and not s.mid and not s.high for s in fake.calls[0][1])


def test_negate_swaps_anchors_and_keeps_id():
    neg = judging.negate(DOSE)
    assert neg.id == "dose" and "NOT" in neg.description and neg.high == DOSE.low and DOSE.high in neg.low


def test_contrastive_cancels_a_judge_that_says_yes_to_everything():
    # "yes-sayer": both wordings score high; only the difference carries information
    fake = FakeJudge({("a", "dose", "plain"): 5.0, ("a", "dose", "neg"): 5.0,
                      ("b", "dose", "plain"): 5.0, ("b", "dose", "neg"): 1.0,
                      ("c", "dose", "plain"): 1.0, ("c", "dose", "neg"): 5.0})
    rows = judging.judge(fake, ["a", "b", "c"], [DOSE], "contrastive")
    assert [r[0].expected for r in rows] == [3.0, 5.0, 1.0]
    assert [r[0].score for r in rows] == [3, 5, 1]


def test_consistency_averages_three_wordings_and_fails_on_any_error():
    fake = FakeJudge({("a", "dose", "plain"): 5.0, ("a", "dose", "bare"): 3.0, ("a", "dose", "check"): 4.0,
                      ("b", "dose", "check"): "invalid model output"})
    [[a], [b]] = judging.judge(fake, ["a", "b"], [DOSE], "consistency")
    assert a.expected == pytest.approx(4.0) and a.score == 4
    assert b.score is None and b.error == "invalid model output"
    assert [FakeJudge.wording(c[1][0]) for c in fake.calls] == ["plain", "bare", "check"]


def test_calibration_offsets_and_clipping():
    # The judge gives 4.0 to content-free text for "dose" (a bias), 1.0 for "risk" (no bias).
    table = {(s, "dose"): 4.0 for s in judging.CONTENT_FREE}
    table.update({(s, "risk"): 1.0 for s in judging.CONTENT_FREE})
    table.update({("x", "dose"): 4.5, ("x", "risk"): 2.0, ("y", "dose"): 3.0})
    fake = FakeJudge(table)
    offsets = judging.calibrate(fake, [DOSE, RISK])
    assert offsets == {"dose": 3.0, "risk": 0.0}
    judged = judging.judge(fake, ["x", "y"], [DOSE, RISK], "expected")
    [[xd, xr], [yd, yr]] = judging.apply_calibration(judged, [DOSE, RISK], offsets)
    assert (xd.expected, xd.score) == (1.5, 2)  # 4.5 - 3.0
    assert (xr.expected, xr.score) == (2.0, 2)  # unbiased subgoal unchanged
    assert yd.expected == 1.0  # 3.0 - 3.0 = 0 clipped to the scale
    assert xd.explanation == "x/dose"


def test_calibration_on_mismatched_samples_and_errors():
    fake = FakeJudge({("other", "dose"): 2.0, ("z", "dose"): "generation failed"})
    assert judging.calibrate(fake, [DOSE], samples=["other"]) == {"dose": 1.0}
    judged = judging.judge(fake, ["z"], [DOSE], "expected")
    [[z]] = judging.apply_calibration(judged, [DOSE], {"dose": 1.0})
    assert z.error == "generation failed" and z.score is None
    with pytest.raises(KeyError, match="risk"):
        judging.apply_calibration([[z, z]], [DOSE, RISK], {"dose": 1.0})
    with pytest.raises(RuntimeError, match="dose"):
        judging.calibrate(FakeJudge({}, default="boom"), [DOSE])


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown judging method 'vote'"):
        judging.judge(FakeJudge({}), ["a"], [DOSE], "vote")


def test_methods_run_on_a_real_scorer(spec, make_fake_engine):
    """The methods wrap goalcover_hf.Scorer as is: here its engine's digit probabilities are controlled."""
    # mass on "5" when the prompt asks for the negated capability, on "2" otherwise
    engine = make_fake_engine(probs={"does NOT do this": 5}, default=2)
    scorer = Scorer(spec, engine=engine, mode="logprobs", explain="none", cache=False)
    [[j, _]] = judging.judge(scorer, ["QUESTION: q\n\nANSWER: a"], spec.subgoals, "contrastive")
    assert j.expected == 3 + (2 - 5) / 2
    offsets = judging.calibrate(scorer, spec.subgoals)
    assert offsets == {"states_dose": 1.0, "warns_side_effects": 1.0}


# ---- the benchmark's statistics and evaluation, with controlled judges ---------------------------------------------
def test_bench_statistics():
    import bench_judge as bj

    assert bj.auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert bj.auc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert bj.auc([3, 3, 3, 3], [0, 1, 0, 1]) == 0.5  # ties count half
    assert bj.auc([1, 2], [1, 1]) is None
    assert bj.spearman([1, 2, 3, 4], [0, 0, 1, 1]) == pytest.approx(0.8944, abs=1e-4)
    assert bj.cohens_d([2, 4], [0, 2]) == pytest.approx(2 / 2 ** 0.5)
    assert bj.cohens_d([1], [0, 2]) is None


def _pairs():
    from judge_pairs import Pair

    P = Pair
    return [
        P("o1", "med", "dose", 1, "o1", "o1"), P("o1", "med", "risk", 1, "o1", "o1"),
        P("o2", "med", "dose", 0, "o2", "o2"), P("o2", "med", "risk", 0, "o2", "o2"),
        P("c1", "med", "dose", 0, "c1", "o1", target="dose"), P("c1", "med", "risk", 1, "c1", "o1", target="dose"),
    ]


def test_bench_measures_a_perfect_selective_judge_and_a_blind_one():
    import bench_judge as bj

    subs = {"dose": DOSE, "risk": RISK}
    pairs = _pairs()
    perfect = FakeJudge({(p.text, p.subgoal_id): 5.0 if p.label else 1.0 for p in pairs})
    [res] = bj.run(bj.MemoJudge(perfect), pairs, subs, ["expected"])
    assert res["auc"] == 1.0 and res["auc_by_domain"] == {"med": 1.0} and res["errors"] == 0
    assert res["selectivity"]["target_drop"] == 4.0 and res["selectivity"]["nontarget_drop"] == 0.0
    [blind] = bj.run(bj.MemoJudge(FakeJudge({})), pairs, subs, ["expected", "contrastive"])[:1]
    assert blind["auc"] == 0.5 and blind["selectivity"]["target_drop"] == 0.0


def test_bench_memo_judges_each_wording_once_and_charges_each_method():
    import bench_judge as bj

    pairs = _pairs()
    fake = FakeJudge({})
    results = bj.run(bj.MemoJudge(fake), pairs, {"dose": DOSE, "risk": RISK}, ["expected", "expected+cal", "score"])
    plain_calls = [c for c in fake.calls if FakeJudge.wording(c[1][0]) == "plain"]
    judged = [(s, c[1][0].id) for c in plain_calls for s in c[0]]
    assert len(judged) == len(set(judged))  # nothing judged twice
    assert all(r["s_per_pair"] >= 0 for r in results)
    generate = bj.expand_methods("all", "generate")
    assert generate[:3] == ["score", "score+cal", "score+calx"] and "expected" not in generate
    assert {"verdict_first", "subgoal_first+calx"} <= set(generate) and len(generate) == 3 * (len(judging.METHODS) - 1)
    with pytest.raises(SystemExit, match="unknown judging method"):
        bj.expand_methods("expected+foo", "logprobs")


def test_bench_memo_keeps_each_prompt_apart(tmp_path):
    import bench_judge as bj

    pairs, cache = _pairs(), tmp_path / "judgements.jsonl"
    table = {(p.text, p.subgoal_id, "score_verdict_v1"): 5.0 if p.label else 1.0 for p in pairs}
    fake = FakeJudge(table)  # plain prompts: 3.0 everywhere
    [plain, verdict] = bj.run(bj.MemoJudge(fake, cache), pairs, {"dose": DOSE, "risk": RISK},
                              ["expected", "verdict_first"])
    assert plain["auc"] == 0.5 and verdict["auc"] == 1.0
    again = FakeJudge({})
    [verdict] = bj.run(bj.MemoJudge(again, cache), pairs, {"dose": DOSE, "risk": RISK}, ["verdict_first"])
    assert again.calls == [] and verdict["auc"] == 1.0  # read back from the file, under its prompt


def test_bench_judge_cli_prints_one_json_line(tiny_model, capsys):
    import json

    import bench_judge as bj
    from judge_pairs import data_dir

    if not data_dir().is_dir():
        pytest.skip("external data folder absent")
    assert bj.main(["--model", tiny_model, "--mode", "logprobs", "--method", "expected,expected+cal",
                    "--limit", "24"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    line = json.loads(out[0])
    assert line["mode"] == "logprobs" and 0 < line["pairs"] <= 24
    assert [r["method"] for r in line["results"]] == ["expected", "expected+cal"]
    for r in line["results"]:
        assert 0.0 <= r["auc"] <= 1.0 and r["errors"] == 0 and r["s_per_pair"] > 0
        assert set(r["auc_by_domain"]) <= {"medical", "legal", "code", "financial"}


def test_bench_cache_file_resumes_without_judging_again(tmp_path):
    import bench_judge as bj

    pairs, subs, cache = _pairs(), {"dose": DOSE, "risk": RISK}, tmp_path / "judgements.jsonl"
    table = {(p.text, p.subgoal_id): 5.0 if p.label else 1.0 for p in pairs}
    first = FakeJudge(table)
    [a] = bj.run(bj.MemoJudge(first, cache), pairs, subs, ["expected"])
    second = FakeJudge({})  # would score everything 3.0 if it were asked
    [b] = bj.run(bj.MemoJudge(second, cache), pairs, subs, ["expected"])
    assert second.calls == [] and b["auc"] == a["auc"] == 1.0 and b["s_per_pair"] == a["s_per_pair"]


def test_bench_judge_runs_through_llamacpp(capsys):
    import json

    import bench_judge as bj
    from judge_pairs import data_dir

    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install 'goalcover_hf[llamacpp]'")
    if not data_dir().is_dir():
        pytest.skip("external data folder absent")
    # one thread: llama.cpp's spinning threads crawl on a busy machine
    assert bj.main(["--model", "embedded", "--engine", "llamacpp", "--threads", "1", "--method", "expected,verdict_first",
                    "--limit", "6"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert (line["engine"], line["threads"]) == ("llamacpp", 1)
    assert [r["method"] for r in line["results"]] == ["expected", "verdict_first"]
    assert all(r["errors"] == 0 for r in line["results"])
