import json
from pathlib import Path

import pytest

from goalcover_hf.formats import RowFormatError, RowRenderer, detect_format

EXTERNAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "external"


def render(row, template=None):
    return RowRenderer(columns=list(row), template=template).render(row)


def test_messages():
    row = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                        {"role": "assistant", "content": "Hello."}]}
    assert render(row) == "SYSTEM: Be brief.\n\nUSER: Hi?\n\nASSISTANT: Hello."


def test_prompt_completion():
    assert render({"prompt": "2+2?", "completion": "4"}) == "PROMPT: 2+2?\n\nCOMPLETION: 4"


def test_instruction_with_and_without_input():
    assert render({"instruction": "Sum", "input": "1 2", "output": "3"}) == "INSTRUCTION: Sum\n\nINPUT: 1 2\n\nOUTPUT: 3"
    assert render({"instruction": "Say hi", "input": "", "output": "hi"}) == "INSTRUCTION: Say hi\n\nOUTPUT: hi"


def test_question_answer_and_text():
    assert render({"question": "Q?", "answer": "A."}) == "QUESTION: Q?\n\nANSWER: A."
    assert render({"text": "plain"}) == "plain"


def test_messages_wins_over_text_when_both_present():
    assert detect_format(["text", "messages"]).name == "messages"


def test_template_overrides_detection():
    row = {"question": "Q?", "answer": "A.", "source": "S"}
    assert render(row, "{{ source }}: {{ question }} -> {{ answer }}") == "S: Q? -> A."


@pytest.mark.parametrize(
    "row, message",
    [
        ({"question": "Q?", "answer": None}, "'answer' is missing or None"),
        ({"question": "Q?", "answer": "  "}, "'answer' is empty"),
        ({"question": "Q?", "answer": 3}, "'answer' is int, expected text"),
        ({"messages": [{"role": "user", "content": "x"}]}, "no assistant turn"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role 'wizard' is unknown"),
        ({"messages": []}, "'messages' is empty"),
    ],
)
def test_bad_rows_say_which_field(row, message):
    with pytest.raises(RowFormatError) as err:
        render(row)
    assert message in str(err.value)


def test_unknown_layout_suggests_template():
    with pytest.raises(RowFormatError, match="--template"):
        detect_format(["foo", "bar"])


def test_template_errors_are_clear():
    with pytest.raises(RowFormatError, match="not valid Jinja"):
        RowRenderer(template="{{ unclosed")
    with pytest.raises(RowFormatError, match="template failed"):
        RowRenderer(template="{{ missing_column }}").render({"a": 1})


def test_template_is_sandboxed():
    with pytest.raises(RowFormatError):
        RowRenderer(template="{{ ''.__class__.__mro__[1].__subclasses__() }}").render({})


def _first(name):
    with open(EXTERNAL / name, encoding="utf-8") as fh:
        return json.loads(fh.readline())


@pytest.mark.skipif(not EXTERNAL.is_dir(), reason="../shared/data/external is not present")
def test_real_external_rows():
    medquad = _first("medical_qa_medquad.jsonl")
    assert render(medquad).startswith("QUESTION: " + medquad["question"])
    alpaca = _first("general_instructions.jsonl")
    assert RowRenderer(columns=list(alpaca)).format_name == "instruction"
    assert alpaca["output"] in render(alpaca)
    code = _first("code_generation.jsonl")
    text = render(code, "{{ prompt }}{{ canonical_solution }}")
    assert "def has_close_elements" in text and code["canonical_solution"] in text
    pubmed = _first("medical_qa.jsonl")
    text = render(pubmed, "QUESTION: {{ QUESTION }}\nCONTEXT: {{ CONTEXTS | join(' ') }}\nANSWER: {{ LONG_ANSWER }}")
    assert pubmed["LONG_ANSWER"] in text
