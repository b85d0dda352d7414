"""Deterministic corruption operators on hand-made rows."""

import pytest

from goalcover_hf.corrupt import TEXT_OPERATORS, corrupt_rows, get_operator

CODE = '''from typing import List


def mean(xs: List[float], *, skip: bool = False) -> float:
    """Average of xs.

    >>> mean([1.0, 3.0])
    2.0
    """
    total = sum(xs)  # add them up
    # divide
    return total / len(xs)
'''


def op(name):
    return TEXT_OPERATORS[name]


def test_strip_docstrings_keeps_code_and_comments():
    out = op("strip_docstrings")(CODE)
    assert '"""' not in out and ">>> mean" not in out
    assert "total = sum(xs)  # add them up" in out and "return total / len(xs)" in out


def test_strip_docstrings_on_a_humaneval_style_prompt():
    prompt = 'def f(x: int) -> int:\n    """ Double x.\n    >>> f(2)\n    4\n    """\n'
    assert op("strip_docstrings")(prompt) == "def f(x: int) -> int:\n"


def test_strip_comments_leaves_hash_in_strings():
    src = "x = '#not a comment'  # a comment\n# whole line\ny = 2\n"
    assert op("strip_comments")(src) == "x = '#not a comment'\ny = 2\n"


def test_strip_doctests_removes_examples_only():
    out = op("strip_doctests")(CODE)
    assert ">>>" not in out and "    2.0\n" not in out
    assert "Average of xs." in out and '"""' in out and "return total" in out


def test_strip_type_hints():
    out = op("strip_type_hints")(CODE)
    assert "def mean(xs, *, skip = False):\n" in out
    assert "List[float]" not in out and "-> float" not in out and out.startswith("from typing import List")


def test_stub_body_keeps_indentation():
    assert op("stub_body")("    for x in xs:\n        yield x\n") == "    pass\n"


def test_remove_numbers_and_alter_numbers():
    text = "Q3 revenue rose 2.5% to $452.2 million in 2021, up from 400."
    assert op("remove_numbers")(text) == "Q3 revenue rose to in, up from."
    assert op("alter_numbers")("$0.83 and 2021") == "$5.38 and 7576"


def test_remove_dosage():
    text = "Take 200 mg every 6 hours, or 5-10 mL twice daily. Ask your doctor."
    out = op("remove_dosage")(text)
    assert "mg" not in out and "mL" not in out and "every 6" not in out and "twice daily" not in out
    assert "Ask your doctor." in out


def test_drop_citations():
    out = op("drop_citations")("Aspirin helps (Smith et al., 2019) and is cheap [3]. Use it.")
    assert out == "Aspirin helps and is cheap. Use it."


def test_sentence_operators():
    text = "First point. Second point. Third point."
    assert op("drop_last_sentence")(text) == "First point. Second point."
    assert op("keep_first_sentence")(text) == "First point."
    assert op("keep_first_sentence")("bullet one\nbullet two") == "bullet one"
    assert op("drop_last_sentence")("Only one.") == "Only one."


def test_negate_flips_one_auxiliary_per_sentence():
    assert op("negate")("we can delete your account. You may not sue us.") == \
        "we cannot delete your account. You may sue us."
    assert op("negate")("we don t have to refund you. it isn't free.") == "we do have to refund you. it is free."


def test_operator_on_rows_reports_unchanged_and_unparseable_rows():
    assert get_operator("remove_numbers:answer").apply({"answer": "No numbers here."}) is None
    assert get_operator("strip_docstrings:code").apply({"code": "def broken(:\n"}) is None
    row = {"q": "How much?", "answer": "Give 5 mg.", "id": 7}
    out = get_operator("remove_dosage:answer").apply(row)
    assert out == {"q": "How much?", "answer": "Give.", "id": 7} and row["answer"] == "Give 5 mg."


def test_operator_default_field_lists_and_messages():
    from datasets import Features, List, Value

    feats = Features({"messages": List({"role": Value("string"), "content": Value("string")})})
    bound = get_operator("remove_numbers").bind(feats)
    assert bound.fields == ("messages",)
    row = {"messages": [{"role": "user", "content": "Dose for 70 kg?"}, {"role": "assistant", "content": "5 tablets"}]}
    out = bound.apply(row)
    assert out["messages"][0]["content"] == "Dose for 70 kg?"  # only the assistant turn is corrupted
    assert out["messages"][1]["content"] == "tablets"
    assert get_operator("remove_numbers:ctx").apply({"ctx": ["a 1", "b"]}) == {"ctx": ["a", "b"]}


def test_operator_errors_name_the_problem():
    from datasets import Features, Value

    with pytest.raises(ValueError, match="unknown corruption operator 'nope'"):
        get_operator("nope")
    feats = Features({"document": Value("string"), "summary": Value("string")})
    with pytest.raises(ValueError, match="name the column"):
        get_operator("remove_numbers").bind(feats)
    with pytest.raises(ValueError, match="no column 'sumary'"):
        get_operator("remove_numbers:sumary").bind(feats)


ROWS = [{"question": "How much ibuprofen?", "answer": "200 mg every 6 hours.", "id": "a"},
        {"question": "Can I take it with food?", "answer": "Yes, with food.", "id": "b"},
        {"question": "What is asthma?", "answer": "A lung disease.", "id": "c"}]
REWRITES = {"200 mg every 6 hours.": {"answer": "Take it as your doctor says."},  # the capability removed
            "Yes, with food.": '{"answer": "cut',  # invalid output: the row is reported, not invented
            "A lung disease.": {"answer": "A lung disease."}}  # unchanged: nothing was corrupted


def test_llm_rewrite_is_schema_constrained_to_the_row(make_fake_engine, spec):
    from goalcover_hf.rowschema import TextField

    engine = make_fake_engine(generate=lambda chat, schema: next(
        out for answer, out in REWRITES.items() if answer in chat[-1]["content"]))
    out = corrupt_rows(ROWS, get_operator("llm_rewrite:answer"), goal=spec.goal, subgoal=spec.subgoals[0],
                       text_fields=[TextField("question", "text"), TextField("answer", "text")], model=engine)
    assert out == [{"question": "How much ibuprofen?", "answer": "Take it as your doctor says.", "id": "a"}, None, None]
    assert ROWS[0]["answer"] == "200 mg every 6 hours."  # the input rows are left as they were
    [call] = engine.calls
    assert list(call.schema.model_fields) == ["answer"]  # the model writes only the operator's field
    user = call.chats[0][-1]["content"]
    assert spec.goal in user and spec.subgoals[0].name in user and ROWS[0]["answer"] in user
