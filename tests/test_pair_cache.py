"""The SQLite pair cache: keys, persistence, concurrency, and how the scorer and the CLI use it."""

import multiprocessing as mp
import subprocess
import sys
import threading

import pytest
from fake_engine import sample_of

from goalcover_hf import Scorer, cli
from goalcover_hf.cache import PairCache, pair_key

SETTINGS = {"model": "m@1", "engine": "transformers", "prompt_version": "score_v1@abc", "mode": "logprobs",
            "max_new_tokens": 96}
WAIT_S = 120  # generous: only a broken test waits this long
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
def test_scorer_full_hit_never_touches_the_engine(spec, tmp_path, make_fake_engine):
    path = tmp_path / "p.sqlite"
    fake = make_fake_engine()
    first = Scorer(spec, engine=fake, explain="low", cache=path).judge_texts(["a sample", "another"])
    assert len(fake.scored) == 4
    assert vars(first[0][0]) == {"score": 3, "expected": 3.0, "explanation": "explains 3", "error": None}

    # A fresh scorer and engine (as in a new process): every pair is a hit, so the engine is asked nothing.
    fresh = make_fake_engine(probs=5)
    again = Scorer(spec, engine=fresh, explain="low", cache=path).judge_texts(["a sample", "another"])
    assert [list(map(vars, row)) for row in again] == [list(map(vars, row)) for row in first] and fresh.calls == []


def test_scorer_recomputes_only_what_changed(spec, tmp_path, make_fake_engine):
    path = tmp_path / "p.sqlite"

    def judge(spec, samples, probs, **options):
        """Scores, and the samples the engine was asked about; the engine answers ``probs`` everywhere, so a score
        that differs from it was read back."""
        engine = make_fake_engine(probs=probs)
        judged = Scorer(spec, engine=engine, explain="none", **({"cache": path} | options)).judge_texts(samples)
        return [[j.score for j in row] for row in judged], sorted({sample_of(chat) for chat in engine.scored})

    assert judge(spec, ["s1", "s2"], 3) == ([[3, 3], [3, 3]], ["s1", "s2"])
    assert judge(spec, ["s1", "s2", "s3"], 5) == ([[3, 3], [3, 3], [5, 5]], ["s3"])  # overlapping data
    edited = spec.model_copy(deep=True)
    edited.subgoals[0].description += " Units must be metric."
    # one subgoal edited: its pairs are judged anew, the other subgoal's are read back
    assert judge(edited, ["s1", "s2", "s3"], 4)[0] == [[4, 3], [4, 3], [4, 5]]
    assert judge(spec, ["s1"], 1, max_new_tokens=32) == ([[1, 1]], ["s1"])  # decoding changed
    assert judge(spec, ["s1"], 1, cache=False) == ([[1, 1]], ["s1"])  # cache off


def test_explanations_are_stored_once_and_given_to_the_settings_that_ask(spec, tmp_path, make_fake_engine):
    path = tmp_path / "p.sqlite"
    Scorer(spec, engine=make_fake_engine(), explain="none", cache=path).judge_texts(["s1"])
    # explanations asked later: the scores are read back, only the explanations are generated
    later = make_fake_engine(probs=5)
    [row] = Scorer(spec, engine=later, explain="all", cache=path).judge_texts(["s1"])
    assert [(j.score, j.explanation) for j in row] == [(3, "explains 3")] * 2
    assert later.scored == [] and len(later.generated) == 2
    # a setting that asks for none reads the scores back and leaves the stored explanations out of its result
    none = make_fake_engine()
    [row] = Scorer(spec, engine=none, explain="none", cache=path).judge_texts(["s1"])
    assert [(j.score, j.explanation) for j in row] == [(3, None)] * 2 and none.calls == []
    again = make_fake_engine()
    [row] = Scorer(spec, engine=again, explain="all", cache=path).judge_texts(["s1"])
    assert [(j.score, j.explanation) for j in row] == [(3, "explains 3")] * 2 and again.calls == []


