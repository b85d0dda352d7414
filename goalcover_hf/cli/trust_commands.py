"""The commands that check the judge against a person: ``label`` (give or import human labels) and ``check`` (the
judge's agreement with them, and calibrated coverage)."""

from __future__ import annotations

import argparse
import json
from typing import Any, Sequence

from ..columns import COLUMN_PREFIX, score_columns
from .options import COUNT, FRACTION, add_report_options, note
from .report_commands import RUN

TOOL_COLUMNS = (COLUMN_PREFIX, "goalcover_")  # columns the tool added to the rows; the judge never read them


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``label`` and ``check``."""
    from ..trust import DEFAULT_HALF_WIDTH

    p = sub.add_parser("label", parents=parents, help="say, pair by pair, whether a sample supports a subgoal "
                       "(or import labels): RUN/labels.jsonl",
                       description="Asks about (sample, subgoal) pairs spread over the judge's score levels, without "
                       "showing the scores; every answer is saved at once, and running the command again continues. "
                       "With --import, adds labels given elsewhere instead.")
    p.add_argument("run", help=RUN)
    p.add_argument("--per-subgoal", type=COUNT, metavar="N", default=20,
                   help="labels wanted per subgoal, those already given included (default 20)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds which pairs are asked (default 0; keep it to continue a session)")
    p.add_argument("--import", dest="import_file", metavar="FILE",
                   help="add the labels of a .csv, .jsonl or .parquet file (columns subgoal, label 1/0, and row "
                   "or id) instead of asking; all of them or, on any bad line, none")
    p.add_argument("--id-column", metavar="COLUMN",
                   help="with --import: the dataset column the file's 'id' values name (default: id)")
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("check", parents=parents, help="how far the judge agrees with the human labels, and the "
                       "calibrated coverage they give")
    p.add_argument("run", help=RUN)
    add_report_options(p)
    p.add_argument("--half-width", type=FRACTION, metavar="X", default=DEFAULT_HALF_WIDTH,
                   help=f"plan the labels that would bring each interval to +-X (default {DEFAULT_HALF_WIDTH})")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=cmd_check)


class RenderedRows(Sequence[str]):
    """A run's rows as the judge read them, rendered when asked for (a session shows a few of many rows)."""

    def __init__(self, dataset, template: str | None):
        from ..formats import RowRenderer

        self.dataset = dataset
        self.columns = [c for c in dataset.column_names if not c.startswith(TOOL_COLUMNS)]
        self.renderer = RowRenderer(columns=self.columns, template=template)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, row: int) -> str:  # type: ignore[override]
        from ..formats import RowFormatError

        record = self.dataset[row]
        try:
            return self.renderer.render({c: record[c] for c in self.columns})
        except RowFormatError as err:
            return f"(row {row} cannot be shown as the judge read it: {err})"


def expected_scores(run) -> dict[str, list[float | None]]:
    """Per subgoal, the judge's expected score of each row (its integer score where no expected value was kept)."""
    out = {}
    for sub in run.spec.subgoals:
        cols = score_columns(sub.id)
        scores = run.dataset[cols["score"]]
        expected = run.dataset[cols["expected"]] if cols["expected"] in run.dataset.column_names else scores
        out[sub.id] = [s if e is None else e for s, e in zip(scores, expected)]
    return out


def cmd_label(args: argparse.Namespace) -> int:
    """Import a file of labels into RUN/labels.jsonl, or ask a person about the pairs the plan picks."""
    from ..label_import import import_labels
    from ..label_session import LabelSession
    from ..labels import LABELS_FILE, Labels
    from ..results import Run

    run = Run.load(args.run)
    labels = Labels.load(run.path)
    if args.import_file:
        result = import_labels(labels, args.import_file, run.dataset, run.spec, id_column=args.id_column)
        print(f"Imported {args.import_file} into {run.path / LABELS_FILE}: {result.added} label(s) added, "
              f"{result.present} already present; {len(labels)} labelled pair(s) in all.")
    else:
        ids = run.dataset["id"] if "id" in run.dataset.column_names else None
        texts = RenderedRows(run.dataset, run.settings.get("template"))
        LabelSession(texts, run.spec, expected_scores(run), labels, per_subgoal=args.per_subgoal, seed=args.seed,
                     ids=ids).run()
    print(f"Next: goalcover check {run.path}")
    return 0


