"""The SQLite pair cache: keys, persistence, concurrency, and how the scorer and the CLI use it."""

import multiprocessing as mp
import subprocess
import sys

import pytest

from goalcover_hf import cli
from goalcover_hf.cache import PairCache, pair_key
from goalcover_hf.columns import Judgement
from goalcover_hf.prompts import subgoal_text
from goalcover_hf.scorer import Scorer

SETTINGS = {"model": "m@1", "engine": "transformers", "prompt_version": "score_v1@abc", "mode": "logprobs",
            "max_new_tokens": 96}
J = {"score": 4, "expected": 3.75, "explanation": "gives a dose", "error": None}


def test_hit_miss_and_every_input_changes_the_key(tmp_path):
    cache = PairCache(tmp_path / "p.sqlite")
    key = pair_key(SETTINGS, "subgoal", "sample")
    assert cache.get_many([key]) == {}
    assert cache.put_many({key: J}, SETTINGS) == 1
    assert cache.get_many([key]) == {key: J}
    variants = [
        pair_key(SETTINGS | {"model": "m@2"}, "subgoal", "sample"),
        pair_key(SETTINGS | {"prompt_version": "score_v2@def"}, "subgoal", "sample"),
        pair_key(SETTINGS | {"max_new_tokens": 32}, "subgoal", "sample"),
        pair_key(SETTINGS, "subgoal edited", "sample"),
        pair_key(SETTINGS, "subgoal", "sample edited"),
    ]
    assert len(set(variants) | {key}) == 6
    assert cache.get_many(variants) == {}


def test_errors_are_not_cached(tmp_path):
    cache = PairCache(tmp_path / "p.sqlite")
    assert cache.put_many({"a": {"score": None, "error": "invalid model output"}, "b": J}) == 1
    assert set(cache.get_many(["a", "b"])) == {"b"}


def test_survives_process_restart(tmp_path):
    path = tmp_path / "p.sqlite"
    code = (
        "import sys; from goalcover_hf.cache import PairCache; "
        "PairCache(sys.argv[1]).put_many({'k': {'score': 2, 'expected': 2.2, 'explanation': None}})"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert PairCache(path).get_many(["k"])["k"]["score"] == 2


def _writer(path, worker, n):
    cache = PairCache(path)
    for start in range(0, n, 10):  # many small transactions, as a map worker does batch by batch
        cache.put_many({f"{worker}-{i}": {"score": 1 + i % 5, "expected": 1.0, "explanation": str(i)}
                        for i in range(start, start + 10)})


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "p.sqlite")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 200)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    keys = [f"{w}-{i}" for w in range(3) for i in range(200)]
    got = PairCache(path).get_many(keys)
    assert len(got) == 600
    assert got["2-7"]["explanation"] == "7"


def test_unreadable_cache_file_names_the_file(tmp_path):
    bad = tmp_path / "p.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="p.sqlite"):
        PairCache(bad).get_many(["k"])


# ---- the scorer with a cache ---------------------------------------------------------------------------------
class CountingEngine:
    """Fake engine with controlled scores; counts what it is asked."""

    name, identity = "fake", "fake@1"

    def __init__(self):
        self.pairs = 0

    def choice_probs_shared(self, groups, choices):
        self.pairs += sum(map(len, groups))
        return [[[0.0, 0.0, 1.0, 0.0, 0.0] for _ in g] for g in groups]

    def generate_json_shared(self, groups, schema, max_new_tokens):
        return [['{"explanation": "no dose"}' for _ in g] for g in groups]


def _use(monkeypatch, engine):
    monkeypatch.setattr(Scorer, "engine", property(lambda self: engine))


def test_scorer_full_hit_never_touches_the_engine(tiny_model, spec, tmp_path, monkeypatch):
    path = tmp_path / "p.sqlite"
    fake = CountingEngine()
    _use(monkeypatch, fake)
    first = Scorer(spec, tiny_model, mode="logprobs", cache=path).judge_texts(["a sample", "another"])
    assert fake.pairs == 4
    assert first[0][0] == Judgement(score=3, expected=3.0, explanation="no dose")

    # A fresh scorer (as in a new process): every pair is a hit, and loading a model would fail.
    import goalcover_hf.engines as engines

    monkeypatch.undo()
    monkeypatch.setattr(engines, "get_engine", lambda *a, **k: (_ for _ in ()).throw(AssertionError("model loaded")))
    again = Scorer(spec, tiny_model, mode="logprobs", cache=path).judge_texts(["a sample", "another"])
    assert again == first


