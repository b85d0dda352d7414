"""Gap discovery: clustering on explanations with known groups (real all-MiniLM-L6-v2), naming with a fake engine,
ranking against a target, gaps.json, and the `goalcover gaps` command."""

import json

import pytest
from fake_engine import FakeEngine
from fake_run import NO_DOSE, ODD, OFF_TOPIC, SPEC, dataset, run_folder

from goalcover_hf.coverage import compute_coverage
from goalcover_hf.embeddings import cluster_texts
from goalcover_hf.gaps import UNNAMED, Target, find_gaps
from goalcover_hf.gaps_file import GAPS_SCHEMA_VERSION, gaps_document, load_gaps, save_gaps


@pytest.fixture(scope="session")
def embedder():
    from goalcover_hf.embeddings import load_embedder

    return load_embedder()  # real MiniLM, loaded once for the whole session


def namer(fail_on: str | None = None) -> FakeEngine:
    """Names a theme from a keyword in its quotes; answers truncated JSON for themes that mention ``fail_on``."""

    def name(chat, schema):
        text = chat[-1]["content"].split("Explanations of why samples scored low on it:")[1]
        if fail_on and fail_on in text:
            return '{"title": "x'  # truncated JSON: must not become a name
        if "dose" in text.lower() or "dosage" in text.lower():
            return {"title": "Dose statements", "description": "Answers that state a dose.", "subgoal": "states_dose"}
        return {"title": "On-topic samples", "description": "Samples about medicine.", "subgoal": "explains_use"}

    return FakeEngine(generate=name, identity="fake-namer")


def test_clusters_follow_known_groups(embedder):
    from sklearn.metrics import adjusted_rand_score

    genes = ["The answer only explains which gene mutation causes the disease, not how to treat it.",
             "It describes the inheritance pattern and the gene involved; no therapy is mentioned.",
             "Only the genetic cause is covered: a mutation in one gene, nothing about treatment.",
             "The sample talks about autosomal recessive inheritance instead of treatment options.",
             "Explains the genetic mutation behind the condition but gives no treatment."]
    tests = ["The answer lists diagnostic tests such as blood counts and biopsies, not treatments.",
             "It is about how the disease is diagnosed with imaging and lab tests.",
             "Only diagnosis is described: physical exam, blood tests and a bone marrow biopsy.",
             "The sample explains which tests detect the condition; treatment is not discussed.",
             "Describes the tests doctors use to diagnose it rather than any therapy."]
    cut = ["The text is truncated and ends abruptly.",
           "The response stops in the middle of a sentence, so it is incomplete.",
           "The answer ends abruptly; it is truncated before reaching the point."]
    texts = genes + tests + cut
    truth = [0] * 5 + [1] * 5 + [2] * 3
    labels = cluster_texts(texts)
    assert adjusted_rand_score(truth, labels) == 1.0, labels
    assert labels == [0] * 5 + [1] * 5 + [2] * 3  # largest first, ties by first appearance
    assert cluster_texts(texts) == labels  # deterministic
    # A text that sits between groups is allowed to go either way, but the three groups stay apart.
    mixed = cluster_texts(texts + ["The answer is cut off mid-sentence before any treatment is named."])
    assert len({mixed[0], mixed[5], mixed[10]}) == 3


def test_cluster_edge_cases(embedder):
    assert cluster_texts([]) == []
    assert cluster_texts(["Only one explanation."]) == [0]
    assert cluster_texts(["Same words.", "Same words."]) == [0, 0]


def test_find_gaps_themes_evidence_and_ranking(embedder):
    ds = dataset()
    report = compute_coverage(ds, SPEC)
    gaps = find_gaps(ds, SPEC, report)
    by_id = {g.subgoal: g for g in gaps}
    assert "explains_use" not in by_id  # 15/20 support: above the 20% target
    # Zero support first (shortfall 4 of 4), spec order among equals, then the partial gap (short by 1).
    assert [g.subgoal for g in gaps] == ["states_dose", "advises_clinician", "warns_side_effects"]
    assert [g.rank for g in gaps] == [1, 2, 3]
    dose = by_id["states_dose"]
    assert (dose.support, dose.required, dose.shortfall) == (0, 4, 4)
    assert dose.low_pairs == 20  # every row scores <= 3 (threshold - 1), r10 (scored 3) included
    assert dose.unexplained == 20 - len(NO_DOSE + OFF_TOPIC + ODD)
    ids = [f"r{k:02d}" for k in range(20)]
    themes = {tuple(t.row_ids) for t in dose.themes}
    assert themes == {tuple(ids[:6]), tuple(ids[6:10])}
    assert dose.themes[0].row_ids == ids[:6]  # largest theme first
    assert dose.themes[0].rows == list(range(6))
    assert dose.unclustered == [ids[10]] and dose.unclustered_rows == [10]
    for theme in dose.themes:
        assert 1 <= len(theme.quotes) <= 3
        assert len({q["explanation"] for q in theme.quotes}) == len(theme.quotes)
        for q in theme.quotes:
            assert q["id"] in theme.row_ids and q["explanation"] == (NO_DOSE + OFF_TOPIC)[q["row"]]
        assert theme.named_by == UNNAMED and theme.title  # no namer: titled by its most central explanation
    clinician = by_id["advises_clinician"]
    assert clinician.themes == [] and clinician.support == 0 and clinician.scored == 19
    assert [e["id"] for e in clinician.evidence] == ids[:3]  # lowest-scoring rows, still listed
    side = by_id["warns_side_effects"]
    assert (side.support, side.required, side.shortfall, len(side.themes)) == (3, 4, 1, 1)
    assert side.themes[0].size == 17


