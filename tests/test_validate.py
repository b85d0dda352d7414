"""Degradation and Cohen's d on hand-computed numbers; the harness end to end with a judge whose scores we set."""

import json
import math

import numpy as np
import pytest
from fake_engine import FakeEngine, chat_text, sample_of

from goalcover_hf import Scorer
from goalcover_hf.validate import cohens_d, relative_degradation, summarize, validate


def test_relative_degradation_hand_computed():
    assert relative_degradation([4, 4, 4], [3, 3, 3]) == pytest.approx(0.25)
    assert relative_degradation([5, 3], [4, 2]) == pytest.approx(0.25)  # (4 - 3) / 4
    # a pair missing a score on either side is left out of both means
    assert relative_degradation([4, 2, float("nan")], [2, float("nan"), 1]) == pytest.approx(0.5)
    assert math.isnan(relative_degradation([0, 0], [0, 0]))


def test_cohens_d_pooled_sd_hand_computed():
    # a: mean 4, var 1; b: mean 2, var 1  -> pooled sd 1, d 2
    assert cohens_d([3, 4, 5], [1, 2, 3]) == pytest.approx(2.0)
    # unequal sizes: a mean 0.3, sample var 0.01 (n=3); b mean 0.0, sample var 0.005 (n=2)
    # pooled = sqrt((2*0.01 + 1*0.005) / 3) = 0.0913 -> d = 0.3 / 0.0913 = 3.286
    assert cohens_d([0.2, 0.3, 0.4], [-0.05, 0.05]) == pytest.approx(0.3 / math.sqrt(0.025 / 3))
    assert math.isnan(cohens_d([1, 1], [1, 1]))


def test_summarize_groups_and_bootstrap():
    clean = {"a": np.full((4, 3), 4.0), "b": np.full((4, 3), 4.0)}
    x_a = np.array([[2, 4, 4], [2, 4, 4], [3, 4, 3], [3, 4, 3]], dtype=float)  # deg a,a = .375; a,b = 0; a,c = .125
    x_b = np.array([[4, 1, 4], [4, 1, 4], [4, 1, 4], [4, 1, 4]], dtype=float)  # deg b,b = .75; others 0
    s = summarize([(clean, {"a": x_a, "b": x_b}, ["a", "b", "c"])], bootstrap=200, seed=1)
    assert s.target == pytest.approx((0.375 + 0.75) / 2)
    assert s.nontarget == pytest.approx(0.125 / 4)
    assert (s.n_target, s.n_nontarget) == (2, 4)
    assert s.d == pytest.approx(cohens_d([0.375, 0.75], [0, 0.125, 0, 0]))
    assert s.target_ci[0] <= s.target <= s.target_ci[1]
    assert s.target_ci[0] >= 0.25 and s.target_ci[1] <= 0.875  # the bootstrap moves a's rows only between .25 and .5


@pytest.fixture
def code_rows():
    from datasets import Dataset

    rows = []
    for k in range(6):
        rows.append({
            "id": f"t{k}",
            "prompt": f'def f{k}(x: int) -> int:\n    """Return x plus {k}.\n    >>> f{k}(1)\n    {k + 1}\n    """\n',
            "canonical_solution": f"    return x + {k}\n",
        })
    rows.append({"id": "plain", "prompt": "def g(x):\n", "canonical_solution": "    return x\n"})
    return Dataset.from_list(rows)


NEEDS = {"Documents behaviour": '"""', "Gives examples": ">>>", "Implements": "return"}


def keyword_judge(chat, choices):
    """A judge that sees exactly what each capability needs: the test controls every score."""
    wants = next(mark for name, mark in NEEDS.items() if f"Capability: {name}\n" in chat_text(chat))
    return 5 if wants in sample_of(chat) else 1


@pytest.fixture
def judge():
    return FakeEngine(keyword_judge)


