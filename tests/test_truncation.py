"""Rows longer than the judge's context are cut in the middle, visibly: in the text, per row, per run and in the card."""

import json
import random
import re

import pytest
from datasets import Dataset
from fake_engine import FakeEngine
from fake_openai import ScriptedServer

from goalcover_hf import Scorer
from goalcover_hf.cli import main
from goalcover_hf.columns import TRUNCATED_COLUMN
from goalcover_hf.engines import get_counter, get_engine
from goalcover_hf.truncation import CharCounter, fit_text

CUT = re.compile(r"\n\[\.\.\. (\d+) tokens cut \.\.\.\]\n")
WORDS = ["take", "200", "mg", "every", "six", "hours", "with", "food;", "café", "剂量", "warning:", "dizziness"]
CONTEXT = 4096  # the tiny model's max_position_embeddings


def text_of(counter, tokens: int, seed: int = 0) -> str:
    """The fewest random words that make at least ``tokens`` tokens for ``counter``."""
    rng = random.Random(seed)
    words = [rng.choice(WORDS) for _ in range(tokens)]  # every word is at least one token
    low, high = 1, len(words)
    while low < high:
        mid = (low + high) // 2
        if len(counter.spans(" ".join(words[:mid]))) >= tokens:
            high = mid
        else:
            low = mid + 1
    return " ".join(words[:low])


def render(question, answer):
    return f"QUESTION: {question}\n\nANSWER: {answer}"


@pytest.fixture
def counter(tiny_model):
    return get_counter(tiny_model)


def spy(tiny_model):
    """The tiny model answers and counts; the spy records every chat the scorer asks."""
    return FakeEngine(wraps=get_engine(tiny_model), counter=get_counter(tiny_model))


def test_fit_text_keeps_head_and_tail_and_says_how_much_it_cut(counter):
    assert counter.context == CONTEXT
    text = text_of(counter, 3000, seed=1)
    assert fit_text(text, 3000, counter) == (text, 0)  # fits: unchanged
    fitted, cut = fit_text(text, 1000, counter)
    head, marker, tail = CUT.split(fitted)[0], CUT.search(fitted), CUT.split(fitted)[-1]
    assert int(marker.group(1)) == cut
    assert text.startswith(head) and text.endswith(tail) and len(head) > 100 and len(tail) > 100
    total = len(counter.spans(text))
    assert len(counter.spans(fitted)) <= 1000  # fits the budget, marker included
    assert total - cut >= 1000 - 32  # and cuts no more than it must (the marker line takes a few tokens)


def test_char_counter_estimates_for_servers():
    counter = CharCounter(context=100)
    assert len(counter.spans("x" * 10)) == 4  # 3 characters per token, rounded up
    fitted, cut = fit_text("a" * 300 + "b" * 300, 50, counter)
    assert fitted.startswith("a" * 60) and fitted.endswith("b" * 60) and cut > 0
    assert len(counter.spans(fitted)) <= 50


def test_long_rows_are_cut_to_fit_and_reported_per_row(tiny_model, spec, counter, tmp_path):
    engine = spy(tiny_model)
    scorer = Scorer(spec, engine=engine, mode="logprobs", explain="none", cache=tmp_path / "pairs.sqlite")
    just_over = text_of(counter, CONTEXT + 40, seed=2)  # the row alone is longer than the whole context
    megabyte = ("Aspirin 81 mg daily. " * 60_000)[:1_000_000]
    ds = Dataset.from_dict({"question": ["How much?", "Dose?", "And this?"],
                            "answer": ["200 mg every 6 hours.", just_over, megabyte]})
    out = ds.map(scorer, batched=True, with_indices=True, features=scorer.features(ds.features))

    real = engine.wraps  # every prompt the engine ran, with its length in the model's own tokens
    prompts = [(text, len(real.tokenizer(text, add_special_tokens=False)["input_ids"]))
               for text in map(real.chat_text, engine.scored)]
    assert max(n for _, n in prompts) + 1 <= CONTEXT  # every prompt plus its one-token reply fits the context
    truncated = out[TRUNCATED_COLUMN]
    assert truncated[0] == 0
    for k in (1, 2):
        sample = render(ds[k]["question"], ds[k]["answer"])
        assert truncated[k] > 0
        marked = [(text, n) for text, n in prompts if f"[... {truncated[k]} tokens cut ...]" in text]
        assert len(marked) == len(spec.subgoals), f"not every prompt carries row {k}'s marker"
        assert all(sample[:80] in text and sample[-80:] in text for text, _ in marked)  # head and tail kept
        # cut what it had to, not much more: the longest prompt of the row nearly fills the context
        assert max(n for _, n in marked) + 1 >= CONTEXT - 40
    for sub in spec.subgoals:
        assert None not in out[f"gc_{sub.id}_score"]

    # The cache key hashes the text the judge read: a later run finds it without asking the engine.
    again_engine = spy(tiny_model)
    fresh = Scorer(spec, engine=again_engine, mode="logprobs", explain="none", cache=tmp_path / "pairs.sqlite")
    again = fresh.judge_texts([render("Dose?", just_over)])[0]
    assert [j.score for j in again] == [out[f"gc_{s.id}_score"][1] for s in spec.subgoals]
    assert again_engine.calls == []


