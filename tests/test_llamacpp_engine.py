"""The llama.cpp engine on the embedded GGUF (skipped without llama-cpp-python). Plumbing, not judge quality."""

import pytest
from datasets import Dataset

from goalcover_hf import Scorer
from goalcover_hf.engines import get_counter, get_engine
from goalcover_hf.judge import SCORE_CHOICES, JudgementJSON

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install 'goalcover_hf[llamacpp]'")
pytest.importorskip("numba", reason="numba is not installed: pip install 'goalcover_hf[llamacpp]'")

CHATS = [
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "Sample: 'Take 200 mg every 6 hours.'\nDoes it state a dose? Score 1 to 5, one digit."}],
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "Sample: 'Asthma is a lung disease.'\nDoes it state a dose? Score 1 to 5, one digit."}],
]


@pytest.fixture(scope="module")
def engine():
    return get_engine("embedded", "llamacpp", {"threads": 1})  # one thread: llama.cpp's spinning threads crawl on a busy machine


def test_prefix_reuse_does_not_change_probabilities(engine):
    first, second, again = engine.choice_probs([CHATS[0], CHATS[1], CHATS[0]], SCORE_CHOICES)
    engine.llm.reset()
    [fresh] = engine.choice_probs([CHATS[0]], SCORE_CHOICES)
    assert again == pytest.approx(first, abs=1e-6) and fresh == pytest.approx(first, abs=1e-6)
    assert first != pytest.approx(second, abs=1e-3)  # different prompts, different distributions
    assert all(abs(sum(p) - 1) < 1e-6 for p in (first, second))


def test_choice_probs_agree_with_the_transformers_engine(engine):
    # Same weights (Q4_1 in llama.cpp, dequantized to fp32 in transformers) and same chat template.
    reference = get_engine("embedded", "transformers").choice_probs(CHATS, SCORE_CHOICES)
    for a, b in zip(engine.choice_probs(CHATS, SCORE_CHOICES), reference):
        assert max(abs(x - y) for x, y in zip(a, b)) < 0.05


def test_raw_probabilities_are_shares_of_the_whole_vocabulary(engine):
    import llama_cpp
    import numpy as np

    # From an empty context each time: llama.cpp's numbers depend on which tokens are evaluated together.
    engine.llm.reset()
    raw = engine.choice_probs(CHATS, SCORE_CHOICES, renormalize=False)
    engine.llm.reset()
    norm = engine.choice_probs(CHATS, SCORE_CHOICES)
    for r, p in zip(raw, norm):
        assert 0 < sum(r) < 1 + 1e-9 and [x / sum(r) for x in r] == pytest.approx(p, abs=1e-9)
    # The last evaluation (CHATS[1]) is still in the context: its softmax over the whole vocabulary, by numpy.
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(engine.llm.ctx, -1),
                                   shape=(engine.llm.n_vocab(),)).astype(np.float64)
    full = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert raw[1] == pytest.approx(full[engine.choice_token_ids(SCORE_CHOICES)].tolist(), rel=1e-9)
    engine.llm.reset()
    [shared] = engine.choice_probs_shared([CHATS], SCORE_CHOICES, renormalize=False)
    for got, want in zip(shared, raw):
        assert got == pytest.approx(want, rel=1e-9)


def test_n_gpu_layers_reaches_llama_cpp(monkeypatch):
    import llama_cpp

    seen = {}
    real = llama_cpp.Llama.__init__

    def recording(self, *args, **kwargs):
        seen.update(kwargs)
        real(self, *args, **kwargs)

    monkeypatch.setattr(llama_cpp.Llama, "__init__", recording)
    engine = get_engine("embedded", "llamacpp", {"threads": 1, "n_ctx": 512, "n_gpu_layers": -1})
    assert seen["n_gpu_layers"] == -1
    described = engine.describe()
    assert described["n_gpu_layers"] == -1 and described["gpu_offload"] == bool(llama_cpp.llama_supports_gpu_offload())
    assert get_engine("embedded", "llamacpp", {"threads": 1}).describe()["n_gpu_layers"] == 0
    with pytest.raises(ValueError, match="n_gpu_layers must be -1"):
        get_engine("embedded", "llamacpp", {"n_gpu_layers": -2})
    get_engine.cache_clear()


def test_generate_json_is_constrained(engine):
    [raw] = engine.generate_json(CHATS[:1], JudgementJSON, 96)
    assert JudgementJSON.model_validate_json(raw).score in (1, 2, 3, 4, 5)


def test_scorer_through_llamacpp_gives_the_same_columns_and_provenance(spec):
    ds = Dataset.from_dict({"question": ["How much ibuprofen?", "Empty?"], "answer": ["200 mg every 6 hours.", ""]})
    scorer = Scorer(spec, "embedded", engine="llamacpp", mode="logprobs", explain="none",
                    engine_options={"threads": 1, "n_ctx": 2048})
    out = ds.map(scorer, batched=True, with_indices=True, features=scorer.features(ds.features))
    assert out.features == scorer.features(ds.features)
    assert out["gc_states_dose_score"][0] in (1, 2, 3, 4, 5) and out["gc_states_dose_error"][1] is not None
    provenance = scorer.provenance()
    assert provenance["engine"] == "llamacpp"
    assert provenance["model"] == Scorer(spec, "embedded").provenance()["model"]  # same weights, same identity


def test_a_loaded_engine_counts_as_llama_cpp_reads_and_as_its_counter_says():
    options = {"threads": 1, "max_context_tokens": 1000}
    engine = get_engine("embedded", "llamacpp", options)
    loaded = engine.token_counter()
    counter = get_counter("embedded", "llamacpp", options)  # no llama-cpp-python: the GGUF read by transformers
    assert loaded.context == counter.context == 1000
    for chat in CHATS:
        assert loaded.count_chat(chat) == counter.count_chat(chat) == len(engine.tokens(chat))


def test_llamacpp_needs_a_gguf(tiny_model, spec):
    with pytest.raises(ValueError, match="reads .gguf files"):
        Scorer(spec, tiny_model, engine="llamacpp")
