import dataclasses
import json
import logging
import re

import pytest

from goalcover_hf.cli import build_parser, main
from goalcover_hf.errors import GoalcoverError
from goalcover_hf.results import Run, load_run

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


class Captured(Exception):
    """Raised by a stand-in to stop a command once it has shown what it was given (not a user error: it propagates)."""


def capture(monkeypatch, module, name, seen: dict):
    """Replace ``module.name`` by a function that records its arguments in ``seen`` and raises :class:`Captured`."""

    def stand_in(*args, **kwargs):
        seen.update(args=args, **kwargs)
        raise Captured

    monkeypatch.setattr(module, name, stand_in)


@pytest.fixture
def server_run(tmp_path, spec, data):
    """A run scored through the scripted server with settings that differ from every default; yields (run folder,
    the scorer that produced it, the server)."""
    from fake_openai import ScriptedServer

    from goalcover_hf.scorer import Scorer

    server = ScriptedServer()
    template = "Q: {{ question }}\nA: {{ answer }}"
    try:
        argv = ["score", "--data", str(data), "--spec", str(spec.save(tmp_path / "goal.yaml")), "--engine", "openai",
                "--base-url", server.base_url, "--max-context-tokens", "1500", "--max-in-flight", "3",
                "--engine-arg", "retries=1", "--mode", "logprobs", "--explain", "none", "--threshold", "3",
                "--batch-size", "2", "--template", template, "--no-cache", "-o", str(tmp_path / "run")]
        assert main(argv) == 0
        original = Scorer(spec, engine="openai", base_url=server.base_url, mode="logprobs", explain="none",
                          threshold=3, batch_size=2, template=template,
                          engine_options={"max_context_tokens": 1500, "max_in_flight": 3, "retries": 1})
        yield tmp_path / "run", original, server
    finally:
        server.close()


def test_a_run_rebuilds_exactly_the_scorer_that_produced_it(server_run):
    path, original, server = server_run
    run = Run.load(path)
    rebuilt = run.scorer()
    assert rebuilt.config == original.config
    assert dict(rebuilt.config.engine_options)["max_context_tokens"] == 1500 and run.threshold == 3
    before = len(server.requests)
    judged = rebuilt.judge_texts(["Take 200 mg twice a day."])
    assert len(server.requests) > before and judged[0][0].score == 3  # the server judged it, not a local model
    # an override for the run's own engine adds to the run's options: the server address stays
    bigger = run.scorer(engine_options={"max_in_flight": 9}, batch_size=4).config
    assert dict(bigger.engine_options)["base_url"] == server.base_url
    assert dict(bigger.engine_options)["max_in_flight"] == 9 and bigger.batch_size == 4


def test_synthesize_gaps_and_validate_judge_with_the_run_scorer(server_run, monkeypatch):
    from goalcover_hf import engines, synthesize, validate

    path, original, server = server_run
    no_explanations = dataclasses.replace(original.config, explain="none")
    seen = {}
    capture(monkeypatch, synthesize, "synthesize", seen)
    with pytest.raises(Captured):
        main(["synthesize", str(path), "-o", str(path.parent / "synth")])
    assert seen["scorer"].config == no_explanations

    capture(monkeypatch, validate, "validate", seen)
    with pytest.raises(Captured):
        main(["validate", "--run", str(path), "--per-target", "2", "-o", str(path.parent / "val")])
    assert seen["args"][2].config == no_explanations and len(seen["args"][0]) == len(ROWS)  # the run's data

    capture(monkeypatch, engines, "get_engine", seen)
    with pytest.raises(Captured):
        main(["gaps", str(path)])
    assert seen["args"] == (original.config.model, "openai", original.config.engine_options)

    # the user's flags override the run's settings; the rest stay
    capture(monkeypatch, synthesize, "synthesize", seen)
    with pytest.raises(Captured):
        main(["synthesize", str(path), "--batch-size", "5", "--max-in-flight", "7", "-o", str(path.parent / "s")])
    config = seen["scorer"].config
    assert config.batch_size == 5 and dict(config.engine_options)["max_in_flight"] == 7
    assert dataclasses.replace(config, batch_size=2, engine_options=original.config.engine_options) == no_explanations


