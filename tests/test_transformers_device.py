"""The transformers engine's device and dtype, its memory errors, and Hub models pinned to their commit.

Everything here runs on the CPU: the GPU decisions are checked against a torch whose CUDA answers are faked, and a
GPU running out of memory is a fake forward raising torch's own out-of-memory error.
"""

import shutil
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM

from goalcover_hf import Scorer
from goalcover_hf.engines import EngineMisconfigured, engine_options, get_engine, resolve_engine_model
from goalcover_hf.engines import devices
from goalcover_hf.engines.devices import DeviceOutOfMemory, Placement
from goalcover_hf.engines.transformers import TransformersEngine
from goalcover_hf.errors import GoalcoverError
from goalcover_hf.judge import SCORE_CHOICES, ExplanationJSON
from goalcover_hf.models import ModelNotFoundError, _hub_commit, resolve_model

CHATS = [[{"role": "system", "content": "Rate the sample."},
          {"role": "user", "content": "QUESTION: How much ibuprofen?\nANSWER: 200 mg. Score 1 to 5."}],
         [{"role": "system", "content": "Rate the sample."}, {"role": "user", "content": "def add(a, b): ok"}]]


@pytest.fixture(autouse=True)
def fresh():
    yield
    get_engine.cache_clear()
    _hub_commit.cache_clear()


def flat(rows):
    return [x for row in rows for x in row]


def reference_probs(folder, chats):
    """What the engine computed before it knew devices: the float32 model on the CPU, one plain forward per chat."""
    engine = get_engine(folder, "transformers", {"device": "cpu", "dtype": "float32"})
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ids = engine.choice_token_ids(SCORE_CHOICES)
    out = []
    for chat in chats:
        tokens = engine.tokenizer(engine.chat_text(chat), add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            out.append(torch.softmax(model(input_ids=tokens).logits[0, -1, ids], -1).tolist())
    return out


@pytest.mark.parametrize("options", [{"device": "cpu", "dtype": "float32"}, {}, {"device": "auto", "dtype": "auto"}])
def test_cpu_float32_and_auto_score_as_before(tiny_model, options):
    expected = reference_probs(tiny_model, CHATS)
    engine = get_engine(tiny_model, "transformers", options)
    assert engine.model.dtype == torch.float32 and engine.device.type == "cpu"
    assert flat(engine.choice_probs(CHATS, SCORE_CHOICES)) == pytest.approx(flat(expected), abs=1e-6)
    shared = engine.choice_probs_shared([CHATS[:1], CHATS[1:]], SCORE_CHOICES)
    assert flat(p for g in shared for p in g) == pytest.approx(flat(expected), abs=1e-5)
    described = engine.describe()
    assert (described["device"], described["dtype"], described["device_map"]) == ("cpu", "float32", None)
    assert described["attn_implementation"] == "sdpa" and described["threads"] == torch.get_num_threads()


def test_raw_probabilities_are_shares_of_the_whole_vocabulary(tiny_model):
    engine = get_engine(tiny_model, "transformers", {"device": "cpu"})
    ids = engine.choice_token_ids(SCORE_CHOICES)
    tokens = engine.tokenizer(engine.chat_text(CHATS[0]), add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        full = torch.softmax(engine.model(input_ids=tokens).logits[0, -1].float(), -1)
    [raw] = engine.choice_probs(CHATS[:1], SCORE_CHOICES, renormalize=False)
    assert raw == pytest.approx(full[ids].tolist(), rel=1e-4) and 0 < sum(raw) < 1
    [[shared]] = engine.choice_probs_shared([CHATS[:1]], SCORE_CHOICES, renormalize=False)
    assert shared == pytest.approx(raw, rel=1e-4)
    [norm] = engine.choice_probs(CHATS[:1], SCORE_CHOICES)
    assert norm == pytest.approx([x / sum(raw) for x in raw], abs=1e-6)


def test_bfloat16_on_the_cpu_loads_and_scores_in_bfloat16(tiny_model):
    engine = get_engine(tiny_model, "transformers", {"device": "cpu", "dtype": "bfloat16"})
    assert engine.model.dtype == torch.bfloat16 and engine.describe()["dtype"] == "bfloat16"
    expected = reference_probs(tiny_model, CHATS)
    shared = engine.choice_probs_shared([CHATS], SCORE_CHOICES)[0]
    for got, want in zip(shared, expected):
        assert sum(got) == pytest.approx(1.0) and got == pytest.approx(want, abs=0.05)


def test_batched_prefixes_compute_what_a_plain_forward_does(tiny_model, spec):
    """The GPU's way (every sample's prefix in one padded forward), run on the CPU."""
    engine = get_engine(tiny_model, "transformers", {"device": "cpu"})
    scorer = Scorer(spec, tiny_model, cache=False)
    samples = ["QUESTION: How much ibuprofen?\n\nANSWER: 200 mg every 6 hours, with food.", "ok, fine", "x" * 40]
    groups = [[scorer.chat(s, sub, "ask_digit") for sub in spec.subgoals] for s in samples]
    plain = [engine.choice_probs(g, SCORE_CHOICES) for g in groups]
    engine._kept.clear()
    engine.batch_prefixes, engine.tokens_read = True, 0
    try:
        together = engine.choice_probs_shared(groups, SCORE_CHOICES)
    finally:
        engine.batch_prefixes = None
    assert flat(p for g in together for p in g) == pytest.approx(flat(p for g in plain for p in g), abs=1e-5)
    total = sum(len(engine.tokenizer(engine.chat_text(c))["input_ids"]) for g in groups for c in g)
    assert engine.tokens_read < total  # each sample's beginning was read once for its subgoals


def test_bad_device_or_dtype_is_a_clear_error(tiny_model, spec):
    with pytest.raises(GoalcoverError, match="device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"):
        engine_options("transformers", {"device": "gpu"})
    with pytest.raises(GoalcoverError, match="dtype must be one of auto, float32, bfloat16, float16, got 'fp16'"):
        engine_options("transformers", {"dtype": "fp16"})
    with pytest.raises(GoalcoverError, match="device must be"):
        Scorer(spec, tiny_model, engine_options={"device": "cuda:first"})
    with pytest.raises(GoalcoverError, match="dtype must be"):
        TransformersEngine(tiny_model, dtype="half")
    if not torch.cuda.is_available():
        with pytest.raises(GoalcoverError, match="device 'cuda:1': torch sees no CUDA GPU"):
            get_engine(tiny_model, "transformers", {"device": "cuda:1"})


@pytest.fixture
def fake_gpus(monkeypatch):
    """torch.cuda answering as a machine with GPUs would: ``free[i]`` bytes free on GPU i, ``major`` its capability."""
    state = SimpleNamespace(free=[8 << 30, 40 << 30], major=9)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(state.free))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=0: (state.free[i], 80 << 30))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (state.major, 0))
    monkeypatch.setattr(torch.version, "hip", None)
    return state


