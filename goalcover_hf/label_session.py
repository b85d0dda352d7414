"""The labelling session behind ``goalcover label RUN``: a person answers, pair by pair, whether a sample supports a
subgoal.

Each answer is in ``RUN/labels.jsonl`` before the next question (see :class:`~goalcover_hf.labels.Labels`), so quitting,
Ctrl-C, end of input or a killed terminal lose nothing, and running the session again continues with the pairs not yet
labelled. It needs nothing but ``input``/``print`` (both injectable), so it works in any terminal and with piped stdin.
The judge's scores choose the pairs but are never shown: a person who sees them tends to agree with them.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .labels import Labels, pick_pairs
from .spec import GoalSpec

HELP = """  y  yes: the sample supports the subgoal     n  no: it does not
  s  skip (asked again next time)              u  undo your last answer and answer again
  m  more of the sample                        ?  this help
  q  quit (every answer given is already saved; run the same command again to continue)"""
PROMPT = "Does this sample support it? [y/n/s/u/m/?/q] "
PAGE_LINES = 40
WIDTH = 100
ANSWERS = {"y": 1, "yes": 1, "n": 0, "no": 0}
RUBRIC = (("low", "1 ="), ("mid", "3 ="), ("high", "5 ="))


@dataclass
class SessionSummary:
    """What a session did.

    Attributes:
        answered: answers given (undone ones included).
        undone: answers taken back.
        skipped: pairs skipped.
        remaining: pairs of the plan still without a label.
        labelled: labelled pairs the run has now.
    """

    answered: int = 0
    undone: int = 0
    skipped: int = 0
    remaining: int = 0
    labelled: int = 0


def _read_line(prompt: str) -> str:
    line = input(prompt)
    if not sys.stdin.isatty():  # piped answers are not echoed: echo them so the transcript reads like a session
        print(line, flush=True)
    return line


def _page_lines(text: str, width: int) -> list[str]:
    """The sample's lines, long ones wrapped at ``width`` so a page is a screenful."""
    lines = []
    for line in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(line, width, replace_whitespace=False, drop_whitespace=False) or [""])
    return lines