def test_scorer_does_not_cache_errors(spec, tmp_path, make_fake_engine):
    path = tmp_path / "p.sqlite"
    failing = make_fake_engine(fail_on="s1", error=RuntimeError("out of memory"))
    judged = Scorer(spec, engine=failing, mode="logprobs", cache=path).judge_texts(["s1"])
    assert all(j.error and "out of memory" in j.error and j.score is None for j in judged[0])
    Scorer(spec, engine=failing, mode="logprobs", cache=path).judge_texts(["s1"])
    assert len(failing.scored) == 4  # retried, not read back


def test_interrupted_run_resumes(spec, tmp_path, make_fake_engine):
    path = tmp_path / "p.sqlite"
    samples = ["s1", "s2", "s3", "s4"]
    interrupted = make_fake_engine(fail_on="s3", error=KeyboardInterrupt)
    scorer = Scorer(spec, engine=interrupted, mode="logprobs", batch_size=2, cache=path)  # 2 samples per batch
    with pytest.raises(KeyboardInterrupt):
        scorer.judge_texts(samples)
    resumed = make_fake_engine()
    Scorer(spec, engine=resumed, mode="logprobs", batch_size=2, cache=path).judge_texts(samples)
    # the first batch was stored before the interruption: only the second is asked again
    assert [sample_of(chat) for chat in resumed.scored] == ["s3", "s3", "s4", "s4"]


def test_each_batch_is_stored_as_soon_as_it_is_done(spec, tmp_path, make_fake_engine):
    path = tmp_path / "p.sqlite"
    gate = threading.Event()
    engine = make_fake_engine(gate=gate, gate_on_call=2)  # the second batch waits until the test opens the gate
    scorer = Scorer(spec, engine=engine, mode="logprobs", explain="none", batch_size=1, cache=path)
    worker = threading.Thread(target=scorer.judge_texts, args=(["s1", "s2"],))
    worker.start()
    try:
        assert engine.entered.wait(WAIT_S)  # the second batch is being asked...
        assert PairCache(path).info()["entries"] == 2  # ...and the first one's judgements are already stored
    finally:
        gate.set()
        worker.join(WAIT_S)
    assert PairCache(path).info()["entries"] == 4


def test_cache_key_uses_subgoal_text_not_id(spec, tmp_path, make_fake_engine):
    path = tmp_path / "p.sqlite"

    def scores(spec, engine):
        return [j.score for j in Scorer(spec, engine=engine, explain="none", cache=path).judge_texts(["s1"])[0]]

    assert scores(spec, make_fake_engine(probs=3)) == [3, 3]
    renamed = spec.model_copy(deep=True)
    renamed.subgoals[0].id = "other_id"  # the same words under another id: a hit
    untouched = make_fake_engine(probs=5)
    assert scores(renamed, untouched) == [3, 3] and untouched.calls == []
    renamed.subgoals[1].name = "Warns about risks"  # other words: a miss
    assert scores(renamed, make_fake_engine(probs=5)) == [3, 5]


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


def test_map_with_two_processes_fills_the_cache(spec, tmp_path, fake_engine, make_fake_engine, install_engine):
    import pickle

    from datasets import Dataset

    path = tmp_path / "p.sqlite"
    install_engine(fake_engine)  # a scorer pickles without its engine: each map worker loads one by name
    scorer = Scorer(spec, engine=fake_engine, mode="logprobs", batch_size=2, cache=path)
    assert pickle.loads(pickle.dumps(scorer)).pair_cache.path == path
    ds = Dataset.from_dict({"question": [f"q{i}" for i in range(8)], "answer": ["a"] * 8})
    out = ds.map(scorer, batched=True, batch_size=2, num_proc=2, features=scorer.features(ds.features))
    assert out["gc_states_dose_score"] == [3] * 8
    assert PairCache(path).info()["entries"] == 16
    # what the workers stored is what a later scorer reads back, asking its engine nothing
    later = make_fake_engine(probs=5)
    again = Scorer(spec, engine=later, mode="logprobs", cache=path).judge_texts([f"QUESTION: q{i}\n\nANSWER: a" for i in range(8)])
    assert [j.score for row in again for j in row] == [3] * 16 and later.calls == []
