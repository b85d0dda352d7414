import json

import pytest

from goalcover_hf.cli import build_parser, main
from goalcover_hf.results import load_run

ROWS = [{"id": f"r{k}", "question": f"Question {k}?", "answer": f"Answer {k}: take 200 mg."} for k in range(3)]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


@pytest.fixture
def spec_file(tmp_path, spec):
    return spec.save(tmp_path / "goal.yaml")


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("decompose", "score", "report", "card"):
        assert command in out
    assert set(build_parser()._subparsers._group_actions[0].choices) >= {"decompose", "score", "report", "card"}


def test_score_report_card(tmp_path, tiny_model, data, spec_file, capsys):
    out = tmp_path / "run"
    assert main(["score", "--data", str(data), "--spec", str(spec_file), "--model", tiny_model, "--mode", "logprobs",
                 "--explain", "none", "-o", str(out), "--jsonl", str(tmp_path / "rows.out.jsonl")]) == 0
    run = load_run(out)
    assert len(run.dataset) == 3 and run.provenance["mode"] == "logprobs"
    assert run.provenance["model"].startswith("tiny_model")
    assert len((tmp_path / "rows.out.jsonl").read_text().splitlines()) == 3

    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "states_dose" in printed and "warns_side_effects" in printed and "3 rows" in printed

    assert main(["report", str(out), "--json"]) == 0
    data_out = json.loads(capsys.readouterr().out)
    assert data_out["coverage"]["rows"] == 3 and len(data_out["coverage"]["subgoals"]) == 2

    readme = tmp_path / "card" / "README.md"
    assert main(["card", str(out), "--readme", str(readme)]) == 0
    assert "## Capability coverage" in readme.read_text() and (readme.parent / "goalcover_coverage.png").exists()


def test_score_refuses_existing_output(tmp_path, tiny_model, data, spec_file, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["score", "--data", str(data), "--spec", str(spec_file), "--model", tiny_model, "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert (out / "mine.txt").read_text() == "keep"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "missing.jsonl"], "missing.jsonl: no such file"),
        (["--spec", "missing.yaml"], "missing.yaml: spec file not found"),
        (["--model", "./no-model-here"], "no-model-here: no such model folder"),
    ],
)
def test_score_errors_are_one_clear_line(tmp_path, data, spec_file, tiny_model, capsys, args, message):
    argv = {"--data": str(data), "--spec": str(spec_file), "--model": tiny_model, "-o": str(tmp_path / "o")}
    argv.update(dict(zip(args[::2], args[1::2])))
    assert main(["score", *[x for kv in argv.items() for x in kv]]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_unreadable_layout_names_columns(tmp_path, tiny_model, spec_file, capsys):
    path = tmp_path / "odd.jsonl"
    path.write_text('{"foo": "a", "bar": "b"}\n')
    assert main(["score", "--data", str(path), "--spec", str(spec_file), "--model", tiny_model,
                 "-o", str(tmp_path / "o")]) == 2
    assert "columns ['bar', 'foo']" in capsys.readouterr().err


def test_report_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a goalcover run folder" in capsys.readouterr().err


def test_commands_on_a_run_judge_with_the_engine_that_scored_it(tmp_path, spec):
    """synthesize/validate re-score new rows: a run scored by a server must be re-scored by that server, not by a
    transformers model of the same name."""
    from fake_openai import ScriptedServer

    from goalcover_hf.cli import _scorer_for_run

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"question": f"Dose {k}?", "answer": f"Take {k}00 mg."}) + "\n"
                            for k in range(2)), encoding="utf-8")
    spec_file = str(spec.save(tmp_path / "goal.yaml"))
    server = ScriptedServer()
    try:
        assert main(["score", "--data", str(data), "--spec", spec_file, "--engine", "openai", "--base-url",
                     server.base_url, "--mode", "logprobs", "--explain", "none", "--no-cache",
                     "-o", str(tmp_path / "run")]) == 0
        run = load_run(tmp_path / "run")
        args = build_parser().parse_args(["synthesize", str(tmp_path / "run"), "-o", str(tmp_path / "synth")])
        scorer = _scorer_for_run(run, args)
        assert scorer.config.engine == "openai"
        assert dict(scorer.config.engine_options)["base_url"] == server.base_url
        before = len(server.requests)
        judged = scorer.judge_texts(["Take 200 mg twice a day."])
        assert len(server.requests) > before and judged[0][0].score == 3  # the scripted server's argmax digit
    finally:
        server.close()
