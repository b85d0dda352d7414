"""Trust benchmark: how far a judge's coverage is from the truth, and how far a few human labels bring it back.

Measure, do not tune. Rows come from ``trust_truth.py`` (HumanEval code whose truth, per subgoal, a program decides
exactly). A judge scores every row once; its per-row, per-subgoal ``expected`` and ``score`` are kept in a JSON file
under ``--cache-dir`` (default ``benchmarks/.cache/``), one per judge identity and spec hash, written after every
``--chunk`` rows, so an interrupted run resumes where it stopped (goalcover's pair cache also keeps each judgement).

Then, for each number n of labels per subgoal (``--n-labels``, default 0,10,20,40) and each of ``--seeds`` seeds
(default 200), labels are drawn from the truth the way ``goalcover label`` draws them
(:func:`goalcover_hf.labels.pick_pairs`: stratified over the judge's score levels, which is the weighting
:func:`goalcover_hf.ppi.calibrated_coverage` post-stratifies by) and the coverage is estimated. Against the true coverage
of the scored rows, per subgoal: the raw judge figure's absolute error (``error_raw``); the estimate's mean absolute and
mean signed error (``error_estimate``, ``bias_estimate``), how often its 95% interval contains the truth
(``coverage_rate``) and its mean width (``mean_width``); the labels-only baseline at the same n, n labels drawn
uniformly: the error of their share and the Wilson interval (finite-population corrected, like the calibrated one), its
width and how often it contains the truth (``labels_only_*``); and, where calibrated, the mean power-tuning weight and
interval quantile (``mean_lam``, ``mean_quantile``). With n=0 the estimate is the raw figure with its sampling interval
(zero width when every row was scored): what a user without labels sees. The ``uniform`` block repeats the calibrated
figures with the n labels drawn uniformly instead of stratified. Each subgoal also gets the judge's AUC (its expected
score against the truth) and the oracle bound on the width ratio (``oracle_width_ratio``,
``oracle_neyman_width_ratio``: see :func:`oracle_width_ratios`; computed in sample from the truth of every row, so
optimistic: no estimator can do better with these scores, and a real one, with 10-40 labels, does worse); the line's
figures are the subgoals' averages, ``width_ratio`` = mean_width / labels_only_width.

Judges (``--judge``):
    controlled   a synthetic judge, no model: expected = 1 + 4 sigmoid(slope (2 truth + noise - q)), with q placed per
                 subgoal so that its raw coverage is 0.3 off the truth (above it for rare subgoals, below for common
                 ones); monotone in the truth but biased at the threshold; seeded by ``--judge-seed``
    embedded     the embedded 135M model (``--engine transformers``, the default)
    PATH         any model goalcover can load, e.g. a .gguf with ``--engine llamacpp --threads 2``

Prints one JSON line per (judge, n). Usage:
    python benchmarks/bench_trust.py --judge controlled
    HF_HUB_OFFLINE=1 python benchmarks/bench_trust.py --judge embedded
    python benchmarks/bench_trust.py --judge PATH.gguf --engine llamacpp --threads 2 --n-rows 96
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import trust_truth  # noqa: E402

from goalcover_hf.agreement import auc  # noqa: E402
from goalcover_hf.calibration import isotonic_fit, score_strata  # noqa: E402
from goalcover_hf.columns import DEFAULT_THRESHOLD  # noqa: E402
from goalcover_hf.errors import GoalcoverError  # noqa: E402
from goalcover_hf.files import atomic_write_text  # noqa: E402
from goalcover_hf.labels import pick_pairs  # noqa: E402
from goalcover_hf.ppi import MIN_LABELS, calibrated_coverage, wilson_interval  # noqa: E402

DEFAULT_CACHE = HERE / ".cache"
CACHE_VERSION = 1
CONTROLLED = {"separation": 2.0, "slope": 1.5, "bias": 0.3}  # truth shift of the latent, its slope, raw coverage offset
LOGIT_AT_THRESHOLD = float(np.log(0.625 / 0.375))  # 1 + 4 sigmoid(x) = 3.5, where the score level turns 4


# ---- judges ----------------------------------------------------------------------------------------------------------
def controlled_judge(truth: dict[str, list[int]], seed: int = 0, separation: float = CONTROLLED["separation"]
                     ) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """The synthetic judge: ``(expected, scores)`` per subgoal, ranking well but with its threshold far off.

    A row's latent is ``separation * truth + N(0, 1)`` (AUC Phi(separation / sqrt(2)): about 0.92 at the default 2,
    0.71 at 0.8, 0.96 at 2.5); ``q`` is the latent's quantile at which the share of rows reaching score 4 is the true
    coverage plus ``bias`` (rare subgoals) or minus it (common ones).
    """
    expected, scores = {}, {}
    for sub, values in truth.items():
        y = np.asarray(values, dtype=float)
        rng = np.random.default_rng([seed, zlib.crc32(sub.encode("utf-8"))])
        latent = separation * y + rng.normal(size=len(y))
        share = y.mean()
        raw = share + CONTROLLED["bias"] if share < 0.5 else share - CONTROLLED["bias"]
        q = np.quantile(latent, 1 - float(np.clip(raw, 0.02, 0.98)))
        e = np.round(1 + 4 / (1 + np.exp(-(CONTROLLED["slope"] * (latent - q) + LOGIT_AT_THRESHOLD))), 4)
        expected[sub] = [float(x) for x in e]
        scores[sub] = [int(s) for s in score_strata(e)]
    return expected, scores


def make_scorer(judge: str, spec, engine: str, threads: int | None):
    """A :class:`~goalcover_hf.scorer.Scorer` that scores only (no explanations), through goalcover's pair cache."""
    from goalcover_hf.scorer import Scorer

    options = {"threads": threads} if threads else None
    return Scorer(spec, judge, engine=engine, engine_options=options, explain="none")


