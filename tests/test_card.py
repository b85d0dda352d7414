"""The dataset card: only goalcover's section and YAML key ever change; the rest of the README stays byte for byte."""

import re

import pytest
from fake_hub import hub_error
from fake_run import SPEC, dataset

from goalcover_hf.card import (
    END, HEATMAP_NAME, PLOT_NAME, START, CardError, card_summary, merge_card, read_card, render_section, write_card,
)
from goalcover_hf.coverage import compute_coverage
from goalcover_hf.gaps import Target, find_gaps

PROVENANCE = {"goal": SPEC.goal, "spec_hash": SPEC.content_hash(), "model": "test-judge", "engine": "transformers",
              "prompt_version": "score_v1@test", "mode": "generate", "explain": "all", "threshold": 4}

UNRELATED = (
    "---\n"
    "# a comment the user wrote\n"
    "license: cc-by-4.0   # trailing comment\n"
    "tags:\n"
    "- medical\n"
    "  # indented comment\n"
    "configs:\n"
    "  - config_name: default\n"
    "    data_files: data/*.parquet\n"
    "\n"
    "---\n"
    "# My dataset\n"
    "\n"
    "Hand-written text with *markdown*, trailing spaces   \n"
    "and no final newline"
)
READMES = {
    "none": "",
    "no_header": "# Title\n\nSome text.\n",
    "empty_header": "---\n---\n",
    "empty_header_body": "---\n---\n\nBody after an empty header.\n\n\n",
    "unrelated_keys": UNRELATED,
    "crlf": "---\r\nlicense: mit\r\n---\r\n# Windows card\r\n\r\nLine two.\r\n",
    "markers_in_middle": f"# Top\n\nBefore.\n\n{START}\nold generated text\n{END}\n\nAfter the section: mine.\n",
}


def strip_ours(text: str) -> str:
    """The README with goalcover's section content, YAML key block and header list items removed: what the user
    owns."""
    text = re.sub(re.escape(START) + r".*?" + re.escape(END), START + END, text, flags=re.S)
    text = re.sub(r"^(tags|annotations_creators):\r?\n- (goalcover|machine-generated)\r?\n", "", text, flags=re.M)
    text = re.sub(r"^- (goalcover|machine-generated)\r?\n", "", text, flags=re.M)  # added to the user's own list
    return re.sub(r"^goalcover:\n(?:[ \t].*\n|\n(?=[ \t]))*", "", text, flags=re.M)


def reports():
    ds = dataset()
    first = compute_coverage(ds, SPEC)
    second = compute_coverage(ds, SPEC, threshold=3, min_coverage=0.5)  # different numbers, different section
    return (first, find_gaps(ds, SPEC, first, cluster=False)), (second, find_gaps(ds, SPEC, second, cluster=False))


