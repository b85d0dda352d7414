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


PARTS_ROW = {"messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "What is in this leaflet?"},
                                 {"type": "image", "image": "leaflet.png"}, {"type": "text", "text": "Dose?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "200 mg every 6 hours."}]},
]}


def test_messages_whose_content_is_a_list_of_parts():
    assert render(PARTS_ROW) == ("SYSTEM: Be brief.\n\nUSER: What is in this leaflet?\n[image part skipped]\nDose?"
                                 "\n\nASSISTANT: 200 mg every 6 hours.")


@pytest.mark.parametrize(
    "content, message",
    [
        ([{"type": "image", "image": "x.png"}], "messages[1].content has no text part (parts: image)"),
        ([{"type": "image"}, {"type": "audio"}], "messages[1].content has no text part (parts: audio, image)"),
        ([], "messages[1].content has no text part (parts: none)"),
        (["just a string"], "messages[1].content[0] is not a {type, ...} part (got str)"),
        ([{"text": "no type"}], "messages[1].content[0] is not a {type, ...} part (got dict)"),
        ([{"type": "text", "text": None}], "messages[1].content[0] is a text part whose 'text' is None"),
        ({"type": "text", "text": "x"}, "messages[1].content is dict, expected text or a list of parts"),
    ],
)
def test_parts_that_cannot_be_read_name_the_turn(content, message):
    row = {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": content}]}
    with pytest.raises(RowFormatError) as err:
        render(row)
    assert message in str(err.value)


def test_skipped_parts_are_counted_once_for_the_dataset(tmp_path):
    from goalcover_hf.data import load_data

    rows = [PARTS_ROW,
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "Q"}, {"type": "audio", "audio": "a"},
                                                       {"type": "image_url", "image_url": {"url": "u"}},
                                                       {"type": "image", "image": "b.png"}]},
                          {"role": "assistant", "content": "A"}]},  # parts beside plain text: a Json column
            {"messages": [{"role": "user", "content": [{"type": "image"}]}, {"role": "assistant", "content": "A"}]},
            {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ds = load_data(str(path))
    renderer = RowRenderer(columns=ds.column_names)
    assert renderer.skipped_parts(ds, batch_size=2) == (
        "2 of 4 rows hold chat parts that are not text (2 image, 1 audio, 1 image_url); the judge cannot see them "
        "and reads '[image part skipped]' in their place")  # row 2 has no text at all: its own error, not counted
    assert "[audio part skipped]\n[image_url part skipped]" in renderer.render(ds[1])
    assert RowRenderer(columns=["question", "answer"]).skipped_parts(ds) is None
    plain = ds.select([3])
    assert renderer.skipped_parts(plain) is None


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