def judge_key(scorer) -> dict[str, Any]:
    """What identifies a judge's scores: the pair cache's key settings and the spec's hash."""
    return scorer.key_settings() | {"spec_hash": scorer.config.spec_hash}


def cache_file(cache_dir: Path, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    name = "".join(c if c.isalnum() or c in "-." else "_" for c in Path(str(key["model"]).split("@")[0]).name)
    return cache_dir / f"trust_{name[:48]}_{digest}.json"


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_cache(path: Path, key: dict[str, Any]) -> dict[str, Any]:
    """The cached scores of ``path`` (empty when there is none); a file that is not one is an error naming it."""
    if not path.exists():
        return {"version": CACHE_VERSION, "judge": key, "seconds": 0.0, "rows": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise GoalcoverError(f"{path}: not a score cache of bench_trust.py ({err}); delete it to score again") from None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or data.get("judge") != key:
        raise GoalcoverError(f"{path}: holds the scores of another judge or cache version; delete it to score again")
    return data


def score_rows(scorer, rows: Sequence[dict], cache_dir: Path, chunk: int = 8, log=print) -> tuple[dict, dict, dict]:
    """Score every row through ``scorer``, reading back rows already in the cache file and saving after each chunk.

    A row is scored again when its text changed or one of its pairs has no score (the judge failed on it).

    Returns:
        ``(expected, scores, info)``: per subgoal, a value per row (None where the pair has no score), and where the
        scores are kept, how long scoring took (measured when they were made) and how many rows this run scored.
    """
    key = judge_key(scorer)
    path = cache_file(cache_dir, key)
    data = load_cache(path, key)
    subgoals = scorer.spec.subgoals

    def done(row):  # scored from this very text, every pair with a score (a pair that failed is asked again)
        kept = data["rows"].get(row["id"], {})
        return kept.get("text") == _text_hash(row["text"]) and None not in kept["score"].values()

    todo = [r for r in rows if not done(r)]
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        began = time.perf_counter()
        judged = scorer.judge_texts([r["text"] for r in part])
        data["seconds"] += time.perf_counter() - began
        for r, js in zip(part, judged):
            data["rows"][r["id"]] = {"text": _text_hash(r["text"]),
                                     "expected": {s.id: j.expected for s, j in zip(subgoals, js)},
                                     "score": {s.id: j.score for s, j in zip(subgoals, js)}}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data))
        log(f"scored {start + len(part)}/{len(todo)} rows ({data['seconds']:.0f} s of scoring in all) -> {path}")
    expected = {s.id: [data["rows"][r["id"]]["expected"][s.id] for r in rows] for s in subgoals}
    scores = {s.id: [data["rows"][r["id"]]["score"][s.id] for r in rows] for s in subgoals}
    info = {"cache": str(path), "score_seconds": round(data["seconds"], 1), "rows_scored_now": len(todo),
            "rows_in_cache": len(data["rows"])}
    return expected, scores, info


