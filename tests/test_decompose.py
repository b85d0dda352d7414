"""Proposals, grounding and the one-call Python API (a scripted engine; one real-engine run with the tiny model)."""

import hashlib
import json

import pytest
from scripted_engine import ScriptedEngine

import goalcover_hf
from goalcover_hf.data import DataError
from goalcover_hf.decompose import DecomposeError, Proposer, load_examples
from goalcover_hf.spec import GoalSpec, slug, to_spec

GOAL = "A patient-facing assistant that answers medication questions"
PROPOSAL = {"subgoals": [
    {"id": "states_dose", "name": "States a dose", "description": "The answer gives a dose with units.",
     "low": "No dose.", "mid": "A dose without units.", "high": "Dose, units and frequency."},
    {"id": "balanced_classes", "name": "Balanced classes", "description": "The dataset is balanced across classes.",
     "low": "Skewed.", "mid": "Some skew.", "high": "Even."},
    {"id": "states_dose", "name": "Dose again", "description": "Gives the dose of the drug with its units.",
     "low": "No dose.", "mid": "Some dose.", "high": "Exact dose."},
]}


def engine_for(proposal=PROPOSAL):
    return ScriptedEngine({
        "Proposal": proposal,
        "ProposedSubgoal": {"id": "names_side_effect", "name": "Names a side effect",
                            "description": "The answer names one side effect.", "low": "None.", "mid": "Vague.",
                            "high": "A specific one."},
        "SubgoalReview": {"atomic_reason": "one", "atomic": "yes", "evaluable_reason": "ok", "evaluable": "yes"},
        "CoverageReview": {"missing": "drug interactions", "covered": "no"},
    })


def test_slug_and_to_spec_make_valid_unique_ids():
    assert slug("Cites the dose!") == "cites_the_dose" and slug("3 warnings") == "s_3_warnings"
    spec = to_spec(GOAL, [{"name": "A b", "description": "d1"}, {"name": "A b", "description": "d2"},
                          {"name": " ", "description": "dropped"}])
    assert [s.id for s in spec.subgoals] == ["a_b", "a_b_2"]


def test_proposer_builds_a_spec_with_all_anchors_and_meta():
    engine = engine_for()
    spec = Proposer(engine, 2, 4).propose(GOAL, hint="focus on safety")
    assert [s.id for s in spec.subgoals] == ["states_dose", "balanced_classes", "states_dose_2"]
    assert spec.subgoals[0].mid == "A dose without units." and spec.subgoals[0].high == "Dose, units and frequency."
    assert spec.meta["decomposed_by"] == "scripted-engine@test"
    assert spec.meta["prompt_version"].startswith("decompose_v1@")
    user = engine.calls[0][1]
    assert GOAL in user and "focus on safety" in user and "2 to 4 subgoals" in user


def test_proposer_invalid_output_says_what_to_do():
    with pytest.raises(DecomposeError, match="--from"):
        Proposer(engine_for(proposal='{"subgoals": [')).propose(GOAL)


def test_regenerate_shows_the_model_the_other_subgoals_and_the_hint():
    engine = engine_for()
    proposer = Proposer(engine)
    spec = proposer.propose(GOAL)
    fields = proposer.regenerate(spec, 1, hint="about side effects")
    assert fields["id"] == "names_side_effect"
    user = engine.calls[-1][1]
    assert "Balanced classes" in user and "States a dose" in user and "about side effects" in user


def test_decompose_api_returns_spec_with_findings():
    spec = goalcover_hf.decompose(GOAL, model=engine_for(), min_subgoals=2, max_subgoals=4)
    findings = spec.meta["checks"]["findings"]
    kinds = {(f["check"], tuple(f["subgoals"])) for f in findings}
    assert ("evaluable", ("balanced_classes",)) in kinds  # heuristic
    assert ("overlap", ("states_dose", "states_dose_2")) in kinds  # embedding
    assert ("coverage", ()) in kinds  # model suggestion
    assert spec.meta["checks"]["model"] == "scripted-engine@test"


def test_decompose_api_without_model_checks_never_asks_the_model_to_check():
    engine = engine_for()
    spec = goalcover_hf.decompose(GOAL, model=engine, model_checks=False)
    assert [c[0] for c in engine.calls] == ["Proposal"]
    assert spec.meta["checks"]["model"] is None


def test_grounding_rows_reach_the_prompt(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps({"question": f"How much ibuprofen {k}?", "answer": f"{k}00 mg.",
                                          "label": "GOLD"}) for k in range(1, 6)) + "\n")
    texts = load_examples(str(data), n=3)
    assert len(texts) == 3 and "How much ibuprofen 1?" in texts[0] and "GOLD" not in texts[0]
    engine = engine_for()
    spec = goalcover_hf.decompose(GOAL, model=engine, examples=str(data), n=2, model_checks=False)
    user = engine.calls[0][1]
    assert "How much ibuprofen 2?" in user and "ibuprofen 3?" not in user and "not correct answers" in user
    assert spec.meta["grounding"] == {"data": str(data), "rows": 2}


def test_grounding_errors_name_the_file(tmp_path):
    bad = tmp_path / "rows.jsonl"
    bad.write_text(json.dumps({"foo": 1}) + "\n")
    with pytest.raises(Exception, match="rows.jsonl|cannot tell"):
        load_examples(str(bad))
    with pytest.raises(DataError, match="missing.jsonl"):
        load_examples(str(tmp_path / "missing.jsonl"))


def test_old_spec_files_load_and_keep_their_hash(tmp_path):
    old = {"goal": GOAL, "subgoals": [{"id": "a", "name": "A", "description": "Does a.", "low": "l", "high": "h"}]}
    path = tmp_path / "old.yaml"
    import yaml

    path.write_text(yaml.safe_dump(old))
    spec = GoalSpec.load(path)
    # The hash as version 1 computed it, before the optional mid/example fields existed.
    expected = hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
    assert spec.content_hash() == expected and "mid" not in spec.to_yaml()
    with_mid = spec.model_copy(update={"subgoals": [spec.subgoals[0].model_copy(update={"mid": "m"})]})
    assert with_mid.content_hash() != expected and "mid: m" in with_mid.to_yaml()


def test_real_engine_proposal_is_a_valid_spec(tiny_model):
    # The tiny model is random: this proves the Outlines schema and the parsing, not the quality of the subgoals.
    spec = Proposer(tiny_model, 1, 1, max_new_tokens=1500).propose(GOAL)
    assert len(spec.subgoals) == 1
    sub = spec.subgoals[0]
    assert sub.name and sub.description and sub.low and sub.mid and sub.high


def test_decompose_api_interactive_runs_the_session(monkeypatch):
    keys = iter(["delete 1", "save"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(keys))
    spec = goalcover_hf.decompose(GOAL, model=engine_for(), interactive=True, model_checks=False)
    assert [s.id for s in spec.subgoals] == ["balanced_classes", "states_dose_2"]
    assert spec.meta["checks"]["findings"][0]["check"] == "evaluable"
