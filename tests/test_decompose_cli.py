"""The real `goalcover decompose` command: driven through a pseudo-terminal (pexpect) and with piped stdin."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
import yaml

GOALCOVER = str(Path(sys.executable).parent / "goalcover")
PROPOSAL = {
    "goal": "A patient-facing assistant that answers medication questions",
    "subgoals": [
        {"id": "states_dose", "name": "States a dose", "description": "The answer gives a drug dose with units.",
         "low": "No dose.", "high": "Exact dose with units and frequency."},
        {"id": "gives_dosage", "name": "Gives dosage",
         "description": "The answer states the dose of the medication with its units."},
        {"id": "explains_and_recommends", "name": "Explains and recommends",
         "description": "Explains how the drug works and recommends when to see a doctor."},
        {"id": "balanced_topics", "name": "Balanced topics", "description": "The dataset is balanced across drug classes."},
        {"id": "plain_language", "name": "Plain language", "description": "The answer avoids jargon."},
    ],
}
# edit one, split one, merge two, delete one, save: (expected prompt, keystrokes)
SCRIPT = [
    ("> ", "edit 5 description"), ("description [", "The answer uses words a patient knows."),
    ("> ", "split 3"), ("how many subgoals [2]: ", ""),
    ("part 1 name: ", "Explains the mechanism"), ("part 1 description: ", "The answer explains how the drug works."),
    ("part 2 name: ", "Advises seeing a doctor"), ("part 2 description: ", "The answer says when to see a doctor."),
    ("> ", "merge 1 2"), ("merged name [States a dose]: ", ""),
    ("merged description [", "The answer gives a dose with units and frequency."),
    ("> ", "delete 4"),
    ("> ", "save"),
]


@pytest.fixture
def workdir(tmp_path, session_cache):
    (tmp_path / "proposal.yaml").write_text(yaml.safe_dump(PROPOSAL, sort_keys=False))
    return tmp_path


def env(cache):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "GOALCOVER_CACHE": str(cache), "TOKENIZERS_PARALLELISM": "false"}


def assert_shaped(path: Path):
    saved = yaml.safe_load(path.read_text())
    assert saved["goal"] == PROPOSAL["goal"]
    subs = saved["subgoals"]
    assert [s["id"] for s in subs] == ["states_dose", "explains_the_mechanism", "advises_seeing_a_doctor",
                                       "plain_language"]
    assert subs[0]["name"] == "States a dose"
    assert subs[0]["description"] == "The answer gives a dose with units and frequency."
    assert subs[0]["low"] == "No dose." and subs[0]["high"] == "Exact dose with units and frequency."
    assert subs[1]["name"] == "Explains the mechanism"
    assert subs[1]["description"] == "The answer explains how the drug works."
    assert subs[2]["name"] == "Advises seeing a doctor"
    assert subs[2]["description"] == "The answer says when to see a doctor."
    assert subs[3]["name"] == "Plain language" and subs[3]["description"] == "The answer uses words a patient knows."
    checks = saved["meta"]["checks"]
    assert checks["ran"] == ["atomic", "evaluable", "overlap"] and checks["model"] is None
    assert checks["findings"] == []  # every flagged subgoal was fixed in the session
    assert saved["meta"]["reviewed"] == ["states_dose", "explains_the_mechanism", "advises_seeing_a_doctor",
                                         "plain_language"]


def test_session_in_a_pseudo_terminal(workdir, session_cache):
    child = pexpect.spawn(GOALCOVER, ["decompose", "--from", "proposal.yaml", "-o", "goal.yaml", "--no-model-checks"],
                          cwd=str(workdir), env=env(session_cache), encoding="utf-8", timeout=240,
                          dimensions=(50, 200))
    # The checks show beside the proposal before any edit.
    child.expect_exact("with 2. 'Gives dosage'")
    child.expect_exact("atomic: the name joins two things with 'and'")
    child.expect_exact("evaluable: speaks of the dataset")
    for prompt, keys in SCRIPT:
        child.expect_exact(prompt)
        child.sendline(keys)
    child.expect_exact("Saved 4 subgoals to goal.yaml")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert_shaped(workdir / "goal.yaml")


def test_same_session_with_piped_stdin(workdir, session_cache):
    keys = "\n".join(k for _, k in SCRIPT) + "\n"
    run = subprocess.run([GOALCOVER, "decompose", "--from", "proposal.yaml", "-o", "goal.yaml", "--no-model-checks"],
                         cwd=workdir, env=env(session_cache), input=keys, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr
    assert "> split 3" in run.stdout  # piped commands are echoed so the transcript reads like a session
    assert_shaped(workdir / "goal.yaml")
    # Re-opening the saved spec and saving over it asks first; "n" keeps the file byte for byte.
    before = (workdir / "goal.yaml").read_bytes()
    run = subprocess.run([GOALCOVER, "decompose", "--from", "goal.yaml", "--no-model-checks"], cwd=workdir,
                         env=env(session_cache), input="delete 1\nsave\nn\nquit\ny\n", capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 1 and "goal.yaml exists. Replace it?" in run.stdout
    assert (workdir / "goal.yaml").read_bytes() == before


def test_cli_errors_are_clear_and_touch_nothing(workdir, session_cache):
    (workdir / "goal.yaml").write_text("mine")
    run = subprocess.run([GOALCOVER, "decompose", "Some goal", "--yes"], cwd=workdir, env=env(session_cache),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "goal.yaml exists; choose another output or pass --overwrite" in run.stderr
    assert (workdir / "goal.yaml").read_text() == "mine"
    run = subprocess.run([GOALCOVER, "decompose", "--from", "nope.yaml"], cwd=workdir, env=env(session_cache),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "nope.yaml: spec file not found" in run.stderr
    run = subprocess.run([GOALCOVER, "decompose"], cwd=workdir, env=env(session_cache), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and "--from" in run.stderr


def test_closing_the_terminal_keeps_a_draft(workdir, session_cache):
    child = pexpect.spawn(GOALCOVER, ["decompose", "--from", "proposal.yaml", "-o", "goal.yaml", "--no-model-checks"],
                          cwd=str(workdir), env=env(session_cache), encoding="utf-8", timeout=240)
    child.expect_exact("\n> ")
    child.sendline("delete 4")
    child.expect_exact("Deleted 'Balanced topics'.")
    child.expect_exact("\n> ")
    child.kill(signal.SIGHUP)  # what closing the terminal window sends
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    draft = workdir / "goal.draft.yaml"
    saved = yaml.safe_load(draft.read_text())
    assert [s["id"] for s in saved["subgoals"]] == ["states_dose", "gives_dosage", "explains_and_recommends",
                                                    "plain_language"]
    assert not (workdir / "goal.yaml").exists()


def test_min_subgoals_above_max_is_refused(workdir, capsys):
    from goalcover_hf.cli import main

    assert main(["decompose", "A goal", "--min-subgoals", "6", "--max-subgoals", "4", "--yes",
                 "-o", str(workdir / "out.yaml")]) == 2
    assert "--min-subgoals 6 is more than --max-subgoals 4" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # at most 12: more does not fit one proposal
        main(["decompose", "A goal", "--max-subgoals", "13"])
    assert "argument --max-subgoals: must be within 1..12, got 13" in capsys.readouterr().err
    assert not (workdir / "out.yaml").exists()


def test_decompose_takes_the_engine_options_of_score():
    """A server proposes subgoals as it scores them: decompose loads the model through the same engine flags."""
    from fake_openai import MODEL, ScriptedServer

    from goalcover_hf.cli import build_parser
    from goalcover_hf.cli.spec_commands import model_or_engine

    server = ScriptedServer()
    try:
        args = build_parser().parse_args(["decompose", "A goal", "--engine", "openai", "--base-url", server.base_url,
                                          "--max-in-flight", "2"])
        engine = model_or_engine(args)
        assert engine.name == "openai" and engine.identity.startswith(MODEL)
        assert any(r["path"].endswith("/models") for r in server.requests)  # it asked the server, not a local model
    finally:
        server.close()
    args = build_parser().parse_args(["decompose", "A goal", "--model", "embedded"])
    assert model_or_engine(args) == "embedded"  # the default engine loads on first use, as before