# ---- drawing labels and measuring --------------------------------------------------------------------------------------
def uniform_pairs(expected: dict[str, Sequence[float | None]], n: int, seed: int) -> list[tuple[int, str]]:
    """``n`` scored rows per subgoal drawn uniformly without replacement (seeded per subgoal)."""
    pairs = []
    for sub, values in expected.items():
        scored = np.flatnonzero([v is not None for v in values])
        rng = np.random.default_rng([seed, zlib.crc32(sub.encode("utf-8")), 1])
        pairs += [(int(r), sub) for r in rng.choice(scored, min(n, len(scored)), replace=False)]
    return pairs


def oracle_width_ratios(expected: Sequence[float], truth: Sequence[int]) -> tuple[float | None, float | None]:
    """How narrow, relative to labels alone, any interval that uses the judge's scores as a covariate could get.

    A monotone curve (isotonic, increasing or decreasing, whichever fits better) is fitted in sample on the truth of
    every row, the best calibration there could be: an optimistic bound, since no estimator knows the truth of the
    rows it has not labelled. With it, a label's variance left over is ``E[p(s)(1 - p(s))]`` against the label
    variance ``p(1 - p)``, so the width ratio is at best the square root of their ratio; with labels allocated to
    score levels by Neyman allocation, at best ``E[sqrt(p(s)(1 - p(s)))] / sqrt(p(1 - p))``.

    Returns:
        ``(ratio, neyman_ratio)``, None when the truth has one class only.
    """
    e, y = np.asarray(expected, dtype=float), np.asarray(truth, dtype=float)
    if y.min() == y.max():
        return None, None

    def fitted(x):
        xs, values = isotonic_fit(x, y)
        return values[np.searchsorted(xs, x)]

    p = min((fitted(e), fitted(-e)), key=lambda f: float(np.mean((y - f) ** 2)))
    sd = float(np.sqrt(y.mean() * (1 - y.mean())))
    return float(np.sqrt(np.mean(p * (1 - p)))) / sd, float(np.mean(np.sqrt(p * (1 - p)))) / sd


def _estimates(expected, scores, truth, pairs, threshold, seed):
    labels = {(r, s): int(truth[s][r]) for r, s in pairs}
    return calibrated_coverage(expected, labels, threshold=threshold, scores=scores, seed=seed)


