"""`goalcover label` and `goalcover check`, and what labels, a row sample and a validation report change in report,
gaps and card: on run folders whose scores the test writes (fake_run), and one tiny model for `score --sample`."""

import io
import json

import pytest
from fake_run import SPEC, run_folder

from goalcover_hf.card import read_card
from goalcover_hf.cli import main
from goalcover_hf.labels import Labels
from goalcover_hf.results import Run

# explains_use: the judge scores rows 0..14 at 5 (75%); a person says only rows 0..7 of 0..19 support it (40%).
LABELLED = [(r, "explains_use", int(r < 8)) for r in range(20)]
# warns_side_effects: 12 labels on rows 0..11, four of them 1: a part of the rows, so the interval has width.
LABELLED += [(r, "warns_side_effects", int(r in (0, 1, 5, 6))) for r in range(12)]


def write_labels(path, rows, header="row,subgoal,label"):
    path.write_text(header + "\n" + "".join(f"{r},{s},{v}\n" for r, s, v in rows), encoding="utf-8")
    return path


@pytest.fixture
def run(tmp_path):
    return run_folder(tmp_path / "run")


@pytest.fixture
def labelled(run, tmp_path, capsys):
    assert main(["label", str(run), "--import", str(write_labels(tmp_path / "labels.csv", LABELLED))]) == 0
    capsys.readouterr()
    return run


