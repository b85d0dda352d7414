"""The shared-prefix path computes what a plain forward computes, and the scorer uses it."""

import pytest
import torch
from fake_engine import FakeEngine, chat_text
from pydantic import BaseModel, Field

from goalcover_hf import Scorer
from goalcover_hf.engines import get_engine
from goalcover_hf.engines.transformers import TransformersEngine
from goalcover_hf.judge import DEFAULT_PROMPT
from goalcover_hf.prompts import load_prompt, score_chat

SAMPLES = [
    "QUESTION: How much ibuprofen?\n\nANSWER: 200 mg every 6 hours, with food.",
    "def add(a, b):\n    return a + b  # numbers 0123456789",
    "ok",
]


SCORE_CHOICES = ("1", "2", "3", "4", "5")


def digit_chat(sample, sub):
    """The chat the default method asks for one pair's score digit."""
    return score_chat(load_prompt(DEFAULT_PROMPT), sample, sub, "ask_digit")


@pytest.fixture
def engine(tiny_model):
    return get_engine(tiny_model, "transformers")


@pytest.fixture
def fresh_engine(tiny_model):
    return TransformersEngine(tiny_model)  # its own, not the process's shared one: no prefix states kept yet


@pytest.fixture
def groups(spec):
    # Uneven groups: samples of different lengths, one with a single subgoal.
    return [[digit_chat(s, sub) for sub in spec.subgoals] for s in SAMPLES[:2]] + [[digit_chat(SAMPLES[2], spec.subgoals[1])]]


def _full_forward_logits(engine, chat, choices):
    ids = engine.tokenizer(engine.chat_text(chat), add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logits = engine.model(input_ids=ids).logits[0, -1]
    return logits[engine.choice_token_ids(choices)].tolist()


def _flat(nested):
    return [v for g in nested for row in g for v in row]


def test_shared_prefix_logits_equal_full_forward(fresh_engine, groups):
    engine = fresh_engine
    engine.tokens_read = 0
    shared = engine.choice_logits_shared(groups, SCORE_CHOICES)
    for group, got in zip(groups, shared):
        for chat, values in zip(group, got):
            assert values == pytest.approx(_full_forward_logits(engine, chat, SCORE_CHOICES), abs=1e-4)
    # And the sharing happened: fewer tokens read than the prompts hold.
    total = sum(len(engine.tokenizer(engine.chat_text(c), add_special_tokens=False)["input_ids"])
                for g in groups for c in g)
    assert engine.tokens_read < total
    # Prefix states are kept between calls: the same groups again read only their suffixes, with the same logits.
    first = engine.tokens_read
    engine.tokens_read = 0
    again = engine.choice_logits_shared(groups, SCORE_CHOICES)
    assert _flat(again) == pytest.approx(_flat(shared), abs=1e-5)
    assert engine.tokens_read < first
    # Explanation prompts (same samples, another cue) start from the kept sample states and still match.
    other = [[c[:1] + [{"role": "user", "content": c[1]["content"] + " Be brief."}] for c in g] for g in groups]
    engine.tokens_read = 0
    for group, got in zip(other, engine.choice_logits_shared(other, SCORE_CHOICES)):
        for chat, values in zip(group, got):
            assert values == pytest.approx(_full_forward_logits(engine, chat, SCORE_CHOICES), abs=1e-4)
    assert engine.tokens_read < first


def test_shared_probs_match_plain_choice_probs(engine, groups):
    shared = engine.choice_probs_shared(groups, SCORE_CHOICES)
    for group, got in zip(groups, shared):
        plain = engine.choice_probs(group, SCORE_CHOICES)
        for p, q in zip(plain, got):
            assert q == pytest.approx(p, abs=1e-5)
            assert sum(q) == pytest.approx(1.0)


class Short(BaseModel):
    explanation: str = Field(max_length=40)


def test_shared_generation_matches_outlines(engine, groups):
    shared = engine.generate_json_shared(groups, Short, 24)
    plain = engine.generate_json([c for g in groups for c in g], Short, 24)
    assert [s for g in shared for s in g] == plain


def test_logprobs_scorer_uses_shared_path_and_matches_naive(engine, spec):
    spy = FakeEngine(wraps=engine)  # the real engine answers; the spy records what the scorer asked
    scorer = Scorer(spec, engine=spy, mode="logprobs", explain="none", cache=False)
    judged = scorer.judge_texts(SAMPLES)
    [call] = spy.calls
    assert call.method == "choice_probs_shared" and len(call.groups) == len(SAMPLES)  # one shared call for the batch
    for sample, row in zip(SAMPLES, judged):
        naive = engine.choice_probs([digit_chat(sample, sub) for sub in spec.subgoals], SCORE_CHOICES)
        for j, p in zip(row, naive):
            assert j.expected == pytest.approx(sum((k + 1) * pk for k, pk in enumerate(p)), abs=1e-4)
            assert j.score == max(range(5), key=lambda k: p[k]) + 1


@pytest.mark.parametrize("explain, expected_explained", [("low", 2), ("all", 4), ("none", 0)])
def test_explain_policy_is_batched(spec, explain, expected_explained):
    fake = FakeEngine(probs=lambda chat, choices: 2 if "ibuprofen" in chat_text(chat) else 5,
                      generate={"explanation": "missing"})
    scorer = Scorer(spec, engine=fake, mode="logprobs", explain=explain, cache=False)
    judged = scorer.judge_texts(SAMPLES[:2])
    assert [[j.score for j in row] for row in judged] == [[2, 2], [5, 5]]
    explained = [len(call.chats) for call in fake.calls if call.schema is not None]
    assert sum(explained) == expected_explained
    assert len(explained) == (1 if expected_explained else 0)  # all explanations in one batched call
    low_explained = [j.explanation for j in judged[0]]
    assert low_explained == (["missing", "missing"] if explain != "none" else [None, None])