def test_auto_picks_the_freest_gpu_bfloat16_where_native_and_spreads_what_does_not_fit(fake_gpus, tiny_model):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model)
    assert devices.place("auto", "auto", config) == Placement("cuda:1", "bfloat16")
    assert devices.place("cuda", "auto", config) == Placement("cuda:0", "bfloat16")  # explicit: as asked
    fake_gpus.major = 7  # a V100: no native bfloat16
    assert devices.place("auto", "auto", config).dtype == "float16"
    assert devices.place("cuda:0", "float32", config).dtype == "float32"
    size = devices.weight_bytes(config, "float16")
    params = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    assert size == 2 * params
    fake_gpus.free = [size, size]  # weights fit, but no room beside them: spread over the devices
    assert devices.place("auto", "auto", config) == Placement("cuda:0", "float16", "auto")
    assert devices.place("cuda:1", "auto", config).device_map is None  # an explicit device is never spread
    with pytest.raises(GoalcoverError, match="torch sees 2 CUDA GPU"):
        devices.resolve_device("cuda:2")


def test_placements_load_where_they_say_and_the_cuda_batch_follows_free_memory(fake_gpus, tiny_model):
    from transformers import AutoConfig

    assert Placement("cpu", "float32").load_kwargs() == {"dtype": torch.float32}
    assert Placement("cuda:1", "bfloat16").load_kwargs() == {"dtype": torch.bfloat16, "device_map": "cuda:1"}
    assert Placement("cuda:0", "float16", "auto").load_kwargs()["device_map"] == "auto"
    config = AutoConfig.from_pretrained(tiny_model)
    assert devices.batch_tokens(config, "cpu", torch.float32, 8192) == 8192
    fake_gpus.free = [64 << 20, 1 << 30]  # the tiny model's tokens are small: a few MiB hold thousands
    small = devices.batch_tokens(config, "cuda:0", torch.bfloat16, 8192)
    fake_gpus.free = [256 << 20, 1 << 30]
    assert devices.batch_tokens(config, "cuda:0", torch.bfloat16, 8192) == pytest.approx(4 * small, abs=4)
    assert small > 8192
    per_token = devices.kv_bytes_per_token(config, torch.bfloat16)
    assert per_token == 2 * config.num_hidden_layers * config.num_key_value_heads * 8 * 2  # head_dim 32 / 4 heads


def test_running_out_of_gpu_memory_stops_with_the_settings_to_lower(tiny_model, spec, tmp_path, monkeypatch):
    cache = tmp_path / "pairs.sqlite"
    scorer = Scorer(spec, tiny_model, mode="logprobs", explain="none", batch_size=1, cache=cache)
    done = scorer.judge_texts(["QUESTION: How much?\n\nANSWER: 200 mg."])
    engine = scorer.engine
    assert engine._kept

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(engine.model, "forward", oom)
    with pytest.raises(DeviceOutOfMemory) as err:
        scorer.judge_texts(["QUESTION: How much?\n\nANSWER: 200 mg.", "QUESTION: What is asthma?\n\nANSWER: lungs."])
    message = str(err.value)
    assert isinstance(err.value, EngineMisconfigured) and isinstance(err.value, GoalcoverError)
    for setting in ("--batch-size", "--max-context-tokens", "--dtype", "device_map"):
        assert setting in message
    assert "on cpu (float32) during scoring" in message and not engine._kept  # its memory is let go
    # The finished pairs stay in the pair cache: read back without a forward (which would raise).
    again = Scorer(spec, tiny_model, mode="logprobs", explain="none", batch_size=1, cache=cache)
    assert [[j.expected for j in row] for row in again.judge_texts(["QUESTION: How much?\n\nANSWER: 200 mg."])] == \
        [[j.expected for j in row] for row in done]
    with pytest.raises(DeviceOutOfMemory, match="during explanations"):
        engine.generate_json_shared([CHATS], ExplanationJSON, 8)