def measure(expected: dict, scores: dict, truth: dict, n: int, seeds: int, threshold: float = DEFAULT_THRESHOLD,
            uniform: bool = True) -> dict[str, dict[str, Any]]:
    """Per subgoal, over ``seeds`` draws of ``n`` labels: the figures of the module docstring (unrounded)."""
    true = {s: float(np.mean([t for t, e in zip(truth[s], expected[s]) if e is not None])) for s in expected}
    keys = ("err", "signed", "hit", "width", "calibrated", "lam", "quantile", "u_err", "u_hit", "u_width", "lo_err",
            "lo_hit", "lo_width")
    acc = {s: {k: [] for k in keys} for s in expected}
    raw = {}
    for seed in range(seeds):
        strat = _estimates(expected, scores, truth, pick_pairs(expected, n, seed=seed) if n else [], threshold, seed)
        flat = uniform_pairs(expected, n, seed) if n else []
        unif = _estimates(expected, scores, truth, flat, threshold, seed) if uniform and n else strat
        for s, est in strat.items():
            a, t, u = acc[s], true[s], unif[s]
            raw[s] = est.judge_coverage
            a["err"].append(abs(est.estimate - t))
            a["signed"].append(est.estimate - t)
            a["hit"].append(est.low <= t <= est.high)
            a["width"].append(est.high - est.low)
            a["calibrated"].append(est.method == "calibrated")
            if est.method == "calibrated":
                a["lam"].append(est.lam)
                a["quantile"].append(est.quantile)
            a["u_err"].append(abs(u.estimate - t))
            a["u_hit"].append(u.low <= t <= u.high)
            a["u_width"].append(u.high - u.low)
            got = [truth[s][r] for r, sub in flat if sub == s]
            low, high = wilson_interval(sum(got), len(got), population=est.scored)
            if got:
                a["lo_err"].append(abs(np.mean(got) - t))
            a["lo_hit"].append(low <= t <= high)
            a["lo_width"].append(high - low)
    out = {}
    for s, a in acc.items():
        y = [t for t, e in zip(truth[s], expected[s]) if e is not None]
        oracle, neyman = oracle_width_ratios([e for e in expected[s] if e is not None], y)
        out[s] = {"true": true[s], "raw": raw[s], "auc": auc([e for e in expected[s] if e is not None], y),
                  "oracle_width_ratio": oracle, "oracle_neyman_width_ratio": neyman,
                  "error_raw": abs(raw[s] - true[s]), "error_estimate": np.mean(a["err"]),
                  "bias_estimate": np.mean(a["signed"]),
                  "coverage_rate": np.mean(a["hit"]), "mean_width": np.mean(a["width"]),
                  "labels_only_error": np.mean(a["lo_err"]) if a["lo_err"] else None, "labels_only_width": np.mean(a["lo_width"]),
                  "labels_only_coverage_rate": np.mean(a["lo_hit"]),
                  "calibrated_share": np.mean(a["calibrated"]),
                  "mean_lam": np.mean(a["lam"]) if a["lam"] else None,
                  "mean_quantile": np.mean(a["quantile"]) if a["quantile"] else None}
        if uniform and n:
            out[s]["uniform"] = {"error_estimate": np.mean(a["u_err"]), "coverage_rate": np.mean(a["u_hit"]),
                                 "mean_width": np.mean(a["u_width"])}
    return out


def _r(x):
    return None if x is None else round(float(x), 4)


