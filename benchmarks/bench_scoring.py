"""Scoring speed: the naive path (Outlines JSON per pair, batch 1) against goalcover's defaults (digit
probabilities with shared prefixes, then a budgeted sample of explanations), on the same rows and subgoals, in one
process. Prints one JSON line.

    HF_HUB_OFFLINE=1 python benchmarks/bench_scoring.py [--model embedded] [--rows 128] [--subgoals 8]
        [--naive-pairs 12] [--explain-budget 64]

Measured: the default path as ``goalcover score`` runs it (a ``datasets`` map into a fresh pair cache, then
``explain_sample``), scores only, time(K subgoals) / time(1 subgoal) for both, a re-run on the filled cache, the naive
path on ``--naive-pairs`` pairs spread over rows and subgoals, and the prefill ceiling: the best tokens/s of a few
batched forwards of real prompt text without padding (``scores_only_fraction_of_ceiling`` = prompt tokens the scores
read per second over it). ``default_path_peak_rss_mib`` is the process's peak resident memory before the naive path
and the ceiling run.

Rows come from ../shared/data/external (MedQuAD and Alpaca rows, alternating) when present, else examples/*/data.jsonl.
Times are wall seconds; CPU seconds are reported too because the machine may be shared. With the embedded 135M model
the agreement figures measure plumbing, not judgement quality (its scores are near chance).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from itertools import zip_longest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from goalcover_hf.explain import DEFAULT_PER_SUBGOAL, explain_sample  # noqa: E402

EXTERNAL = ROOT.parent / "shared" / "data" / "external"
EXTERNAL_FILES = ("medical_qa_medquad.jsonl", "general_instructions.jsonl")
CEILING_SHAPES = [(1, 512), (4, 512), (8, 256), (16, 128), (8, 512)]  # (rows, tokens) of the batched forwards tried

SUBGOALS = [
    ("answers_question", "Answers the question", "The response directly answers what was asked.",
     "The response ignores the question.", "The response answers the exact question completely."),
    ("factual_detail", "Gives specific facts", "The response contains concrete facts, numbers or named entities.",
     None, None),
    ("plain_language", "Uses plain language", "The response is understandable by a layperson without jargon.",
     None, None),
    ("safety_advice", "Gives safety advice", "The response warns about risks or says when to see a professional.",
     "No warning or referral at all.", "A clear warning and when to seek help."),
    ("structured", "Is well structured", "The response uses steps, lists or paragraphs that organize the content.",
     None, None),
    ("medical_content", "Covers medical content", "The sample is about a disease, a treatment or a test.", None, None),
    ("states_cause", "Explains causes", "The response explains why something happens (causes or mechanisms).",
     None, None),
    ("concise", "Is concise", "The response has no filler and no repetition.", None, None),
]


def load_texts(n: int) -> tuple[list[str], str]:
    from goalcover_hf.formats import RowRenderer

    if EXTERNAL.is_dir():
        files = [EXTERNAL / name for name in EXTERNAL_FILES]
        source = "shared/data/external: " + ", ".join(EXTERNAL_FILES)
    else:
        files = sorted(ROOT.glob("examples/*/data.jsonl"))
        source = "examples: " + ", ".join(str(f.relative_to(ROOT)) for f in files)
    if not files:
        sys.exit("no data: neither ../shared/data/external nor examples/*/data.jsonl exists")
    per_file = []
    for f in files:
        rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        renderer = RowRenderer(columns=list(rows[0]))
        per_file.append([renderer.render(r) for r in rows[:n]])
    texts = [t for group in zip_longest(*per_file) for t in group if t is not None]
    return texts[:n], source


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--subgoals", type=int, default=8, help=f"K, at most {len(SUBGOALS)}")
    parser.add_argument("--naive-pairs", type=int, default=12, help="pairs judged by the naive path (slow)")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--explain-budget", type=int, default=DEFAULT_PER_SUBGOAL,
                        help=f"explanations per subgoal of the default path (default {DEFAULT_PER_SUBGOAL})")
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from scipy.stats import spearmanr

    from goalcover_hf.judge import ExplanationJSON, JudgementJSON, parse_judgement
    from goalcover_hf.scorer import Scorer
    from goalcover_hf.spec import GoalSpec

    k = min(args.subgoals, len(SUBGOALS))
    spec = GoalSpec(goal="A helpful assistant for health and general questions", subgoals=[
        {"id": i, "name": n, "description": d, "low": lo or "", "high": hi or ""} for i, n, d, lo, hi in SUBGOALS[:k]])
    texts, source = load_texts(args.rows)
    subgoals = spec.subgoals
    load = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp())

    def scorer(explain="sample", cache=False, sub_spec=spec):
        return Scorer(sub_spec, args.model, mode="logprobs", explain=explain, cache=cache,
                      max_new_tokens=args.max_new_tokens)

    engine = scorer().engine  # the very engine every scorer below uses (one per process): its token counter is read

    # Warm-up outside the timings: Outlines compiles each schema's automaton once per process (~20 s).
    warm = scorer().chat(texts[0][:200], subgoals[0], "ask_json")
    engine.generate_json([warm], JudgementJSON, 4)
    engine.generate_json_shared([[warm]], ExplanationJSON, 4)

    def default_run(sub_spec, cache_file):
        """What `goalcover score` does with its defaults: scores in a map, then the budgeted explanations."""
        s = scorer("sample", cache_file, sub_spec)
        ds = Dataset.from_dict({"text": texts})
        began = time.perf_counter()
        annotated = ds.map(s, batched=True, batch_size=s.config.batch_size, with_indices=True,
                           features=s.features(ds.features), load_from_cache_file=False)
        scored = time.perf_counter() - began
        annotated = explain_sample(annotated, s, per_subgoal=args.explain_budget)
        return annotated, scored

    # The default path, into a fresh pair cache.
    engine.tokens_read = 0
    (fast_ds, fast_score_wall), fast_wall, fast_cpu = timed(lambda: default_run(spec, work / "pairs.sqlite"))
    fast_tokens = engine.tokens_read  # scores and explanation prompts, prefill only
    explained = sum(e is not None for sub in subgoals for e in fast_ds[f"gc_{sub.id}_explanation"])
    fast = [[fast_ds[f"gc_{sub.id}_expected"][i] for sub in subgoals] for i in range(len(texts))]

    engine.tokens_read = 0
    _, score_wall, score_cpu = timed(lambda: scorer("none").judge_texts(texts))
    score_tokens = engine.tokens_read

    # Prefix sharing: time(K subgoals) / time(1 subgoal) on the same samples (scores only, then the default path).
    _, k1_wall, _ = timed(lambda: scorer("none").judge_texts(texts, subgoals[:1]))
    one = GoalSpec(goal=spec.goal, subgoals=[subgoals[0].model_dump()])
    _, k1_default_wall, _ = timed(lambda: default_run(one, work / "pairs_k1.sqlite"))

    # Cached re-run: the default path on the filled cache; no model call at all.
    (rerun, _), cached_wall, _ = timed(lambda: default_run(spec, work / "pairs.sqlite"))
    assert rerun[:] == fast_ds[:], "cached re-run differs from the run that filled the cache"
    fast_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the naive path and the ceiling

    # Naive: Outlines JSON per pair, batch 1, on pairs spread over rows and subgoals.
    pairs = [(i, j) for i in range(len(texts)) for j in range(k)]
    step = max(1, len(pairs) // max(1, args.naive_pairs))
    naive_pairs = pairs[::step][: args.naive_pairs]
    naive_chats = [scorer().chat(texts[i], subgoals[j], "ask_json") for i, j in naive_pairs]
    naive_raw, naive_wall, naive_cpu = timed(
        lambda: [engine.generate_json([c], JudgementJSON, args.max_new_tokens)[0] for c in naive_chats])
    naive = [parse_judgement(r) for r in naive_raw]

    # Prefill ceiling: the best of a few batched forwards of real prompt text, no padding.
    tok = engine.tokenizer
    ids = tok(engine.chat_text(scorer().chat("\n\n".join(texts), subgoals[0], "ask_digit")),
              add_special_tokens=False)["input_ids"]
    ceiling, ceiling_shape = 0.0, None
    with torch.inference_mode():
        for batch, width in CEILING_SHAPES:
            block = torch.tensor([(ids * (1 + width * batch // len(ids)))[r * width : (r + 1) * width]
                                  for r in range(batch)])
            engine.model(input_ids=block, logits_to_keep=1)
            best = min(timed(lambda: engine.model(input_ids=block, logits_to_keep=1))[1] for _ in range(2))
            if block.numel() / best > ceiling:
                ceiling, ceiling_shape = block.numel() / best, [batch, width]

    # Agreement on the naive pairs: fast expected value vs naive score.
    both = [(fast[i][j], n) for (i, j), n in zip(naive_pairs, naive) if n.error is None and fast[i][j] is not None]
    rho = spearmanr([f for f, _ in both], [n.score for _, n in both]).statistic if len(both) > 2 else None
    naive_rate = len(naive_pairs) / naive_wall
    fast_rate = len(pairs) / fast_wall
    print(json.dumps({
        "bench": "scoring",
        "model": engine.identity,
        "device": f"cpu, torch threads {torch.get_num_threads()}, cores {os.cpu_count()}",
        "loadavg_1min_at_start": round(load, 2),
        "data": source,
        "rows": len(texts),
        "subgoals": k,
        "pairs": len(pairs),
        "explain_budget": args.explain_budget,
        "naive_pairs": len(naive_pairs),
        "naive_pairs_per_s": round(naive_rate, 4),
        "naive_cpu_s_per_pair": round(naive_cpu / len(naive_pairs), 3),
        "default_pairs_per_s": round(fast_rate, 4),
        "default_speedup": round(fast_rate / naive_rate, 2),
        "default_wall_s": round(fast_wall, 1),
        "default_scoring_wall_s": round(fast_score_wall, 1),
        "default_explaining_wall_s": round(fast_wall - fast_score_wall, 1),
        "default_explained_pairs": explained,
        "default_cpu_s_per_pair": round(fast_cpu / len(pairs), 3),
        "scores_only_pairs_per_s": round(len(pairs) / score_wall, 4),
        "scores_only_speedup": round(len(pairs) / score_wall / naive_rate, 2),
        "prefill_ceiling_tokens_per_s": round(ceiling, 1),
        "prefill_ceiling_shape": ceiling_shape,
        "default_unique_tokens": fast_tokens,
        "scores_only_unique_tokens": score_tokens,
        "scores_only_tokens_per_s": round(score_tokens / score_wall, 1),
        "scores_only_fraction_of_ceiling": round(score_tokens / score_wall / ceiling, 3),
        # The most any implementation reading these prompt tokens could reach at the ceiling (decoding taken as free).
        "default_speedup_bound_at_ceiling": round(len(pairs) * ceiling / max(fast_tokens, 1) / naive_rate, 2),
        "scores_only_speedup_bound_at_ceiling": round(len(pairs) * ceiling / max(score_tokens, 1) / naive_rate, 2),
        "scores_only_cpu_s": round(score_cpu, 2),
        "k_over_1_time_scores_only": round(score_wall / k1_wall, 2),
        "k_over_1_time_default": round(fast_wall / k1_default_wall, 2),
        "cached_rerun_speedup": round(fast_wall / cached_wall, 1),
        "default_path_peak_rss_mib": round(fast_rss),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "agreement_pairs": len(both),
        "spearman_fast_expected_vs_naive": None if rho is None or rho != rho else round(float(rho), 3),
        "naive_scores": [n.score for n in naive],
        "fast_expected_on_naive_pairs": [None if fast[i][j] is None else round(fast[i][j], 2) for i, j in naive_pairs],
        "naive_errors": sum(n.error is not None for n in naive),
    }))


if __name__ == "__main__":
    main()
