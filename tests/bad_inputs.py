"""Bad input, one case per kind, as data: what to run through the `goalcover` CLI and what the user must be told.

tests/test_bad_input.py checks every case; scripts/bad_input_table.py runs the same cases and prints the messages
users really get as the README's table. Kinds:

- ``error``: the command exits 2 with one ``error:`` line on stderr, and leaves no output behind;
- ``failed``: the command ran but nothing came of it: exit 1, one ``error:`` line, no output behind;
- ``row``: the run completes (a good row beside the bad one) and the bad row's ``gc_<id>_error`` says what is wrong
  with it;
- ``warning``: the run completes, and one ``warning:`` line says what was done about the input.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

GOOD_ROW = {"question": "How much ibuprofen?", "answer": "200 mg every 6 hours."}
GOOD_CHAT = {"messages": [{"role": "user", "content": GOOD_ROW["question"]},
                          {"role": "assistant", "content": GOOD_ROW["answer"]}]}
SPEC = """goal: A patient-facing assistant that answers medication questions
subgoals:
- {id: states_dose, name: States a dose, description: The answer gives a dose with units.}
- {id: warns_side_effects, name: Warns about side effects, description: The answer names a side effect.}
"""
FIRST_ERROR = "gc_states_dose_error"
BAD_ROW = 1  # row cases put a good row first, so that the run has something to show
EXIT = {"error": 2, "failed": 1, "row": 0, "warning": 0}
ERROR_LINE = re.compile(r"^(goalcover \w+: )?error: ")  # ours, or argparse's for an option refused on parsing


@dataclass
class Env:
    """A folder with a good spec, good data and the tiny model; bad inputs are made in it one at a time."""

    tmp: Path
    model: str
    _run: Path | None = field(default=None, repr=False)

    def __post_init__(self):
        (self.tmp / "goal.yaml").write_text(SPEC, encoding="utf-8")
        self.write_rows("ok.jsonl", [GOOD_ROW])

    @property
    def out(self) -> Path:
        """The output folder of the case."""
        return self.tmp / "out"

    def write_rows(self, name: str, rows: list) -> str:
        """Write ``rows`` as JSONL file ``name``; returns its path."""
        path = self.tmp / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return str(path)

    def write(self, name: str, content: bytes | str) -> str:
        """Write file ``name``; returns its path."""
        path = self.tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return str(path)

    def score(self, **options: str) -> list[str]:
        """``goalcover score`` on the good inputs, with ``options`` (``--data``, ``--spec``, ...) replaced."""
        argv = {"--data": str(self.tmp / "ok.jsonl"), "--spec": str(self.tmp / "goal.yaml"), "--model": self.model,
                "--mode": "logprobs", "--explain": "none", "--no-cache": None, "-o": str(self.out)}
        argv.update(options)
        return ["score"] + [x for kv in argv.items() for x in kv if x is not None]

    def run(self) -> str:
        """A finished run folder of the good inputs (scored once), for the commands that read one."""
        if self._run is None:
            self._run = self.tmp / "good_run"
            code, _, err = call(self.score(**{"-o": str(self._run)}))
            assert code == 0, err
        return str(self._run)


@dataclass(frozen=True)
class Case:
    """One bad input: what it is, how to run it in an :class:`Env`, what the user must be told, and its kind."""

    input: str  # what is wrong, as the table's first column says it
    argv: Callable[[Env], list[str]]
    expect: str  # part of the message the user must get
    kind: str = "error"


def call(argv: list[str]) -> tuple[int, str, str]:
    """Run ``goalcover ARGV`` in this process; return its exit code, stdout and stderr."""
    from goalcover_hf.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse refused an option
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def message(case: Case, env: Env) -> tuple[int, str, str]:
    """Run ``case``; return its exit code, the message the user gets, and the whole stderr."""
    code, _, err = call(case.argv(env))
    if case.kind == "row":
        from goalcover_hf.results import load_run

        ds = load_run(env.out).dataset if code == 0 else None
        return code, (ds[FIRST_ERROR][BAD_ROW] if ds is not None else ""), err
    starts = (lambda line: line.startswith("warning:")) if case.kind == "warning" else ERROR_LINE.match
    lines = err.splitlines()
    start = next((k for k, line in enumerate(lines) if starts(line)), None)
    if start is None:
        return code, "", err
    end = start + 1
    while end < len(lines) and lines[end].startswith((" ", "\t")):  # a message's indented detail lines
        end += 1
    return code, " ".join(line.strip() for line in lines[start:end]), err


# ---- inputs ------------------------------------------------------------------------------------------------------
def spec(text: str):
    """``score`` with a spec file holding ``text``."""
    return lambda env: env.score(**{"--spec": env.write("bad.yaml", text)})


def data(content: bytes | str, name: str = "bad.jsonl"):
    """``score`` with a data file holding ``content``."""
    return lambda env: env.score(**{"--data": env.write(name, content)})


def rows(*bad_rows: dict):
    """``score`` on a JSONL file of ``bad_rows``."""
    return lambda env: env.score(**{"--data": env.write_rows("bad.jsonl", list(bad_rows))})


def bad_row(row: dict, good: dict = GOOD_ROW):
    """Data of a good row and then ``row`` (at :data:`BAD_ROW`)."""
    return rows(good, row)


def truncated_gguf(env):
    """``score`` with a .gguf cut after its first 4 KiB."""
    from goalcover_hf.models import embedded_gguf_path

    with open(embedded_gguf_path(), "rb") as fh:
        return env.score(**{"--model": env.write("cut.gguf", fh.read(4096))})


def planted_code(env):
    """``score`` with a model folder that ships its own Python code."""
    from tiny_model import plant_remote_code

    folder = plant_remote_code(Path(env.model), env.tmp / "custom_code_model", env.tmp / "planted_code_ran")
    return env.score(**{"--model": str(folder)})


def existing_output(env):
    """``score`` into a folder the user already has a file in."""
    env.out.mkdir()
    (env.out / "mine.txt").write_text("keep me")
    return env.score()


def long_row(tokens_over: int):
    """A row longer than the tiny model's context by about ``tokens_over`` tokens."""

    def make(env):
        from goalcover_hf.scorer import Scorer
        from goalcover_hf.spec import GoalSpec

        counter = Scorer(GoalSpec.load(env.tmp / "goal.yaml"), env.model).counter
        unit = "take 200 mg every six hours with food; "
        answer = unit * ((counter.context + tokens_over) // len(counter.spans(unit)) + 1)
        return env.score(**{"--data": env.write_rows("long.jsonl", [{"question": "Dose?", "answer": answer}])})

    return make


def not_a_run(env):
    """``report`` on a folder that is not a run."""
    folder = env.tmp / "my_folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a run")
    return ["report", str(folder)]


