import ast
import re
import sys
from collections import Counter
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


def label(check, output, input_full="", domain="medical"):
    """The label a check gives a sample, judged as the judge reads it (input included)."""
    s = sample(output, input_full, domain)
    return jp.CHECKS[check].label(s.output, s.text)


def words(text):
    return Counter(re.findall(r"[\w$%.']+", text.replace(";", " ").lower().replace(".", " ")))


# ---- code ---------------------------------------------------------------------------------------------------------
def test_code_checks():
    assert jp.has_docstring(CODE) and jp.has_type_hints(CODE) and jp.has_doctest(CODE)
    assert not (jp.has_docstring(PLAIN) or jp.has_type_hints(PLAIN) or jp.has_doctest(PLAIN))
    assert jp.has_type_hints("def f(a) -> int:\n    return a\n")
    assert jp.has_type_hints("def f(*args: int):\n    pass\n")
    assert not jp.has_doctest('def f():\n    """Example: f() == 1"""\n    return 1\n')
    assert not jp.has_docstring("def f(:\n")  # unparsable code shows nothing


def test_code_negatives_exclude_what_reads_like_the_property():
    annotated_body = "def f(a):\n    b: int = a\n    return b\n"
    assert not jp.has_type_hints(annotated_body) and label("has_type_hints", annotated_body) is None
    assert label("has_type_hints", "from typing import List\n\ndef f(a):\n    return a\n") is None
    assert label("has_type_hints", PLAIN) == 0
    fake_doctest = 'def f():\n    s = ">>> f()"\n    return s\n'
    assert not jp.has_doctest(fake_doctest) and label("has_doctest", fake_doctest) is None


def test_code_corruptions_remove_exactly_their_property():
    [(_, no_hints)] = jp.drop_type_hints(sample(CODE, domain="code"))
    assert "def total(xs, start = 0):" in no_hints or "def total(xs, start=0):" in no_hints
    assert not jp.has_type_hints(no_hints) and jp.has_docstring(no_hints) and jp.has_doctest(no_hints)
    # the typing import would still announce type hints: it goes with the annotations it served
    assert "typing" not in no_hints and label("has_type_hints", no_hints) == 0
    ast.parse(no_hints)
    [(_, no_tests)] = jp.drop_doctests(sample(CODE, domain="code"))
    assert ">>>" not in no_tests and "Sum the list." in no_tests and '"""' in no_tests
    assert jp.has_docstring(no_tests) and jp.has_type_hints(no_tests) and not jp.has_doctest(no_tests)
    assert "return start + sum(xs)" in no_tests
    [(_, no_doc)] = jp.drop_docstrings(sample(CODE, domain="code"))
    assert not jp.has_docstring(no_doc) and jp.has_type_hints(no_doc)
    assert jp.drop_type_hints(sample(PLAIN, domain="code")) == []  # nothing to remove: no candidate


def test_drop_doctests_takes_the_example_header_along():
    code = 'def f(x):\n    """Double x.\n\n    Example:\n    >>> f(2)\n    4\n    """\n    return 2 * x\n'
    [(_, out)] = jp.drop_doctests(sample(code, domain="code"))
    assert "Example" not in out and "Double x." in out and label("has_doctest", out) == 0


# ---- medical ------------------------------------------------------------------------------------------------------
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


def test_an_unlisted_drug_is_no_negative():
    # atropine was missing from the list: a copy with ketamine replaced still named it and was labelled 0
    assert label("names_drug", "Atropine reduces hypersalivation.") == 1
    for text in ("Scopolamine reduces hypersalivation.", "Glycopyrrolate dries secretions.", "Take Lipitor daily.",
                 "Give two tablets.", "Start a statin.", "Ask about Xarelto."):
        assert label("names_drug", text) is None, text
    assert label("names_drug", "Rest and drink water. Most children recover within a week.") == 0


def test_drug_variant_of_the_atropine_row():
    answer = ("Ketamine sedation was well tolerated. Adding atropine reduces hypersalivation. "
              "No serious adverse events were noted.")
    s = jp.Sample("x", "medical", answer, "Is atropine needed with ketamine sedation?", "Question", "Answer")
    assert jp.CHECKS["names_drug"].label(s.output, s.text) == 1
    for inp, out in jp.drop_drug_sentences(s):
        v = jp.Sample("x~", "medical", out, inp, "Question", "Answer")
        assert not re.search(r"atropine|ketamine|medication", out, re.I)
        assert jp.CHECKS["names_drug"].label(v.output, v.text) is None  # the question still names both: no negative
    clean = jp.Sample("y", "medical", answer, "Is the adjunct useful in children?", "Question", "Answer")
    [(inp, out)] = jp.drop_drug_sentences(clean)
    assert out == "No serious adverse events were noted."
    assert jp.CHECKS["names_drug"].label(out, jp.Sample("y~", "medical", out, inp, "Question", "Answer").text) == 0