@pytest.mark.parametrize("case", sorted(READMES))
def test_only_section_and_key_change(tmp_path, case):
    original = READMES[case]
    readme = tmp_path / "README.md"
    if case != "none":
        readme.write_bytes(original.encode())
    (r1, g1), (r2, g2) = reports()
    write_card(readme, r1, PROVENANCE, g1)
    first = readme.read_bytes().decode()
    write_card(readme, r2, PROVENANCE, g2, target=Target(0.5))
    second = readme.read_bytes().decode()
    write_card(readme, r2, PROVENANCE, g2, target=Target(0.5))
    third = readme.read_bytes().decode()
    assert first != second and second == third  # the section follows the report; reruns are stable
    assert strip_ours(first) == strip_ours(second)  # every byte outside ours is the same across runs
    outside = strip_ours(first)
    # ...and it is the original, plus only the header lines and the marker pair the first run had to add.
    if original.startswith("---"):
        header_end = original.index("---", 3) if case != "crlf" else original.index("---\r\n", 3)
        assert outside.startswith(original[:header_end])
        body = original[original.index("\n", header_end) + 1:]
    else:
        assert outside.startswith("---\n---\n")
        body = original
    rest = outside[outside.index("---", 3):]
    rest = rest[rest.index("\n") + 1:]
    if START in original:
        assert rest == body.replace("\nold generated text\n", "")
    else:
        assert rest.startswith(body) and rest[len(body):].strip() == START + END
    for text in (first, second):
        assert text.count(START) == 1 and text.count(END) == 1
    if case == "crlf":
        assert "# Windows card\r\n\r\nLine two.\r\n" in second
    assert read_card(readme) == card_summary(r2, PROVENANCE, g2, Target(0.5))
    assert (tmp_path / PLOT_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / HEATMAP_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unrelated_keys_are_kept_for_the_hub(tmp_path):
    from huggingface_hub import DatasetCard

    readme = tmp_path / "README.md"
    readme.write_text(UNRELATED)
    (report, gaps), _ = reports()
    write_card(readme, report, PROVENANCE, gaps)
    data = DatasetCard.load(readme).data.to_dict()
    assert data["license"] == "cc-by-4.0" and data["tags"] == ["medical", "goalcover"]
    assert data["annotations_creators"] == ["machine-generated"]
    assert data["configs"] == [{"config_name": "default", "data_files": "data/*.parquet"}]
    assert data["goalcover"]["subgoals"]["explains_use"] == {
        "coverage": 0.75, "low": 0.75, "high": 0.75, "decision": "covered", "method": "judge", "labels": 0,
        "judge_coverage": 0.75, "support": 15, "scored": 20, "mean": 4.25}
    assert data["goalcover"]["subgoals"]["advises_clinician"]["high"] > 0  # 19 of 20 rows seen


def test_section_content(tmp_path):
    (report, gaps), _ = reports()
    gaps = find_gaps(dataset(), SPEC, report)  # with themes
    text = render_section(report, PROVENANCE | {"embedded": True}, gaps, repo_id="me/meds")
    assert "Judge quality" in text and "How to read this" in text
    assert f"]({PLOT_NAME})" in text and f"]({HEATMAP_NAME})" in text
    order = [text.index(f"(`{sid}`): ") for sid in ("states_dose", "advises_clinician", "warns_side_effects")]
    assert order == sorted(order)  # ranked
    assert "short by 4" in text and "short by 1" in text
    # evidence rows link to the Hub viewer at their position
    assert "[`r07`](https://huggingface.co/datasets/me/meds/viewer/default/train?row=7)" in text
    assert "| `score_v1@test` |" in text and SPEC.content_hash() in text
    local = render_section(report, PROVENANCE, gaps)
    assert "Judge quality" not in local and "`r07`" in local and "huggingface.co" not in local


def test_damaged_markers_and_bad_yaml_are_refused(tmp_path):
    (report, gaps), _ = reports()
    section, summary = render_section(report, PROVENANCE, gaps), card_summary(report, PROVENANCE, gaps)
    with pytest.raises(CardError, match="markers are damaged"):
        merge_card(f"{START}\n{START}\n{END}\n", section, summary)
    with pytest.raises(CardError, match="never closed"):
        merge_card("---\nlicense: mit\n# body\n", section, summary)
    with pytest.raises(CardError, match="not valid YAML"):
        merge_card("---\nlicense: [mit\n---\n", section, summary)
    readme = tmp_path / "README.md"
    readme.write_text("---\nlicense: [mit\n---\nmine\n")
    with pytest.raises(CardError):
        write_card(readme, report, PROVENANCE, gaps)
    assert readme.read_text() == "---\nlicense: [mit\n---\nmine\n"  # untouched


def test_read_card_paths_and_errors(tmp_path):
    assert read_card(_write(tmp_path / "plain.md", "# no header\n")) is None
    assert read_card(_write(tmp_path / "other.md", "---\nlicense: mit\n---\n")) is None
    with pytest.raises(CardError, match="no such card file"):
        read_card(tmp_path / "missing.md")
    (report, gaps), _ = reports()
    folder = tmp_path / "card"
    write_card(folder / "README.md", report, PROVENANCE, gaps)
    assert read_card(folder)["spec_hash"] == SPEC.content_hash()


def test_read_card_from_the_hub(tmp_path, monkeypatch):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    (report, gaps), _ = reports()
    write_card(tmp_path / "README.md", report, PROVENANCE, gaps)
    calls = []

    def fake_download(self, repo_id, filename, **kwargs):
        calls.append((repo_id, filename, kwargs.get("repo_type"), kwargs.get("revision")))
        if repo_id != "me/meds":
            raise hub_error(RepositoryNotFoundError)
        return str(tmp_path / "README.md")

    monkeypatch.setattr(HfApi, "hf_hub_download", fake_download)
    assert read_card("me/meds", revision="v1")["gaps"] == [g.subgoal for g in gaps]
    assert calls == [("me/meds", "README.md", "dataset", "v1")]
    with pytest.raises(CardError, match="no such dataset"):
        read_card("me/other")


def _write(path, text):
    path.write_text(text)
    return path


# ---- how far to trust it -----------------------------------------------------------------------------------------
LABELS = {**{(r, "explains_use"): int(r < 8) for r in range(20)},
          **{(r, "warns_side_effects"): int(r in (0, 1, 5, 6)) for r in range(12)}}
VALIDATION = {"domain": "meds", "target": 0.31, "target_ci": (0.2, 0.4), "nontarget": 0.02, "nontarget_ci": (0.0, 0.05),
              "d": 1.4, "d_ci": (0.9, 2.0), "n_target": 1, "n_nontarget": 3, "targets": {"states_dose": 0.4}}


def test_section_without_labels_says_the_figures_are_the_judges_opinion():
    (report, gaps), _ = reports()
    text = render_section(report, PROVENANCE, gaps)
    trust = text[text.index("### How far to trust this"):text.index("### Provenance")]
    assert "These coverage figures are the judge's uncalibrated opinion" in trust
    assert "`goalcover label RUN`" in trust and "`goalcover check RUN`" in trust
    assert "Corruption experiment" not in trust and "| Labels (+/−) |" not in trust
    assert "| 75% | 75% – 75% | covered | judge's opinion | 15/20 |" in text
    assert "| ⚠️ gap #3 | judge's opinion | 3/20 |" in text  # warns_side_effects: 15%, every row seen


def test_section_with_labels_and_a_validation():
    ds = dataset()
    report = compute_coverage(ds, SPEC, labels=LABELS)
    report.validation = VALIDATION
    text = render_section(report, PROVENANCE, find_gaps(ds, SPEC, report, cluster=False))
    trust = text[text.index("### How far to trust this"):text.index("### Provenance")]
    assert "uncalibrated opinion: no person" not in trust and "A person labelled 32 (sample, subgoal) pairs" in trust
    assert "| `explains_use` | 20 (8/12) | 0." in trust and "| **overall** | 32 (12/20) |" in trust
    assert "| `explains_use` | 75% | 40% | 40% – 40% | covered |" in trust
    assert "Still the judge's uncalibrated opinion (fewer than 10 labels): `states_dose`, `advises_clinician`" in trust
    assert "fell by 31% [20%, 40%] on average, against 2% [0%, 5%]" in trust and "`states_dose` 40%" in trust
    assert "calibrated (12 labels)" in text and "Uncertain (the interval straddles the target): `warns_side_effects`" \
        in text


def test_yaml_key_carries_intervals_decisions_methods_and_labels(tmp_path):
    ds = dataset()
    report = compute_coverage(ds, SPEC, labels=LABELS, sample={"rows": 20, "of": 200, "seed": 4})
    report.validation = VALIDATION
    gaps = find_gaps(ds, SPEC, report, cluster=False)
    write_card(tmp_path / "README.md", report, PROVENANCE, gaps)
    summary = read_card(tmp_path)
    assert summary == card_summary(report, PROVENANCE, gaps)  # what the Hub reads back is what was written
    warns = summary["subgoals"]["warns_side_effects"]
    assert warns["method"] == "calibrated" and warns["labels"] == 12 and warns["decision"] in ("uncertain", "gap")
    assert warns["low"] < warns["coverage"] < warns["high"]
    dose = summary["subgoals"]["states_dose"]
    assert dose["method"] == "judge" and dose["labels"] == 0 and 0 == dose["low"] < dose["high"]  # 20 of 200 rows
    assert summary["sample"] == {"rows": 20, "of": 200, "seed": 4} and summary["confidence"] == 0.95
    assert summary["labels"] == 32 and summary["agreement"]["explains_use"]["labels"] == 20
    assert summary["validation"]["target_ci"] == [0.2, 0.4]
    text = (tmp_path / "README.md").read_text()
    assert "20 of 200 samples (a seeded random sample) were scored" in text
    assert "estimated from 20 of 200 rows" in text