def readme(content: str):
    """``card`` into a README.md holding ``content``."""
    return lambda env: ["card", env.run(), "--readme", env.write("README.md", content)]


MARKERS = "<!-- goalcover:start -->\n{}<!-- goalcover:end -->\n"
CASES = [
    # data
    Case("data file that does not exist", lambda env: env.score(**{"--data": str(env.tmp / "nope.jsonl")}),
         "nope.jsonl: no such file or folder"),
    Case("data file of unknown type", data(b"x", name="rows.xlsx"), "rows.xlsx: unknown file type '.xlsx'"),
    Case("empty data file", data(b""), "bad.jsonl: the file is empty"),
    Case("JSONL with only blank lines (empty dataset)", data(b"\n\n\n"), "bad.jsonl: the file holds only blank lines"),
    Case("non-UTF-8 bytes in JSONL", data(b'{"question": "q", "answer": "a"}\n{"question": "caf\xe9", "answer": "a"}\n'),
         "bad.jsonl, line 2: not valid UTF-8"),
    Case("JSONL line that is not JSON", data(b'{"question": "q", "answer": "a"}\n{"question": "q", "answer": \n'),
         "bad.jsonl, line 2: not valid JSON"),
    Case("JSONL line that is not an object", data(b'["q", "a"]\n'), "bad.jsonl, line 1: expected a JSON object"),
    Case("misspelled columns", rows({"questoin": "q", "answr": "a"}),
         "cannot tell how to read rows with columns ['answr', 'questoin']"),
    Case("missing column", rows({"question": "q"}), "cannot tell how to read rows with columns ['question']"),
    Case("non-text column", rows({"question": "q", "answer": 5}), "column 'answer' holds int64, not text"),
    Case("template naming a column the data lacks", lambda env: env.score(**{"--template": "{{ missing }}"}),
         "template uses column(s) ['missing'] that the data does not have"),
    Case("template that is not Jinja", lambda env: env.score(**{"--template": "{{ oops"}), "template is not valid Jinja"),
    # rows
    Case("text field that is null", bad_row({"question": "q", "answer": None}),
         "row 1: field 'answer' is missing or None", "row"),
    Case("text field that is empty", bad_row({"question": "q", "answer": " "}), "row 1: field 'answer' is empty", "row"),
    Case("chat row with an unknown role", bad_row({"messages": [{"role": "user", "content": "q"},
                                                               {"role": "bot", "content": "a"}]}, GOOD_CHAT),
         "row 1: messages[1].role 'bot' is unknown", "row"),
    Case("chat row with no assistant turn", bad_row({"messages": [{"role": "user", "content": "q"}]}, GOOD_CHAT),
         "row 1: messages has no assistant turn", "row"),
    Case("chat turn whose content parts hold no text (an image only)",
         bad_row({"messages": [{"role": "user", "content": [{"type": "image", "image": "leaflet.png"}]},
                               {"role": "assistant", "content": "Take 200 mg."}]}, GOOD_CHAT),
         "row 1: messages[0].content has no text part (parts: image)", "row"),
    Case("chat content given as parts, one an image",
         rows({"messages": [{"role": "user", "content": [{"type": "text", "text": GOOD_ROW["question"]},
                                                        {"type": "image", "image": "leaflet.png"}]},
                            {"role": "assistant", "content": [{"type": "text", "text": GOOD_ROW["answer"]}]}]}),
         "1 of 1 rows hold chat parts that are not text (1 image); the judge cannot see them and reads "
         "'[image part skipped]' in their place", "warning"),
    Case("every row unreadable (no pair scored)",
         data("".join(json.dumps({"question": "q", "answer": a}) + "\n" for a in (None, None, ""))),
         "every (row, subgoal) pair failed (6 of 6), so no run was written; the most common error (4 of 6): "
         "row 0: field 'answer' is missing or None", "failed"),
    Case("row of 1 MB", rows({"question": "q", "answer": ("Aspirin 81 mg daily. " * 50_000)[:1_000_000]}),
         "1 of 1 rows were longer than the judge's context", "warning"),
    Case("row just over the model's context", long_row(50), "1 of 1 rows were longer than the judge's context",
         "warning"),
    # spec
    Case("empty spec file", spec(""), "bad.yaml: spec file is empty"),
    Case("spec that is not YAML", spec("goal: [oops"), "bad.yaml: not valid YAML"),
    Case("spec with duplicate subgoal ids",
         spec("goal: g\nsubgoals:\n- {id: a, name: A, description: d}\n- {id: a, name: B, description: e}\n"),
         "duplicate id 'a'"),
    Case("spec with an empty description", spec("goal: g\nsubgoals:\n- {id: a, name: A, description: ''}\n"),
         "subgoals.0.description: Value error, must not be empty"),
    Case("spec with an unknown key", spec("goal: g\nsubgoals:\n- {id: a, name: A, description: d}\ncolor: red\n"),
         "color: unknown key"),
    Case("spec with more subgoals than a run holds",
         spec("goal: g\nsubgoals:\n" + "".join(f"- {{id: s{k}, name: S{k}, description: d{k}}}\n" for k in range(65))),
         "subgoals: 65 subgoals"),
    # options
    Case("threshold out of range", lambda env: env.score(**{"--threshold": "9"}),
         "argument --threshold: must be within 1..5, got 9"),
    Case("row limit of 0", lambda env: env.score(**{"--limit": "0"}), "argument --limit: must be at least 1, got 0"),
    Case("negative row limit", lambda env: env.score(**{"--limit": "-3"}),
         "argument --limit: must be at least 1, got -3"),
    Case("coverage target out of range (report)", lambda env: ["report", env.run(), "--min-coverage", "1.5"],
         "argument --min-coverage: must be within 0..1, got 1.5"),
    Case("context too small for the prompt", lambda env: env.score(**{"--max-context-tokens": "200"}),
         "context (200 tokens) leaves 0 tokens for a sample"),
    Case("pair cache file that is not a database",
         lambda env: [a for a in env.score(**{"--cache": env.write("p.sqlite", b"not a database" * 100)})
                      if a != "--no-cache"],
         "p.sqlite: cannot open the pair cache"),
    # model
    Case("model path that does not exist", lambda env: env.score(**{"--model": str(env.tmp / "no_model")}),
         "no_model: no such model folder or file"),
    Case("model folder without config.json",
         lambda env: (env.tmp / "empty_dir").mkdir() or env.score(**{"--model": str(env.tmp / "empty_dir")}),
         "empty_dir: not a model folder (no config.json)"),
    Case("model whose code is not trusted", planted_code, "pass --trust-remote-code"),
    Case("GGUF file that does not exist", lambda env: env.score(**{"--model": str(env.tmp / "m.gguf")}),
         "m.gguf: GGUF file not found"),
    Case("truncated GGUF file", truncated_gguf, "cut.gguf: cannot read this GGUF file"),
    # output
    Case("output folder that exists", existing_output, "out exists; choose another output or pass --overwrite to replace it"),
    Case("run folder that is not one (report)", not_a_run,
         "not a goalcover run folder (missing dataset)"),
    # card and Hub
    Case("annotations config named like the data's own (push)",
         lambda env: ["push", env.run(), "--repo-id", "me/meds", "--config-name", "default"],
         "--config-name 'default': choose a name of its own"),
    Case("README with a broken YAML header", readme("---\nlicense: [mit\n---\nbody\n"),
         "README.md: the YAML header is not valid YAML"),
    Case("README whose card end marker was deleted", readme("# t\n<!-- goalcover:start -->\nhalf deleted\n"),
         "README.md: goalcover's markers are damaged (1 '<!-- goalcover:start -->', 0"),
    Case("README with the card section twice", readme("# t\n" + MARKERS.format("one\n") + MARKERS.format("two\n")),
         "README.md: goalcover's markers are damaged (2 '<!-- goalcover:start -->', 2"),
]