def test_scorer_recomputes_only_what_changed(tiny_model, spec, tmp_path, monkeypatch):
    path = tmp_path / "p.sqlite"
    fake = CountingEngine()
    _use(monkeypatch, fake)
    Scorer(spec, tiny_model, mode="logprobs", cache=path).judge_texts(["s1", "s2"])
    assert fake.pairs == 4
    Scorer(spec, tiny_model, mode="logprobs", cache=path).judge_texts(["s1", "s2", "s3"])  # overlapping data
    assert fake.pairs == 6
    edited = spec.model_copy(deep=True)
    edited.subgoals[0].description += " Units must be metric."
    Scorer(edited, tiny_model, mode="logprobs", cache=path).judge_texts(["s1", "s2", "s3"])  # one subgoal edited
    assert fake.pairs == 9
    Scorer(spec, tiny_model, mode="logprobs", explain="all", cache=path).judge_texts(["s1"])  # decoding changed
    assert fake.pairs == 11
    Scorer(spec, tiny_model, mode="logprobs", cache=False).judge_texts(["s1"])  # cache off
    assert fake.pairs == 13


def test_scorer_does_not_cache_errors(tiny_model, spec, tmp_path, monkeypatch):
    class Failing(CountingEngine):
        def choice_probs_shared(self, groups, choices):
            self.pairs += sum(map(len, groups))
            raise RuntimeError("out of memory")

    path = tmp_path / "p.sqlite"
    failing = Failing()
    _use(monkeypatch, failing)
    judged = Scorer(spec, tiny_model, mode="logprobs", cache=path).judge_texts(["s1"])
    assert all(j.error and "out of memory" in j.error and j.score is None for j in judged[0])
    Scorer(spec, tiny_model, mode="logprobs", cache=path).judge_texts(["s1"])
    assert failing.pairs == 4  # retried, not read back


def test_interrupted_run_resumes(tiny_model, spec, tmp_path, monkeypatch):
    class Interrupted(CountingEngine):
        def choice_probs_shared(self, groups, choices):
            if self.pairs >= 4:
                raise KeyboardInterrupt
            return super().choice_probs_shared(groups, choices)

    path = tmp_path / "p.sqlite"
    engine = Interrupted()
    _use(monkeypatch, engine)
    scorer = Scorer(spec, tiny_model, mode="logprobs", batch_size=2, cache=path)  # 2 samples per batch
    with pytest.raises(KeyboardInterrupt):
        scorer.judge_texts(["s1", "s2", "s3", "s4"])
    engine = CountingEngine()
    _use(monkeypatch, engine)
    Scorer(spec, tiny_model, mode="logprobs", batch_size=2, cache=path).judge_texts(["s1", "s2", "s3", "s4"])
    assert engine.pairs == 4  # the first batch was stored before the interruption


def test_cache_key_uses_subgoal_text_not_id(spec):
    a, b = spec.subgoals
    renamed = a.model_copy(update={"id": "other_id"})
    assert subgoal_text(renamed) == subgoal_text(a) != subgoal_text(b)


# ---- CLI -------------------------------------------------------------------------------------------------------
def test_cli_cache_info_and_clear(tmp_path, capsys):
    path = tmp_path / "p.sqlite"
    PairCache(path).put_many({"k1": J, "k2": J}, SETTINGS)
    assert cli.main(["cache", "info", "--path", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 judgements" in out and "m@1" in out and "score_v1@abc" in out
    assert cli.main(["cache", "clear", "--path", str(path)]) == 0
    assert "Removed 2" in capsys.readouterr().out
    assert PairCache(path).get_many(["k1", "k2"]) == {}
    assert cli.main(["cache", "info", "--json", "--path", str(path)]) == 0
    assert '"entries": 0' in capsys.readouterr().out


def test_cli_cache_default_location(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GOALCOVER_CACHE", str(tmp_path))
    assert cli.main(["cache", "info"]) == 0
    assert str(tmp_path / "pairs.sqlite") in capsys.readouterr().out


def test_map_with_two_processes_fills_the_cache(tiny_model, spec, tmp_path, monkeypatch):
    import pickle

    from datasets import Dataset

    path = tmp_path / "p.sqlite"
    _use(monkeypatch, CountingEngine())  # forked map workers inherit the fake engine
    scorer = Scorer(spec, tiny_model, mode="logprobs", batch_size=2, cache=path)
    assert pickle.loads(pickle.dumps(scorer)).pair_cache.path == path
    ds = Dataset.from_dict({"question": [f"q{i}" for i in range(8)], "answer": ["a"] * 8})
    out = ds.map(scorer, batched=True, batch_size=2, num_proc=2, features=scorer.features(ds.features))
    assert out["gc_states_dose_score"] == [3] * 8
    assert len(PairCache(path).get_many(pair_key(scorer.key_settings(), subgoal_text(sub), f"QUESTION: q{i}\n\nANSWER: a")
                                        for i in range(8) for sub in spec.subgoals)) == 16