def summarize(per: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The subgoals' figures averaged (each subgoal weighs the same), and each subgoal's own, rounded."""
    def avg(key, block=None):
        values = [(p.get(block) or {} if block else p).get(key) for p in per.values()]
        values = [v for v in values if v is not None]
        return _r(np.mean(values)) if values else None

    keys = ("error_raw", "error_estimate", "bias_estimate", "coverage_rate", "mean_width", "labels_only_error",
            "labels_only_width", "labels_only_coverage_rate", "calibrated_share", "mean_lam", "mean_quantile")
    line = {k: avg(k) for k in keys}
    line["width_ratio"] = _r(line["mean_width"] / line["labels_only_width"]) if line["labels_only_width"] else None
    line["uniform"] = None
    if all("uniform" in p for p in per.values()):
        line["uniform"] = {k: avg(k, "uniform") for k in ("error_estimate", "coverage_rate", "mean_width")}
        line["uniform"]["width_ratio"] = _r(line["uniform"]["mean_width"] / line["labels_only_width"])
    line["auc_mean"] = avg("auc")
    line["oracle_width_ratio"], line["oracle_neyman_width_ratio"] = avg("oracle_width_ratio"), avg(
        "oracle_neyman_width_ratio")
    line["per_subgoal"] = {s: {k: ({kk: _r(vv) for kk, vv in v.items()} if isinstance(v, dict) else _r(v))
                               for k, v in p.items()} for s, p in per.items()}
    return line


# ---- command line ------------------------------------------------------------------------------------------------------
def _counts(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected whole numbers >= 0, got {text!r}")
    return values


def parse_args(argv: Sequence[str] | None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--judge", default="embedded", help="controlled, embedded (default) or a model path / id")
    p.add_argument("--engine", default="transformers", help="the engine of a model judge (default transformers)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads of a local engine")
    p.add_argument("--n-rows", type=int, default=None, help="a seeded sample of the 328 rows (default: all)")
    p.add_argument("--row-seed", type=int, default=0, help="seed of the --n-rows sample (default 0)")
    p.add_argument("--n-labels", type=_counts, default=[0, 10, 20, 40], help="labels per subgoal (default 0,10,20,40)")
    p.add_argument("--seeds", type=int, default=200, help="label draws per n (default 200)")
    p.add_argument("--no-uniform", action="store_true", help="skip the uniform-draw variant")
    p.add_argument("--judge-seed", type=int, default=0, help="seed of the controlled judge (default 0)")
    p.add_argument("--separation", type=float, default=CONTROLLED["separation"],
                   help=f"how far the controlled judge's latent moves with the truth (default {CONTROLLED['separation']})")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"score cache folder (default {DEFAULT_CACHE})")
    p.add_argument("--chunk", type=int, default=8, help="rows scored between cache saves (default 8)")
    p.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD, help="score that counts as covered (default 4)")
    args = p.parse_args(argv)
    if args.seeds < 1 or args.chunk < 1:
        p.error("--seeds and --chunk must be at least 1")
    return args


def main(argv: Sequence[str] | None = None, scorer=None) -> int:
    """Run the benchmark; ``scorer`` (a :class:`~goalcover_hf.scorer.Scorer`) replaces the one ``--judge`` names."""
    args = parse_args(argv)
    started = time.perf_counter()
    rows, spec, truth = trust_truth.load_truth(args.n_rows, args.row_seed)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if scorer is None and args.judge == "controlled":
        expected, scores = controlled_judge(truth, args.judge_seed, args.separation)
        head = {"judge": "controlled", "model": None, "engine": None,
                "judge_settings": CONTROLLED | {"separation": args.separation, "seed": args.judge_seed}}
        info = {"cache": None, "score_seconds": 0.0}
    else:
        name = args.judge if scorer is not None or args.judge == "embedded" else Path(args.judge).name
        scorer = scorer or make_scorer(args.judge, spec, args.engine, args.threads)
        expected, scores, info = score_rows(scorer, rows, args.cache_dir, args.chunk, log)
        c = scorer.config
        head = {"judge": name, "model": c.model_identity,
                "engine": c.engine, "method": c.method, "mode": c.mode, "prompt_version": c.prompt_version}
    unscored = {s: sum(v is None for v in values) for s, values in expected.items()}
    # a subgoal without a single score has no figure to measure (unscored_pairs says so)
    expected = {s: v for s, v in expected.items() if unscored[s] < len(rows)}
    if not expected:
        raise GoalcoverError("the judge scored no pair at all; its log above says why")
    scores = {s: scores[s] for s in expected}
    for n in args.n_labels:
        began = time.perf_counter()
        per = measure(expected, scores, truth, n, args.seeds, args.threshold, uniform=not args.no_uniform)
        line = {"bench": "trust", **head, "rows": len(rows), "row_seed": args.row_seed if args.n_rows else None,
                "subgoals": len(expected), "threshold": args.threshold, "confidence": 0.95,
                "labels_per_subgoal": n, "seeds": args.seeds, "draw": "stratified (labels.pick_pairs)" if n else None,
                "estimate": "calibrated" if n >= MIN_LABELS else "judge", **summarize(per), "unscored_pairs": unscored, **info,
                "measure_seconds": round(time.perf_counter() - began, 1),
                "wall_seconds": round(time.perf_counter() - started, 1)}
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
