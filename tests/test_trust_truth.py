import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import trust_truth as tt  # noqa: E402

# (decider, code, truth): hand-written snippets, the tricky ones marked
CASES = [
    ("type_hints", "def f(x: int):\n    return x\n", 1),
    ("type_hints", "def f(x) -> int:\n    return x\n", 1),  # the return only
    ("type_hints", "def f(*args: int, **kw: str):\n    pass\n", 1),
    ("type_hints", "def outer():\n    def inner(y: float):\n        return y\n    return inner\n", 1),  # nested
    ("type_hints", "async def f(x: int):\n    return x\n", 1),
    ("type_hints", "def f(x):\n    y: int = x\n    return y\n", 0),  # a variable annotation, not the signature
    ("type_hints", "from typing import List\n\ndef f(xs):\n    return xs\n", 0),  # an import is no annotation
    ("type_hints", "f = lambda x: x\n", 0),
    ("type_hints", "def f(x):\n    # def g(x: int) -> int\n    return 'x: int'\n", 0),  # in a comment and a string
    ("doctest_example", 'def f():\n    """Say one.\n\n    >>> f()\n    1\n    """\n    return 1\n', 1),
    ("doctest_example", '"""Module.\n\n>>> 1 + 1\n2\n"""\n', 1),  # a module docstring
    ("doctest_example", 'class A:\n    """A.\n\n    >>> A()\n    """\n', 1),  # a class docstring
    ("doctest_example", 'def f():\n    s = """\n    >>> f()\n    """\n    return s\n', 0),  # a string, no docstring
    ("doctest_example", 'def f():\n    """Call it like this: >>> f()."""\n    return 1\n', 0),  # not at a line start
    ("doctest_example", 'def f():\n    """Example: f() == 1"""\n    return 1\n', 0),  # an example without >>>
    ("doctest_example", "def f():\n    # >>> f()\n    return 1\n", 0),  # in a comment
    ("doctest_example", 'def f():\n    x = 1\n    """>>> f()"""\n    return x\n', 0),  # not the first statement
    ("comment", "x = 1  # one\n", 1),
    ("comment", "# a comment on its own line\nx = 1\n", 1),
    ("comment", "#!/usr/bin/env python\nx = 1\n", 1),
    ("comment", "s = '# not a comment'\n", 0),  # a # inside a string literal
    ("comment", 'def f():\n    """Use # to comment."""\n    return "#"\n', 0),  # in a docstring and a string
    ("comment", 'x = f"{1}#"\n', 0),  # in an f-string
    ("comment", "x = 1\n", 0),
    ("docstring", 'def f():\n    """Do it."""\n    return 1\n', 1),
    ("docstring", "async def f():\n    'Do it.'\n    return 1\n", 1),
    ("docstring", 'def f():\n    import math\n    """Not a docstring: not the first statement."""\n', 0),
    ("docstring", 'def f():\n    x = "text"\n    return x\n', 0),
    ("docstring", '"""A module docstring only."""\n\ndef f():\n    return 1\n', 0),  # the description says function
    ("docstring", "def f():\n    # a comment, not a docstring\n    return 1\n", 0),
    ("while_loop", "i = 0\nwhile i < 3:\n    i += 1\n", 1),
    ("while_loop", "def f(n):\n    while True:\n        if n:\n            break\n", 1),
    ("while_loop", "for x in range(3):\n    pass\n", 0),  # a for loop
    ("while_loop", "xs = [x for x in range(3)]\n", 0),  # a comprehension
    ("while_loop", "# while waiting\nx = 'while'\n", 0),  # the word only
    ("compares_values", "if a == b:\n    pass\n", 1),
    ("compares_values", "ok = x in xs\n", 1),  # a membership test is a comparison
    ("compares_values", "if x is None:\n    pass\n", 1),
    ("compares_values", "assert f(1) == 2\n", 1),
    ("compares_values", "ys = [y for y in xs if y > 0]\n", 1),
    ("compares_values", "for x in xs:\n    total = x\n", 0),  # the in of a for loop
    ("compares_values", "a = b\n", 0),  # an assignment
    ("compares_values", "s = 'a == b'  # x < y\n", 0),  # in a string and a comment
    ("compares_values", "xs = sorted(ys, key=len)\n", 0),
]


@pytest.mark.parametrize("decider, code, truth", CASES)
def test_decider(decider, code, truth):
    assert tt.DECIDERS[decider](code) is bool(truth)


def test_every_decider_has_positive_and_negative_cases():
    for name in tt.DECIDERS:
        assert {t for d, _, t in CASES if d == name} == {0, 1}, name


def test_spec_matches_the_deciders():
    spec = tt.load_spec()
    assert [s.id for s in spec.subgoals] == list(tt.DECIDERS)
    for s in spec.subgoals:
        assert s.description and s.low and s.high


def test_unparsable_code_is_an_error_naming_the_row():
    with pytest.raises(ValueError, match="row bad: the code does not parse"):
        tt.decide([{"id": "bad", "text": "def f(:\n"}], tt.load_spec())


needs_data = pytest.mark.skipif(not (tt.data_dir() / tt.DATA_FILE).is_file(), reason="external data absent")


@needs_data
def test_load_truth_has_enough_rows_and_coverage_from_low_to_high():
    rows, spec, truth = tt.load_truth()
    assert len(rows) >= 200 and len(spec.subgoals) in (5, 6) and set(truth) == {s.id for s in spec.subgoals}
    assert all(len(v) == len(rows) and set(v) <= {0, 1} for v in truth.values())
    cov = {sid: c["coverage"] for sid, c in tt.coverage(truth).items()}
    assert min(cov.values()) < 0.1 and max(cov.values()) > 0.8 and all(0 < c < 1 for c in cov.values())
    assert len({r["id"] for r in rows}) == len(rows)


@needs_data
def test_rows_show_the_judge_only_code():
    from goalcover_hf.formats import RowRenderer

    rows, spec, _ = tt.load_truth()
    renderer = RowRenderer(columns=list(rows[0]))
    assert renderer.format_name == "text" and all(set(r) == {"id", "text"} for r in rows)
    assert all(renderer.render(r) == r["text"] for r in rows)
    for r in rows:  # the id is not rendered, and names no property anyway
        assert not any(word in r["id"].lower() for s in spec.subgoals for word in s.id.split("_"))


@needs_data
def test_a_subset_is_seeded_and_in_file_order():
    rows, _, truth = tt.load_truth()
    sub, _, sub_truth = tt.load_truth(n_rows=200, seed=3)
    again, _, _ = tt.load_truth(n_rows=200, seed=3)
    other, _, _ = tt.load_truth(n_rows=200, seed=4)
    assert [r["id"] for r in sub] == [r["id"] for r in again] != [r["id"] for r in other]
    index = {r["id"]: k for k, r in enumerate(rows)}
    assert [index[r["id"]] for r in sub] == sorted(index[r["id"]] for r in sub)
    for sid, values in sub_truth.items():
        assert values == [truth[sid][index[r["id"]]] for r in sub]
    with pytest.raises(ValueError, match="n_rows must be within 1..328"):
        tt.load_truth(n_rows=329)
