"""Score a dataset with Ray Data: the Scorer as a callable class in an actor pool, from and back to `datasets`.

On one machine this starts a local Ray; on a cluster, start Ray there (`ray start --head` / `--address`) and pass
`--address auto`. Each actor builds its own Scorer and engine; with `--engine openai` they all send requests to
the servers given by --base-url (one server per actor, round robin, when several are given).

    python examples/ray_scoring.py --limit 6 --concurrency 2                       # embedded model, transformers
    python examples/ray_scoring.py --engine openai --base-url http://127.0.0.1:8000/v1 --concurrency 4

The embedded 135M model's scores are close to chance: this shows the plumbing, not a diagnosis.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pyarrow as pa
import ray
from datasets import Dataset, load_dataset

from goalcover_hf import GoalSpec, Scorer, compute_coverage

HERE = Path(__file__).resolve().parent


def score_with_ray(ds: Dataset, scorer: Scorer, concurrency: int, batch_size: int,
                   base_urls: list[str] | None = None) -> Dataset:
    """``ds`` scored by ``concurrency`` Ray actors; rows come back in order, typed as ``scorer.features``."""
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    kwargs = scorer.init_kwargs()
    if base_urls and len(base_urls) > 1:
        # Several servers: split the rows, one stream per server, each with its own actor pool. They must all serve
        # the same model, or the run would mix judges under one provenance.
        identities = {Scorer(**kwargs | {"base_url": url}).config.model_identity for url in base_urls}
        if identities != {scorer.config.model_identity}:
            raise SystemExit(f"the servers serve different models: {sorted(identities)}")
        shards = ray.data.from_huggingface(ds).repartition(concurrency).materialize().split(len(base_urls), equal=False)
        pool = ray.data.ActorPoolStrategy(size=max(1, concurrency // len(base_urls)))
        parts = [shard.map_batches(Scorer, fn_constructor_kwargs=kwargs | {"base_url": url}, batch_format="pyarrow",
                                   batch_size=batch_size, compute=pool)
                 for shard, url in zip(shards, base_urls)]
        tables = [t for part in parts for t in ray.get(part.to_arrow_refs())]
    else:
        # One datasets table is one Ray block, which one actor would score alone: split it first. Materialize, so
        # the split runs before the actors take the CPUs.
        scored = ray.data.from_huggingface(ds).repartition(concurrency).materialize().map_batches(
            Scorer, fn_constructor_kwargs=kwargs, batch_format="pyarrow", batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=concurrency))
        tables = ray.get(scored.to_arrow_refs())
    return Dataset(pa.concat_tables(tables)).cast(scorer.features(ds.features))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(HERE / "medication_qa" / "data.jsonl"))
    p.add_argument("--spec", default=str(HERE / "medication_qa" / "goal.yaml"))
    p.add_argument("--model", default="embedded")
    p.add_argument("--engine", default="transformers", choices=("transformers", "llamacpp", "openai"))
    p.add_argument("--base-url", action="append", help="an OpenAI-compatible server; repeat for several")
    p.add_argument("--mode", default="logprobs", choices=("generate", "logprobs"))
    p.add_argument("--limit", type=int, default=6)
    p.add_argument("--concurrency", type=int, default=2, help="Ray actors")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--address", help="a running Ray cluster (default: start a local one)")
    args = p.parse_args()

    spec = GoalSpec.load(args.spec)
    ds = load_dataset("json", data_files=args.data, split="train").select(range(args.limit))
    scorer = Scorer(spec, None if args.engine == "openai" and args.model == "embedded" else args.model,
                    engine=args.engine, mode=args.mode, explain="none",
                    base_url=args.base_url[0] if args.base_url else None)
    ray.init(address=args.address, num_cpus=None if args.address else os.cpu_count(), include_dashboard=False,
             log_to_driver=False)
    scored = score_with_ray(ds, scorer, args.concurrency, args.batch_size, args.base_url)
    print(compute_coverage(scored, spec, threshold=scorer.config.threshold).table())
    print(f"\nScored {len(scored)} rows with {scorer.config.model_identity} ({args.engine}) on {args.concurrency} "
          "Ray actors.")
    if scorer.is_embedded:
        print("NOTE: the embedded SmolLM2-135M model's scores are close to chance; they diagnose nothing.")


if __name__ == "__main__":
    main()