def test_validate_defaults_to_the_score_defaults_and_takes_method(tmp_path, tiny_model, data, spec_file, monkeypatch):
    from goalcover_hf import validate
    from goalcover_hf.judging import DEFAULT_METHOD
    from goalcover_hf.scorer import DEFAULT_MODE

    seen = {}
    capture(monkeypatch, validate, "validate", seen)
    argv = ["validate", "--data", str(data), "--spec", str(spec_file), "--model", tiny_model, "-o", str(tmp_path / "v")]
    with pytest.raises(Captured):
        main(argv)
    config = seen["args"][2].config
    assert (config.mode, config.method) == (DEFAULT_MODE, DEFAULT_METHOD)
    with pytest.raises(Captured):
        main(argv + ["--method", "score"])
    assert seen["args"][2].config.method == "score"


def test_user_errors_print_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    from goalcover_hf.cli import report_commands

    def refuse(args):
        raise GoalcoverError("run.json: the threshold is missing")

    monkeypatch.setattr(report_commands, "cmd_report", refuse)
    assert main(["report", "somewhere"]) == 2
    assert capsys.readouterr().err == "error: run.json: the threshold is missing\n"

    def bug(args):
        return {}["missing"]

    monkeypatch.setattr(report_commands, "cmd_report", bug)
    with pytest.raises(KeyError):  # a programming error is not dressed up as the user's
        main(["report", "somewhere"])


def test_version(capsys):
    from goalcover_hf import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"goalcover {__version__}"


def test_quiet_and_verbose(tmp_path, capsys):
    import datasets
    from fake_run import run_folder

    run = run_folder(tmp_path / "run")
    root = logging.getLogger("goalcover_hf")
    try:
        assert main(["report", str(run)]) == 0
        assert "no themes yet" in capsys.readouterr().err
        assert main(["report", str(run), "-q"]) == 0
        captured = capsys.readouterr()
        assert captured.err == "" and "states_dose" in captured.out  # results stay, notes go
        assert root.level == logging.WARNING and not datasets.is_progress_bar_enabled()
        assert main(["report", str(run), "-v"]) == 0
        assert root.level == logging.DEBUG
    finally:
        datasets.enable_progress_bars()
        root.setLevel(logging.INFO)


def test_limit_below_one_is_refused_before_anything_loads(tmp_path, data, spec_file, capsys):
    for limit in ("0", "-3"):
        with pytest.raises(SystemExit) as exit_:
            main(["score", "--data", str(data), "--spec", str(spec_file), "--model", str(tmp_path / "nothing"),
                  "--limit", limit, "-o", str(tmp_path / "o")])
        assert exit_.value.code == 2
        assert f"argument --limit: must be at least 1, got {limit}" in capsys.readouterr().err


# ---- one CLI: a flag means one thing everywhere -------------------------------------------------------------------
def subcommands():
    return build_parser()._subparsers._group_actions[0].choices


def flags(command: str) -> set[str]:
    return set(subcommands()[command]._option_string_actions)


MODEL_COMMANDS = ("decompose", "score", "gaps", "synthesize", "validate")


def test_every_command_that_loads_a_model_has_the_same_engine_flags():
    from goalcover_hf.cli.engine_flags import registry

    options, _ = registry()
    engine_flags = {"--model", "--engine", "--engine-arg"} | {"--" + n.replace("_", "-") for n in options}
    assert {"--base-url", "--max-context-tokens", "--trust-remote-code", "--max-in-flight"} <= engine_flags
    for command in MODEL_COMMANDS:
        assert engine_flags <= flags(command), command
    for command in ("report", "card", "push", "filter", "cache"):
        assert not flags(command) & (engine_flags - {"--model"}), command


