"""The same rows x subgoals through every engine available here; one JSON line per engine.

    python benchmarks/bench_engines.py                       # embedded model: transformers, llamacpp, openai
    python benchmarks/bench_engines.py --rows 8 --mode generate
    python benchmarks/bench_engines.py --base-url http://127.0.0.1:8000/v1 --engines openai   # an existing server

Without --base-url, the openai engine is measured against llama-cpp-python's server on 127.0.0.1 (started here,
serving the same GGUF). Each line: engine, model identity, pairs, seconds, pairs per second, errors, and agreement
with the transformers engine on the same pairs (same score; mean |expected difference|) when it ran. The embedded
135M model's scores are near chance: agreement says whether engines compute the same thing, not whether it is right.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rows(n: int) -> list[str]:
    from goalcover_hf.formats import RowRenderer

    lines = (ROOT / "examples" / "medication_qa" / "data.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    data = [json.loads(line) for line in lines]
    renderer = RowRenderer(columns=list(data[0]))
    return [renderer.render(r) for r in data]


def run(scorer, texts) -> tuple[float, list]:
    start = time.perf_counter()
    judged = scorer.judge_texts(texts)
    return time.perf_counter() - start, [j for row in judged for j in row]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=6)
    p.add_argument("--mode", default="logprobs", choices=("logprobs", "generate"))
    p.add_argument("--model", default="embedded", help="embedded or a .gguf (the same weights for every engine)")
    p.add_argument("--engines", default="transformers,llamacpp,openai")
    p.add_argument("--base-url", help="measure this server instead of starting llama-cpp-python's")
    p.add_argument("--served-model", help="model name on --base-url (default: the one it serves)")
    p.add_argument("--max-in-flight", type=int, default=8)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads of each local engine and server")
    args = p.parse_args()

    from goalcover_hf import GoalSpec, Scorer
    from goalcover_hf.models import resolve_model

    spec = GoalSpec.load(ROOT / "examples" / "medication_qa" / "goal.yaml")
    texts = rows(args.rows)
    reference = None
    server = None
    for engine in args.engines.split(","):
        options, model, base_url = {"threads": args.threads}, args.model, None
        if engine == "llamacpp" and importlib.util.find_spec("llama_cpp") is None:
            print(json.dumps({"engine": engine, "skipped": "llama-cpp-python not installed"}))
            continue
        if engine == "openai":
            model, base_url = args.served_model, args.base_url
            options = {"max_in_flight": args.max_in_flight}
            if base_url is None:
                if importlib.util.find_spec("llama_cpp") is None:
                    print(json.dumps({"engine": engine, "skipped": "no --base-url and no llama-cpp-python server"}))
                    continue
                sys.path.insert(0, str(ROOT / "tests"))
                from servers import LlamaServer

                server = LlamaServer(resolve_model(args.model).location, alias="bench", n_ctx=2048,
                                     threads=args.threads)
                server.wait_ready()
                base_url = server.base_url
        extra = {"cache": False} if "cache" in inspect.signature(Scorer).parameters else {}  # measure, not recall
        scorer = Scorer(spec, model, engine=engine, mode=args.mode, explain="none", base_url=base_url,
                        engine_options=options, max_new_tokens=96, **extra)
        load_start = time.perf_counter()
        scorer.engine  # load before timing
        load_s = time.perf_counter() - load_start
        seconds, judged = run(scorer, texts)
        line = {"engine": engine, "model": scorer.config.model_identity, "mode": args.mode, "rows": len(texts),
                "subgoals": len(spec.subgoals), "pairs": len(judged), "load_s": round(load_s, 2),
                "seconds": round(seconds, 2), "pairs_per_s": round(len(judged) / seconds, 3),
                "errors": sum(j.error is not None for j in judged)}
        if engine == "openai":
            line["server"] = "llama-cpp-python (started here)" if server else base_url
            line["max_in_flight"] = args.max_in_flight
        else:
            line["threads"] = args.threads
        if reference is None and engine == "transformers":
            reference = judged
        elif reference is not None:
            both = [(a, b) for a, b in zip(reference, judged) if a.score is not None and b.score is not None]
            line["agreement_with_transformers"] = round(sum(a.score == b.score for a, b in both) / max(len(both), 1), 3)
            line["mean_abs_expected_diff"] = round(sum(abs(a.expected - b.expected) for a, b in both) / max(len(both), 1), 4)
        print(json.dumps(line), flush=True)
    if server is not None:
        server.stop()


if __name__ == "__main__":
    main()
