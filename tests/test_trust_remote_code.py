"""A model folder's own Python code runs only when the user passes --trust-remote-code (Scorer(trust_remote_code=True))."""

import json
from pathlib import Path

import pytest
from tiny_model import plant_remote_code

from goalcover_hf.cli import main
from goalcover_hf.errors import GoalcoverError
from goalcover_hf.scorer import Scorer


@pytest.fixture
def planted(tmp_path, tiny_model, monkeypatch):
    import transformers.dynamic_module_utils as dynamic

    # Trusted code is copied into transformers' modules cache: keep that inside the test's folder.
    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "hf_modules"))
    marker = tmp_path / "planted_code_ran"
    # A name of its own per test: Python caches an imported module by name for the whole session.
    return plant_remote_code(Path(tiny_model), tmp_path / f"planted_{tmp_path.name}", marker), marker


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"question": "How much?", "answer": "200 mg."}) + "\n", encoding="utf-8")
    return path


def test_api_refuses_the_code_by_default(planted, spec):
    folder, marker = planted
    scorer = Scorer(spec, str(folder), mode="logprobs", explain="none", cache=False)
    with pytest.raises(ValueError, match="--trust-remote-code") as err:
        scorer.judge_texts(["QUESTION: q\n\nANSWER: a"])
    assert "auto_map" in str(err.value) and folder.name in str(err.value)
    assert isinstance(err.value, GoalcoverError)  # the user's to decide: the CLI prints it, no traceback
    assert not marker.exists()


def test_cli_refuses_the_code_by_default(planted, spec, data, tmp_path, capsys):
    folder, marker = planted
    out = tmp_path / "run"
    code = main(["score", "--data", str(data), "--spec", str(spec.save(tmp_path / "goal.yaml")), "--model",
                 str(folder), "--mode", "logprobs", "--explain", "none", "--no-cache", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--trust-remote-code" in err and "Traceback" not in err
    assert not marker.exists()
    assert not out.exists() and not out.with_name("run.partial").exists()


def test_the_flag_reaches_from_pretrained_and_is_recorded(planted, spec, data, tmp_path, capsys):
    folder, marker = planted
    out = tmp_path / "run"
    code = main(["score", "--data", str(data), "--spec", str(spec.save(tmp_path / "goal.yaml")), "--model",
                 str(folder), "--mode", "logprobs", "--explain", "none", "--no-cache", "--trust-remote-code",
                 "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert marker.exists()  # the planted classes were loaded: the flag got through to transformers
    run = json.loads((out / "run.json").read_text())
    assert run["trust_remote_code"] is True
    assert json.loads((out / "dataset" / "state.json").read_text())  # a complete run folder


def test_default_provenance_says_no_remote_code(tiny_model, spec):
    assert Scorer(spec, tiny_model).provenance()["trust_remote_code"] is False
    with pytest.raises(ValueError, match="does not take trust_remote_code"):
        Scorer(spec, "embedded", engine="llamacpp", trust_remote_code=True)