@pytest.fixture
def code_spec():
    from goalcover_hf.spec import GoalSpec

    return GoalSpec(goal="Write Python functions", subgoals=[
        {"id": "documents", "name": "Documents behaviour", "description": "Has a docstring."},
        {"id": "examples", "name": "Gives examples", "description": "Has doctest examples."},
        {"id": "implements", "name": "Implements", "description": "Has a working body."},
    ], meta={"corruption": {"documents": "strip_docstrings:prompt", "examples": "strip_doctests:prompt",
                            "implements": "stub_body:canonical_solution"}})


TEMPLATE = "{{ prompt }}{{ canonical_solution }}"


def test_validate_separates_a_perfect_judge(code_rows, code_spec, judge):
    scorer = Scorer(code_spec, engine=judge, mode="logprobs", explain="none", template=TEMPLATE)
    result = validate(code_rows, code_spec, scorer, n=4, seed=3, bootstrap=50, domain="code")
    by = {t.target: t for t in result.targets}
    assert by["documents"].applicable == 6 and len(by["documents"].ids) == 4  # "plain" has no docstring
    assert "plain" not in by["documents"].ids
    # removing the docstring also removes its examples: the judge sees that, and the table says so
    assert by["documents"].degradation == {"documents": 0.8, "examples": 0.8, "implements": 0.0}
    assert by["examples"].degradation == {"documents": 0.0, "examples": 0.8, "implements": 0.0}
    assert by["implements"].degradation["implements"] == pytest.approx(0.8)
    assert result.summary.target == pytest.approx(0.8)
    assert result.summary.nontarget == pytest.approx(0.8 / 6)
    md = result.to_markdown()
    assert "| code | 80.0%" in md and "Non-target group" in md
    json.dumps(result.to_dict())


def test_validate_errors_when_an_operator_changes_nothing(code_rows, code_spec, judge):
    scorer = Scorer(code_spec, engine=judge, template=TEMPLATE)
    with pytest.raises(ValueError, match="changed 0 of 7 rows"):
        validate(code_rows, code_spec, scorer, targets=["documents"], operators={"documents": "drop_citations:prompt"})
    with pytest.raises(KeyError, match="no subgoal 'nope'"):
        validate(code_rows, code_spec, scorer, operators={"nope": "blank:prompt"})


def test_validate_cli(code_rows, code_spec, tiny_model, judge, install_engine, tmp_path, capsys):
    from goalcover_hf.cli import main

    install_engine(judge)
    data = tmp_path / "code.jsonl"
    code_rows.to_json(str(data), lines=True)
    spec_path = tmp_path / "goal.yaml"
    code_spec.save(spec_path)
    out = tmp_path / "val"
    argv = ["validate", "--data", str(data), "--spec", str(spec_path), "--model", tiny_model, "--mode", "logprobs",
            "--template", "{{ prompt }}{{ canonical_solution }}", "--targets", "examples", "implements",
            "--operator", "implements=blank:canonical_solution", "--per-target", "3", "--bootstrap", "20", "-o", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "validation.json").read_text())
    assert [t["target"] for t in report["targets"]] == ["examples", "implements"]
    assert report["targets"][1]["operator"] == "blank:canonical_solution"
    assert "Cohen's d" in (out / "validation.md").read_text()
    assert main(argv) == 2  # an existing report is never overwritten silently
    assert "--overwrite" in capsys.readouterr().err
    assert main(argv[:-2] + ["--operator", "oops", "-o", str(tmp_path / "v2")]) == 2
    assert "expected SUBGOAL=VALUE" in capsys.readouterr().err


def test_result_round_trips_through_json(code_rows, code_spec, judge):
    from goalcover_hf.validate import ValidationResult, pooled

    scorer = Scorer(code_spec, engine=judge, template=TEMPLATE)
    result = validate(code_rows, code_spec, scorer, n=3, bootstrap=20, domain="code")
    back = ValidationResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back.to_markdown() == result.to_markdown()
    both = pooled([result, back], bootstrap=0)
    assert both.n_target == 6 and both.target == pytest.approx(result.summary.target)
