"""Card merging at the text level: only goalcover's section and YAML key change, across reruns and damaged input."""

import pytest

from goalcover_hf.card import END, START, CardError, merge_card

BODY = "# My dataset\n\nSome text I wrote.\n\n## Licence\nMIT\n"
READMES = {
    "no_header": BODY,
    "empty_header": "---\n---\n" + BODY,
    "unrelated_keys": "---\nlicense: mit\n# a comment I keep\ntags:\n  - medical\n  - qa\npretty_name: Mine\n---\n" + BODY,
    "empty_file": "",
}


def strip_tool_parts(text):
    """Remove the goalcover key and section; what is left must be the user's bytes."""
    if START in text:
        head, rest = text.split(START, 1)
        text = head + rest.split(END, 1)[1]
    lines = text.splitlines(keepends=True)
    out, skipping = [], False
    for line in lines:
        if line.startswith("goalcover:"):
            skipping = True
            continue
        if skipping and line.startswith(" "):
            continue
        skipping = False
        out.append(line)
    return "".join(out)


@pytest.mark.parametrize("name", list(READMES))
def test_every_byte_outside_is_kept_across_reruns(tmp_path, name):
    original = READMES[name]
    summary = {"spec_hash": "abc", "subgoals": {"dose": {"coverage": 0.67}}}
    once = merge_card(original, "## Capability coverage\nfirst\n", summary)
    twice = merge_card(once, "## Capability coverage\nsecond\n", {**summary, "spec_hash": "def"})
    thrice = merge_card(twice, "## Capability coverage\nsecond\n", {**summary, "spec_hash": "def"})
    assert thrice == twice  # idempotent
    assert "first" not in twice and "second" in twice
    for text in (once, twice):
        kept = strip_tool_parts(text)
        if name in ("no_header", "empty_file"):
            assert kept.startswith("---\n---\n")
            kept = kept[len("---\n---\n"):]
        assert kept.rstrip("\n") == original.rstrip("\n") or kept == original
        assert original in kept  # the user's text is there, contiguous, unchanged


def test_user_text_after_the_section_is_kept(tmp_path):
    text = merge_card(BODY, "S1\n", {"a": 1})
    text = text + "\n## Added later by the user\nkeep me\n"
    again = merge_card(text, "S2\n", {"a": 2})
    assert again.endswith(f"{END}\n\n## Added later by the user\nkeep me\n")
    assert "S2" in again and "S1" not in again


@pytest.mark.parametrize("body", [BODY + START + "\nhalf\n", BODY + END + "\n", BODY + f"{START}\n{END}\n{START}\n{END}\n",
                                  BODY + f"{END}\n{START}\n"])
def test_damaged_markers_are_refused(body):
    with pytest.raises(CardError, match="markers are damaged"):
        merge_card(body, "S\n", {"a": 1})


def test_broken_yaml_header_is_refused():
    with pytest.raises(CardError, match="not valid YAML"):
        merge_card("---\nlicense: [mit\n---\nbody\n", "S\n", {"a": 1})
    with pytest.raises(CardError, match="never closed"):
        merge_card("---\nlicense: mit\nbody\n", "S\n", {"a": 1})
