"""Scoring speed: the naive path (Outlines JSON per pair, batch 1) against the fast one (logprobs, shared prefixes,
batched explanations for low scores), on the same rows and subgoals, in one process. Prints one JSON line.

    HF_HUB_OFFLINE=1 python benchmarks/bench_scoring.py [--model embedded] [--rows 4] [--subgoals 8] [--naive-pairs 12]

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
EXTERNAL = ROOT.parent / "shared" / "data" / "external"
EXTERNAL_FILES = ("medical_qa_medquad.jsonl", "general_instructions.jsonl")

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
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--subgoals", type=int, default=8, help=f"K, at most {len(SUBGOALS)}")
    parser.add_argument("--naive-pairs", type=int, default=8, help="pairs judged by the naive path (slow)")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    args = parser.parse_args()

    import torch
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

    options = dict(max_new_tokens=args.max_new_tokens)

    def scorer(explain="low", cache=False):
        return Scorer(spec, args.model, mode="logprobs", explain=explain, cache=cache, **options)

    engine = scorer().engine  # the very engine every scorer below uses (one per process): its token counter is read

    # Warm-up outside the timings: Outlines compiles each schema's automaton once per process (~20 s).
    warm = scorer().chat(texts[0][:200], subgoals[0], "ask_json")
    engine.generate_json([warm], JudgementJSON, 4)
    engine.generate_json_shared([[warm]], ExplanationJSON, 4)

    # Naive: Outlines JSON per pair, batch 1, on pairs spread over rows and subgoals.
    pairs = [(i, j) for i in range(len(texts)) for j in range(k)]
    step = max(1, len(pairs) // max(1, args.naive_pairs))
    naive_pairs = pairs[::step][: args.naive_pairs]
    naive_chats = [scorer().chat(texts[i], subgoals[j], "ask_json") for i, j in naive_pairs]
    naive_raw, naive_wall, naive_cpu = timed(
        lambda: [engine.generate_json([c], JudgementJSON, args.max_new_tokens)[0] for c in naive_chats])
    naive = [parse_judgement(r) for r in naive_raw]

    # Fast: logprobs + shared prefixes + explanations for low scores, into a fresh pair cache.
    cache_file = Path(tempfile.mkdtemp()) / "pairs.sqlite"
    engine.tokens_read = 0
    fast, fast_wall, fast_cpu = timed(lambda: scorer("low", cache_file).judge_texts(texts))
    fast_tokens = engine.tokens_read  # scores and explanation prompts, prefill only
    explained = sum(j.explanation is not None for row in fast for j in row)

    engine.tokens_read = 0
    _, score_wall, score_cpu = timed(lambda: scorer("none").judge_texts(texts))
    score_tokens = engine.tokens_read

    # Prefix sharing: time(K subgoals) / time(1 subgoal) on the same samples (scores only, then with explanations).
    _, k1_wall, _ = timed(lambda: scorer("none").judge_texts(texts, subgoals[:1]))
    _, k1_low_wall, _ = timed(lambda: scorer("low").judge_texts(texts, subgoals[:1]))

    # Cached re-run: a fresh scorer on the same cache file; no model call at all.
    rerun, cached_wall, _ = timed(lambda: scorer("low", cache_file).judge_texts(texts))
    assert rerun == fast, "cached re-run differs from the run that filled the cache"

    # Prefill ceiling: one large batched forward of real prompt text, no padding.
    tok = engine.tokenizer
    ids = tok(engine.chat_text(scorer().chat("\n\n".join(texts), subgoals[0], "ask_digit")),
              add_special_tokens=False)["input_ids"]
    width, batch = min(512, len(ids) // 2), 8
    block = torch.tensor([(ids * (1 + width * batch // len(ids)))[r * width : (r + 1) * width] for r in range(batch)])
    with torch.inference_mode():
        engine.model(input_ids=block[:1, :64], logits_to_keep=1)
        _, ceil_wall, _ = timed(lambda: engine.model(input_ids=block, logits_to_keep=1))
    ceiling = block.numel() / ceil_wall

    # Agreement on the naive pairs: fast expected value vs naive score, and exact score agreement.
    both = [(fast[i][j], n) for (i, j), n in zip(naive_pairs, naive) if n.error is None and fast[i][j].error is None]
    rho = spearmanr([f.expected for f, _ in both], [n.score for _, n in both]).statistic if len(both) > 2 else None
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
        "naive_pairs": len(naive_pairs),
        "naive_pairs_per_s": round(naive_rate, 4),
        "naive_cpu_s_per_pair": round(naive_cpu / len(naive_pairs), 3),
        "fast_pairs_per_s": round(fast_rate, 4),
        "fast_cpu_s_per_pair": round(fast_cpu / len(pairs), 3),
        "speedup": round(fast_rate / naive_rate, 2),
        "fast_explained_pairs": explained,
        "scores_only_pairs_per_s": round(len(pairs) / score_wall, 4),
        "scores_only_speedup": round(len(pairs) / score_wall / naive_rate, 2),
        "prefill_ceiling_tokens_per_s": round(ceiling, 1),
        "fast_unique_tokens": fast_tokens,
        "fast_fraction_of_ceiling": round(fast_tokens / fast_wall / ceiling, 3),
        "scores_only_unique_tokens": score_tokens,
        "scores_only_fraction_of_ceiling": round(score_tokens / score_wall / ceiling, 3),
        "scores_only_cpu_s": round(score_cpu, 2),
        "k_over_1_time_scores_only": round(score_wall / k1_wall, 2),
        "k_over_1_time_explain_low": round(fast_wall / k1_low_wall, 2),
        "cached_rerun_speedup": round(fast_wall / cached_wall, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "agreement_pairs": len(both),
        "spearman_fast_expected_vs_naive": None if rho is None or rho != rho else round(float(rho), 3),
        "argmax_agreement": round(sum(f.score == n.score for f, n in both) / len(both), 3) if both else None,
        "naive_scores": [n.score for n in naive],
        "fast_scores_on_naive_pairs": [fast[i][j].score for i, j in naive_pairs],
        "naive_errors": sum(n.error is not None for n in naive),
    }))


if __name__ == "__main__":
    main()
