"""Annotated datasets and run folders whose scores and explanations the test writes (no judge involved)."""

from __future__ import annotations

from pathlib import Path

from goalcover_hf.results import save_run
import fake_engine  # noqa: F401 - registers the 'fake' engine the runs name
from goalcover_hf.columns import TRUNCATED_COLUMN, output_features, score_columns
from goalcover_hf.spec import GoalSpec

SPEC = GoalSpec(
    goal="A patient-facing assistant that answers medication questions",
    subgoals=[
        {"id": "explains_use", "name": "Explains what the drug is for", "description": "Says what the drug treats."},
        {"id": "states_dose", "name": "States a dose", "description": "Gives a dose with units."},
        {"id": "warns_side_effects", "name": "Warns about side effects", "description": "Names a side effect."},
        {"id": "advises_clinician", "name": "Advises seeing a clinician", "description": "Says when to see a doctor."},
    ],
)

# Two known groups of "why this row scored low on states_dose", plus one odd one out.
NO_DOSE = [
    "The answer never gives a dose or an amount of the drug.",
    "No dosage is stated: it does not say how many milligrams to take.",
    "It does not mention any dose, amount or mg figure.",
    "The sample gives no dosing amount for the medication.",
    "There is no dose or quantity of medicine anywhere in the answer.",
    "Dosage is missing; the answer never says how much to take.",
]
OFF_TOPIC = [
    "The sample is off-topic: it is not about medicine or any drug.",
    "This row is unrelated to medication; it talks about something else entirely.",
    "Off-topic text with no connection to drugs or medicines.",
    "Off-topic: the row is a recipe, not a question about medicine.",
]
ODD = ["Written in French, which the capability does not cover."]


def dataset():
    """20 rows. explains_use: 15 supported. states_dose: 0 supported, explanations in two groups + one odd.
    warns_side_effects: 3 supported of 20 (short of 20% -> 4 needed). advises_clinician: 0 supported, no
    explanations at all."""
    from datasets import Dataset, Features, Value

    n = 20
    cols = {"id": [f"r{k:02d}" for k in range(n)], "text": [f"sample {k}" for k in range(n)]}

    def put(sid, scores, explanations):
        c = score_columns(sid)
        cols[c["score"]] = scores
        cols[c["expected"]] = [float(s) if s is not None else None for s in scores]
        cols[c["explanation"]] = explanations
        cols[c["error"]] = [None if s is not None else "invalid model output" for s in scores]

    put("explains_use", [5] * 15 + [2] * 5, [None] * 15 + ["Does not say what the drug treats."] * 5)
    dose_expl = NO_DOSE + OFF_TOPIC + ODD
    dose_expl = dose_expl + [None] * (n - len(dose_expl))  # the rest: low score, no explanation
    put("states_dose", [1, 2, 1, 2, 1, 1, 1, 2, 1, 1, 3] + [2] * 9, dose_expl)
    put("warns_side_effects", [4, 5, 4] + [3] * 17, [None] * 3 + ["Mentions no side effect."] * 17)
    put("advises_clinician", [1] * 19 + [None], [None] * 20)
    cols[TRUNCATED_COLUMN] = [0] * n
    features = Features({"id": Value("string"), "text": Value("string"), **output_features(SPEC)})
    return Dataset.from_dict(cols, features=features)


def run_folder(path: Path, embedded: bool = False) -> Path:
    scorer = {"model": "test-judge", "engine": "fake", "engine_options": {}, "mode": "generate", "explain": "all",
              "threshold": 4, "template": None, "max_new_tokens": 96, "batch_size": 8, "method": "expected"}
    provenance = {"goal": SPEC.goal, "spec_hash": SPEC.content_hash(), "model": "test-judge", "engine": "fake",
                  "prompt_version": "score_v1@test", "mode": "generate", "explain": "all", "threshold": 4,
                  "embedded": embedded, "scorer": scorer}
    return save_run(path, dataset(), SPEC, provenance)
