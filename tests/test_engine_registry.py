"""The engine registry: a backend is one registered class, and the scorer, the options and the counters follow it."""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import Dataset

import goalcover_hf
from goalcover_hf import Scorer
from goalcover_hf.columns import score_columns
from goalcover_hf.engines import (Engine, EngineOption, all_options, engine_class, engine_names, engine_options,
                                  get_counter, get_engine, register_engine, registry, resolve_engine_model)
from goalcover_hf.errors import GoalcoverError

ROWS = {"question": ["How much ibuprofen?", "What is asthma?", "How often?"],
        "answer": ["200 mg every 6 hours.", "A lung disease.", "Twice a day."]}


@pytest.fixture
def toy(monkeypatch):
    """A backend defined the way a plugin would: one class, its own option, registered by the decorator alone."""
    monkeypatch.setattr(registry, "_ENGINES", dict(registry._ENGINES))  # the registration ends with the test

    @register_engine("toy")
    class ToyEngine(Engine):
        """Puts all probability on the digit ``3 + bias`` (clamped to 1..5); records every chat it is asked."""

        options = (EngineOption("bias", float, "moves every score up or down", default=0.0),)

        @classmethod
        def resolve(cls, model, options):
            return model, f"{model}+bias={options.get('bias', 0.0)}"  # the bias changes outputs: part of identity

        def __init__(self, model, bias=0.0):
            self.identity = self.resolve(model, {"bias": bias})[1]
            self.bias = bias
            self.asked: list[list[dict]] = []

        def digit(self) -> int:
            return min(5, max(1, round(3 + self.bias)))

        def choice_probs(self, chats, choices):
            self.asked.extend(chats)
            return [[1.0 if c == str(self.digit()) else 0.0 for c in choices] for _ in chats]

        def generate_json(self, chats, schema, max_new_tokens):
            answer = {"explanation": f"toy says {self.digit()}"}
            if "score" in schema.model_fields:
                answer["score"] = self.digit()
            return [json.dumps(answer) for _ in chats]

    yield ToyEngine
    get_engine.cache_clear()
    get_counter.cache_clear()


def test_a_registered_engine_scores_a_dataset_through_the_scorer(toy, spec, tmp_path):
    ds = Dataset.from_dict(ROWS)
    cache = tmp_path / "pairs.sqlite"
    scores = {}
    for bias in (1.0, -2.0):
        scorer = Scorer(spec, "toy-model", engine="toy", engine_options={"bias": bias}, cache=cache)
        out = ds.map(scorer, batched=True, batch_size=2, features=scorer.features(ds.features))
        scores[bias] = {sub.id: out[score_columns(sub.id)["score"]] for sub in spec.subgoals}
        assert scorer.provenance()["engine"] == "toy"
        assert scorer.provenance()["model"] == f"toy-model+bias={bias}"
    # The toy's digit, for every row and subgoal: 3 + 1, then 3 - 2 (not the first run's, from the shared cache).
    assert scores[1.0] == {sub.id: [4, 4, 4] for sub in spec.subgoals}
    assert scores[-2.0] == {sub.id: [1, 1, 1] for sub in spec.subgoals}
    engine = get_engine("toy-model", "toy", {"bias": 1.0})
    asked = [chat[-1]["content"] for chat in engine.asked]
    assert all(any(answer in text for text in asked) for answer in ROWS["answer"])  # the rows reached the engine


def test_options_are_checked_normalized_and_cached(toy):
    assert engine_options("toy", {"bias": 1}) == (("bias", 1.0),)  # an int for a float option, one canonical form
    assert get_engine("toy-model", "toy", {"bias": 1}) is get_engine("toy-model", "toy", (("bias", 1.0),))
    assert get_engine("toy-model", "toy", {"bias": 2.0}).bias == 2.0
    assert resolve_engine_model("toy-model", "toy", {"bias": 0.5}) == ("toy-model", "toy-model+bias=0.5")

    with pytest.raises(GoalcoverError, match=r"'toy' does not take bais \(its options: max_context_tokens, bias\)"):
        engine_options("toy", {"bais": 1.0})
    with pytest.raises(GoalcoverError, match="does not take base_url.*an option of 'openai' \\(--engine openai\\)"):
        engine_options("toy", {"base_url": "http://127.0.0.1:8000/v1"})
    with pytest.raises(GoalcoverError, match="option bias takes a number, got 'high'"):
        engine_options("toy", {"bias": "high"})
    assert engine_options("toy", {"bias": None}) == ()  # None: not given


def test_unknown_options_and_engines_are_refused_by_the_scorer(toy, spec):
    with pytest.raises(GoalcoverError, match="engine 'toy' does not take bais.*bias"):
        Scorer(spec, "toy-model", engine="toy", engine_options={"bais": 1.0})
    # the built-ins first, then plugins in registration order (the suite's own fake engine among them)
    with pytest.raises(GoalcoverError, match=r"unknown engine 'vibes'; available: transformers, llamacpp, openai, .*toy"):
        Scorer(spec, "toy-model", engine="vibes")
    with pytest.raises(GoalcoverError, match="unknown engine 'vibes'"):
        engine_class("vibes")


