"""Card merging at the text level: only goalcover's section and YAML key change, across reruns and damaged input."""

import re

import pytest
import yaml

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
    text = re.sub(r"^(tags|annotations_creators):\n- (goalcover|machine-generated)\n", "", text, flags=re.M)
    lines = text.splitlines(keepends=True)
    out, skipping = [], False
    for line in lines:
        if line.strip() in ("- goalcover", "- machine-generated"):  # added to a list the user had
            continue
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


# ---- the header's tags and annotations_creators -----------------------------------------------------------------
HEADERS = {  # header -> the lines the merge may add, in order (everything else must stay byte for byte)
    "block list": ("---\nlicense: mit # keep\ntags:\n- medical\n- qa   # mine\npretty_name: Mine\n---\n",
                   ["- goalcover\n", "annotations_creators:\n- machine-generated\n"]),
    "indented list and comment": ("---\ntags:\n  - medical\n  # a comment in the list\nconfigs:\n  - config_name: x\n---\n",
                                  ["  - goalcover\n", "annotations_creators:\n- machine-generated\n"]),
    "flow lists": ("---\ntags: [medical, qa]  # flow\nannotations_creators: [expert-generated]\n---\n", None),
    "already there": ("---\ntags:\n- goalcover\nannotations_creators:\n- machine-generated\nlicense: mit\n---\n", []),
    "crlf": ("---\r\nlicense: mit\r\ntags:\r\n- medical\r\n---\r\n",
             ["- goalcover\r\n", "annotations_creators:\r\n- machine-generated\r\n"]),
}


def _header(text):
    return text.split(START)[0].split("goalcover:\n  ")[0]  # up to goalcover's own key


@pytest.mark.parametrize("name", list(HEADERS))
def test_header_gains_tags_and_annotations_creators_and_nothing_else(name):
    original, added = HEADERS[name]
    merged = merge_card(original + BODY, "S\n", {"a": 1})
    data = yaml.safe_load(merged.split("---", 2)[1])
    before = yaml.safe_load(original.split("---", 2)[1])
    assert data["tags"].count("goalcover") == 1 and data["annotations_creators"].count("machine-generated") == 1
    assert data["tags"][:len(before["tags"])] == before["tags"]  # the user's tags first, in their order
    assert {k: v for k, v in data.items() if k not in ("tags", "annotations_creators", "goalcover")} == \
        {k: v for k, v in before.items() if k not in ("tags", "annotations_creators")}
    head = _header(merged)
    if added is None:  # flow style: the entry goes inside the brackets, the rest of the line is kept
        assert head.startswith("---\ntags: [medical, qa, goalcover]  # flow\n"
                               "annotations_creators: [expert-generated, machine-generated]\n")
    else:
        kept = head
        for line in added:
            assert kept.count(line) >= 1
            kept = kept.replace(line, "", 1)
        nl = "\r\n" if name == "crlf" else "\n"
        assert kept == original[:-len("---" + nl)]  # byte for byte, the user's header without its closing line
    assert merged.endswith(BODY + "\n" + START + "\nS\n" + END + "\n") or BODY in merged
    assert merge_card(merged, "S\n", {"a": 1}) == merged  # goalcover is added once, not on every run


def test_odd_tags_are_rewritten_as_a_list_of_that_key_only():
    merged = merge_card("---\ntags: medical\nlicense: mit # keep\n---\nbody\n", "S\n", {"a": 1})
    assert merged.startswith("---\ntags:\n- medical\n- goalcover\nlicense: mit # keep\n")
    with pytest.raises(CardError, match="'tags' is not a list"):
        merge_card("---\ntags: {a: 1}\n---\nbody\n", "S\n", {"a": 1})


# ---- theme titles ------------------------------------------------------------------------------------------------
LONG = ("Dosage instructions for paediatric patients who weigh under twenty kilograms and take several "
        "other medicines")


def _words_kept(title, text):
    """The title is whole words of ``text`` from its start, then an ellipsis when anything was left out."""
    body = title.removesuffix("…")
    assert text.startswith(body) and (title == text or title.endswith("…"))
    assert re.match(r"[,;:\-–—]*( |$)", text[len(body):]), title  # cut between words (and their punctuation)


@pytest.mark.parametrize("limit", [60, 23, 10, 7])
def test_theme_titles_are_cut_between_words(limit):
    from goalcover_hf.gaps import _clip

    title = _clip(LONG, limit)
    assert len(title) <= limit
    _words_kept(title, LONG)
    assert _clip("  short\n title ", limit) == ("short title" if limit >= 11 else "short…")
    assert _clip("a, b, c, d, e, f", limit) in ("a, b, c, d, e, f", "a, b, c…", "a, b…", "a…")
    assert _clip("Supercalifragilistic expialidocious", 10) == "Supercalifragilistic…"  # one long word: whole


def test_titles_in_the_card_come_whole_from_the_namer_and_the_explanations(monkeypatch):
    """A namer that writes a long title, and an unnamed theme titled by a long explanation: both reach the card cut
    between words."""
    import json

    import numpy as np
    from fake_run import SPEC, dataset

    from goalcover_hf import gaps as gaps_module
    from goalcover_hf.card import render_section
    from goalcover_hf.coverage import compute_coverage
    from goalcover_hf.engines.base import Engine

    class LongNamer(Engine):
        name, identity = "fake", "long-namer"

        def generate_json(self, chats, schema, max_new_tokens):
            return [json.dumps({"title": LONG, "description": "Rows that state a dose.", "subgoal": "states_dose"})
                    for _ in chats]

        def choice_probs(self, chats, choices):
            raise AssertionError("not used")

    # one direction per explanation text: equal texts cluster together, without loading an embedding model
    monkeypatch.setattr(gaps_module, "embed", lambda texts: np.array(
        [[1.0, 0.0] if "dose" in t.lower() or "dosage" in t.lower() else [0.0, 1.0] for t in texts]))
    ds = dataset()
    long_expl = LONG + " is what this answer lacks."
    ds = ds.map(lambda row, k: {"gc_warns_side_effects_explanation": long_expl if k >= 3 else None},
                with_indices=True)
    report = compute_coverage(ds, SPEC)
    provenance = {"goal": SPEC.goal, "spec_hash": SPEC.content_hash(), "model": "test-judge", "engine": "fake",
                  "prompt_version": "score_v1@test", "mode": "generate", "explain": "all"}
    named = gaps_module.find_gaps(ds, SPEC, report, namer=LongNamer())
    unnamed = gaps_module.find_gaps(ds, SPEC, report)
    titles = {t.title for g in named for t in g.themes if t.named_by == "long-namer"}
    assert titles == {gaps_module._clip(LONG, gaps_module.TITLE_CHARS)} and all(len(t) <= 60 for t in titles)
    for title in titles:
        _words_kept(title, LONG)
        assert f"**{title}**" in render_section(report, provenance, named)
    plain = [t.title for g in unnamed for t in g.themes if g.subgoal == "warns_side_effects"]
    assert plain and all(len(t) <= 60 for t in plain)
    for title in plain:
        _words_kept(title, long_expl)
        assert f"**{title}**" in render_section(report, provenance, unnamed)
