import ast
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import judge_pairs as jp  # noqa: E402

CODE = '''from typing import List


def total(xs: List[int], start: int = 0) -> int:
    """Sum the list.
    >>> total([1, 2])
    3
    >>> total([])
    0
    """
    return start + sum(xs)
'''
PLAIN = "def f(a, b=2):\n    return a + b\n"


def sample(output, input_full="", domain="legal"):
    return jp.Sample("s", domain, output, input_full, "In", "Out")


def test_code_checks():
    assert jp.has_docstring(CODE) and jp.has_type_hints(CODE) and jp.has_doctest(CODE)
    assert not (jp.has_docstring(PLAIN) or jp.has_type_hints(PLAIN) or jp.has_doctest(PLAIN))
    assert jp.has_type_hints("def f(a) -> int:\n    return a\n")
    assert jp.has_type_hints("def f(*args: int):\n    pass\n")
    assert not jp.has_doctest('def f():\n    """Example: f() == 1"""\n    return 1\n')
    assert not jp.has_docstring("def f(:\n")  # unparsable code shows nothing


def test_code_corruptions_remove_exactly_their_property():
    no_hints = jp.drop_type_hints(sample(CODE, domain="code"))[0]
    assert "def total(xs, start = 0):" in no_hints or "def total(xs, start=0):" in no_hints
    assert not jp.has_type_hints(no_hints) and jp.has_docstring(no_hints) and jp.has_doctest(no_hints)
    ast.parse(no_hints)
    no_tests = jp.drop_doctests(sample(CODE, domain="code"))[0]
    assert ">>>" not in no_tests and "Sum the list." in no_tests and '"""' in no_tests
    assert jp.has_docstring(no_tests) and jp.has_type_hints(no_tests) and not jp.has_doctest(no_tests)
    assert "return start + sum(xs)" in no_tests
    no_doc = jp.drop_docstrings(sample(CODE, domain="code"))[0]
    assert not jp.has_docstring(no_doc) and jp.has_type_hints(no_doc)
    assert jp.drop_type_hints(sample(PLAIN, domain="code")) == []  # nothing to remove: no candidate


def test_text_checks():
    assert jp.names_drug("Take ibuprofen with food.") and not jp.names_drug("Rest and drink water.")
    assert jp.names_drug("Metformin is first line.")  # case-insensitive
    assert not jp.names_drug("The heparinized tube")  # whole words only
    assert jp.has_number("in 3 of 10 cases") and not jp.has_number("in most cases")
    assert jp.mentions_professional("Talk to your doctor.") and jp.mentions_professional("a health care provider")
    assert not jp.mentions_professional("Talk to your friends.")
    assert jp.addresses_reader("we can delete your account") and not jp.addresses_reader("youth accounts")
    assert jp.one_sentence("we may change these terms.") and not jp.one_sentence("we may. you can.")
    assert jp.one_sentence("revenue rose 2.5 percent.")  # a decimal point does not end a sentence
    assert jp.has_currency("q3 revenue $452.2 million.") and jp.has_currency("income was ¥333.8 billion")
    assert not jp.has_currency("revenue rose 2.5 percent.")
    assert jp.has_percentage("rose 2.5 percent") and jp.has_percentage("up 13.0%") and not jp.has_percentage("$3")
    assert jp.at_most_three_lines("a\nb\nc") and not jp.at_most_three_lines("a\nb\nc\nd")
    assert jp.mentions_termination("we can terminate your account") and not jp.mentions_termination("we track you")


def test_text_corruptions():
    out = jp.third_person(sample("you agree that your data is ours. you re responsible."))[0]
    assert out == "users agree that their data is ours. users are responsible." and not jp.addresses_reader(out)
    fin = "q3 revenue rose 2.5 percent to $452.2 million.\nsees eps of $1.20."
    no_money = jp.drop_currency(sample(fin))[0]
    assert not jp.has_currency(no_money) and jp.has_percentage(no_money)
    no_pct = jp.drop_percentages(sample(fin))[0]
    assert jp.has_currency(no_pct) and not jp.has_percentage(no_pct)
    med = "Aspirin helps. About 20 percent of people respond. See a doctor."
    assert jp.drop_number_sentences(sample(med)) == ["Aspirin helps. See a doctor."]
    assert jp.drop_drugs(sample(med))[0].startswith("a medication helps.")
    assert "someone" in jp.drop_professionals(sample(med))[0]
    longer = jp.append_input_sentence(sample("we can end it", "this text is the first sentence here. short."))
    assert longer == ["we can end it. this text is the first sentence here."]
    grown = jp.append_input_lines(sample("q1 eps $1.", "line one is long enough here\nline two is long enough too\n"
                                                       "line three is long enough too\nline four is long enough"))
    assert grown and all(not jp.at_most_three_lines(g) for g in grown)


def test_sample_text_cuts_long_inputs_only():
    s = sample("the summary", "x" * 1000)
    assert s.text.startswith("In:\n") and s.text.endswith("Out:\nthe summary") and "[...]" in s.text
    assert jp.Sample("c", "code", "def f(): pass").text == "def f(): pass"


def test_subgoal_file_is_valid():
    entries = jp.load_subgoals()
    assert {e["domain"] for e in entries} == set(jp.DOMAINS)
    assert all(jp.to_subgoal(e).description for e in entries)


needs_data = pytest.mark.skipif(not jp.data_dir().is_dir(), reason="external data folder absent")


@needs_data
def test_build_pairs_is_deterministic_and_corruptions_flip_only_their_target():
    pairs, entries = jp.build_pairs(seed=0)
    again, _ = jp.build_pairs(seed=0)
    assert [(p.sample_id, p.subgoal_id, p.label) for p in pairs] == [(p.sample_id, p.subgoal_id, p.label) for p in again]
    assert len(pairs) >= 200 and {p.domain for p in pairs} == set(jp.DOMAINS)
    by = {(p.sample_id, p.subgoal_id): p.label for p in pairs}
    corrupted = [p for p in pairs if p.target]
    assert corrupted
    for p in corrupted:
        original = by[(p.group, p.subgoal_id)]
        if p.subgoal_id == p.target:
            assert original == 1 and p.label == 0
        else:
            assert p.label == original
    for sub in {e["id"] for e in entries}:  # every subgoal has both labels
        assert {p.label for p in pairs if p.subgoal_id == sub} == {0, 1}


@needs_data
def test_limit_keeps_whole_groups_across_domains():
    pairs, _ = jp.build_pairs(seed=0)
    few = jp.limit_pairs(pairs, 60)
    assert 0 < len(few) <= 60 and {p.domain for p in few} == set(jp.DOMAINS)
    groups = {p.group for p in few}
    for g in groups:
        assert len([p for p in few if p.group == g]) == len([p for p in pairs if p.group == g])
    assert any(p.target for p in few)  # corrupted groups come first
