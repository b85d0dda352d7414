"""Bad input, one case per kind: each gets an error naming the row, field or file, and leaves nothing behind."""

import json
from pathlib import Path

import pytest

from goalcover_hf.cli import main

GOOD_ROW = {"question": "How much?", "answer": "200 mg."}


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def env(tmp_path, spec, tiny_model):
    return {"tmp": tmp_path, "spec": str(spec.save(tmp_path / "goal.yaml")), "model": tiny_model,
            "data": str(write_jsonl(tmp_path / "ok.jsonl", [GOOD_ROW]))}


def spec_case(text):
    def make(env):
        path = env["tmp"] / "bad.yaml"
        path.write_text(text, encoding="utf-8")
        return {"--spec": str(path)}
    return make


def data_case(content: bytes, name="bad.jsonl"):
    def make(env):
        path = env["tmp"] / name
        path.write_bytes(content)
        return {"--data": str(path)}
    return make


def truncated_gguf(env):
    from goalcover_hf.models import embedded_gguf_path

    path = env["tmp"] / "cut.gguf"
    path.write_bytes(embedded_gguf_path().read_bytes()[:4096])
    return {"--model": str(path)}


CASES = {
    "spec file empty": (spec_case(""), "bad.yaml: spec file is empty"),
    "spec not YAML": (spec_case("goal: [oops"), "bad.yaml: not valid YAML"),
    "spec duplicate ids": (spec_case("goal: g\nsubgoals:\n- {id: a, name: A, description: d}\n- {id: a, name: B, description: e}\n"),
                           "duplicate id 'a'"),
    "spec empty description": (spec_case("goal: g\nsubgoals:\n- {id: a, name: A, description: ''}\n"),
                               "subgoals.0.description: Value error, must not be empty"),
    "spec unknown key": (spec_case("goal: g\nsubgoals:\n- {id: a, name: A, description: d}\ncolor: red\n"),
                         "color: unknown key"),
    "spec too many subgoals": (spec_case("goal: g\nsubgoals:\n" + "".join(
        f"- {{id: s{k}, name: S{k}, description: d{k}}}\n" for k in range(65))), "subgoals: 65 subgoals"),
    "data file missing": (lambda env: {"--data": str(env["tmp"] / "nope.jsonl")}, "nope.jsonl: no such file or folder"),
    "data not UTF-8": (data_case(b'{"question": "q", "answer": "a"}\n{"question": "caf\xe9", "answer": "a"}\n'),
                       "bad.jsonl, line 2: not valid UTF-8"),
    "data not JSON": (data_case(b'{"question": "q", "answer": "a"}\n{"question": "q", "answer": \n'),
                      "bad.jsonl, line 2: not valid JSON"),
    "data not an object per line": (data_case(b'["q", "a"]\n'), "bad.jsonl, line 1: expected a JSON object"),
    "data empty": (data_case(b""), "bad.jsonl: the file is empty"),
    "data unknown file type": (data_case(b"x", name="rows.xlsx"), "rows.xlsx: unknown file type '.xlsx'"),
    "data misspelled columns": (data_case(b'{"questoin": "q", "answr": "a"}\n'),
                                "bad.jsonl: cannot tell how to read rows with columns ['answr', 'questoin']"),
    "template with unknown column": (lambda env: {"--template": "{{ missing }}"}, "template uses column(s) ['missing'] that the data does not have"),
    "template not Jinja": (lambda env: {"--template": "{{ oops"}, "template is not valid Jinja"),
    "threshold out of range": (lambda env: {"--threshold": "9"}, "threshold must be within 1..5"),
    "model path missing": (lambda env: {"--model": str(env["tmp"] / "no_model")}, "no_model: no such model folder"),
    "model folder without config": (lambda env: (env["tmp"] / "empty_dir").mkdir() or {"--model": str(env["tmp"] / "empty_dir")},
                                    "empty_dir: not a model folder (no config.json)"),
    "gguf missing": (lambda env: {"--model": str(env["tmp"] / "m.gguf")}, "m.gguf: GGUF file not found"),
    "gguf truncated": (truncated_gguf, "cut.gguf: cannot read this GGUF file"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_score_bad_input(env, capsys, name):
    make, message = CASES[name]
    argv = {"--data": env["data"], "--spec": env["spec"], "--model": env["model"], "-o": str(env["tmp"] / "out")}
    argv.update(make(env))
    code = main(["score", *[x for kv in argv.items() for x in kv]])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    assert "Traceback" not in err
    assert not (env["tmp"] / "out").exists() and not (env["tmp"] / "out.partial").exists()


def test_rows_that_cannot_be_rendered_get_per_row_errors(env, capsys):
    rows = [GOOD_ROW, {"question": "q", "answer": None}, {"question": "q", "answer": ""}, {"question": "q", "answer": 5}]
    data = write_jsonl(env["tmp"] / "mixed.jsonl", rows[:3])
    out = env["tmp"] / "run"
    assert main(["score", "--data", str(data), "--spec", env["spec"], "--model", env["model"], "--mode", "logprobs",
                 "--explain", "none", "-o", str(out)]) == 0
    from goalcover_hf.results import load_run

    ds = load_run(out).dataset
    assert ds["gc_states_dose_error"][1] == "row 1: field 'answer' is missing or None"
    assert ds["gc_states_dose_error"][2] == "row 2: field 'answer' is empty"
    assert ds["gc_states_dose_score"][0] is not None


def test_card_on_broken_readme_leaves_it_untouched(env, capsys):
    out = env["tmp"] / "run"
    assert main(["score", "--data", env["data"], "--spec", env["spec"], "--model", env["model"], "--mode", "logprobs",
                 "--explain", "none", "-o", str(out)]) == 0
    readme = env["tmp"] / "README.md"
    for broken in ("---\nlicense: [mit\n---\nbody\n", "# t\n<!-- goalcover:start -->\nhalf deleted\n"):
        readme.write_text(broken, encoding="utf-8")
        assert main(["card", str(out), "--readme", str(readme)]) == 2
        assert str(readme) in capsys.readouterr().err
        assert readme.read_text(encoding="utf-8") == broken
        assert not (env["tmp"] / "goalcover_coverage.png").exists()
