"""Property tests: invariants that must hold for any input, not just the examples we thought of."""

import string

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from goalcover_hf.card import END, START, CardError, merge_card
from goalcover_hf.coverage import coverage_from_scores
from goalcover_hf.formats import RowFormatError, RowRenderer
from goalcover_hf.spec import GoalSpec, SpecError

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@given(question=text, answer=text)
def test_question_answer_renders_or_names_the_field(question, answer):
    renderer = RowRenderer(columns=["question", "answer"])
    try:
        out = renderer.render({"question": question, "answer": answer})
    except RowFormatError as err:
        assert "'question'" in str(err) or "'answer'" in str(err)
        assert not question.strip() or not answer.strip()
    else:
        assert question in out and answer in out


@given(st.dictionaries(st.sampled_from(["goal", "subgoals", "version", "meta", "junk"]),
                       st.one_of(st.none(), st.integers(), text, st.lists(st.dictionaries(text, text, max_size=3), max_size=3)),
                       max_size=5))
def test_spec_parsing_accepts_or_raises_spec_error(data):
    try:
        spec = GoalSpec.from_dict(data, source="s.yaml")
    except SpecError as err:
        assert str(err).startswith("s.yaml")
    else:
        assert GoalSpec.from_dict(yaml.safe_load(spec.to_yaml())) == spec


readme_text = st.lists(
    st.one_of(st.text(string.printable + "é—", max_size=20), st.sampled_from(["---\n", "\n---\n", "key: v\n", START[:10]])),
    max_size=15,
).map("".join)


@settings(max_examples=150, deadline=None)
@given(body=readme_text, section=st.text(string.ascii_letters + " \n#|", min_size=1, max_size=80))
def test_card_merge_keeps_user_text_byte_for_byte(body, section):
    try:
        merged = merge_card(body, section, {"spec_hash": "h"})
    except CardError:
        return  # refusing is allowed (broken header, damaged markers); changing user bytes is not
    again = merge_card(merged, section, {"spec_hash": "h"})
    assert again == merged
    head, rest = merged.split(START, 1)
    tail = rest.split(END, 1)[1]
    assert section in rest.split(END, 1)[0]
    user = head + tail
    if body.startswith("---\n"):
        # The header kept every original line; only the goalcover key was added.
        original_header_lines = body.split("\n---", 1)[0].splitlines()
        assert all(line in merged for line in original_header_lines)
        assert body.split("\n---", 1)[1].split("\n", 1)[-1] in user or not body.strip()
    else:
        assert body in user


@given(st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                       st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=3, max_size=3), min_size=1, max_size=4),
       st.integers(1, 5), st.floats(0, 1))
def test_coverage_invariants(scores, threshold, min_coverage):
    report = coverage_from_scores(scores, threshold=threshold, min_coverage=min_coverage)
    for s in report.subgoals:
        assert 0 <= s.support <= s.scored <= s.rows == 3
        assert 0.0 <= s.coverage <= 1.0
        assert s.errors == s.rows - s.scored
        assert sum(s.distribution.values()) == s.scored
        target = report.target.fraction(report.population)
        assert s.gap == (s.decision == "gap") and (s.decision == "no evidence") == (s.scored == 0)
        if s.scored:
            assert s.low <= s.coverage <= s.high
            assert s.decision == ("gap" if s.high < target else "covered" if s.low >= target else "uncertain")
        if s.mean is not None:
            assert 1 <= s.mean <= 5
    assert 0.0 <= report.mean_coverage <= 1.0
