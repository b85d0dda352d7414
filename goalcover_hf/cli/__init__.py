"""The ``goalcover`` command: :func:`main` and its parser.

Each area's commands live in a module of this package (``spec_commands``: decompose; ``score_commands``: score,
cache; ``trust_commands``: label, check; ``report_commands``: report, gaps, card, push; ``data_commands``: filter,
synthesize, validate); the option groups they share are in ``options`` and ``engine_flags``.
"""

from __future__ import annotations

import argparse
import sys

from ..version import __version__
from ..errors import GoalcoverError
from . import data_commands, report_commands, score_commands, spec_commands, trust_commands
from .options import common_options, set_verbosity


def build_parser() -> argparse.ArgumentParser:
    """The ``goalcover`` parser, built now: its engine flags are those of the engines registered at this moment."""
    parser = argparse.ArgumentParser(
        prog="goalcover",
        description="Which capabilities does your fine-tuning data support? Decompose a goal, score every sample "
        "against every subgoal, and report coverage and gaps.",
    )
    parser.add_argument("--version", action="version", version=f"goalcover {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = [common_options()]
    for module in (spec_commands, score_commands, trust_commands, report_commands, data_commands):
        module.add_parsers(sub, parents)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``goalcover ARGV``; returns the exit status.

    A user's error (:class:`GoalcoverError`: every module's input errors derive from it) prints one ``error:`` line
    (exit 2); Ctrl-C prints one line saying what was kept (exit 130); any other exception is a bug and propagates
    with its traceback.

    Example:
        >>> main(["report", "out/run", "--min-coverage", "0.3"])
        0
    """
    args = build_parser().parse_args(argv)
    set_verbosity(args.verbose, args.quiet)
    try:
        return args.func(args)
    except GoalcoverError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C: one line, no traceback
        note = err.args[0] if err.args and isinstance(err.args[0], str) else ""
        print(f"goalcover: interrupted{'; ' + note if note else ''}", file=sys.stderr)
        return 130