def test_target_and_low_score_options(embedder):
    ds = dataset()
    report = compute_coverage(ds, SPEC)
    gaps = find_gaps(ds, SPEC, report, target=Target(min_fraction=0.0, min_samples=16), cluster=False)
    assert {g.subgoal: g.shortfall for g in gaps} == {"explains_use": 1, "states_dose": 16, "advises_clinician": 16,
                                                      "warns_side_effects": 13}
    only_ones = find_gaps(ds, SPEC, report, low_score=1)
    dose = next(g for g in only_ones if g.subgoal == "states_dose")
    assert dose.low_pairs == 7  # the rows scored exactly 1


def test_target_required():
    assert Target(0.2).required(30) == 6  # 0.2 * 30 is 6.000000000000001 in floating point
    assert Target(0.2, 10).required(30) == 10
    assert Target(0.0).required(0) == 1  # zero support is always a gap
    with pytest.raises(ValueError, match="fraction"):
        Target(1.5)


def test_naming_with_a_controlled_engine(embedder):
    ds = dataset()
    report = compute_coverage(ds, SPEC)
    engine = namer(fail_on="off-topic")
    gaps = find_gaps(ds, SPEC, report, namer=engine)
    chats = [chat for _, chat in engine.generated]
    assert engine.scored == []  # naming never asks for choice probabilities
    schema = engine.calls[0].schema
    assert schema.model_json_schema()["properties"]["subgoal"]["enum"] == [s.id for s in SPEC.subgoals]
    dose = next(g for g in gaps if g.subgoal == "states_dose")
    named, failed = dose.themes
    assert (named.title, named.named_by, named.named_subgoal) == ("Dose statements", "fake-namer", "states_dose")
    assert named.description == "Answers that state a dose."
    # The off-topic theme's output was invalid: it keeps its evidence and is titled by a real explanation.
    assert failed.named_by == UNNAMED and failed.named_subgoal is None
    assert failed.title.rstrip("…") in " ".join(OFF_TOPIC)
    assert failed.row_ids == [f"r{k:02d}" for k in range(6, 10)]
    prompt = chats[0][-1]["content"]
    assert SPEC.goal in prompt and "states_dose" in prompt and NO_DOSE[0] in " ".join(c[-1]["content"] for c in chats)


def test_gaps_json_round_trip_and_staleness(tmp_path, embedder):
    ds = dataset()
    report = compute_coverage(ds, SPEC)
    gaps = find_gaps(ds, SPEC, report)
    settings = {"low_score": 3, "target": {"min_fraction": 0.2, "min_samples": 0}, "distance": 0.55,
                "min_theme": 2, "max_themes": 5}
    doc = gaps_document(gaps, SPEC, report, {"model": "judge"}, settings)
    path = save_gaps(tmp_path / "gaps.json", doc)
    raw = json.loads(path.read_text())
    assert raw["schema"] == "goalcover.gaps" and raw["schema_version"] == GAPS_SCHEMA_VERSION
    assert raw["spec_hash"] == SPEC.content_hash() and raw["settings"]["threshold"] == 4
    loaded, why = load_gaps(path, SPEC, report)
    assert why == "" and [g.to_dict() for g in loaded] == [g.to_dict() for g in gaps]
    stale, why = load_gaps(path, SPEC, report, Target(0.5))
    assert stale is None and "target" in why
    other = SPEC.model_copy(update={"goal": "Another goal"})
    assert load_gaps(path, other, report)[0] is None
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    with pytest.raises(FileExistsError, match="not a goalcover gaps file"):
        save_gaps(notes, doc)
    assert notes.read_text() == '{"mine": true}'


def test_cli_gaps_writes_json_and_report(tmp_path, capsys, install_engine, embedder):
    from goalcover_hf import cli

    run = run_folder(tmp_path / "run")
    asked = install_engine(namer())
    assert cli.main(["gaps", str(run)]) == 0
    out = capsys.readouterr().out
    assert [model for model, _ in asked] == ["test-judge"]  # the run's judge names the themes by default
    assert "1. GAP states_dose" in out and "Dose statements" in out and "r00" in out
    doc = json.loads((run / "gaps.json").read_text())
    assert [g["subgoal"] for g in doc["gaps"]] == ["states_dose", "advises_clinician", "warns_side_effects"]
    assert doc["namer"] == "fake-namer"
    # report and card pick the themes up from gaps.json while it matches their options
    assert cli.main(["report", str(run)]) == 0
    assert "Dose statements" in capsys.readouterr().out
    assert cli.main(["report", str(run), "--min-coverage", "0.5"]) == 0
    captured = capsys.readouterr()
    assert "Dose statements" not in captured.out and "not using" in captured.err


def test_cli_gaps_errors(tmp_path, capsys):
    from goalcover_hf import cli

    assert cli.main(["gaps", str(tmp_path / "missing")]) == 2
    assert "not a goalcover run folder" in capsys.readouterr().err