def test_common_options_reach_an_engine_that_does_not_declare_them(toy):
    assert get_counter("toy-model", "toy").context is None  # default counter: an estimate, context unknown
    assert get_counter("toy-model", "toy", {"max_context_tokens": 512}).context == 512
    loaded = get_engine("toy-model", "toy", {"max_context_tokens": 256})
    assert loaded.max_context_tokens == 256 and loaded.token_counter().context == 256
    with pytest.raises(GoalcoverError, match="max_context_tokens must be at least 1"):
        engine_options("toy", {"max_context_tokens": 0})


def test_all_options_lists_each_option_once_with_the_engines_taking_it(toy):
    options = all_options()
    option, takers = options["bias"]
    assert (option.type, option.default, takers, option.flag) == (float, 0.0, ["toy"], "--bias")
    assert options["max_context_tokens"][1] == engine_names()
    assert engine_names()[:3] == ["transformers", "llamacpp", "openai"] and engine_names()[-1] == "toy"
    assert options["threads"][1] == ["transformers", "llamacpp"]
    assert options["structured"][0].choices[0] == "auto" and options["base_url"][1] == ["openai"]
    assert all(o.help for o, _ in options.values())
    # The accelerator options: each engine's own, with the defaults its constructor has.
    assert [(n, options[n][0].default, options[n][1]) for n in ("device", "dtype", "n_gpu_layers", "thinking")] == [
        ("device", "auto", ["transformers"]), ("dtype", "auto", ["transformers"]),
        ("n_gpu_layers", 0, ["llamacpp"]), ("thinking", False, ["openai"])]
    assert options["dtype"][0].choices == ("auto", "float32", "bfloat16", "float16")


def test_the_base_engine_passes_renormalize_through_and_describes_nothing(toy):
    engine = get_engine("toy-model", "toy")
    assert engine.describe() == {}
    groups = [[[{"role": "user", "content": "a"}]] * 2, [[{"role": "user", "content": "b"}]]]
    assert engine.choice_probs_shared(groups, ["1", "2", "3"]) == [[[0, 0, 1.0]] * 2, [[0, 0, 1.0]]]
    with pytest.raises(GoalcoverError, match="engine 'toy' gives no probabilities under the full next-token"):
        engine.choice_probs_shared(groups, ["1", "2", "3"], renormalize=False)

    class HalfSure(toy):  # a backend that can say how sure it is of the choices: half its mass on them
        def choice_probs(self, chats, choices, renormalize=True):
            probs = super().choice_probs(chats, choices)
            return probs if renormalize else [[p / 2 for p in row] for row in probs]

    half = HalfSure("toy-model")
    assert half.choice_probs_shared(groups, ["1", "2", "3"], renormalize=False) == [[[0, 0, 0.5]] * 2, [[0, 0, 0.5]]]


def test_registration_keeps_one_flag_per_option_and_one_class_per_name(toy):
    with pytest.raises(ValueError, match="declares threads unlike engine 'transformers'"):
        @register_engine("other")
        class FloatThreads(Engine):  # noqa: F841
            options = (EngineOption("threads", float, "threads, but fractional"),)

    with pytest.raises(ValueError, match="every engine takes already"):
        @register_engine("other")
        class OwnContext(Engine):  # noqa: F841
            options = (EngineOption("max_context_tokens", int, "again"),)

    with pytest.raises(ValueError, match="engine name 'toy' is taken"):
        @register_engine("toy")
        class Impostor(Engine):  # noqa: F841
            pass

    assert "other" not in engine_names() and engine_class("toy") is toy


@pytest.mark.parametrize("name", ["transformers", "llamacpp", "openai"])
def test_built_in_options_match_the_engine_constructors(name):
    # get_engine passes each declared option as a keyword: every one must be a parameter, with the same default.
    cls = engine_class(name)
    params = inspect.signature(cls.__init__).parameters
    for option in cls.options:
        assert option.name in params, f"{name}: {option.name} is declared but {cls.__name__}() does not take it"
        default = params[option.name].default
        assert option.default == (None if default is inspect.Parameter.empty else default), option.name


def test_importing_the_engines_loads_no_backend_library():
    code = ("import sys, goalcover_hf.engines; "
            "print([m for m in ('torch', 'llama_cpp', 'transformers') if m in sys.modules])")
    env = {**os.environ, "PYTHONPATH": str(Path(goalcover_hf.__file__).parents[1])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.strip() == "[]"


def test_a_loaded_engine_counts_as_its_counter_does(tiny_model):
    options = {"max_context_tokens": 300}
    engine = get_engine(tiny_model, "transformers", options)
    loaded, counter = engine.token_counter(), get_counter(tiny_model, "transformers", options)
    assert loaded.context == counter.context == 300  # below the tiny model's own context
    chat = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "How much ibuprofen at once?"}]
    read = engine.tokenizer(engine.chat_text(chat), add_special_tokens=False)["input_ids"]  # what the model reads
    assert loaded.count_chat(chat) == counter.count_chat(chat) == len(read)