class LabelSession:
    """Ask a person about the pairs :func:`~goalcover_hf.labels.pick_pairs` chooses, recording each answer at once.

    Args:
        texts: each dataset row rendered as the judge saw it (index = row).
        spec: the run's goal spec (each subgoal's name, description and rubric are shown).
        scores: per subgoal id, the judge's expected score of each row (None: no score; never asked).
        labels: the run's :class:`~goalcover_hf.labels.Labels`, with a file.
        per_subgoal (`int`, defaults to 20): labels wanted per subgoal, those already given included.
        seed (`int`, defaults to 0): seeds which pairs are asked; keep it to continue a previous session.
        ids (*optional*): each row's value in the dataset's id column, stored with its labels.
        page_lines (`int`, defaults to 40): lines of a sample shown at once; ``m`` shows the next ones.
        width (`int`, defaults to 100): long lines are wrapped at this width.
        ask, say (*optional*): read a line after a prompt / print text (default: ``input`` / ``print``).

    Example:
        >>> summary = LabelSession(texts, spec, expected, Labels.load(run_dir)).run()
    """

    def __init__(self, texts: Sequence[str], spec: GoalSpec, scores: Mapping[str, Sequence[float | None]],
                 labels: Labels, *, per_subgoal: int = 20, seed: int = 0, ids: Sequence[Any] | None = None,
                 page_lines: int = PAGE_LINES, width: int = WIDTH, ask: Callable[[str], str] | None = None,
                 say: Callable[[str], None] | None = None):
        unknown = [sub for sub in scores if sub not in {s.id for s in spec.subgoals}]
        if unknown:
            raise ValueError(f"scores for subgoal(s) not in the spec: {', '.join(unknown)}")
        self.texts, self.spec, self.scores, self.labels = texts, spec, scores, labels
        self.per_subgoal, self.seed, self.ids = per_subgoal, seed, ids
        self.page_lines, self.width = page_lines, width
        self.ask = ask or _read_line
        self.say = say or (lambda text: print(text, flush=True))
        self.summary = SessionSummary()

    def plan(self) -> list[tuple[int, str]]:
        """The (row, subgoal) pairs still to ask, in order."""
        return pick_pairs(self.scores, self.per_subgoal, self.seed, self.labels.pairs())

    def _show_rubric(self, subgoal_id: str) -> None:
        sub = self.spec.subgoal(subgoal_id)
        lines = [f"Subgoal: {sub.name} ({sub.id})", textwrap.indent(textwrap.fill(sub.description, self.width), "  ")]
        lines += [f"  {mark} {getattr(sub, field)}" for field, mark in RUBRIC if getattr(sub, field)]
        self.say("\n".join(lines))

    def _show_page(self, lines: list[str], start: int) -> int:
        """Print the page of ``lines`` from ``start``; returns where the next page starts."""
        end = min(start + self.page_lines, len(lines))
        self.say("\n".join(lines[start:end]))
        rest = len(lines) - end
        self.say(f"... {rest} more line(s) of this sample: m to show more" if rest else "(end of sample)")
        return end

    def _finish(self, note: str) -> SessionSummary:
        self.summary.remaining = len(self.plan())
        self.summary.labelled = len(self.labels)
        s = self.summary
        self.say(f"{note} {s.answered - s.undone} answer(s) saved this session, {s.skipped} skipped; "
                 f"{s.labelled} pair(s) labelled in all, {s.remaining} left in the plan.")
        if s.remaining:
            self.say("Run the same command again to continue where you stopped.")
        return s

    def run(self) -> SessionSummary:
        """Ask until the plan is done or the person quits; returns what was done."""
        queue = self.plan()
        self.say(f"{len(queue)} pair(s) to label ({len(self.labels)} labelled already). "
                 f"Answer whether the sample supports the subgoal shown; ? for help.\n{HELP}")
        if not queue:
            return self._finish("Nothing left to label:")
        i, previous_row = 0, None
        while i < len(queue):
            row, sub = queue[i]
            lines = _page_lines(self.texts[row], self.width)
            self.say(f"\n==== [{i + 1}/{len(queue)}] row {row} " + "=" * 40)
            if row == previous_row:
                shown = 0
                self.say(f"(the same sample as above, row {row}: m to show it again)")
            else:
                shown = self._show_page(lines, 0)
            previous_row = row
            self._show_rubric(sub)
            while True:
                try:
                    answer = self.ask(PROMPT).strip().lower()
                except (EOFError, KeyboardInterrupt):
                    return self._finish("\nStopped.")
                if answer in ANSWERS:
                    self.labels.add(row, sub, ANSWERS[answer], source="session",
                                    id=None if self.ids is None else self.ids[row])
                    self.summary.answered += 1
                    i += 1
                    break
                if answer in ("s", "skip"):
                    self.summary.skipped += 1
                    i += 1
                    break
                if answer in ("u", "undo"):
                    undone = self.labels.undo(source="session")
                    if undone is None:
                        self.say("Nothing to undo.")
                        continue
                    self.summary.undone += 1
                    self.say(f"Undone: row {undone['row']}, {undone['subgoal']}: "
                             f"{'yes' if undone['label'] else 'no'}. Answer it again:")
                    pair = (undone["row"], undone["subgoal"])
                    if i > 0 and queue[i - 1] == pair:  # the answer just given: step back
                        i -= 1
                    else:  # an earlier one (or one from an earlier session): ask it now
                        queue.insert(i, pair)
                    previous_row = None
                    break
                if answer in ("m", "more"):
                    shown = self._show_page(lines, shown if shown < len(lines) else 0)
                elif answer in ("?", "h", "help"):
                    self.say(HELP)
                elif answer in ("q", "quit", "exit"):
                    return self._finish("Stopped.")
                else:
                    self.say("Answer y (supports), n (does not), s (skip), u (undo), m (more), ? (help) or q (quit).")
        return self._finish("Done:")
