"""The commands that read a run and tell about it: ``report``, ``gaps``, ``card`` and ``push``."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GoalcoverError
from ..gaps import DEFAULT_DISTANCE, DEFAULT_MAX_THEMES, DEFAULT_MIN_THEME
from .engine_flags import add_model_options
from .options import COUNT, SCORE, add_report_options, note, scorer_overrides, warn_if_embedded

RUN = "run folder written by `goalcover score`"


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``report``, ``gaps``, ``card`` and ``push``."""
    p = sub.add_parser("report", parents=parents, help="print the coverage table and gaps of a run")
    p.add_argument("run", help=RUN)
    add_report_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("gaps", parents=parents, help="cluster low-score explanations into named gaps; write "
                       "RUN/gaps.json")
    p.add_argument("run", help=RUN)
    add_report_options(p)
    p.add_argument("--low-score", type=SCORE, metavar="SCORE",
                   help="analyse pairs scoring at or below this (default: threshold - 1)")
    p.add_argument("--no-name", action="store_true",
                   help="do not name themes; title them by their most central explanation")
    p.add_argument("--distance", type=float, default=DEFAULT_DISTANCE,
                   help=f"cosine distance at which clusters stop merging (default {DEFAULT_DISTANCE}; lower: more "
                   "themes)")
    p.add_argument("--min-theme", type=COUNT, metavar="N", default=DEFAULT_MIN_THEME,
                   help=f"rows a theme needs (default {DEFAULT_MIN_THEME})")
    p.add_argument("--max-themes", type=COUNT, metavar="N", default=DEFAULT_MAX_THEMES,
                   help=f"themes kept per subgoal (default {DEFAULT_MAX_THEMES})")
    p.add_argument("-o", "--output", help="gaps file to write (default RUN/gaps.json; a gaps file there is replaced)")
    p.add_argument("--json", action="store_true", help="print the gaps document instead of the report")
    add_model_options(p, "the run's judge", "the run's")
    p.set_defaults(func=cmd_gaps)

    for name, what in (("card", "write or update the dataset card's coverage section (locally or on the Hub)"),
                       ("push", "push the annotated dataset, its card and charts to the Hub")):
        p = sub.add_parser(name, parents=parents, help=what)
        p.add_argument("run", help=RUN)
        if name == "card":
            p.add_argument("--readme", help="README.md to update (default RUN/README.md)")
            p.add_argument("--repo-id", help="update the card of this existing Hub dataset (USER/NAME) instead")
        else:
            p.add_argument("--repo-id", required=True, help="dataset repo USER/NAME (created if missing)")
        add_hub_options(p, name)
        p.add_argument("--card-template", metavar="FILE",
                       help="a Jinja card-section template to use instead of the built-in one")
        add_report_options(p)
        p.set_defaults(func=cmd_card if name == "card" else cmd_push)


def add_hub_options(p: argparse.ArgumentParser, name: str) -> None:
    """The Hub options of ``card --repo-id`` and ``push``."""
    hub = "with --repo-id: " if name == "card" else ""
    p.add_argument("--revision", help=f"{hub}the branch to " + ("update (default main)" if name == "card" else
                   "push to (created if missing; default main)"))
    p.add_argument("--create-pr", action="store_true", help=f"{hub}open a pull request instead of committing to the "
                   "branch (for repositories whose main branch is protected)")
    p.add_argument("--private", action="store_true", help=f"{hub}create the repo private when it does not exist"
                   + (" (without it a missing repo is an error)" if name == "card" else "") + "; an existing repo "
                   "keeps its visibility")
    p.add_argument("--token", help=f"{hub}a Hugging Face token (default: HF_TOKEN or `hf auth login`; prefer those, "
                   "as a token on the command line can be seen by other users of the machine)")
    p.add_argument("--config-name", metavar="NAME", help=f"{hub}" + (
        "the config that holds the annotations (as pushed with `push --config-name`): the card says how to join "
        "them" if name == "card" else "push only the id and gc_* columns, as their own config of the repo, beside "
        "the data's; the card says how to join them"))


def measure(run, args: argparse.Namespace):
    """``(CoverageReport, Target)`` of ``run`` under the report options (threshold: the run's unless given), with
    the run's labels, row sample and validation report."""
    from ..trust import run_coverage

    report = run_coverage(run, args.threshold, args.min_coverage, args.min_samples)
    return report, report.target


@dataclass
class RunCoverage:
    """A run read for a report: its coverage under the options, the target, and its gaps (with themes, and the gaps
    document they come from, when RUN/gaps.json matches the options)."""

    run: Any
    report: Any
    target: Any
    gaps: list
    document: dict | None


def read_coverage(args: argparse.Namespace) -> RunCoverage:
    """Load the run ``args.run`` and measure it; gaps come with themes when RUN/gaps.json matches the options."""
    from ..gaps import find_gaps
    from ..gaps_file import GAPS_FILE, load_gaps
    from ..results import Run

    run = Run.load(args.run)
    report, target = measure(run, args)
    gaps, why = load_gaps(run.path / GAPS_FILE, run.spec, report, target)
    if gaps is not None:
        document = json.loads((run.path / GAPS_FILE).read_text(encoding="utf-8"))
        return RunCoverage(run, report, target, gaps, document)
    if (run.path / GAPS_FILE).exists():
        note(f"note: not using {why}; run `goalcover gaps {run.path}` with the same options to refresh it")
    else:
        note(f"note: no themes yet; `goalcover gaps {run.path}` finds and names them")
    gaps = find_gaps(run.dataset, run.spec, report, target=target, cluster=False)
    return RunCoverage(run, report, target, gaps, None)


