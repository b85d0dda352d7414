"""Synthesis keeps only rows that pass re-scoring: the writer's outputs and the judge's scores are set by the test."""

import json

import pytest
from fake_engine import FakeEngine, chat_text, sample_of, valid_instance

from goalcover_hf import Scorer
from goalcover_hf.columns import TRUNCATED_COLUMN, output_features, score_columns
from goalcover_hf.synthesize import SYNTH_MODEL, SYNTHETIC, TARGET, near_duplicates, synthesize

REAL = [
    ("Can I take ibuprofen with food?", "Yes, taking it with food can reduce stomach upset."),
    ("What are the side effects of statins?", "Muscle aches are the most common side effect; tell your doctor."),
    ("Is amoxicillin an antibiotic?", "Yes, amoxicillin is a penicillin-type antibiotic."),
    ("Does metformin cause nausea?", "It can cause nausea at first; it usually settles within weeks."),
]
WITH_DOSE = {"question": "How much paracetamol can an adult take?",
             "answer": "500 mg to 1 g every 4 to 6 hours, no more than 4 g in 24 hours."}
NO_DOSE = {"question": "Should I rest a sprained ankle?", "answer": "Yes: rest, ice and elevation help it heal."}


def annotated(spec):
    from datasets import Dataset, Features, Value

    data = {"id": [f"r{k}" for k in range(len(REAL))], "question": [q for q, _ in REAL],
            "answer": [a for _, a in REAL]}
    for sid, score in (("states_dose", 1), ("warns_side_effects", 5)):  # states_dose is the gap
        cols = score_columns(sid)
        data[cols["score"]] = [score] * len(REAL)
        data[cols["expected"]] = [float(score)] * len(REAL)
        data[cols["explanation"]] = [None] * len(REAL)
        data[cols["error"]] = [None] * len(REAL)
    data[TRUNCATED_COLUMN] = [0] * len(REAL)
    return Dataset.from_dict(data, features=Features({c: Value("string") for c in ("id", "question", "answer")}
                                                     | output_features(spec)))


def dose_judge(chat, choices=None):
    """Scores 5 on states_dose exactly when the sample gives a dose in mg; 3 otherwise."""
    return 5 if "Capability: States a dose" in chat_text(chat) and "mg" in sample_of(chat) else 3


@pytest.fixture
def writer():
    """Writes the test's rows in order (the writer model is not under test here, the keep/drop logic is) and judges
    with :func:`dose_judge`, in either mode."""
    outputs = [
        json.dumps(WITH_DOSE),
        '{"question": "cut off',  # not a valid row
        json.dumps({"question": REAL[2][0], "answer": REAL[2][1]}),  # an existing row
        json.dumps(NO_DOSE),  # valid, but the judge says it does not state a dose
        json.dumps(WITH_DOSE),  # a duplicate of the first new row
    ]

    def generate(chat, schema):
        if "question" in schema.model_fields:  # a row to write
            return outputs.pop(0)
        judged = {"score": dose_judge(chat)} if "score" in schema.model_fields else {}  # a judgement (generate mode)
        return valid_instance(chat, schema) | judged

    return FakeEngine(dose_judge, generate=generate, identity="fake-writer@1")


def test_synthesis_keeps_only_rows_that_pass_rescoring(spec, writer):
    ds = annotated(spec)
    result = synthesize(spec, ds, n=5, scorer=Scorer(spec, engine=writer), seed=0)
    (rep,) = result.report  # states_dose is the only gap
    assert rep.subgoal == "states_dose"
    assert (rep.generated, rep.kept) == (5, 1)
    assert rep.dropped == {"invalid": 1, "duplicate": 2, "score_error": 0, "below_threshold": 1}
    assert rep.scores == [5, 3]  # the two rows that reached the judge
    new = result.synthetic.to_list()
    assert len(new) == 1 and new[0]["answer"] == WITH_DOSE["answer"]
    assert new[0][SYNTHETIC] is True and new[0][TARGET] == "states_dose" and new[0][SYNTH_MODEL] == "fake-writer@1"
    assert new[0]["gc_states_dose_score"] == 5 and new[0]["gc_warns_side_effects_score"] == 3
    assert new[0]["id"] == "synthetic-states_dose-1"
    combined = result.dataset
    assert len(combined) == 5 and combined[SYNTHETIC] == [False] * 4 + [True]
    assert combined["question"][:4] == [q for q, _ in REAL]  # the real rows are untouched
    # every prompt carries the goal, the subgoal and real rows as style examples
    [call] = writer.calls_to("generate_json")
    assert len(call.chats) == 5
    prompt = call.chats[0][1]["content"]
    assert spec.goal in prompt and "States a dose" in prompt and "An exact dose with units" in prompt
    assert sum(q in prompt for q, _ in REAL) == 3
    # the two rows that reached the judge were judged as the rows written, on every subgoal
    assert [sample_of(chat) for chat in writer.scored] == [f"QUESTION: {r['question']}\n\nANSWER: {r['answer']}"
                                                           for r in (WITH_DOSE, NO_DOSE) for _ in spec.subgoals]
    assert "states_dose: generated 5, kept 1; dropped: invalid 1, duplicate 2, below_threshold 1" in result.text()


def test_near_duplicates_uses_the_embedding_model():
    flags = near_duplicates(["Take 200 mg of ibuprofen every six hours."],
                            ["Take 200 mg of ibuprofen every 6 hours.", "The Eiffel Tower is in Paris.",
                             "The Eiffel Tower is located in Paris."], threshold=0.9)
    assert flags == [True, False, True]


def test_synthesis_with_a_real_constrained_model(spec, tiny_model):
    """The tiny random model writes the rows through the Outlines schema (and judges them); every output is
    accounted for."""
    scorer = Scorer(spec, tiny_model, batch_size=2, mode="logprobs", explain="none", cache=False)
    result = synthesize(spec, annotated(spec), n=2, scorer=scorer, dedup=None, max_chars=40, max_new_tokens=60)
    (rep,) = result.report
    assert rep.generated == 2 and rep.kept + sum(rep.dropped.values()) == 2
    assert len(result.synthetic) == rep.kept


def test_synthesize_cli_writes_a_marked_run(spec, tiny_model, writer, install_engine, tmp_path, capsys):
    from goalcover_hf.cli import main
    from goalcover_hf.results import load_run, save_run

    install_engine(writer)  # the command loads the run's judge, which writes the rows too

    prov = Scorer(spec, tiny_model).provenance() | {"scorer_args": {"model": tiny_model, "mode": "generate"}}
    run = save_run(tmp_path / "run", annotated(spec), spec, prov)
    out = tmp_path / "synth"
    assert main(["synthesize", str(run), "--per-subgoal", "5", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "states_dose: generated 5, kept 1; dropped: invalid 1, duplicate 2, below_threshold 1" in printed
    assert "rows: 4 -> 5" in printed
    new = load_run(out)
    assert new.dataset[SYNTHETIC] == [False] * 4 + [True]
    assert new.provenance["synthesis"]["targets"][0]["kept"] == 1
    assert new.dataset[SYNTH_MODEL][-1] == "fake-writer@1"
    assert main(["card", str(out)]) == 0
    assert "`states_dose`: 1 kept of 5 generated" in (out / "README.md").read_text()