def test_digits_inside_identifiers_are_not_numbers():
    for text in ("CA125", "high CA125 levels", "a pT3 tumour", "TRIM37 gene", "COVID-19 patients", "IL-6 rises",
                 "HbA1c", "type 2 diabetes", "from 2002 to 2007", "8p11 deletion", "(Tab. 2, Fig. 2)"):
        assert not jp.has_number(text), text
        assert label("has_number", text) is None, text  # a digit the judge might read as a number: no negative
    for text in ("in 3 of 10 cases", "(n = 91)", "pupils larger than 6 mm", "a 50% (1 in 2) risk", "30-day mortality",
                 "with>5 lesions", "10,000 people", "1.6%"):
        assert jp.has_number(text), text
    assert label("has_number", "Two of them recovered.") is None  # a number word
    assert label("has_number", "Most of them recovered.") == 0


def test_practitioners_are_professionals():
    assert jp.mentions_professional("respiratory care practitioners were the most proficient")
    assert jp.mentions_professional("a general practitioner") and jp.mentions_professional("the radiologist")
    assert label("mentions_professional", "Ask the ward staff.") is None  # might be care staff: no negative


def test_a_question_that_shows_the_property_makes_no_negative():
    assert label("mentions_professional", "Rest and fluids help.", "Should I see a doctor?") is None
    assert label("mentions_professional", "Rest and fluids help.", "Should I rest?") == 0
    assert label("names_drug", "It is not needed.", "Is aspirin needed?") is None
    assert label("has_number", "It is rare.", "Do 5 in 100 people get it?") is None
    assert label("addresses_reader", "the service may close accounts.", "you may not share accounts.",
                 "legal") is None
    assert label("has_percentage", "q1 eps $1.", "margins grew 5%.", "financial") is None
    assert label("has_currency", "q1 sales rose 5 percent.", "revenue was $3 billion.", "financial") is None


def test_money_without_a_currency_sign_is_no_negative():
    assert label("has_currency", "q2 revenue 452.2 million.", domain="financial") is None
    assert label("has_currency", "eps of 0.83.", domain="financial") is None
    assert label("has_currency", "outlook reaffirmed.", domain="financial") == 0


def test_sentence_counts_with_abbreviations_are_left_out():
    assert label("one_sentence", "they can delete your data files music etc. at any time.", domain="legal") is None
    assert label("one_sentence", "we may change these terms.", domain="legal") == 1
    assert label("one_sentence", "we may. you can.", domain="legal") == 0


# ---- variants -----------------------------------------------------------------------------------------------------
def test_removing_variants_only_drop_text():
    med = "Aspirin helps. About 20 percent of people respond. See a doctor."
    assert jp.drop_number_sentences(sample(med)) == [("", "Aspirin helps. See a doctor.")]
    assert jp.drop_drug_sentences(sample(med)) == [("", "About 20 percent of people respond. See a doctor.")]
    assert jp.drop_professional_sentences(sample(med)) == [("", "Aspirin helps. About 20 percent of people respond.")]
    fin = "q3 margin rose 2.5 percent.\nq3 eps $1.20.\noutlook reaffirmed."
    [(_, no_money)] = jp.drop_money_lines(sample(fin))
    [(_, no_pct)] = jp.drop_percentage_lines(sample(fin))
    assert not jp.has_currency(no_money) and jp.has_percentage(no_money)
    assert jp.has_currency(no_pct) and not jp.has_percentage(no_pct)
    for original, out in ((med, jp.drop_drug_sentences(sample(med))[0][1]), (fin, no_money), (fin, no_pct)):
        assert not words(out) - words(original)  # no replacement text ("a medication", "an undisclosed amount")


def test_third_person_rewrites_the_excerpt_too():
    [(inp, out)] = jp.third_person(sample("you agree that your data is ours. you re responsible.", "you may post."))
    assert out == "users agree that their data is ours. users are responsible." and inp == "users may post."
    assert label("addresses_reader", out, inp, "legal") == 0