def test_flags_keep_one_meaning():
    for command, parser in subcommands().items():
        names = flags(command)
        assert {"-v", "--verbose", "-q", "--quiet"} <= names, command
        assert not names & {"--n", "--force"}, command
        if "--examples" in names:
            assert command == "decompose"  # DATA whose rows ground the proposal; synthesize has --style-examples
        if "--output" in names and command != "gaps":
            assert "--overwrite" in names, command
        if "--min" in names:
            assert command == "filter"  # ID=SCORE levels; decompose has --min-subgoals
    assert "--examples" in flags("decompose") and "--style-examples" in flags("synthesize")
    assert {"--rows-shown", "--min-subgoals", "--max-subgoals", "--overwrite"} <= flags("decompose")
    assert "--per-subgoal" in flags("synthesize") and "--per-target" in flags("validate")
    for command in ("card", "push"):
        assert "--card-template" in flags(command) and "--template" not in flags(command)
    for command in ("score", "synthesize", "validate", "decompose"):
        assert "--template" in flags(command)  # the row template, on every command that reads rows
    assert "--method" in flags("validate")


# ---- engine flags come from the engine registry ------------------------------------------------------------------
@pytest.fixture
def toy_engine(monkeypatch):
    """An engine 'toy' with an option of its own, registered for this test only."""
    from goalcover_hf.engines import Engine, EngineOption, register_engine, registry

    monkeypatch.setattr(registry, "_ENGINES", dict(registry._ENGINES))

    @register_engine("toy")
    class ToyEngine(Engine):
        options = (EngineOption("toy_knob", int, "how hard the toy engine tries", default=2),)

    return ToyEngine


def test_a_registered_engine_option_gets_a_flag(toy_engine, capsys):
    for command in MODEL_COMMANDS:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert "--toy-knob TOY_KNOB how hard the toy engine tries (default 2; engines: toy)" in out, command
        assert re.search(r"--engine \{transformers,llamacpp,openai(,\w+)*,toy(,\w+)*\}", out), command


def options_of(engine: str) -> str:
    from goalcover_hf.engines import all_options

    return ", ".join(sorted(name for name, (_, takers) in all_options().items() if engine in takers))


