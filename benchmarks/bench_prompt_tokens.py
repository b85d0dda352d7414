"""Prompt tokens per pair: how much of a score prompt a sample's subgoals share, and the floor that puts under
time(K subgoals) / time(1 subgoal). Tokenizer only, no forward pass. Prints one JSON line.

    HF_HUB_OFFLINE=1 python benchmarks/bench_prompt_tokens.py [--model embedded] [--rows 128] [--subgoals 8]

Same rows and subgoals as ``bench_scoring.py``. A score prompt is the instructions (shared by every pair, read once),
the sample (read once for all its subgoals) and a suffix (the subgoal's text and the score cue, read once per pair).
``token_ratio_k_over_1`` = (sample tokens + K suffixes) / (sample tokens + the first suffix), summed over rows: what
time(K) / time(1) would be if every prompt token cost the same.
"""

from __future__ import annotations

import argparse
import json

from bench_scoring import SUBGOALS, load_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--subgoals", type=int, default=8, help=f"K, at most {len(SUBGOALS)}")
    args = parser.parse_args()

    from goalcover_hf.engines.shared_prefix import common_prefix_len
    from goalcover_hf.scorer import Scorer
    from goalcover_hf.spec import GoalSpec

    k = min(args.subgoals, len(SUBGOALS))
    spec = GoalSpec(goal="A helpful assistant for health and general questions", subgoals=[
        {"id": i, "name": n, "description": d, "low": lo or "", "high": hi or ""} for i, n, d, lo, hi in SUBGOALS[:k]])
    texts, source = load_texts(args.rows)
    scorer = Scorer(spec, args.model, mode="logprobs", explain="none", cache=False)
    engine = scorer.engine

    def ids(text, sub):
        chat = engine.chat_text(scorer.chat(text, sub, "ask_digit"))
        return engine.tokenizer(chat, add_special_tokens=False)["input_ids"]

    per_row = [[ids(t, sub) for sub in spec.subgoals] for t in texts]
    shared = common_prefix_len([row[0] for row in per_row])  # the instructions every pair starts with
    sample = [common_prefix_len(row) - shared for row in per_row]
    suffixes = [[len(seq) - shared - s for seq in row] for row, s in zip(per_row, sample)]
    n = len(texts)
    print(json.dumps({
        "bench": "prompt_tokens",
        "model": engine.identity,
        "data": source,
        "rows": n,
        "subgoals": k,
        "instruction_tokens": shared,
        "mean_sample_tokens": round(sum(sample) / n, 1),
        "mean_suffix_tokens_per_subgoal": [round(sum(s[j] for s in suffixes) / n, 1) for j in range(k)],
        "token_ratio_k_over_1": round((sum(sample) + sum(map(sum, suffixes))) / (sum(sample) + sum(s[0] for s in suffixes)),
                                      3),
    }))


if __name__ == "__main__":
    main()