def test_brevity_variants_keep_every_word():
    two = "there is no guarantee of quality. you still pay for it."
    [(_, one)] = jp.join_sentences(sample(two))
    assert one == "there is no guarantee of quality; you still pay for it." and jp.one_sentence(one)
    assert words(one) == words(two)
    five = "q1 eps $1.\nq1 sales $2 million.\nsees q2 eps $1.\nsees fy eps $4.\noutlook reaffirmed."
    [(_, three)] = jp.join_lines(sample(five))
    assert jp.at_most_three_lines(three) and len(jp.lines(three)) == 3 and words(three) == words(five)
    assert jp.join_lines(sample("a.\nb.\nc.")) == [] and jp.join_sentences(sample("one sentence.")) == []
    assert jp.CORRUPTIONS["join_lines"][1] and not jp.CORRUPTIONS["drop_money_lines"][1]


def test_sample_text_cuts_long_inputs_only():
    s = sample("the summary", "x" * 1000)
    assert s.text.startswith("In:\n") and s.text.endswith("Out:\nthe summary") and "[...]" in s.text
    assert jp.Sample("c", "code", "def f(): pass").text == "def f(): pass"


def test_subgoal_file_is_valid():
    entries = jp.load_subgoals()
    assert {e["domain"] for e in entries} == set(jp.DOMAINS)
    assert all(jp.to_subgoal(e).description for e in entries)


# ---- --limit ------------------------------------------------------------------------------------------------------
def _group(gid, domain, labels, target=None):
    return [jp.Pair(gid, domain, s, lab, gid, gid, target) for s, lab in labels.items()]


def test_limit_keeps_a_positive_and_a_negative_per_subgoal():
    pairs = (_group("c1", "d", {"a": 1, "b": 1}, target="a") + _group("c2", "d", {"a": 1, "b": 1}, target="a")
             + _group("n1", "d", {"a": 1, "b": 1}) + _group("n2", "d", {"a": 0, "b": 1})
             + _group("n3", "d", {"a": 1, "b": 0}))
    few = jp.limit_pairs(pairs, 4)  # round-robin alone would take the two variant groups: no negative at all
    assert jp.lacking(few) == {} and {p.group for p in few} == {"n2", "n3"}
    one = jp.limit_pairs(pairs, 2)  # room for one group: the rarest labels first, and the rest is said
    assert {p.group for p in one} == {"n2"} and jp.lacking(one, ["a", "b"]) == {"a": ["positive"], "b": ["negative"]}
    assert jp.lacking([], ["a"]) == {"a": ["positive", "negative"]}


needs_data = pytest.mark.skipif(not jp.data_dir().is_dir(), reason="external data folder absent")


@needs_data
def test_build_pairs_is_deterministic_and_variants_change_only_their_target():
    pairs, entries = jp.build_pairs(seed=0)
    again, _ = jp.build_pairs(seed=0)
    assert [(p.sample_id, p.subgoal_id, p.label) for p in pairs] == [(p.sample_id, p.subgoal_id, p.label) for p in again]
    assert len(pairs) >= 200 and {p.domain for p in pairs} == set(jp.DOMAINS)
    by = {(p.sample_id, p.subgoal_id): p.label for p in pairs}
    variants = [p for p in pairs if p.target]
    assert variants and any(p.meta.get("adds") for p in variants)
    for p in variants:
        original = by[(p.group, p.subgoal_id)]
        if p.subgoal_id == p.target:
            assert (original, p.label) == ((0, 1) if p.meta.get("adds") else (1, 0))
        else:
            assert p.label == original
    assert jp.lacking(pairs, [e["id"] for e in entries]) == {}  # every subgoal has both labels


@needs_data
def test_no_negative_shows_its_property_anywhere_the_judge_reads():
    pairs, entries = jp.build_pairs(seed=0)
    check = {e["id"]: jp.CHECKS[e["check"]] for e in entries}
    negatives = [p for p in pairs if p.label == 0 and check[p.subgoal_id].might]
    assert negatives
    for p in negatives:
        assert not check[p.subgoal_id].might(p.text), (p.sample_id, p.subgoal_id)
    atropine = [p for p in pairs if p.group == "pubmedqa-16498158" and p.subgoal_id == "med_names_drug"]
    assert all(p.label == 1 for p in atropine)  # its question names the drugs: never a negative


@needs_data
def test_variants_add_no_words_and_brevity_ones_keep_them_all():
    pairs, _ = jp.build_pairs(seed=0)
    text = {p.sample_id: p.text for p in pairs}
    outputs = {sid: t.rsplit(":\n", 1)[-1] for sid, t in text.items()}
    for p in pairs:
        if not p.target or p.target.startswith(("legal_addresses", "code_")):  # third person / code edits: own tests
            continue
        new, old = words(outputs[p.sample_id]), words(outputs[p.group])
        assert not new - old, p.sample_id
        if p.meta.get("adds"):
            assert new == old, p.sample_id


