"""Option groups the commands share, and what every command does with them.

A flag means one thing on every command: ``--template`` is the row template, ``--threshold`` the score at which a
sample supports a subgoal, ``-o/--output`` what the command writes and ``--overwrite`` permission to replace it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

from ..coverage import DEFAULT_MIN_COVERAGE
from ..errors import GoalcoverError
from ..files import refuse_overwrite
from .engine_flags import add_model_options, engine_options

_quiet = False  # -q: notes on stderr are left out (results, warnings and errors are not)


def bounded(cast: Callable[[str], Any], low: float | None = None, high: float | None = None):
    """An argparse ``type`` reading ``cast(text)`` within ``low..high``; the message says the allowed range.

    Example:
        >>> bounded(int, 1)("0")  # argparse prints: argument --limit: must be at least 1, got 0
    """

    def parse(text: str):
        """``cast(text)``, or the error argparse prints."""
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {'whole ' if cast is int else ''}number, got {text!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            wanted = f"at least {low}" if high is None else f"within {low}..{high}"
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    return parse


COUNT = bounded(int, 1)
ZERO_OR_MORE = bounded(int, 0)
SCORE = bounded(int, 1, 5)
FRACTION = bounded(float, 0, 1)


def common_options() -> argparse.ArgumentParser:
    """The parent parser of every command: ``-v/--verbose`` and ``-q/--quiet``."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("messages")
    group.add_argument("-v", "--verbose", action="count", default=0, help="also print goalcover's debug log")
    group.add_argument("-q", "--quiet", action="store_true",
                       help="print results, warnings and errors only: no progress bars, no notes")
    return parent


def set_verbosity(verbose: int, quiet: bool) -> None:
    """Apply ``-v``/``-q``: goalcover's log level, and under ``-q`` no notes and no ``datasets`` progress bars."""
    import logging

    from ..logging import get_logger

    global _quiet
    _quiet = quiet
    root = get_logger("goalcover_hf")
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet
                  else os.environ.get("GOALCOVER_VERBOSITY", "INFO").upper())
    if quiet:
        import datasets

        datasets.disable_progress_bars()


def note(text: str) -> None:
    """Print a progress note on stderr (left out under ``-q``)."""
    if not _quiet:
        print(text, file=sys.stderr)


def warn(text: str) -> None:
    """Print ``warning: text`` on stderr."""
    print(f"warning: {text}", file=sys.stderr)


def warn_if_embedded(model_or_identity: str | None) -> None:
    """Say, once, that the embedded model judges near chance."""
    from ..models import EMBEDDED_WARNING

    if model_or_identity and (model_or_identity == "embedded" or "SmolLM2-135M" in model_or_identity):
        print(f"\nNOTE: {EMBEDDED_WARNING}\n", file=sys.stderr)


# ---- groups ------------------------------------------------------------------------------------------------------
def add_output_options(parser: argparse.ArgumentParser, what: str, required: bool = True) -> None:
    """``-o/--output`` (``what`` says what is written) and ``--overwrite``."""
    group = parser.add_argument_group("output")
    group.add_argument("-o", "--output", required=required, help=what)
    group.add_argument("--overwrite", action="store_true", help="replace the output if it exists")


def check_output(out: str | Path, overwrite: bool, source: Path | None = None) -> Path:
    """Refuse, before any work, an output that exists (without ``--overwrite``) or that is the input ``source``."""
    out = Path(out)
    if source is not None and out.resolve() == Path(source).resolve():
        raise GoalcoverError(f"{out} is the input run: write the result to another folder")
    refuse_overwrite(out, overwrite)
    return out


def add_report_options(parser: argparse.ArgumentParser, samples: bool = True, coverage: bool = True,
                       threshold: str = "the run's") -> None:
    """``--threshold`` (its default stated as ``threshold``), ``--min-coverage`` (with ``coverage``) and
    ``--min-samples`` (with ``samples``): what counts as support, and as covered."""
    group = parser.add_argument_group("coverage target" if coverage else "support")
    group.add_argument("--threshold", type=SCORE, metavar="SCORE",
                       help=f"score at which a sample supports a subgoal (default: {threshold})")
    if coverage:
        group.add_argument("--min-coverage", type=FRACTION, metavar="FRACTION", default=DEFAULT_MIN_COVERAGE,
                           help=f"the coverage each subgoal should reach: it is a gap when its whole 95%% interval "
                           f"lies below this fraction, uncertain when the interval straddles it "
                           f"(default {DEFAULT_MIN_COVERAGE})")
    if samples:
        group.add_argument("--min-samples", type=ZERO_OR_MORE, metavar="N", default=0,
                           help="a subgoal is also a gap when fewer than this many samples support it (default 0)")


