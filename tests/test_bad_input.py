"""Bad input, one case per kind (tests/bad_inputs.py): each gets a message naming the row, field or file and saying
what to do, and none leaves output behind that a later run could take for finished."""

import pytest
from bad_inputs import CASES, EXIT, FIRST_ERROR, GOOD_ROW, MARKERS, Env, call, message

from goalcover_hf.results import load_run


@pytest.fixture
def env(tmp_path, tiny_model):
    return Env(tmp_path, tiny_model)


def test_at_least_twenty_kinds():
    assert len(CASES) >= 20 and len({c.input for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.input for c in CASES])
def test_bad_input_gets_a_clear_message(env, case):
    code, text, err = message(case, env)
    assert "Traceback" not in err
    assert case.expect in text, err
    assert code == EXIT[case.kind], err
    if case.kind in ("error", "failed"):
        if case.input == "output folder that exists":  # refused: the user's folder is left as it was
            assert [p.name for p in env.out.iterdir()] == ["mine.txt"]
        else:
            assert not env.out.exists()
        assert not env.out.with_name("out.partial").exists()
    else:  # the run finished with every row in it (row cases: a good row and the bad one)
        assert load_run(env.out).dataset.num_rows == (2 if case.kind == "row" else 1)


def test_rows_that_cannot_be_rendered_get_per_row_errors(env):
    data = env.write_rows("mixed.jsonl", [GOOD_ROW, {"question": "q", "answer": None}, {"question": "q", "answer": ""}])
    code, _, err = call(env.score(**{"--data": data}))
    assert code == 0, err
    # the run goes on and says how many pairs have no score, and the most common reason
    assert ("warning: 4 of 6 (row, subgoal) pairs have no score; the most common error (2 of 4): row 1: field "
            "'answer' is missing or None") in err
    ds = load_run(env.out).dataset
    assert ds[FIRST_ERROR][1] == "row 1: field 'answer' is missing or None"
    assert ds[FIRST_ERROR][2] == "row 2: field 'answer' is empty"
    assert ds["gc_states_dose_score"][0] is not None and ds[FIRST_ERROR][0] is None


def test_card_on_broken_readme_leaves_it_untouched(env):
    readme = env.tmp / "README.md"
    run = env.run()
    damaged = ("---\nlicense: [mit\n---\nbody\n", "# t\n<!-- goalcover:start -->\nhalf deleted\n",
               "# t\n" + MARKERS.format("one\n") + MARKERS.format("two\n"))
    for broken in damaged:
        readme.write_text(broken, encoding="utf-8")
        code, _, err = call(["card", run, "--readme", str(readme)])
        assert code == 2 and str(readme) in err
        assert readme.read_text(encoding="utf-8") == broken
        assert not (env.tmp / "goalcover_coverage.png").exists()