@needs_data
def test_limit_is_stratified_on_the_real_pairs():
    pairs, entries = jp.build_pairs(seed=0)
    few = jp.limit_pairs(pairs, 60)
    assert 0 < len(few) <= 60 and {p.domain for p in few} == set(jp.DOMAINS)
    assert jp.lacking(few, [e["id"] for e in entries]) == {}
    for g in {p.group for p in few}:  # whole groups
        assert len([p for p in few if p.group == g]) == len([p for p in pairs if p.group == g])
    assert any(p.target for p in few)


# ---- bench_judge: statistics, per-subgoal figures and the digits' raw share ---------------------------------------
def test_auc_interval():
    import bench_judge as bj

    lo, hi = bj.auc_interval(0.8, 10, 20)
    assert 0.55 < lo < 0.8 < hi < 1.0
    wide, narrow = bj.auc_interval(1.0, 2, 2), bj.auc_interval(1.0, 30, 30)
    assert wide[1] == narrow[1] == 1.0 and wide[0] < narrow[0] < 1.0  # a perfect split still has a width
    assert bj.auc_interval(None, 3, 3) is None and bj.auc_interval(0.7, 0, 3) is None


def test_evaluate_reports_subgoals_and_signs_adding_variants():
    import bench_judge as bj

    P = jp.Pair
    pairs = [P("o", "d", "brief", 0, "o", "o"), P("o", "d", "money", 1, "o", "o"),
             P("j", "d", "brief", 1, "j", "o", "brief", {"adds": True}), P("j", "d", "money", 1, "j", "o", "brief",
                                                                              {"adds": True})]
    res = bj.evaluate(pairs, {("o", "brief"): 1.0, ("o", "money"): 5.0, ("j", "brief"): 5.0, ("j", "money"): 5.0})
    assert res["selectivity"]["target_drop"] == 4.0 and res["selectivity"]["nontarget_drop"] == 0.0
    assert res["auc_by_subgoal"]["brief"]["auc"] == 1.0 and res["auc_by_subgoal"]["brief"]["auc_ci"][1] == 1.0
    assert res["auc_by_subgoal"]["money"] == {"scored": 2, "auc": None, "auc_ci": None}
    assert bj.subgoal_counts(pairs) == {"brief": {"pairs": 2, "positives": 1}, "money": {"pairs": 2, "positives": 2}}


class RawEngine:
    """A fake engine: digits get raw probabilities that sum to ``share`` (half that after a "No" verdict);
    "Yes"/"No" get 0.3 / 0.1."""

    name, identity = "transformers", "fake-judge"

    def __init__(self, share=0.6, takes_renormalize=True):
        self.share = share
        if not takes_renormalize:
            self.choice_probs_shared = self._plain
            self.choice_probs = lambda chats, choices: [r for [r] in self._plain([[c] for c in chats], choices)]

    def token_counter(self):
        from goalcover_hf.truncation import CharCounter

        return CharCounter(None)

    def _raw(self, chat, choices):
        if tuple(choices) == ("Yes", "No"):
            return [0.3, 0.1]
        share = self.share / 2 if {"role": "assistant", "content": "No"} in chat else self.share
        return [share * w for w in (0.0, 0.0, 0.25, 0.25, 0.5)]

    def choice_probs(self, chats, choices, renormalize=True):
        return [r for [r] in self.choice_probs_shared([[c] for c in chats], choices, renormalize)]

    def choice_probs_shared(self, groups, choices, renormalize=True):
        raws = [[self._raw(chat, choices) for chat in g] for g in groups]
        return [[[x / sum(r) for x in r] if renormalize else r for r in g] for g in raws]

    def _plain(self, groups, choices):
        return RawEngine.choice_probs_shared(self, groups, choices, renormalize=True)


def _judge_through(engine, texts, prompt=None):
    import bench_judge as bj

    from goalcover_hf.scorer import Scorer
    from goalcover_hf.spec import GoalSpec

    sub = jp.to_subgoal(jp.load_subgoals()[0])
    recorder = bj.ShareRecorder(engine)
    scorer = Scorer(GoalSpec(goal="g", subgoals=[sub]), engine=recorder, explain="none", cache=False)
    memo = bj.MemoJudge(scorer.raw, None, recorder)
    judged = memo.judge_texts(texts, [sub], prompt=prompt)
    return judged, [memo.share(t, sub, prompt) for t in texts], recorder


def test_digit_share_is_recorded_per_judgement_and_scores_stay_renormalized():
    judged, shares, recorder = _judge_through(RawEngine(share=0.6), ["Question:\nq\n\nAnswer:\na", "other text"])
    assert recorder.raw and shares == [pytest.approx(0.6), pytest.approx(0.6)]
    assert judged[0][0].expected == pytest.approx(3 * 0.25 + 4 * 0.25 + 5 * 0.5)  # the renormalized digits