def _embedded_note(run) -> None:
    from ..models import EMBEDDED_WARNING

    if run.provenance.get("embedded"):
        print(f"\nNOTE: {EMBEDDED_WARNING}")


def trust_hint(run, report) -> None:
    """Say, when no figure is calibrated, how to check the judge's opinion."""
    if not any(s.method == "calibrated" for s in report.subgoals):
        had = f" ({report.labels} so far, too few per subgoal)" if report.labels else ""
        print(f"\nThese figures are the judge's uncalibrated opinion{had}. To check them: goalcover label "
              f"{run.path}, then goalcover check {run.path}")


def cmd_report(args: argparse.Namespace) -> int:
    """Print the coverage table and the gaps of a run (or all of it as JSON)."""
    from ..gaps import gaps_text

    got = read_coverage(args)
    run = got.run
    if args.json:
        print(json.dumps({"coverage": got.report.to_dict(), "gaps": [g.to_dict() for g in got.gaps],
                          "provenance": run.provenance}, indent=2, default=str))
        return 0
    judge = run.settings
    print(f"Goal: {run.spec.goal}")
    print(f"Judge: {run.provenance.get('model')} ({judge.get('mode')} mode, method {judge.get('method')})\n")
    print(got.report.table())
    print()
    print(gaps_text(got.gaps, got.target))
    if got.report.uncertain:
        print("\nUncertain (the interval straddles the target): " + ", ".join(
            f"{s.id} ({s.coverage:.0%}, {s.interval})" for s in got.report.uncertain))
    trust_hint(run, got.report)
    _embedded_note(run)
    return 0


def cmd_gaps(args: argparse.Namespace) -> int:
    """Find the gaps of a run, cluster their low-score explanations into themes named by the run's judge, and
    write the gaps document."""
    from ..gaps import find_gaps, gaps_text
    from ..gaps_file import GAPS_FILE, gaps_document, save_gaps
    from ..results import Run

    run = Run.load(args.run)
    report, target = measure(run, args)
    namer = None
    if not args.no_name:
        scorer = run.scorer(**scorer_overrides(args, run.settings["engine"]))
        warn_if_embedded(scorer.config.model_identity)
        namer = scorer.engine
    low_score = report.threshold - 1 if args.low_score is None else args.low_score
    gaps = find_gaps(run.dataset, run.spec, report, target=target, low_score=low_score, namer=namer,
                     distance=args.distance, min_theme=args.min_theme, max_themes=args.max_themes)
    settings = {"low_score": low_score,
                "target": {"min_fraction": target.min_fraction, "min_samples": target.min_samples},
                "distance": args.distance, "min_theme": args.min_theme, "max_themes": args.max_themes}
    document = gaps_document(gaps, run.spec, report, run.provenance, settings)
    out = save_gaps(Path(args.output) if args.output else run.path / GAPS_FILE, document)
    if args.json:
        print(json.dumps(document, indent=2, ensure_ascii=False, default=str))
        return 0
    print(gaps_text(gaps, target))
    _embedded_note(run)
    print(f"\nWrote {out}. Next: goalcover card {run.path}")
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    """Write (or update) the coverage section of a local README.md, or of a Hub dataset's card."""
    from ..card import write_card

    got = read_coverage(args)
    card = {"target": got.target, "gap_meta": got.document, "template": args.card_template}
    if args.repo_id:
        from ..hub import annotations_provenance, update_hub_card

        if args.readme:
            raise GoalcoverError("--readme and --repo-id do not go together: the Hub card is updated in place")
        provenance = (annotations_provenance(got.run, args.config_name) if args.config_name
                      else got.run.provenance)
        commit = update_hub_card(args.repo_id, got.report, provenance, got.gaps, revision=args.revision,
                                 create_pr=args.create_pr, private=args.private, token=args.token, **card)
        print(f"Opened a pull request with the card: {commit.pr_url}" if commit.pr_url else
              f"Updated the card of https://huggingface.co/datasets/{args.repo_id} ({commit.commit_url})")
        return 0
    hub_only = [f for f in ("revision", "create_pr", "private", "token", "config_name") if getattr(args, f)]
    if hub_only:
        raise GoalcoverError(f"--{hub_only[0].replace('_', '-')} goes with --repo-id: a local README has no branch, "
                             "pull request, visibility, token or config")
    readme = Path(args.readme) if args.readme else got.run.path / "README.md"
    write_card(readme, got.report, got.run.provenance, got.gaps, **card)
    print(f"Updated {readme} (section between the goalcover markers, 'goalcover' YAML key) and its charts")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Push a run's annotated dataset, then its card and charts, to a Hub dataset repo."""
    from ..hub import push_run

    got = read_coverage(args)
    note(f"Pushing {len(got.run.dataset)} annotated rows to {args.repo_id}...")
    result = push_run(got.run, args.repo_id, got.report, got.gaps, private=args.private, revision=args.revision,
                      create_pr=args.create_pr, token=args.token, config_name=args.config_name,
                      target=got.target, gap_meta=got.document, template=args.card_template)
    what = "the annotations (config " + args.config_name + ")" if args.config_name else "the dataset"
    done = "Opened a pull request with" if args.create_pr else "Pushed"
    print(f"{done} {what} and its card: {result['url']}")
    return 0