@pytest.mark.parametrize("argv, message", [
    (["--engine-arg", "toy_knob=3"], "engine 'transformers' has no option 'toy_knob' (its options: {transformers})"),
    (["--engine", "toy", "--engine-arg", "toy_knob=hard"], "toy_knob takes a int, not 'hard'"),
    (["--engine", "toy", "--engine-arg", "knob"], "engine 'toy' has no option 'knob' (its options: {toy})"),
    (["--base-url", "http://127.0.0.1:9/v1"], "--base-url is an option of engine openai, not of 'transformers'"),
    (["--engine", "toy", "--threads", "2"], "--threads is an option of engines transformers, llamacpp, not of 'toy'"),
])
def test_engine_options_are_checked_against_the_engine(toy_engine, capsys, tmp_path, data, spec_file, argv, message):
    assert main(["score", "--data", str(data), "--spec", str(spec_file), *argv, "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message.format(transformers=options_of("transformers"), toy=options_of("toy")) in err, err
    assert not (tmp_path / "o").exists()


def test_engine_options_the_user_set_are_passed_on_typed(toy_engine):
    from goalcover_hf.cli.options import scorer_overrides

    args = build_parser().parse_args(["score", "--data", "d", "--spec", "s", "-o", "o", "--engine", "toy",
                                      "--toy-knob", "4", "--max-context-tokens", "900", "--batch-size", "3"])
    assert scorer_overrides(args) == {"engine": "toy", "batch_size": 3,
                                      "engine_options": {"toy_knob": 4, "max_context_tokens": 900}}
    args = build_parser().parse_args(["score", "--data", "d", "--spec", "s", "-o", "o", "--engine-arg",
                                      "trust_remote_code=yes", "--engine-arg", "threads=2"])
    assert scorer_overrides(args)["engine_options"] == {"trust_remote_code": True, "threads": 2}


# ---- the run folder ----------------------------------------------------------------------------------------------
def test_run_folder_round_trip_overwrite_and_derive(tmp_path, spec):
    from datasets import Dataset

    from goalcover_hf.errors import OutputExistsError

    ds = Dataset.from_dict({"text": ["a", "b"], "gc_states_dose_score": [4, 2]})
    provenance = {"model": "judge", "scorer": {"model": "judge", "engine": "transformers", "engine_options": {},
                                               "threshold": 3}}
    path = Run(ds, spec, provenance).save(tmp_path / "run")
    run = Run.load(path)
    assert run.dataset["text"] == ["a", "b"] and run.spec == spec and run.provenance == provenance
    assert run.threshold == 3 and run.path == path
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        run.save(path)
    kept = run.derive(ds.select([0]), filter={"rule": "x"})
    assert kept.path is None and kept.provenance["source_run"] == str(path) and kept.provenance["filter"]
    kept.save(path, overwrite=True)
    assert Run.load(path).dataset["text"] == ["a"] and not path.with_name("run.partial").exists()


def test_run_folder_that_is_not_one(tmp_path):
    from goalcover_hf.results import ResultsError

    with pytest.raises(ResultsError, match="not a goalcover run folder"):
        Run.load(tmp_path)
    for part in ("dataset", "goal.yaml"):
        (tmp_path / part).mkdir()
    (tmp_path / "run.json").write_text("{oops")
    with pytest.raises(ResultsError, match="run.json: not valid JSON"):
        Run.load(tmp_path)


def test_a_run_that_does_not_record_its_scorer_is_refused_by_name(tmp_path):
    from fake_run import run_folder

    run = Run.load(run_folder(tmp_path / "run"))
    assert run.scorer().config.engine == "fake" and run.scorer(model="other-judge").config.model == "other-judge"
    run.provenance.pop("scorer")
    with pytest.raises(GoalcoverError, match="does not record the scorer that produced the run"):
        run.scorer()
    assert run.threshold == 4


def test_score_refuses_an_existing_jsonl_before_scoring(tmp_path, data, spec_file, capsys):
    rows = tmp_path / "rows.out.jsonl"
    rows.write_text("mine\n")
    assert main(["score", "--data", str(data), "--spec", str(spec_file), "--model", str(tmp_path / "no-model"),
                 "-o", str(tmp_path / "run"), "--jsonl", str(rows)]) == 2
    assert "rows.out.jsonl exists" in capsys.readouterr().err
    assert rows.read_text() == "mine\n" and not (tmp_path / "run").exists()


def test_score_explains_a_budgeted_sample_of_low_pairs_by_default(tmp_path, tiny_model, data, spec_file, spec):
    out = tmp_path / "run"
    assert main(["score", "--data", str(data), "--spec", str(spec_file), "--model", tiny_model, "--threshold", "5",
                 "--explain-budget", "1", "--no-cache", "-o", str(out)]) == 0
    run = Run.load(out)
    assert run.provenance["scorer"]["explain"] == "sample" and run.provenance["explain_budget"] == 1
    for sub in spec.subgoals:
        scores = run.dataset[f"gc_{sub.id}_score"]
        explained = [e for e in run.dataset[f"gc_{sub.id}_explanation"] if e is not None]
        assert len(explained) == min(1, sum(1 for s in scores if s is not None and s < 5)), sub.id


def test_trust_commands_and_flags_are_registered(capsys):
    assert {"label", "check"} <= set(subcommands())
    assert {"--per-subgoal", "--seed", "--import", "--id-column"} <= flags("label")
    assert {"--half-width", "--json", "--threshold", "--min-coverage", "--min-samples"} <= flags("check")
    assert {"--sample", "--seed"} <= flags("score")
    with pytest.raises(SystemExit):
        main(["check", "run", "--half-width", "2"])
    assert "argument --half-width: must be within 0..1, got 2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["score", "--data", "d", "--spec", "s", "-o", "o", "--sample", "0"])
    assert "argument --sample: must be at least 1, got 0" in capsys.readouterr().err


def test_label_and_check_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    for command in ("label", "check"):
        assert main([command, str(tmp_path)]) == 2
        assert "not a goalcover run folder" in capsys.readouterr().err