def _figure(f: dict[str, Any], key: str) -> str:
    value, interval = f[key], f["intervals"][key]
    if value is None:
        return "-"
    return f"{value:.2f}" + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def check_text(figures: dict[str, Any], report) -> str:
    """``goalcover check``'s tables: agreement per subgoal and overall, then calibrated coverage and labels to plan."""
    from ..coverage import interval_text

    lines = []
    if figures["labels"]:
        lines.append(f"Agreement with {figures['labels']} human label(s) (AUC of the judge's expected score; "
                     f"accuracy, precision, recall and kappa at score >= {figures['threshold']}; [..]: 95% bootstrap "
                     "intervals)")
        head = f"{'subgoal':<24} {'labels':>6} {'+/-':>7}  {'AUC':<18} {'accuracy':<18} {'kappa':<19} verdict"
        lines += [head, "-" * len(head)]
        rows = [*figures["subgoals"].items(), ("overall", figures["overall"])]
        for sid, f in rows:
            counts = f"{f['positives']}/{f['negatives']}"
            lines.append(f"{sid[:24]:<24} {f['labels']:>6} {counts:>7}  {_figure(f, 'auc'):<18} "
                         f"{_figure(f, 'accuracy'):<18} {_figure(f, 'kappa'):<19} {f['verdict']}")
        head = f"{'subgoal':<24} {'precision':<18} {'recall':<18} bias"
        lines += ["", head, "-" * (len(head) + 14)]
        for sid, f in rows:
            lines.append(f"{sid[:24]:<24} {_figure(f, 'precision'):<18} {_figure(f, 'recall'):<18} {_figure(f, 'bias')}")
        lines += ["bias: the share the judge calls supporting minus the share the labels do", ""]
    else:
        lines += ["No human labels yet: nothing to check the judge against. Give some with `goalcover label RUN` "
                  "(or `goalcover label RUN --import FILE`).", ""]
    hw = figures["half_width"]
    head = (f"{'subgoal':<24} {'judge':>6} {'coverage':>8} {'95% interval':>13}  {'decision':<11} "
            f"{f'labels for +-{hw:.0%}':>15}  basis")
    lines += [f"Coverage (target: {report.target.describe()})", head, "-" * len(head)]
    for s in report.subgoals:
        c = figures["subgoals"][s.id]
        more = c["labels_needed"]
        plan = "score more rows" if more is None and s.scored else "-" if more is None else f"{more} more"
        lines.append(f"{s.id[:24]:<24} {_pct(c['coverage']['raw']):>6} {_pct(c['coverage']['estimate']):>8} "
                     f"{interval_text(s.low, s.high):>13}  {s.decision:<11} {plan:>15}  {s.basis}")
    lines += report.notes()
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    """Print the judge's agreement with RUN/labels.jsonl, calibrated coverage, and the labels still worth giving."""
    from ..results import Run
    from ..trust import check_figures, run_coverage

    run = Run.load(args.run)
    report = run_coverage(run, args.threshold, args.min_coverage, args.min_samples)
    figures = check_figures(report, args.half_width)
    if not report.labels:
        note(f"note: no labels yet for {run.path}: `goalcover label {run.path}` asks for some (or --import FILE "
             "adds a file of them); until then every figure is the judge's uncalibrated opinion")
    if args.json:
        print(json.dumps({"run": str(run.path), **figures}, indent=2))
        return 0
    print(f"Goal: {run.spec.goal}")
    print(f"Judge: {run.provenance.get('model')}\n")
    print(check_text(figures, report))
    return 0
