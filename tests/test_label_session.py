"""The labelling session: answers, skip, undo, paging, help, quitting and continuing; through a pipe and a terminal."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from goalcover_hf.label_session import LabelSession
from goalcover_hf.labels import LABELS_FILE, Labels, pick_pairs

sys.path.insert(0, str(Path(__file__).parent))
import label_session_app as app  # noqa: E402

APP = Path(__file__).parent / "label_session_app.py"
REPO = Path(__file__).parent.parent
TIMEOUT = 120  # generous: a busy machine may take long to start Python; nothing here races a clock


class Script:
    """Scripted answers for ``ask`` and a transcript from ``say``; EOF when the answers run out."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.prompts = 0
        self.out = []

    def ask(self, prompt):
        self.prompts += 1
        self.out.append(prompt)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)

    def say(self, text):
        self.out.append(text)

    @property
    def text(self):
        return "\n".join(self.out)


def session(tmp_path, script, per_subgoal=4, **kw):
    return LabelSession(app.texts(), app.SPEC, app.scores(), Labels.load(tmp_path), per_subgoal=per_subgoal,
                        seed=0, ask=script.ask, say=script.say, **kw)


def plan():
    return pick_pairs(app.scores(), 4, seed=0)


def test_answers_skip_and_undo_are_recorded_as_given(tmp_path):
    pairs = plan()
    script = Script("y", "n", "s", "u", "y", "yes", "q")
    summary = session(tmp_path, script).run()
    # y -> pair 0 yes; n -> pair 1 no; s -> pair 2 skipped; u -> takes back pair 1 and asks it again; y -> pair 1 yes;
    # yes -> pair 3 (after the skipped one) yes
    assert Labels.load(tmp_path).pairs() == {pairs[0]: 1, pairs[1]: 1, pairs[3]: 1}
    assert (summary.answered, summary.undone, summary.skipped) == (4, 1, 1)
    assert summary.labelled == 3 and summary.remaining == len(pairs) - 3
    assert f"Undone: row {pairs[1][0]}, {pairs[1][1]}: no" in script.text
    assert "Run the same command again to continue" in script.text
    records = (tmp_path / LABELS_FILE).read_text().splitlines()
    assert len(records) == 5 and '"undo"' in records[2]  # the undo is a record of its own: nothing rewritten


def test_the_subgoal_and_its_rubric_are_shown_but_never_the_judges_score(tmp_path):
    script = Script("?", "maybe", "q")
    session(tmp_path, script).run()
    text = script.text
    first = app.SPEC.subgoal(plan()[0][1])
    assert f"Subgoal: {first.name} ({first.id})" in text and first.description in text
    if first.id == "states_dose":
        assert "1 = No dose at all." in text and "3 = A dose without units." in text
    assert text.count("s  skip (asked again next time)") == 2  # the help at the start, and after '?'
    assert "Answer y (supports), n (does not)" in text  # after 'maybe'
    assert "score" not in text.lower().replace("scored", "")
    assert Labels.load(tmp_path).pairs() == {}


def test_a_long_sample_is_paged(tmp_path):
    row0 = [p for p in plan() if p[0] == 0]
    assert row0, "the fixed run's plan asks about the long row 0"
    answers = ["y"] * plan().index(row0[0]) + ["m", "m", "m", "q"]
    script = Script(*answers)
    session(tmp_path, script).run()
    text = script.text
    assert "long sample, line 40\n" in text and "... 60 more line(s) of this sample: m to show more" in text
    assert "long sample, line 80\n" in text and "... 20 more line(s)" in text
    assert "long sample, line 100\n(end of sample)" in text
    assert text.count("long sample, line 1\n") == 2  # a fourth 'm' starts again from the top


