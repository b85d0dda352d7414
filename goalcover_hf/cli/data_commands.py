"""The commands that make new data or evidence from a run: ``filter``, ``synthesize`` and ``validate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import GoalcoverError
from ..files import atomic_write_text, refuse_overwrite
from .options import (COUNT, SCORE, ZERO_OR_MORE, add_judge_options, add_output_options, add_report_options,
                      bounded, check_output, pairs, run_scorer, scorer_overrides, warn_if_embedded)
from .report_commands import RUN


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``filter``, ``synthesize`` and ``validate``."""
    p = sub.add_parser("filter", parents=parents,
                       help="keep the rows that support chosen subgoals (optionally balanced)")
    p.add_argument("run", help=RUN)
    p.add_argument("--subgoals", nargs="+", metavar="ID", help="subgoal set the rules apply to (default: all)")
    p.add_argument("--require", choices=("any", "all", "none"), default="any",
                   help="keep rows supporting any (default) / all of the set; none: no support rule")
    p.add_argument("--min", nargs="+", metavar="ID=SCORE", help="per-subgoal support levels, e.g. states_dose=5")
    p.add_argument("--min-mean", type=float, help="keep rows whose mean score over the set is at least this")
    p.add_argument("--min-score", type=SCORE, metavar="SCORE",
                   help="keep rows whose lowest score over the set is at least this")
    p.add_argument("--cap", type=COUNT, metavar="N",
                   help="balance: drop a row once every subgoal it supports has N kept rows")
    p.add_argument("--dry-run", action="store_true", help="print the before/after coverage table, write nothing")
    add_report_options(p, samples=False)
    add_output_options(p, "run folder to write with the kept rows", required=False)
    p.set_defaults(func=cmd_filter)

    p = sub.add_parser("synthesize", parents=parents,
                       help="generate rows for under-covered subgoals, keep those that re-score well")
    p.add_argument("run", help=RUN)
    p.add_argument("--subgoals", nargs="+", metavar="ID", help="subgoals to write rows for (default: the gaps)")
    p.add_argument("--per-subgoal", type=COUNT, metavar="N", default=4, help="rows to generate per subgoal (default 4)")
    p.add_argument("--style-examples", type=ZERO_OR_MORE, metavar="N", default=3,
                   help="real rows shown to the writer as style examples (default 3)")
    p.add_argument("--dedup", type=float, default=0.9,
                   help="cosine similarity at which a new row is a near-duplicate (default 0.9; 0: no check)")
    p.add_argument("--max-chars", type=COUNT, metavar="N", default=600,
                   help="longest text per field a new row may have (default 600; shorter compiles and runs faster)")
    p.add_argument("--seed", type=int, default=0)
    add_report_options(p, samples=False, threshold="the run's; a new row needs it on its target")
    add_judge_options(p, from_run=True, model_loads="the judge also writes the rows")
    add_output_options(p, "run folder to write: the run's rows plus the kept new rows")
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("validate", parents=parents,
                       help="corruption experiment: does the judge notice when one capability is removed?")
    p.add_argument("--data", help="a data file, folder or Hub dataset id (with --run, default: the run's input)")
    p.add_argument("--spec", help="the goal spec YAML (meta.corruption may name operators)")
    p.add_argument("--run", help="judge with the scorer that produced this run folder, on its spec (the judging "
                   "flags given change it)")
    p.add_argument("--targets", nargs="+", default=["all"], metavar="ID", help="subgoals to corrupt (default all)")
    p.add_argument("--operator", nargs="+", metavar="ID=OP",
                   help="corruption per subgoal, e.g. documents_behavior=strip_docstrings:prompt (default: the "
                   "spec's meta.corruption, else llm_rewrite)")
    p.add_argument("--per-target", type=bounded(int, 2), metavar="N", default=20,
                   help="rows corrupted per target (default 20; at least 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bootstrap", type=ZERO_OR_MORE, metavar="N", default=1000,
                   help="bootstrap resamples for the CIs (default 1000)")
    p.add_argument("--domain", help="name shown in the table (default: the data file's name)")
    p.add_argument("--split", default="train", help="split of --data (default train)")
    add_judge_options(p, from_run=False)
    add_output_options(p, "folder for validation.json and validation.md")
    p.set_defaults(func=cmd_validate)


def write_derived(run, out: Path, overwrite: bool, what: str) -> int:
    """Save a run made from another and say what was written."""
    run.save(out, overwrite=overwrite)
    print(f"Wrote {out} ({what}). Next: goalcover report {out}")
    return 0