def test_digit_share_of_the_verdict_prompt_is_weighted_by_the_verdict():
    _, shares, _ = _judge_through(RawEngine(share=0.8), ["one sample"], prompt="score_verdict_v1")
    assert shares == [pytest.approx(0.75 * 0.8 + 0.25 * 0.4)]


def test_without_the_engine_option_shares_are_none_and_judging_is_unchanged():
    judged, shares, recorder = _judge_through(RawEngine(takes_renormalize=False), ["a sample"])
    assert not recorder.raw and shares == [None]
    assert judged[0][0].expected == pytest.approx(3 * 0.25 + 4 * 0.25 + 5 * 0.5)


def test_recorder_plain_choice_probs_record_too():
    import bench_judge as bj

    recorder = bj.ShareRecorder(RawEngine(share=0.5))
    [probs] = recorder.choice_probs([[{"role": "user", "content": "x"}]], ["1", "2", "3", "4", "5"])
    assert probs == pytest.approx([0, 0, 0.25, 0.25, 0.5]) and sum(recorder.take()[0][2]) == pytest.approx(0.5)
    plain = bj.ShareRecorder(RawEngine(takes_renormalize=False))
    assert plain.choice_probs([[{"role": "user", "content": "x"}]], ["1", "2", "3", "4", "5"])[0][4] == 0.5
    assert plain.take()[0][2] is None


def test_chunk_shares_refuses_records_that_do_not_match():
    import bench_judge as bj

    chat = [{"role": "user", "content": "<<<SAMPLE\nalpha\nSAMPLE>>>"}]
    digits = ("1", "2", "3", "4", "5")
    assert bj.chunk_shares([(digits, chat, [0.1] * 5)], ["alpha"]) == [pytest.approx(0.5)]
    assert bj.chunk_shares([(digits, chat, [0.1] * 5)], ["beta"]) == [None]  # the chat shows another text
    assert bj.chunk_shares([], ["alpha"]) == [None]
    assert bj.share_stats([0.9, None, 0.3]) == {"n": 2, "mean": 0.6, "min": 0.3, "p10": 0.3, "below_half": 1}
    assert bj.share_stats([None]) is None


@needs_data
def test_bench_main_reports_subgoals_and_shares_with_a_fake_engine(monkeypatch, capsys, tmp_path):
    import json

    import bench_judge as bj

    import goalcover_hf.engines as engines
    from goalcover_hf.truncation import CharCounter

    monkeypatch.setattr(engines, "get_engine", lambda *a, **k: RawEngine(share=0.6))  # no model runs
    monkeypatch.setattr(engines, "get_counter", lambda *a, **k: CharCounter(None))
    out = tmp_path / "pairs.jsonl"
    assert bj.main(["--method", "expected,verdict_first", "--limit", "60", "--pairs-out", str(out)]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["digit_share"] == "recorded" and line["lacking"] == {}
    ids = {e["id"] for e in jp.load_subgoals()}
    assert set(line["by_subgoal"]) == ids and all(c["positives"] >= 1 for c in line["by_subgoal"].values())
    assert sum(c["pairs"] for c in line["by_subgoal"].values()) == line["pairs"] <= 60
    for r in line["results"]:
        assert r["errors"] == 0 and r["digit_share"]["n"] > 0 and set(r["auc_by_subgoal"]) == ids
        assert all(b["auc"] == 0.5 and b["auc_ci"][0] < 0.5 < b["auc_ci"][1] for b in r["auc_by_subgoal"].values())
    [plain, verdict] = line["results"]
    assert plain["digit_share"]["mean"] == 0.6 and verdict["digit_share"]["mean"] == 0.525  # .75 * .6 + .25 * .3
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == line["pairs"] and {r["digit_share"] for r in rows} == {0.6}
    assert set(rows[0]["values"]) == {"expected", "verdict_first"}


@needs_data
def test_brevity_subgoals_judge_length_matched_natural_samples():
    from statistics import median

    pairs, _ = jp.build_pairs(seed=0)
    for sid in ("legal_one_sentence", "fin_brief"):
        natural = {lab: [len(p.text.rsplit(":\n", 1)[-1]) for p in pairs
                         if p.subgoal_id == sid and p.label == lab and not p.target] for lab in (0, 1)}
        assert len(natural[1]) == len(natural[0]) > 0
        # without matching, the one-sentence / three-line positives were half as long as the negatives, or less
        assert median(natural[1]) >= 0.6 * median(natural[0]), sid