def add_judge_options(parser: argparse.ArgumentParser, from_run: bool, model_loads: str = ""):
    """The model and engine flags, and how the judge reads rows and answers.

    Args:
        from_run: the command reads a run: every default is the run's (else the scorer's own defaults).
        model_loads: extra help on what the model does in this command.

    Returns:
        The "judging" argument group, for a command's own judging flags.
    """
    from ..judge import DEFAULT_MODE, MODES

    run, default = "the run's", (lambda value: "the run's" if from_run else value)
    add_model_options(parser, run if from_run else "embedded", run if from_run else "transformers")
    group = parser.add_argument_group("judging" + (f" ({model_loads})" if model_loads else ""))
    group.add_argument("--mode", choices=MODES, help=f"logprobs: digit probabilities, explanations only where asked; "
                       f"generate: JSON per pair (default: {default(DEFAULT_MODE)})")
    group.add_argument("--method", metavar="METHOD",
                       help="how answers become a score: expected, score, no_anchors, contrastive, consistency, "
                       "verdict_first, subgoal_first; suffix +cal to calibrate on content-free samples "
                       f"(default: {default('expected')})")
    add_template_options(group, f"(default: {default('detect the layout')})")
    group.add_argument("--batch-size", type=COUNT, metavar="N", help=f"rows per batch (default: {default(8)})")
    return group


def scorer_overrides(args: argparse.Namespace, engine: str = "transformers") -> dict[str, Any]:
    """The :class:`~goalcover_hf.scorer.Scorer` arguments the user set: model, engine and its options, mode, method,
    template, batch size, threshold and explain (where the command has them); ``engine`` is the engine used when
    ``--engine`` is not given (the run's, for a command on a run)."""
    names = ("model", "engine", "mode", "method", "template", "batch_size", "threshold", "explain")
    chosen = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    if getattr(args, "template_file", None):
        chosen["template"] = row_template(args)
    options = engine_options(args, args.engine or engine)
    if options:
        chosen["engine_options"] = options
    return chosen


def run_scorer(run, args: argparse.Namespace, **fixed: Any):
    """The scorer that produced ``run``, with ``fixed`` and then the flags the user gave as overrides; warns when it
    judges with another model than the run's."""
    scorer = run.scorer(**{**fixed, **scorer_overrides(args, run.settings["engine"])})
    judged = run.provenance.get("model")
    if judged and scorer.config.model_identity != judged:
        warn(f"the run was scored by {judged}, this command judges with {scorer.config.model_identity}: their "
             "scores are not comparable")
    warn_if_embedded(scorer.config.model_identity)
    return scorer


def add_template_options(group, default: str, rows: str = "a row") -> None:
    """``--template`` (the row template) and ``--template-file`` (a file holding it), one or the other."""
    either = group.add_mutually_exclusive_group()
    either.add_argument("--template", help=f"Jinja template turning {rows} into text, e.g. "
                        f"'{{{{ question }}}}\\n{{{{ answer }}}}' {default}")
    either.add_argument("--template-file", metavar="FILE", help="a file holding the --template")


def row_template(args: argparse.Namespace) -> str | None:
    """The row template the user gave, inline or in a file."""
    return read_text(args.template_file, "--template-file") if args.template_file else args.template


def read_text(path: str, flag: str) -> str:
    """The text of a file the user named with ``flag`` (a missing file is their error, named)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as err:
        raise GoalcoverError(f"{flag} {path}: cannot read it ({type(err).__name__})") from None


def pairs(items: list[str] | None, flag: str, cast: Callable[[str], Any] = str) -> dict[str, Any]:
    """Parse ``ID=VALUE`` items of ``flag``; the error names the bad item."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise GoalcoverError(f"{flag}: expected SUBGOAL=VALUE, got {item!r}")
        try:
            out[key.strip()] = cast(value.strip())
        except ValueError:
            raise GoalcoverError(f"{flag}: {value.strip()!r} in {item!r} is not a valid value") from None
    return out