def cmd_filter(args: argparse.Namespace) -> int:
    """Keep the rows of a run that pass the rule; print the before/after table; write them as a new run."""
    from ..filtering import compare_table, filter as filter_rows
    from ..results import Run

    run = Run.load(args.run)
    if args.output is None and not args.dry_run:
        raise GoalcoverError("give -o FOLDER for the filtered run (or --dry-run to only see the table)")
    out = None if args.dry_run else check_output(args.output, args.overwrite, run.path)
    result = filter_rows(
        run.dataset, run.spec, subgoals=args.subgoals, threshold=args.threshold or run.threshold,
        min_scores=pairs(args.min, "--min", int), require=None if args.require == "none" else args.require,
        min_mean=args.min_mean, min_score=args.min_score, cap=args.cap, min_coverage=args.min_coverage,
    )
    print(result.rule.describe())
    print(compare_table(result.before, result.after))
    if result.dropped:
        print("dropped: " + ", ".join(f"{k} {v}" for k, v in result.dropped.items()))
    if out is None:
        print("(dry run: nothing written)")
        return 0
    if len(result.dataset) == 0:
        print("error: no row passes this rule; nothing written", file=sys.stderr)
        return 1
    return write_derived(run.derive(result.dataset, filter=result.provenance()), out, args.overwrite,
                         f"{len(result.dataset)} rows")


def cmd_synthesize(args: argparse.Namespace) -> int:
    """Write rows for the run's gaps with its judge, keep those it scores well, and save them with the run's rows."""
    from ..coverage import compute_coverage
    from ..filtering import compare_table
    from ..results import Run
    from ..synthesize import synthesize

    run = Run.load(args.run)
    out = check_output(args.output, args.overwrite, run.path)
    scorer = run_scorer(run, args, explain="none")
    result = synthesize(run.spec, run.dataset, subgoals=args.subgoals, n=args.per_subgoal, scorer=scorer,
                        examples=args.style_examples, dedup=args.dedup or None, seed=args.seed,
                        max_chars=args.max_chars, min_coverage=args.min_coverage)
    print(result.text())
    threshold = scorer.config.threshold
    print(compare_table(compute_coverage(run.dataset, run.spec, threshold, args.min_coverage),
                        compute_coverage(result.dataset, run.spec, threshold, args.min_coverage)))
    return write_derived(run.derive(result.dataset, synthesis=result.provenance()), out, args.overwrite,
                         f"{len(run.dataset)} rows + {len(result.synthetic)} synthetic, column goalcover_synthetic")


def cmd_validate(args: argparse.Namespace) -> int:
    """Corrupt one subgoal at a time in a copy of the data, re-score, and report how much the target dropped."""
    from ..data import load_data
    from ..results import Run
    from ..scorer import Scorer
    from ..spec import GoalSpec
    from ..validate import validate

    out = Path(args.output)
    reports = [out / "validation.json", out / "validation.md"]
    for path in reports:
        refuse_overwrite(path, args.overwrite)
    if args.run:
        run = Run.load(args.run)
        if args.spec:
            raise GoalcoverError("--spec and --run do not go together: the run's spec is the one its judge scored")
        data, spec = args.data or run.provenance.get("data"), run.spec
        if not data:
            raise GoalcoverError(f"{run.path / 'run.json'} does not name the data it scored: pass --data")
        scorer = run_scorer(run, args, explain="none")
    else:
        if not args.data or not args.spec:
            raise GoalcoverError("give --data and --spec (or --run RUN: its judge, spec and data)")
        data, spec = args.data, GoalSpec.load(args.spec)
        scorer = Scorer(spec, **{"explain": "none", **scorer_overrides(args)})
        warn_if_embedded(scorer.config.model_identity)
    ds = load_data(data, split=args.split)
    targets = None if args.targets in (None, ["all"]) else args.targets
    result = validate(ds, spec, scorer, targets=targets, operators=pairs(args.operator, "--operator"),
                      n=args.per_target, seed=args.seed, bootstrap=args.bootstrap,
                      domain=args.domain or Path(data).stem)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(reports[0], json.dumps(result.to_dict(), indent=2, default=str))
    atomic_write_text(reports[1], result.to_markdown())
    print(result.to_markdown())
    print(f"Wrote {reports[0]} and {reports[1]}")
    return 0
