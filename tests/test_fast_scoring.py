"""The shared-prefix path computes what a plain forward computes, and the scorer uses it."""

import pytest
import torch
from pydantic import BaseModel, Field

from goalcover_hf.engines import get_engine
from goalcover_hf.judge import SCORE_CHOICES
from goalcover_hf.scorer import Scorer

SAMPLES = [
    "QUESTION: How much ibuprofen?\n\nANSWER: 200 mg every 6 hours, with food.",
    "def add(a, b):\n    return a + b  # numbers 0123456789",
    "ok",
]


@pytest.fixture
def engine(tiny_model):
    return get_engine(tiny_model, "transformers")


@pytest.fixture
def groups(tiny_model, spec):
    scorer = Scorer(spec, tiny_model, mode="logprobs", cache=False)
    # Uneven groups: samples of different lengths, one with a single subgoal.
    return [[scorer.chat(s, sub, "ask_digit") for sub in spec.subgoals] for s in SAMPLES[:2]] + [
        [scorer.chat(SAMPLES[2], spec.subgoals[1], "ask_digit")]
    ]


def _full_forward_logits(engine, chat, choices):
    ids = engine.tokenizer(engine.chat_text(chat), add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logits = engine.model(input_ids=ids).logits[0, -1]
    return logits[engine.choice_token_ids(choices)].tolist()


def _flat(nested):
    return [v for g in nested for row in g for v in row]


def test_shared_prefix_logits_equal_full_forward(engine, groups):
    engine.tokens_read = 0
    engine._kept.clear()
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


def test_logprobs_scorer_uses_shared_path_and_matches_naive(tiny_model, spec, monkeypatch):
    scorer = Scorer(spec, tiny_model, mode="logprobs", explain="none", cache=False)
    engine = scorer.engine
    calls = []
    real = engine.choice_probs_shared
    monkeypatch.setattr(engine, "choice_probs_shared", lambda g, c: calls.append(len(g)) or real(g, c))
    judged = scorer.judge_texts(SAMPLES)
    assert calls == [len(SAMPLES)]  # one shared call for the batch
    for sample, row in zip(SAMPLES, judged):
        naive = engine.choice_probs([scorer.chat(sample, sub, "ask_digit") for sub in spec.subgoals], SCORE_CHOICES)
        for j, p in zip(row, naive):
            assert j.expected == pytest.approx(sum((k + 1) * pk for k, pk in enumerate(p)), abs=1e-4)
            assert j.score == max(range(5), key=lambda k: p[k]) + 1


class ControlledEngine:
    """A fake engine whose digit probabilities the test sets: proves the explain policy and batching."""

    name, identity = "fake", "fake@1"

    def __init__(self, score_for):
        self.score_for = score_for
        self.explained = []

    def choice_probs_shared(self, groups, choices):
        out = []
        for g in groups:
            out.append([[1.0 if k + 1 == self.score_for(c) else 0.0 for k in range(5)] for c in g])
        return out

    def generate_json_shared(self, groups, schema, max_new_tokens):
        self.explained.append(sum(map(len, groups)))
        return [['{"explanation": "missing"}' for _ in g] for g in groups]


@pytest.mark.parametrize("explain, expected_explained", [("low", 2), ("all", 4), ("none", 0)])
def test_explain_policy_is_batched(tiny_model, spec, monkeypatch, explain, expected_explained):
    scorer = Scorer(spec, tiny_model, mode="logprobs", explain=explain, cache=False)
    fake = ControlledEngine(lambda chat: 2 if "ibuprofen" in chat[1]["content"] else 5)
    monkeypatch.setattr(Scorer, "engine", property(lambda self: fake))
    judged = scorer.judge_texts(SAMPLES[:2])
    assert [[j.score for j in row] for row in judged] == [[2, 2], [5, 5]]
    assert sum(fake.explained) == expected_explained
    assert len(fake.explained) == (1 if expected_explained else 0)  # all explanations in one batched call
    low_explained = [j.explanation for j in judged[0]]
    assert low_explained == (["missing", "missing"] if explain != "none" else [None, None])