def test_a_second_session_continues_where_the_first_stopped(tmp_path):
    pairs = plan()
    session(tmp_path, Script("y", "n", "y")).run()  # EOF after three answers
    second = Script("n", "q")
    summary = session(tmp_path, second).run()
    assert f"{len(pairs) - 3} pair(s) to label (3 labelled already)" in second.text
    assert Labels.load(tmp_path).pairs() == {pairs[0]: 1, pairs[1]: 0, pairs[2]: 1, pairs[3]: 0}
    assert f"row {pairs[3][0]} ====" in second.text.split("Subgoal")[0]
    assert summary.remaining == len(pairs) - 4
    done = Script(*["y"] * 20)
    session(tmp_path, done).run()
    assert "Done:" in done.text and len(Labels.load(tmp_path)) == len(pairs)
    nothing = Script()
    session(tmp_path, nothing).run()
    assert "Nothing left to label" in nothing.text and nothing.prompts == 0


def test_undo_reaches_back_into_an_earlier_session(tmp_path):
    pairs = plan()
    session(tmp_path, Script("y", "q")).run()
    script = Script("u", "n", "q")
    session(tmp_path, script).run()
    assert Labels.load(tmp_path).pairs() == {pairs[0]: 0}
    script = Script("u", "u", "u", "q")
    session(tmp_path, script).run()
    assert script.text.count("Undone:") == 1 and "Nothing to undo." in script.text
    assert Labels.load(tmp_path).pairs() == {}


def run_piped(run_dir, answers):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(APP), str(run_dir)], input=answers, text=True, capture_output=True,
                          env=env, timeout=TIMEOUT, cwd=REPO)


def test_piped_input_session(tmp_path):
    pairs = plan()
    result = run_piped(tmp_path, "y\nn\ns\ny\n")  # then end of input
    assert result.returncode == 0, result.stderr
    assert Labels.load(tmp_path).pairs() == {pairs[0]: 1, pairs[1]: 0, pairs[3]: 1}
    assert "[y/n/s/u/m/?/q] y\n" in result.stdout  # piped answers are echoed into the transcript
    assert "Stopped. 3 answer(s) saved this session, 1 skipped" in result.stdout
    again = run_piped(tmp_path, "q\n")
    assert f"{len(pairs) - 3} pair(s) to label (3 labelled already)" in again.stdout


def test_a_session_killed_with_sigkill_keeps_every_answer_and_the_next_one_continues(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    pairs = plan()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    child = pexpect.spawn(sys.executable, [str(APP), str(tmp_path)], env=env, cwd=str(REPO), encoding="utf-8",
                          timeout=TIMEOUT)
    for answer in ("y", "n", "y"):
        child.expect_exact("[y/n/s/u/m/?/q] ")
        child.sendline(answer)
    child.expect_exact(f"[4/{len(pairs)}]")  # the third answer was taken: the fourth question is on screen
    child.expect_exact("[y/n/s/u/m/?/q] ")
    os.kill(child.pid, signal.SIGKILL)
    child.expect(pexpect.EOF)
    child.close()
    assert child.signalstatus == signal.SIGKILL
    assert Labels.load(tmp_path).pairs() == {pairs[0]: 1, pairs[1]: 0, pairs[2]: 1}

    child = pexpect.spawn(sys.executable, [str(APP), str(tmp_path)], env=env, cwd=str(REPO), encoding="utf-8",
                          timeout=TIMEOUT)
    child.expect_exact(f"{len(pairs) - 3} pair(s) to label (3 labelled already)")
    child.expect_exact(f"row {pairs[3][0]} ")
    child.expect_exact("[y/n/s/u/m/?/q] ")
    child.sendline("n")
    child.expect_exact("[y/n/s/u/m/?/q] ")
    child.sendline("q")
    child.expect_exact("4 pair(s) labelled in all")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert Labels.load(tmp_path).pairs() == {pairs[0]: 1, pairs[1]: 0, pairs[2]: 1, pairs[3]: 0}


def test_undoing_the_answer_just_given_steps_back_to_it(tmp_path):
    pairs = plan()
    script = Script("y", "n", "u", "y", "q")
    session(tmp_path, script).run()
    assert Labels.load(tmp_path).pairs() == {pairs[0]: 1, pairs[1]: 1}
    assert script.text.count(f"[2/{len(pairs)}] row {pairs[1][0]} ") == 2  # asked again in its place
