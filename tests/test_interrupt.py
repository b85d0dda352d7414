"""Interrupted runs lose no finished judgement. Each test starts the real `goalcover score` in a subprocess and
interrupts it once the pair cache holds some, but not all, of its judgements."""

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROWS = 80
SUBGOALS = 2
WORDS = ["take", "200", "mg", "every", "six", "hours", "with", "food", "warning", "dizziness", "dose", "tablet"]


@pytest.fixture
def job(tmp_path, spec, tiny_model):
    rng = random.Random(0)
    data = tmp_path / "rows.jsonl"
    with open(data, "w", encoding="utf-8") as fh:
        for k in range(ROWS):  # long enough answers that scoring takes seconds, not milliseconds
            answer = " ".join(rng.choice(WORDS) for _ in range(300))
            fh.write(json.dumps({"id": f"r{k}", "question": f"Question {k}?", "answer": answer}) + "\n")
    spec_file = spec.save(tmp_path / "goal.yaml")
    assert len(spec.subgoals) == SUBGOALS

    def command(cache: Path, out: Path) -> list[str]:
        cli = Path(sys.executable).with_name("goalcover")
        head = [str(cli)] if cli.exists() else [sys.executable, "-m", "goalcover_hf.cli"]
        return head + ["score", "--data", str(data), "--spec", str(spec_file), "--model", tiny_model, "--mode",
                       "logprobs", "--explain", "none", "--batch-size", "2", "--cache", str(cache), "-o", str(out)]

    def env(name: str) -> dict:
        return dict(os.environ, HF_HUB_OFFLINE="1", GOALCOVER_THREADS="1", GOALCOVER_CACHE=str(tmp_path / "gc"),
                    HF_DATASETS_CACHE=str(tmp_path / f"hf_{name}"))

    return tmp_path, command, env


def stored(cache: Path) -> dict[str, float]:
    """key -> time stored, read as another process would while the run writes."""
    try:
        conn = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=10)
        try:
            return dict(conn.execute("SELECT key, created FROM pairs"))
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return {}


def interrupt_midway(cmd, env, cache: Path, sig) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(stored(cache)) >= 4:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        out, err = proc.communicate()
        pytest.fail(f"the run ended (code {proc.returncode}) before it could be interrupted:\n{err[-2000:]}")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_sigkill_then_the_same_command_gives_the_uninterrupted_result(job):
    from datasets import load_from_disk

    tmp, command, env = job
    cache, out = tmp / "pairs.sqlite", tmp / "run"
    cmd = command(cache, out)
    killed = interrupt_midway(cmd, env("resumed"), cache, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    before = stored(cache)
    assert 0 < len(before) < ROWS * SUBGOALS  # killed midway: some judgements finished, not all
    assert not out.exists()  # nothing a later run could take for a finished run folder

    resumed = subprocess.run(cmd, env=env("resumed"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = stored(cache)
    assert len(after) == ROWS * SUBGOALS
    assert {k: after[k] for k in before} == before  # read back, not recomputed (a recompute rewrites the entry)

    baseline = subprocess.run(command(tmp / "baseline.sqlite", tmp / "baseline"), env=env("baseline"),
                              capture_output=True, text=True, timeout=600)
    assert baseline.returncode == 0, baseline.stderr[-2000:]
    got, want = load_from_disk(str(out / "dataset")), load_from_disk(str(tmp / "baseline" / "dataset"))
    assert got.column_names == want.column_names
    assert got["id"] == want["id"] == [f"r{k}" for k in range(ROWS)]  # every row once, in order
    for column in got.column_names:
        if column.endswith("_expected"):  # float32 sums can differ in the last bits with batch history
            assert got[column] == pytest.approx(want[column], abs=1e-5), column
        else:
            assert got[column] == want[column], column
    assert all(s is not None for sid in ("states_dose", "warns_side_effects") for s in got[f"gc_{sid}_score"])


def test_ctrl_c_exits_130_with_one_line_and_keeps_finished_pairs(job):
    tmp, command, env = job
    cache, out = tmp / "pairs.sqlite", tmp / "run"
    stopped = interrupt_midway(command(cache, out), env("interrupted"), cache, signal.SIGINT)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    last = stopped.stderr.rstrip("\n").splitlines()[-1]
    match = re.fullmatch(r"goalcover: interrupted; (\d+) finished judgements are kept in the pair cache — resume "
                         r"with the same command", last)
    assert match, last
    assert "Traceback" not in stopped.stderr
    kept = stored(cache)
    assert int(match.group(1)) == len(kept) and 0 < len(kept) < ROWS * SUBGOALS
    assert not out.exists() and not out.with_name("run.partial").exists()