# ---- Hub models: the identity names the commit ----------------------------------------------------------------------
MAIN = "a" * 40
TAGGED = "b" * 40


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, tiny_model):
    """A Hugging Face cache folder holding org/judge at two commits (refs main and v1), the tiny model's files in
    main's snapshot; offline."""
    root = tmp_path / "hub"
    repo = root / "models--org--judge"
    for ref, sha in (("main", MAIN), ("v1", TAGGED)):
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(sha)
    shutil.copytree(tiny_model, repo / "snapshots" / MAIN)
    (repo / "snapshots" / TAGGED).mkdir(parents=True)
    (repo / "snapshots" / TAGGED / "config.json").write_text("{}")
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def test_a_hub_id_resolves_to_its_cached_commit_offline(hub_cache):
    ref = resolve_model("org/judge")
    assert (ref.identity, ref.revision, ref.location) == (f"org/judge@{MAIN}", MAIN, "org/judge")
    assert resolve_model("org/judge@v1").identity == f"org/judge@{TAGGED}"
    assert resolve_model(f"org/other@{'c' * 40}").identity == f"org/other@{'c' * 40}"  # a commit is its own pin
    with pytest.raises(ModelNotFoundError, match="org/missing@main: not in the local Hugging Face cache"):
        resolve_model("org/missing")
    with pytest.raises(ModelNotFoundError, match="not in the local"):
        resolve_model("org/judge@v2")


def test_a_hub_model_loads_at_its_commit_and_scorers_record_it(hub_cache, spec, tiny_model):
    # The name to load is pinned too: map workers and reruns load this commit even after main moves.
    assert resolve_engine_model("org/judge", "transformers") == (f"org/judge@{MAIN}", f"org/judge@{MAIN}")
    engine = get_engine("org/judge", "transformers", {"device": "cpu"})
    assert engine.identity == f"org/judge@{MAIN}"
    assert flat(engine.choice_probs(CHATS, SCORE_CHOICES)) == pytest.approx(flat(reference_probs(tiny_model, CHATS)),
                                                                          abs=1e-6)
    scorer = Scorer(spec, "org/judge")
    assert scorer.provenance()["model"] == scorer.key_settings()["model"] == f"org/judge@{MAIN}"
    assert scorer.settings()["model"] == f"org/judge@{MAIN}"  # what a run folder keeps to judge again
    (hub_cache / "models--org--judge" / "refs" / "main").write_text(TAGGED)  # main moves on
    _hub_commit.cache_clear()
    assert Scorer(spec, scorer.settings()["model"]).config.model_identity == f"org/judge@{MAIN}"


@pytest.fixture
def online(monkeypatch, hub_cache):
    """The Hub reachable (its answers faked at HfApi.model_info); the cache still says main is MAIN."""
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    asked, answers = [], {}

    def model_info(self, repo_id, revision=None, timeout=None, **kwargs):
        asked.append((repo_id, revision))
        answer = answers[repo_id]
        if isinstance(answer, Exception):
            raise answer
        return SimpleNamespace(id=repo_id, sha=answer)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    return SimpleNamespace(asked=asked, answers=answers)


def test_online_the_hub_names_the_commit_once_per_process(online):
    online.answers["org/judge"] = "d" * 40  # main moved on since the cache was filled
    assert resolve_model("org/judge").identity == f"org/judge@{'d' * 40}"
    assert resolve_model("org/judge").revision == "d" * 40
    assert online.asked == [("org/judge", "main")]


def test_online_failures_fall_back_to_the_cache_or_say_what_is_missing(online, caplog):
    from huggingface_hub.errors import RepositoryNotFoundError

    online.answers["org/judge"] = ConnectionError("network unreachable")
    assert resolve_model("org/judge").identity == f"org/judge@{MAIN}"
    assert "using the cached commit" in caplog.text
    online.answers["org/gone"] = RepositoryNotFoundError("404", response=SimpleNamespace(headers={}, status_code=404,
                                                                                         request=None))
    with pytest.raises(ModelNotFoundError, match="org/gone@main: no such model on the Hub"):
        resolve_model("org/gone")
    online.answers["org/far"] = TimeoutError("timed out")
    with pytest.raises(ModelNotFoundError, match="cannot ask the Hub.*does not hold it"):
        resolve_model("org/far")


def test_engine_describe_is_recordable(tiny_model):
    import json

    described = get_engine(tiny_model, "transformers", {"threads": 1}).describe()
    assert described["threads"] == 1 and json.loads(json.dumps(described)) == described
