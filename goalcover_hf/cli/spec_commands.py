"""``goalcover decompose``: the model proposes subgoals, the person shapes them, the checks run, a spec is saved."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checks import DEFAULT_OVERLAP
from ..errors import GoalcoverError
from ..files import refuse_overwrite
from .engine_flags import add_model_options, engine_options
from .options import COUNT, add_template_options, bounded, note, row_template, warn_if_embedded


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``decompose``."""
    p = sub.add_parser("decompose", parents=parents,
                       help="decompose a goal into subgoals, check them, shape them, save a spec",
                       description="The model proposes subgoals; you accept, edit, split, merge, delete, add, "
                       "regenerate and reorder them while checks (atomic, evaluable, overlap, goal coverage) run on "
                       "every change; then save. Works with piped stdin too.")
    p.add_argument("goal", nargs="?", help="the high-level goal, in quotes (optional with --from)")
    p.add_argument("--from", dest="from_spec", metavar="SPEC",
                   help="start from an existing spec or proposal YAML instead of asking the model (and save to it)")
    p.add_argument("-o", "--output", help="spec file to write (default: the --from file, else goal.yaml)")
    p.add_argument("--overwrite", action="store_true", help="replace the spec file without asking")
    p.add_argument("--min-subgoals", type=COUNT, metavar="N", default=3, help="fewest subgoals to propose (default 3)")
    p.add_argument("--max-subgoals", type=bounded(int, 1, 12), metavar="N", default=8,
                   help="most subgoals to propose (default 8, at most 12)")
    p.add_argument("--examples", metavar="DATA", help="show the model rows of this data (file, folder or Hub id) "
                   "so proposals use its vocabulary; rows are never taken as correct answers")
    p.add_argument("--rows-shown", type=COUNT, metavar="N", default=20,
                   help="how many rows of --examples it shows (default 20)")
    add_template_options(p, "(default: detect the layout)", rows="an --examples row")
    p.add_argument("--split", default="train", help="split of --examples (default train)")
    p.add_argument("--with-example", action="store_true", help="also ask for a sample that would score 5, per subgoal")
    p.add_argument("--hint", help="what you want from the proposal, e.g. 'focus on safety'")
    p.add_argument("--no-model-checks", action="store_true",
                   help="skip the model's atomic/evaluable/coverage checks (heuristics and overlap still run)")
    p.add_argument("--overlap-threshold", type=float, default=DEFAULT_OVERLAP,
                   help=f"cosine similarity at which two subgoals overlap (default {DEFAULT_OVERLAP})")
    p.add_argument("--yes", action="store_true", help="no session: accept the proposal, print the checks, save")
    add_model_options(p, "embedded", "transformers")
    p.set_defaults(func=cmd_decompose)


def model_or_engine(args: argparse.Namespace):
    """The model as the proposer and checker take it: its name (loaded on first use) when it runs on the default
    engine with no option, else the engine, loaded now with those options."""
    engine = args.engine or "transformers"
    options = engine_options(args, engine)
    model = args.model or "embedded"
    if engine == "transformers" and not options:
        return model
    from ..engines import get_engine, resolve_engine_model

    return get_engine(resolve_engine_model(model, engine, options)[0], engine, options)


def cmd_decompose(args: argparse.Namespace) -> int:
    """Propose (or open) a spec, run the checks, and save it: at once with ``--yes``, else after a session."""
    from transformers.utils import logging as hf_logging

    from ..checks import Checker, with_findings
    from ..decompose import Proposer, load_examples
    from ..interactive import Session, render_list
    from ..spec import GoalSpec

    if not args.goal and not args.from_spec:
        raise GoalcoverError("give the goal in quotes, or --from SPEC to refine an existing spec")
    out = Path(args.output or args.from_spec or "goal.yaml")
    if args.yes:
        refuse_overwrite(out, args.overwrite)
    elif out.exists() and not args.overwrite:
        note(f"Note: {out} exists; saving will ask before replacing it.")
    hf_logging.disable_progress_bar()  # loading bars would interleave with the session's prompts
    if args.min_subgoals > args.max_subgoals:
        raise GoalcoverError(f"--min-subgoals {args.min_subgoals} is more than --max-subgoals {args.max_subgoals}")
    texts = (load_examples(args.examples, n=args.rows_shown, template=row_template(args), split=args.split)
             if args.examples else ())
    model = model_or_engine(args)
    proposer = Proposer(model, args.min_subgoals, args.max_subgoals, texts, args.with_example)
    if not args.from_spec or not args.no_model_checks:
        warn_if_embedded(args.model or "embedded")
    if args.from_spec:
        spec = GoalSpec.load(args.from_spec)
        if args.goal:
            spec = spec.model_copy(update={"goal": args.goal.strip()})
    else:
        note(f"Asking {args.model or 'embedded'} to decompose the goal (this can take minutes on a CPU)...")
        spec = proposer.propose(args.goal, args.hint or "")
    if args.examples:
        spec.meta["grounding"] = {"data": args.examples, "rows": len(texts)}
    checker = Checker(None if args.no_model_checks else model, args.overlap_threshold)
    if args.yes:
        findings = checker.run(spec)
        spec = with_findings(spec, checker, findings)
        print(render_list(spec, findings))
        spec.save(out, overwrite=True)
        print(f"Saved {len(spec.subgoals)} subgoals to {out}")
        return 0
    dirty = not args.from_spec or spec.goal != GoalSpec.load(args.from_spec).goal
    session = Session(spec, checker, proposer=proposer, output=out, force=args.overwrite, dirty=dirty)
    if session.run() is None:
        note("Nothing saved.")
        return 1
    return 0
