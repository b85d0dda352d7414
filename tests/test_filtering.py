"""Filtering thresholds, any/all/mean/min rules, balancing, and the `goalcover filter` run folder."""

import json

import pytest

from goalcover_hf.filtering import filter as filter_rows


def annotated(spec, dose, side):
    from datasets import Dataset

    from goalcover_hf.columns import score_columns

    n = len(dose)
    data = {"id": [f"r{k}" for k in range(n)], "question": [f"q{k}" for k in range(n)],
            "answer": [f"a{k}" for k in range(n)]}
    for sid, scores in (("states_dose", dose), ("warns_side_effects", side)):
        cols = score_columns(sid)
        data[cols["score"]] = scores
        data[cols["expected"]] = [float(s) if s is not None else None for s in scores]
        data[cols["explanation"]] = [None] * n
        data[cols["error"]] = [None if s is not None else "judge failed" for s in scores]
    return Dataset.from_dict(data)


@pytest.fixture
def ds(spec):
    #            r0 r1 r2 r3 r4    r5
    dose = [5, 4, 2, 1, 5, None]
    side = [5, 1, 4, 2, 3, 5]
    return annotated(spec, dose, side)


def ids(result):
    return result.dataset["id"]


def test_any_all_and_per_subgoal_levels(ds, spec):
    assert ids(filter_rows(ds, spec)) == ["r0", "r1", "r2", "r4", "r5"]  # supports any subgoal (>= 4)
    assert ids(filter_rows(ds, spec, require="all")) == ["r0"]  # a missing score never supports
    assert ids(filter_rows(ds, spec, subgoals=["states_dose"], min_scores={"states_dose": 5})) == ["r0", "r4"]
    assert ids(filter_rows(ds, spec, threshold=3, require="all")) == ["r0", "r4"]


def test_mean_and_min_rules(ds, spec):
    r = filter_rows(ds, spec, require=None, min_mean=3.5)
    assert ids(r) == ["r0", "r4"]  # means 5, 2.5, 3, 1.5, 4, (missing)
    assert r.dropped == {"min_mean": 4}
    assert ids(filter_rows(ds, spec, require=None, min_score=3)) == ["r0", "r4"]
    assert ids(filter_rows(ds, spec, require=None, min_score=2)) == ["r0", "r2", "r4"]


def test_kept_rows_carry_their_coverage(ds, spec):
    r = filter_rows(ds, spec, subgoals=["states_dose"])
    assert r.before.rows == 6 and r.after.rows == 3
    after = {s.id: s for s in r.after.subgoals}
    assert after["states_dose"].coverage == 1.0
    assert after["warns_side_effects"].support == 1  # r0 only among r0, r1, r4
    prov = r.provenance()
    assert prov["rows_after"] == 3 and prov["rule"]["subgoals"] == ["states_dose"]
    assert "supports any of [states_dose]" in prov["description"]


def test_cap_balances_without_losing_rare_capabilities(spec):
    # states_dose is common (6 rows support it), warns_side_effects rare (2 rows, both also support dose).
    ds = annotated(spec, dose=[5, 5, 5, 5, 5, 5, 1], side=[1, 1, 5, 1, 5, 1, 1])
    r = filter_rows(ds, spec, cap=3)
    # r2 and r4 carry the rare subgoal and come first; one more dose row fills the cap of 3
    assert ids(r) == ["r0", "r2", "r4"]
    assert r.dropped == {"require": 1, "balance": 3}
    r = filter_rows(ds, spec, cap=1)
    assert ids(r) == ["r2"]  # r2 alone supports both: nothing else adds a subgoal under the cap


def test_bad_rules_name_the_problem(ds, spec):
    with pytest.raises(KeyError, match="no subgoal 'dose'"):
        filter_rows(ds, spec, subgoals=["dose"])
    with pytest.raises(ValueError, match="min_scores\\[states_dose\\] must be within 1..5"):
        filter_rows(ds, spec, min_scores={"states_dose": 7})
    with pytest.raises(ValueError, match="cap must be at least 1"):
        filter_rows(ds, spec, cap=0)


def test_filter_cli_dry_run_writes_nothing_then_writes_a_run(ds, spec, tmp_path, capsys, fake_engine):
    from goalcover_hf.cli import main
    from goalcover_hf.results import load_run, save_run
    from goalcover_hf import Scorer

    run = save_run(tmp_path / "run", ds, spec, Scorer(spec, engine=fake_engine).provenance())
    out = tmp_path / "filtered"
    assert main(["filter", str(run), "--require", "all", "--threshold", "3", "--dry-run", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "rows: 6 -> 2" in printed and "dry run" in printed and not out.exists()
    assert main(["filter", str(run), "--min", "states_dose=5", "--subgoals", "states_dose", "-o", str(out)]) == 0
    kept = load_run(out)
    assert kept.dataset["id"] == ["r0", "r4"]
    prov = json.loads((out / "run.json").read_text())
    assert prov["filter"]["rule"]["min_scores"] == {"states_dose": 5} and prov["model"] == "fake-judge@1"
    assert main(["card", str(out)]) == 0
    card = (out / "README.md").read_text()
    assert "**Filtered:** rows kept when supports any of [states_dose]" in card and "6 rows before, 2 kept" in card
    # the input run is never the output, and an existing output is not replaced without --overwrite
    assert main(["filter", str(run), "-o", str(run)]) == 2
    assert main(["filter", str(run), "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["filter", str(run), "--min", "states_dose:5", "-o", str(tmp_path / "x")]) == 2
    assert "expected SUBGOAL=VALUE" in capsys.readouterr().err
