"""Interrupted runs lose no finished judgement. Each test starts the real `goalcover score` in a subprocess
(tests/interrupted_run.py) that, once BATCHES batches of judgements are in the pair cache, writes a file and waits;
the test waits for that file (as long as a loaded machine needs), then interrupts the run. Nothing races a clock."""

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

ROWS = 12
SUBGOALS = 2
BATCH = 2  # samples per batch
BATCHES = 2  # batches stored when the run is interrupted
STORED = BATCHES * BATCH * SUBGOALS
CHILD = Path(__file__).with_name("interrupted_run.py")
READY_TIMEOUT_S = 600  # generous: the child holds still once ready, so waiting longer costs nothing but a failure
WORDS = ["take", "200", "mg", "every", "six", "hours", "with", "food", "warning", "dizziness", "dose", "tablet"]


@pytest.fixture
def job(tmp_path, spec, tiny_model, write_rows):
    rng = random.Random(0)
    data = write_rows([{"id": f"r{k}", "question": f"Question {k}?", "answer": " ".join(rng.choices(WORDS, k=40))}
                       for k in range(ROWS)])
    spec_file = spec.save(tmp_path / "goal.yaml")
    assert len(spec.subgoals) == SUBGOALS

    def command(cache: Path, out: Path) -> list[str]:
        """The arguments of `goalcover score`."""
        return ["score", "--data", str(data), "--spec", str(spec_file), "--model", tiny_model, "--mode", "logprobs",
                "--explain", "none", "--batch-size", str(BATCH), "--cache", str(cache), "-o", str(out)]

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


def goalcover(args: list[str]) -> list[str]:
    cli = Path(sys.executable).with_name("goalcover")
    return ([str(cli)] if cli.exists() else [sys.executable, "-m", "goalcover_hf.cli"]) + args


def interrupt_midway(args, env, ready: Path, sig) -> subprocess.CompletedProcess:
    """Run `goalcover score ARGS` until BATCHES batches are stored, then send ``sig``."""
    cmd = [sys.executable, str(CHILD), str(ready), str(BATCHES)] + args
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (code {proc.returncode}) before it was ready to be interrupted:\n{err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run was not ready to be interrupted after {READY_TIMEOUT_S} s")
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=READY_TIMEOUT_S)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_sigkill_then_the_same_command_gives_the_uninterrupted_result(job):
    from datasets import load_from_disk

    tmp, command, env = job
    cache, out = tmp / "pairs.sqlite", tmp / "run"
    killed = interrupt_midway(command(cache, out), env("resumed"), tmp / "ready", signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    before = stored(cache)
    assert len(before) == STORED  # killed midway: the finished batches, no more
    assert not out.exists()  # nothing a later run could take for a finished run folder

    resumed = subprocess.run(goalcover(command(cache, out)), env=env("resumed"), capture_output=True, text=True,
                             timeout=READY_TIMEOUT_S)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = stored(cache)
    assert len(after) == ROWS * SUBGOALS
    assert {k: after[k] for k in before} == before  # read back, not recomputed (a recompute rewrites the entry)

    baseline = subprocess.run(goalcover(command(tmp / "baseline.sqlite", tmp / "baseline")), env=env("baseline"),
                              capture_output=True, text=True, timeout=READY_TIMEOUT_S)
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
    stopped = interrupt_midway(command(cache, out), env("interrupted"), tmp / "ready", signal.SIGINT)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    last = stopped.stderr.rstrip("\n").splitlines()[-1]
    match = re.fullmatch(r"goalcover: interrupted; (\d+) finished judgements are kept in the pair cache — resume "
                         r"with the same command", last)
    assert match, last
    assert "Traceback" not in stopped.stderr
    kept = stored(cache)
    assert int(match.group(1)) == len(kept) == STORED
    assert not out.exists() and not out.with_name("run.partial").exists()