def test_a_context_with_no_room_for_a_sample_is_refused(tiny_model, spec):
    scorer = Scorer(spec, tiny_model, mode="logprobs", explain="low", max_context_tokens=200)
    with pytest.raises(ValueError, match=r"context \(200 tokens\) leaves 0 tokens for a sample.*--max-context-tokens"):
        scorer.judge_texts(["QUESTION: q\n\nANSWER: a"])


def test_server_context_from_the_server_or_the_option(spec):
    long_text = "QUESTION: dose?\n\nANSWER: " + "take 200 mg every six hours. " * 400
    server = ScriptedServer(max_model_len=700)
    try:
        scorer = Scorer(spec, engine="openai", base_url=server.base_url, mode="logprobs", explain="none", cache=False)
        judged = scorer.judge_texts([long_text])[0]
        assert all(j.score == 3 for j in judged)
        sent = server.chats()
        assert len(sent) == len(spec.subgoals)
        for chat in sent:
            assert 600 < CharCounter(None).count_chat(chat) + 1 <= 700  # what was sent fits, by the documented estimate
            assert re.search(r"\[\.\.\. \d+ tokens cut \.\.\.\]", chat[-1]["content"])
        capped = Scorer(spec, engine="openai", base_url=server.base_url, mode="logprobs", explain="none",
                        max_context_tokens=500, cache=False)
        capped.judge_texts([long_text])
        assert all(CharCounter(None).count_chat(chat) + 1 <= 500 for chat in server.chats()[len(sent):])
    finally:
        server.close()
    unknown = ScriptedServer(max_model_len=None)
    try:
        scorer = Scorer(spec, engine="openai", base_url=unknown.base_url, mode="logprobs", explain="none", cache=False)
        scorer.judge_texts([long_text])
        # unknown context: sent whole, the server decides
        assert all(f"<<<SAMPLE\n{long_text}\nSAMPLE>>>" in chat[-1]["content"] for chat in unknown.chats())
    finally:
        unknown.close()


def test_cli_warns_once_and_counts_cut_rows_in_run_report_and_card(tiny_model, spec, counter, tmp_path, write_rows,
                                                                    capsys):
    data = write_rows([{"question": "How much?", "answer": "200 mg."},
                       {"question": "Dose?", "answer": text_of(counter, 5000)}])
    out = tmp_path / "run"
    assert main(["score", "--data", str(data), "--spec", str(spec.save(tmp_path / "goal.yaml")), "--model", tiny_model,
                 "--mode", "logprobs", "--explain", "none", "--cache", str(tmp_path / "p.sqlite"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "1 of 2 rows were longer than the judge's context (4096 tokens)" in warnings[0]
    run = json.loads((out / "run.json").read_text())
    assert run["truncation"]["rows_cut"] == 1 and run["truncation"]["context_tokens"] == CONTEXT
    assert run["truncation"]["tokens_cut"] > 5000 - CONTEXT

    assert main(["report", str(out)]) == 0
    assert "1 row(s) were longer than the judge's context" in capsys.readouterr().out
    readme = tmp_path / "README.md"
    assert main(["card", str(out), "--readme", str(readme)]) == 0
    card = readme.read_text(encoding="utf-8")
    assert "| Long rows | 1 of 2 cut in the middle to fit the judge's context (4096 tokens)" in card
    assert "truncated_rows: 1" in card


def test_llamacpp_counts_with_the_gguf_tokenizer_and_n_ctx():
    # No llama-cpp-python needed: the GGUF's tokenizer is read by transformers, its context capped by n_ctx.
    from goalcover_hf.engines import engine_options, get_counter

    counter = get_counter("embedded", "llamacpp", engine_options("llamacpp", {"n_ctx": 2048}))
    assert counter.context == 2048
    chat = [{"role": "user", "content": "How much ibuprofen?"}]
    assert counter.count_chat(chat) > len(counter.spans("How much ibuprofen?")) > 0  # the template adds role tokens
    text = "Take 200 mg every six hours with food. " * 400
    fitted, cut = fit_text(text, 500, counter)
    assert cut > 0 and len(counter.spans(fitted)) <= 500
