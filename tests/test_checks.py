"""Checks on crafted subgoals: heuristics, the embedding overlap check, and the model checks with a scripted engine."""

import pytest
from scripted_engine import ScriptedEngine

from goalcover_hf.checks import (
    Checker, atomic_heuristic, evaluable_heuristic, model_coverage_finding, model_subgoal_findings, overlap_findings,
    with_findings,
)
from goalcover_hf.spec import GoalSpec, Subgoal

GOAL = "A patient-facing assistant that answers medication questions"


def sub(sid, name, description):
    return Subgoal(id=sid, name=name, description=description)


@pytest.mark.parametrize("name,description", [
    ("Explains and recommends", "Explains how the drug works."),
    ("Dose", "States the dose and warns about side effects."),
    ("Dose", "States the dose, and also names the brand."),
    ("Dose", "States the dose as well as the frequency."),
    ("Dose", "States the dose. Names the drug class."),
])
def test_atomic_heuristic_flags_joined_requirements(name, description):
    found = atomic_heuristic(sub("x", name, description))
    assert found and all(f.check == "atomic" and f.subgoals == ("x",) for f in found)


@pytest.mark.parametrize("description", [
    "The answer names at least one side effect or risk.",  # "or risk" joins nouns, not requirements
    "The answer gives a dose with units and frequency.",
    "The answer compares the benefits and risks of the drug.",
])
def test_atomic_heuristic_passes_single_capabilities(description):
    assert atomic_heuristic(sub("x", "One capability", description)) == []


@pytest.mark.parametrize("description", [
    "The dataset is balanced across drug classes.",
    "Covers a diverse range of conditions.",
    "Most of the samples mention a dose.",
    "Questions are spread evenly across samples from different specialties.",
    "At least 30% of answers cite a source.",
])
def test_evaluable_heuristic_flags_dataset_level_subgoals(description):
    found = evaluable_heuristic(sub("x", "Some property", description))
    assert len(found) == 1 and found[0].check == "evaluable"


@pytest.mark.parametrize("description", [
    "The answer in this sample gives a dose with units.",
    "The answer gives a dose with units and frequency.",
    "The answer recommends a balanced diet.",
    "The answer lists a variety of treatment options.",
])
def test_evaluable_heuristic_passes_per_sample_subgoals(description):
    assert evaluable_heuristic(sub("x", "Per sample", description)) == []


def test_overlap_flags_near_identical_subgoals_only():
    spec = GoalSpec(goal=GOAL, subgoals=[
        sub("states_dose", "States a dose", "The answer gives a drug dose with units."),
        sub("plain_language", "Plain language", "The answer avoids jargon a patient would not understand."),
        sub("gives_dosage", "Gives dosage", "The answer states the dose of the medication with its units."),
        sub("cites_source", "Cites a source", "The answer refers to a label or a clinical guideline."),
    ])
    found = overlap_findings(spec)
    assert [f.subgoals for f in found] == [("states_dose", "gives_dosage")]
    assert found[0].source == "embedding" and found[0].similarity >= 0.75
    assert overlap_findings(spec, threshold=0.99) == []


def _review(atomic="yes", evaluable="yes"):
    return {"atomic_reason": "one thing", "atomic": atomic, "evaluable_reason": "per sample", "evaluable": evaluable}


def test_model_checks_report_only_what_the_model_flags():
    engine = ScriptedEngine({"SubgoalReview": lambda user: _review(atomic="no" if "Both" in user else "yes",
                                                                   evaluable="no" if "Spread" in user else "yes")})
    subs = [sub("both", "Both things", "Does one thing."), sub("spread", "Spread", "Is fine."),
            sub("fine", "Fine", "Gives a dose.")]
    found = model_subgoal_findings(GOAL, subs, engine)
    assert [(f.check, f.subgoals, f.source) for f in found] == [("atomic", ("both",), "model"),
                                                              ("evaluable", ("spread",), "model")]
    assert len(engine.calls) == 3 and GOAL in engine.calls[0][1]


def test_model_check_invalid_output_is_reported_not_invented():
    engine = ScriptedEngine({"SubgoalReview": '{"atomic_reason": "cut off'})
    found = model_subgoal_findings(GOAL, [sub("x", "X thing", "Does x.")], engine)
    assert len(found) == 1 and "no valid answer" in found[0].message


def test_coverage_check_shows_the_missing_part_as_a_suggestion(spec):
    engine = ScriptedEngine({"CoverageReview": {"missing": "drug interactions", "covered": "no"}})
    found = model_coverage_finding(spec, engine)
    assert found[0].check == "coverage" and found[0].subgoals == () and "drug interactions" in found[0].message
    assert "States a dose" in engine.calls[0][1]  # the model saw the subgoals
    engine.answers["CoverageReview"] = {"missing": "nothing", "covered": "yes"}
    assert model_coverage_finding(spec, engine) == []


def test_checker_asks_the_model_again_only_about_changed_subgoals(spec):
    engine = ScriptedEngine({"SubgoalReview": _review(atomic="no"),
                             "CoverageReview": {"missing": "interactions", "covered": "no"}})
    checker = Checker(engine)
    first = checker.run(spec)
    assert {f.check for f in first} == {"atomic", "coverage"}
    assert len(engine.calls) == 3  # two subgoals + coverage
    assert checker.run(spec) == first and len(engine.calls) == 3
    edited = spec.model_copy(update={"subgoals": [spec.subgoals[0], spec.subgoals[1].model_copy(
        update={"description": "The answer names one side effect."})]})
    checker.run(edited)
    assert [c[0] for c in engine.calls[3:]] == ["SubgoalReview", "CoverageReview"]


def test_with_findings_records_checks_in_meta():
    spec = GoalSpec(goal=GOAL, subgoals=[sub("balanced", "Balanced", "The dataset is balanced.")])
    out = with_findings(spec, Checker(None))
    checks = out.meta["checks"]
    assert checks["model"] is None and checks["ran"] == ["atomic", "evaluable", "overlap"]
    assert checks["findings"][0]["check"] == "evaluable" and checks["findings"][0]["subgoals"] == ["balanced"]
    assert "checks" not in spec.meta  # the input spec is untouched
