"""Explanations on a budget: which pairs get one, and that a row is read once for all the subgoals it explains."""

import pytest
from datasets import Dataset
from fake_engine import SCORE_ASKED, FakeEngine, chat_text, sample_of

from goalcover_hf import Scorer
from goalcover_hf.errors import GoalcoverError
from goalcover_hf.explain import explain_sample, pick_low_pairs

# Row i scores 1 on states_dose when its text says "no dose", 2 on warns_side_effects when it says "no risk", else 5.
ROWS = [
    "no dose, no risk: take it with water",
    "no dose but a risk of nausea",
    "200 mg, no risk mentioned",
    "no dose, no risk either",
    "400 mg every 6 hours, may cause nausea",
    "no dose given here",
]


def table(chat, choices):
    text = chat_text(chat)
    sub = "dose" if "States a dose" in text else "risk"
    sample = sample_of(chat) or ""
    return 1 if sub == "dose" and "no dose" in sample else 2 if sub == "risk" and "no risk" in sample else 5


@pytest.fixture
def scored(spec, tmp_path):
    engine = FakeEngine(table)
    scorer = Scorer(spec, engine=engine, cache=tmp_path / "pairs.sqlite")
    ds = Dataset.from_dict({"text": ROWS})
    annotated = ds.map(scorer, batched=True, with_indices=True, features=scorer.features(ds.features))
    engine.reset()
    return scorer, engine, annotated


def test_a_budgeted_draw_is_explained_and_each_row_is_read_once_for_all_its_subgoals(scored):
    scorer, engine, annotated = scored
    out = explain_sample(annotated, scorer, per_subgoal=3, seed=0)
    chosen = {}
    for sub in scorer.spec.subgoals:
        scores = annotated[f"gc_{sub.id}_score"]
        low = [k for k, s in enumerate(scores) if s < 4]
        explained = [k for k, e in enumerate(out[f"gc_{sub.id}_explanation"]) if e is not None]
        assert len(explained) == min(3, len(low)) and set(explained) <= set(low), sub.id
        assert explained == pick_low_pairs(scores, [False] * len(scores), 4, 3, seed=0)
        for k in explained:  # each explanation is of the score the pair has
            assert out[f"gc_{sub.id}_explanation"][k] == f"explains {scores[k]}"
            chosen.setdefault(ROWS[k], set()).add(sub.id)
    assert engine.scored == []  # scores came from the pair cache: only explanations cost model calls
    groups = [g for call in engine.calls_to("generate_json_shared") for g in call.groups]
    # one group per explained row, holding exactly the subgoals it explains: the row's text is read once for them
    assert sorted(sample_of(g[0]) for g in groups) == sorted(chosen)
    for g in groups:
        assert len({sample_of(chat) for chat in g}) == 1
        assert len(g) == len(chosen[sample_of(g[0])])
    # unchanged otherwise: the same columns and scores
    assert out.column_names == annotated.column_names
    assert out["gc_states_dose_score"] == annotated["gc_states_dose_score"]


def test_a_second_draw_counts_explanations_already_given(scored):
    scorer, engine, annotated = scored
    once = explain_sample(annotated, scorer, per_subgoal=2, seed=0)
    engine.reset()
    again = explain_sample(once, scorer, per_subgoal=2, seed=1)
    assert engine.calls == []  # the budget is spent: nothing more to explain
    assert again["gc_states_dose_explanation"] == once["gc_states_dose_explanation"]


def test_judge_texts_explains_exactly_the_pairs_asked(spec):
    engine = FakeEngine(1)
    scorer = Scorer(spec, engine=engine, cache=False)
    [first, second] = scorer.judge_texts(["a", "b"], explain=[(1, "warns_side_effects")])
    assert [j.explanation for j in first] == [None, None]
    assert [j.explanation for j in second] == [None, "explains 1"]
    [(_, chat)] = engine.generated
    assert sample_of(chat) == "b" and SCORE_ASKED.search(chat_text(chat)).group(1) == "1"
    with pytest.raises(GoalcoverError, match=r"explain: subgoal\(s\) \['nope'\] are not among those judged"):
        scorer.judge_texts(["a"], explain=[(0, "nope")])