def check_json(run, capsys, *extra):
    assert main(["check", str(run), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _report_json(path, capsys):
    assert main(["report", str(path), "--json"]) == 0
    return capsys.readouterr().out


# ---- label --------------------------------------------------------------------------------------------------------
def test_label_import_adds_then_finds_them_present(run, tmp_path, capsys):
    labels = write_labels(tmp_path / "labels.csv", LABELLED)
    assert main(["label", str(run), "--import", str(labels)]) == 0
    out = capsys.readouterr().out
    assert f"{len(LABELLED)} label(s) added, 0 already present" in out and f"goalcover check {run}" in out
    assert main(["label", str(run), "--import", str(labels)]) == 0
    assert f"0 label(s) added, {len(LABELLED)} already present" in capsys.readouterr().out
    pairs = Labels.load(run).pairs()
    assert len(pairs) == len(LABELLED) and pairs[(3, "explains_use")] == 1 and pairs[(9, "explains_use")] == 0


def test_label_import_errors_are_named_and_nothing_is_imported(run, tmp_path, capsys):
    bad = write_labels(tmp_path / "bad.csv", [(2, "explains_use", 1), (40, "states_dose", 1), (3, "nope", 1),
                                              (4, "states_dose", 7)])
    assert main(["label", str(run), "--import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot import") and "Traceback" not in err
    assert "line 3: field 'row': '40' is not a row of the dataset (0..19)" in err
    assert "line 4: field 'subgoal': unknown subgoal 'nope'" in err
    assert "line 5: field 'label': '7' is not 0 or 1" in err
    assert not (run / "labels.jsonl").exists()  # all or nothing
    assert main(["label", str(run), "--import", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err


def test_label_import_by_id_and_conflicts(run, tmp_path, capsys):
    by_id = write_labels(tmp_path / "ids.csv", [("r05", "states_dose", 0), ("r06", "states_dose", 1)],
                         header="id,subgoal,label")
    assert main(["label", str(run), "--import", str(by_id)]) == 0
    assert Labels.load(run).pairs() == {(5, "states_dose"): 0, (6, "states_dose"): 1}
    capsys.readouterr()
    clash = write_labels(tmp_path / "clash.csv", [(5, "states_dose", 1)])
    assert main(["label", str(run), "--import", str(clash)]) == 2
    assert "is labelled 1 here but 0 in the run's labels.jsonl" in capsys.readouterr().err


def test_label_session_shows_rows_as_the_judge_read_them_and_saves_each_answer(run, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\nn\nq\n"))
    assert main(["label", str(run), "--per-subgoal", "4", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    saved = [json.loads(line) for line in (run / "labels.jsonl").read_text().splitlines()]
    assert [r["label"] for r in saved] == [1, 0] and {r["source"] for r in saved} == {"session"}
    row = saved[0]["row"]
    assert saved[0]["id"] == f"r{row:02d}"  # the id column is kept with each label
    assert f"sample {row}" in out  # the row's text, rendered from its own columns
    assert "gc_" not in out and "Next: goalcover check" in out
    # the same seed continues the plan: the pairs answered are not asked again
    monkeypatch.setattr("sys.stdin", io.StringIO("q\n"))
    assert main(["label", str(run), "--per-subgoal", "4", "--seed", "3"]) == 0
    assert "(2 labelled already)" in capsys.readouterr().out


# ---- check --------------------------------------------------------------------------------------------------------
def test_check_json_without_labels_gives_the_judges_figures_with_their_sampling_interval(run, capsys):
    doc = check_json(run, capsys)
    assert doc["labels"] == 0 and set(doc["subgoals"]) == {s.id for s in SPEC.subgoals}
    use = doc["subgoals"]["explains_use"]
    assert use["labels"] == 0 and use["auc"] is None and use["verdict"] == "no labels yet"
    assert use["coverage"] == {"raw": 0.75, "estimate": 0.75, "low": 0.75, "high": 0.75, "method": "judge",
                               "basis": "judge's opinion", "decision": "covered"}
    clinician = doc["subgoals"]["advises_clinician"]["coverage"]  # 19 of 20 rows scored: the 20th is not seen
    assert clinician["raw"] == 0.0 and clinician["low"] == 0.0 and 0 < clinician["high"] < 0.05
    assert doc["subgoals"]["states_dose"]["labels_needed"] > 0  # planning assumes the worst before any label


def test_check_json_with_labels(labelled, capsys):
    doc = check_json(labelled, capsys, "--half-width", "0.1")
    use, warns = doc["subgoals"]["explains_use"], doc["subgoals"]["warns_side_effects"]
    assert (use["labels"], use["positives"], use["negatives"]) == (20, 8, 12)
    assert 0.5 < use["auc"] <= 1 and use["intervals"]["auc"][0] <= use["auc"] <= use["intervals"]["auc"][1]
    assert use["accuracy"] == pytest.approx(13 / 20)  # the judge says 15 rows support it; the labels say 8
    assert use["recall"] == 1.0 and use["precision"] == pytest.approx(8 / 15)
    assert "kappa" in use and "too lenient" in use["verdict"]
    # every row labelled: calibrated coverage is the labels' own share, exactly
    assert use["coverage"]["method"] == "calibrated" and use["coverage"]["raw"] == 0.75
    assert use["coverage"]["estimate"] == pytest.approx(0.4) and use["coverage"]["low"] == pytest.approx(0.4)
    cov = warns["coverage"]
    assert cov["method"] == "calibrated" and warns["labels"] == 12
    assert 0 <= cov["low"] < cov["estimate"] < cov["high"] <= 1 and cov["raw"] == 0.15
    assert isinstance(warns["labels_needed"], int)
    assert doc["subgoals"]["states_dose"]["coverage"]["method"] == "judge"
    assert doc["overall"]["labels"] == 32 and doc["half_width"] == 0.1


def test_check_prints_agreement_and_calibrated_coverage(labelled, capsys):
    assert main(["check", str(labelled)]) == 0
    out = capsys.readouterr().out
    for text in ("AUC", "accuracy", "kappa", "precision", "recall", "verdict", "calibrated (20 labels)",
                 "calibrated (12 labels)", "labels for +-5%", "threshold biased (too lenient)"):
        assert text in out, text


def test_check_without_labels_says_how_to_get_them(run, capsys):
    assert main(["check", str(run)]) == 0
    captured = capsys.readouterr()
    assert "No human labels yet" in captured.out and "goalcover label" in captured.err
    assert "judge's opinion" in captured.out


# ---- report, gaps and card once labels exist ----------------------------------------------------------------------
def test_report_and_card_use_calibrated_figures_once_labels_exist(run, tmp_path, capsys):
    assert main(["report", str(run)]) == 0
    before = capsys.readouterr().out
    assert "calibrated (" not in before and "judge's opinion" in before and "goalcover label" in before
    assert main(["card", str(run)]) == 0
    card = (run / "README.md").read_text()
    assert "## Capability coverage" in card and "How far to trust this" in card
    assert "judge's uncalibrated opinion: no person has checked them" in card and "`goalcover label RUN`" in card
    assert read_card(run)["subgoals"]["warns_side_effects"]["decision"] == "gap"

    assert main(["label", str(run), "--import", str(write_labels(tmp_path / "l.csv", LABELLED))]) == 0
    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    assert "calibrated (20 labels)" in capsys.readouterr().out
    doc = json.loads(_report_json(run, capsys))
    subs = {s["id"]: s for s in doc["coverage"]["subgoals"]}
    assert subs["explains_use"]["method"] == "calibrated" and subs["explains_use"]["coverage"] == pytest.approx(0.4)
    assert subs["warns_side_effects"]["decision"] == "uncertain"  # 15% by the judge; the labels say maybe more
    assert "warns_side_effects" not in doc["coverage"]["gap_ids"]
    assert doc["coverage"]["agreement"]["subgoals"]["explains_use"]["labelled"] == 20

    assert main(["card", str(run)]) == 0
    card = (run / "README.md").read_text()
    assert "no person has checked them" not in card and "A person labelled 32" in card
    assert "calibrated (20 labels)" in card and "| `explains_use` | 20 (8/12) |" in card
    summary = read_card(run)
    use = summary["subgoals"]["explains_use"]
    assert use["method"] == "calibrated" and use["labels"] == 20 and use["coverage"] == 0.4 and use["low"] == 0.4
    warns = summary["subgoals"]["warns_side_effects"]
    assert warns["decision"] == "uncertain" and warns["low"] < warns["coverage"] < warns["high"]
    assert summary["labels"] == 32 and summary["uncertain"] == ["warns_side_effects"]
    assert summary["agreement"]["explains_use"]["labels"] == 20 and summary["agreement"]["states_dose"]["auc"] is None


def test_gaps_file_is_refreshed_or_refused_when_labels_change_the_decisions(run, tmp_path):
    from goalcover_hf.gaps import find_gaps
    from goalcover_hf.gaps_file import GAPS_FILE, gaps_document, load_gaps, save_gaps
    from goalcover_hf.trust import run_coverage

    loaded = Run.load(run)
    report = run_coverage(loaded)
    gaps = find_gaps(loaded.dataset, SPEC, report, cluster=False)
    assert [g.subgoal for g in gaps] == ["states_dose", "advises_clinician", "warns_side_effects"]
    save_gaps(run / GAPS_FILE, gaps_document(gaps, SPEC, report, loaded.provenance,
                                             {"target": {"min_fraction": 0.2, "min_samples": 0}}))
    # labels that keep the gaps: the file is used, with its figures brought up to date
    dose = [(r, "states_dose", 0) for r in range(12)]
    labels = {(r, s): v for r, s, v in dose}
    again, why = load_gaps(run / GAPS_FILE, SPEC, run_coverage(loaded, labels=labels))
    assert why == "" and next(g for g in again if g.subgoal == "states_dose").method == "calibrated"
    # labels that turn a gap into "uncertain": the file no longer describes the run
    labels.update({(r, s): v for r, s, v in LABELLED})
    stale, why = load_gaps(run / GAPS_FILE, SPEC, run_coverage(loaded, labels=labels))
    assert stale is None and "other gaps" in why


def test_card_reports_a_validation_in_the_run_folder(run, capsys):
    validation = {"domain": "meds", "subgoals": [s.id for s in SPEC.subgoals], "provenance": {}, "settings": {},
                  "summary": {"target": 0.31, "nontarget": 0.02, "d": 1.4, "target_ci": [0.2, 0.4],
                              "nontarget_ci": [0.0, 0.05], "d_ci": [0.9, 2.0], "n_target": 2, "n_nontarget": 6,
                              "bootstrap": 100},
                  "targets": [{"target": "states_dose", "operator": "remove_dosage", "applicable": 5, "failed": 0,
                               "ids": [], "clean": [], "corrupted": [], "degradation": {"states_dose": 0.4}}]}
    (run / "validation.json").write_text(json.dumps(validation))
    assert main(["card", str(run)]) == 0
    card = (run / "README.md").read_text()
    assert "**Corruption experiment** (meds)" in card and "fell by 31% [20%, 40%]" in card
    assert "`states_dose` 40%" in card and "no person has checked them" in card  # still no labels
    assert read_card(run)["validation"]["d_ci"] == [0.9, 2.0]
    validation["subgoals"] = ["another_spec"]
    (run / "validation.json").write_text(json.dumps(validation))
    assert main(["card", str(run)]) == 0
    assert "Corruption experiment" not in (run / "README.md").read_text()  # about other subgoals: skipped


# ---- score --sample ---------------------------------------------------------------------------------------------------
@pytest.fixture
def data(tmp_path):
    """Ten question/answer rows, ids q0..q9."""
    from datasets import Dataset

    path = tmp_path / "rows.jsonl"
    Dataset.from_dict({"id": [f"q{k}" for k in range(10)], "question": [f"Question {k}?" for k in range(10)],
                       "answer": [f"Answer {k}: take {k}00 mg." for k in range(10)]}).to_json(str(path), lines=True)
    return path


def test_score_sample_records_the_draw_and_widens_the_intervals(tmp_path, tiny_model, data, spec, capsys):
    argv = ["score", "--data", str(data), "--spec", str(spec.save(tmp_path / "goal.yaml")), "--model", tiny_model,
            "--mode", "logprobs", "--explain", "none", "--no-cache", "--sample", "4", "--seed", "3"]
    assert main(argv + ["-o", str(tmp_path / "run")]) == 0
    run = Run.load(tmp_path / "run")
    assert run.provenance["sample"] == {"rows": 4, "of": 10, "seed": 3}
    ids = run.dataset["id"]
    assert len(ids) == 4 and ids == sorted(ids, key=lambda i: int(i[1:])) and set(ids) <= {f"q{k}" for k in range(10)}
    assert main(argv + ["-o", str(tmp_path / "again")]) == 0
    assert Run.load(tmp_path / "again").dataset["id"] == ids  # the seed decides the draw
    capsys.readouterr()

    assert main(["report", str(tmp_path / "run")]) == 0
    assert "estimated from 4 of 10 rows" in capsys.readouterr().out
    for s in json.loads(_report_json(tmp_path / "run", capsys))["coverage"]["subgoals"]:
        assert s["high"] - s["low"] > 0.1  # 6 rows never scored: the interval says so
    assert main(["card", str(tmp_path / "run")]) == 0
    assert "estimated from 4 of 10 rows" in (tmp_path / "run" / "README.md").read_text()
    assert read_card(tmp_path / "run")["sample"] == {"rows": 4, "of": 10, "seed": 3}


def test_score_refuses_a_sample_larger_than_the_data(tmp_path, tiny_model, data, spec, capsys):
    out = tmp_path / "run"
    assert main(["score", "--data", str(data), "--spec", str(spec.save(tmp_path / "goal.yaml")), "--model",
                 tiny_model, "--sample", "11", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--sample 11" in err and "has only 10 rows" in err and "Traceback" not in err
    assert not out.exists()
