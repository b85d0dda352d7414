"""``goalcover score`` (every sample against every subgoal, into a run folder) and ``goalcover cache``."""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import time
from collections import Counter

from ..columns import DEFAULT_THRESHOLD, TRUNCATED_COLUMN, score_columns
from ..errors import GoalcoverError
from ..files import atomic_path, refuse_overwrite
from .options import (COUNT, add_judge_options, add_output_options, add_report_options, check_output, note,
                      scorer_overrides, warn, warn_if_embedded)

ROW_PREFIX = re.compile(r"^row \d+: ")  # errors about one row's input say which row; counted as one kind


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``score`` and ``cache``."""
    from ..explain import DEFAULT_PER_SUBGOAL
    from ..judging import EXPLAIN
    from ..scorer import Scorer

    p = sub.add_parser("score", parents=parents, help="score every sample against every subgoal")
    p.add_argument("--data", required=True, help="a .jsonl/.json/.csv/.parquet file, a folder, or a Hub dataset id")
    p.add_argument("--spec", required=True, help="the goal spec YAML")
    p.add_argument("--split", default="train", help="split of --data (default train)")
    p.add_argument("--limit", type=COUNT, metavar="N", help="score only the first N rows")
    p.add_argument("--sample", type=COUNT, metavar="N",
                   help="score a seeded uniform random sample of N rows (kept in their order); coverage is then "
                   "estimated for all rows, its intervals including that sampling")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    judging = add_judge_options(p, from_run=False)
    explain = inspect.signature(Scorer).parameters["explain"].default
    judging.add_argument("--explain", choices=EXPLAIN,
                         help=f"logprobs mode: which pairs get explanations: sample (a seeded draw of low-scoring "
                         f"pairs per subgoal, after scoring), low, all or none (default: {explain})")
    judging.add_argument("--explain-budget", type=COUNT, metavar="N", default=DEFAULT_PER_SUBGOAL,
                         help=f"with --explain sample: most low-scoring pairs explained per subgoal "
                         f"(default {DEFAULT_PER_SUBGOAL})")
    add_report_options(p, samples=False, coverage=False, threshold=str(DEFAULT_THRESHOLD))
    p.add_argument("--num-proc", type=COUNT, metavar="N",
                   help="worker processes for datasets.map (each opens its own engine)")
    p.add_argument("--cache", help="pair cache SQLite file (default: the goalcover cache folder's pairs.sqlite)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the pair cache")
    add_output_options(p, "run folder to write")
    p.add_argument("--jsonl", help="also write the annotated rows to this JSONL file")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("cache", parents=parents, help="show or clear the cache of (sample, subgoal) judgements")
    p.add_argument("action", choices=("info", "clear"))
    p.add_argument("--path", help="pair cache SQLite file (default: the goalcover cache folder's pairs.sqlite)")
    p.add_argument("--json", action="store_true", help="info: print JSON")
    p.set_defaults(func=cmd_cache)


def cmd_score(args: argparse.Namespace) -> int:
    """Score ``--data`` against ``--spec`` into the run folder ``-o``; exit 1 when every pair failed."""
    from ..data import hub_source, load_data
    from ..formats import RowFormatError, RowRenderer
    from ..results import Run
    from ..scorer import Scorer
    from ..truncation import MARKER

    out = check_output(args.output, args.overwrite)
    if args.jsonl:
        refuse_overwrite(args.jsonl, args.overwrite)
    scorer = Scorer(args.spec, **scorer_overrides(args), cache=False if args.no_cache else args.cache)
    warn_if_embedded(scorer.config.model_identity)
    source = hub_source(args.data)  # the commit of a Hub dataset, loaded exactly and recorded in the provenance
    ds = load_data(args.data, split=args.split, limit=args.limit, revision=source and source["revision"])
    sample = None
    if args.sample is not None:
        ds, sample = sample_rows(ds, args.sample, args.seed, args.data + (" (its first --limit rows)" if args.limit
                                                                           else ""))
    try:  # check the layout once, up front, rather than as an error on every row
        renderer = RowRenderer(columns=ds.column_names, template=scorer.config.template)
        renderer.check_features(ds.features)
    except RowFormatError as err:
        raise RowFormatError(f"{args.data}: {err}") from None
    skipped = renderer.skipped_parts(ds)
    if skipped:
        warn(f"{args.data}: {skipped}")
    scorer.sample_budget()  # tokenizer and context, up front: a model that cannot load fails here, not in the map
    if scorer.pair_cache is not None:
        scorer.pair_cache.open()  # a damaged cache file fails here, not in the map
    c = scorer.config
    note(f"Scoring {len(ds)} rows x {len(scorer.spec.subgoals)} subgoals with {c.model_identity} ({c.mode} mode, "
         f"method {c.method})")
    if c.method.endswith("+cal"):
        note("Calibrating: scoring content-free samples against each subgoal")
        scorer.calibration()  # once, here: map workers then read the reference judgements from the pair cache
    started = time.time()
    try:
        annotated = ds.map(scorer, batched=True, batch_size=c.batch_size, with_indices=True, num_proc=args.num_proc,
                           features=scorer.features(ds.features), desc="goalcover score")
        if c.explain == "sample":
            from ..explain import explain_sample

            note(f"Explaining up to {args.explain_budget} low-scoring pairs per subgoal")
            annotated = explain_sample(annotated, scorer, per_subgoal=args.explain_budget)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_resume_note(scorer, started)) from None
    cut = [n for n in annotated[TRUNCATED_COLUMN] if n]
    if cut:
        warn(f"{len(cut)} of {len(annotated)} rows were longer than the judge's context ({scorer.context_tokens} "
             f"tokens) and were cut in the middle, marked {MARKER.format(n='N')!r}; column {TRUNCATED_COLUMN} says "
             "how many tokens each lost")
    failed, pairs, (example, times) = pair_errors(annotated, scorer.spec)
    if failed == pairs:
        print(f"error: every (row, subgoal) pair failed ({failed} of {pairs}), so no run was written; the most "
              f"common error ({times} of {pairs}): {example}", file=sys.stderr)
        return 1
    if failed:
        warn(f"{failed} of {pairs} (row, subgoal) pairs have no score; the most common error ({times} of {failed}): "
             f"{example}; each pair's gc_<subgoal>_error column says why")
    provenance = scorer.provenance() | {
        "data": args.data, **({"source": source} if source else {}), "split": args.split, "limit": args.limit,
        "embedded": scorer.is_embedded, **({"sample": sample} if sample else {}),
        **({"explain_budget": args.explain_budget} if c.explain == "sample" else {}),
        "truncation": {"context_tokens": scorer.context_tokens, "rows_cut": len(cut), "tokens_cut": sum(cut)}}
    Run(annotated, scorer.spec, provenance).save(out, overwrite=args.overwrite)
    if args.jsonl:
        with atomic_path(args.jsonl) as tmp:  # a killed run leaves no half-written file under the final name
            annotated.to_json(str(tmp), lines=True, force_ascii=False)
    print(f"Wrote {out}. Next: goalcover report {out}")
    return 0


def sample_rows(ds, n: int, seed: int, source: str):
    """A seeded uniform random sample of ``n`` rows of ``ds``, in their original order, and its record for run.json:
    ``{"rows": n, "of": len(ds), "seed": seed}``; a sample larger than the data is refused."""
    import numpy as np

    if n > len(ds):
        raise GoalcoverError(f"--sample {n}: {source} has only {len(ds)} rows; ask for at most {len(ds)}, or leave "
                             "--sample out to score every row")
    picked = np.sort(np.random.default_rng(seed).choice(len(ds), size=n, replace=False))
    note(f"Scoring a random sample of {n} of {len(ds)} rows (seed {seed})")
    return ds.select(picked.tolist()), {"rows": n, "of": len(ds), "seed": seed}


def pair_errors(annotated, spec) -> tuple[int, int, tuple[str, int]]:
    """``(failed pairs, all pairs, (an example of the most common error, how many pairs have it))``; errors that
    differ only in the row they name count as one."""
    kinds: Counter[str] = Counter()
    example: dict[str, str] = {}
    for sub in spec.subgoals:
        for message in annotated[score_columns(sub.id)["error"]]:
            if message:
                kind = ROW_PREFIX.sub("", message)
                kinds[kind] += 1
                example.setdefault(kind, message)
    pairs = len(annotated) * len(spec.subgoals)
    if not kinds:
        return 0, pairs, ("", 0)
    kind, times = kinds.most_common(1)[0]
    return sum(kinds.values()), pairs, (example[kind], times)


def _resume_note(scorer, started: float) -> str:
    """The one line an interrupted `score` ends with: what was kept, and how to go on."""
    from ..cache import PairCache

    if scorer.pair_cache is None:
        return "the pair cache is off (--no-cache), so no judgement was kept; rerun without --no-cache to keep them"
    kept = PairCache(scorer.pair_cache.path).count_since(started)
    return f"{kept} finished judgements are kept in the pair cache — resume with the same command"


def cmd_cache(args: argparse.Namespace) -> int:
    """Print what the pair cache holds, or clear it."""
    from ..cache import PairCache

    cache = PairCache(args.path)
    if args.action == "clear":
        n = cache.clear()
        print(f"Removed {n} cached judgements from {cache.path}")
        return 0
    info = cache.info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['path']}: {info['entries']} judgements, {info['bytes'] / 1e6:.2f} MB")
    for s in info["by_settings"]:
        method = f"  method {s['method']}" if s.get("method") else ""
        print(f"  {s['entries']:>8}  {s['model']}  {s['engine']}  {s['prompt_version']}  {s['mode']}{method}")
    return 0
