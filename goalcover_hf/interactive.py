"""The decompose session: a numbered prompt loop, a thin layer over the pure spec edits of :mod:`goalcover_hf.spec`.

:class:`Session` reads commands, calls the edits (each takes a spec and returns a new one, ids kept valid and
unique), re-runs the checks and prints the list with each subgoal's findings beside it. It needs nothing but
``input``/``print``, so it works in any terminal and with piped stdin.
"""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import replace as _replace_field
from pathlib import Path
from typing import Callable, Sequence

from .checks import CHECKS, Checker, Finding, format_findings, with_findings
from .errors import GoalcoverError
from .spec import OPTIONAL_FIELDS, GoalSpec, add, check_field, delete, edit, merge, move, replace, split

HELP = """Commands (N = a subgoal number):
  accept N.. | accept all   mark as reviewed          edit N [FIELD]   change name, description, anchors
  add                       add a subgoal             delete N         remove one
  split N                   one into several          merge N M ..     several into one
  regen N|all [HINT]        ask the model again       move N POS       reorder
  list                      subgoals and checks       show             the full spec (YAML)
  undo                      undo the last change      save [PATH]      write the spec and finish
  quit                      leave (asks before discarding)              help   this text
FIELD: name, description, low (score 1), mid (score 3), high (score 5), example, id. In edits, Enter keeps a value
and '-' clears an optional one."""

EDIT_FIELDS = ("name", "description", "low", "mid", "high")  # what `edit N` asks for
ALIASES = {"ok": "accept", "e": "edit", "d": "delete", "del": "delete", "+": "add", "a": "add", "sp": "split",
           "m": "merge", "r": "regen", "mv": "move", "l": "list", "ls": "list", "p": "show", "u": "undo", "s": "save",
           "w": "save", "q": "quit", "exit": "quit", "h": "help", "?": "help"}
LABELS = {"low": "1 =", "mid": "3 =", "high": "5 =", "example": "e.g."}


# ---- display -----------------------------------------------------------------------------------------------------
def render_list(spec: GoalSpec, findings: Sequence[Finding] = (), reviewed: set[str] = frozenset()) -> str:
    """The numbered subgoal list with rubric anchors and, beside each subgoal, what the checks found.

    Args:
        spec (:class:`GoalSpec`): the spec.
        findings (``Sequence[Finding]``): from :meth:`Checker.run`; each names the session command that acts on it.
        reviewed (``set[str]``): ids the person has accepted.

    Returns:
        ``str``
    """
    number = {s.id: k for k, s in enumerate(spec.subgoals, 1)}
    commands = {"atomic": "split {}", "evaluable": "edit {} description", "coverage": "add"}

    def command(f: Finding) -> str:
        if f.check == "overlap":
            return "merge " + " ".join(str(number[i]) for i in f.subgoals)
        return commands[f.check].format(*[number[i] for i in f.subgoals[:1]])

    lines = [f"Goal: {spec.goal}"]
    for k, s in enumerate(spec.subgoals, 1):
        mine = sorted((f for f in findings if s.id in f.subgoals), key=lambda f: CHECKS.index(f.check))
        mark = "ok" if not mine else f"{len(mine)} finding{'s' if len(mine) > 1 else ''}"
        mark += ", reviewed" if s.id in reviewed else ""
        lines.append(f"{k:>2}. {s.name} [{s.id}] ({mark})")
        lines.append(f"      {s.description}")
        for field in OPTIONAL_FIELDS:
            if getattr(s, field):
                lines.append(f"      {LABELS[field]} {getattr(s, field)}")
        for f in mine:
            if f.check == "overlap":  # say it from this subgoal's side: overlaps with which other one
                other = next(i for i in f.subgoals if i != s.id)
                f = _replace_field(f, message=f"with {number[other]}. '{spec.subgoal(other).name}' "
                                       f"(cosine {f.similarity:.2f})")
            lines.append(format_findings([f], command=command))
    goal_level = [f for f in findings if not f.subgoals]
    if goal_level:
        lines.append("Goal coverage:")
        lines.append(format_findings(goal_level, indent="  ", command=command))
    return "\n".join(lines)


def _tty_input(prompt: str) -> str:
    line = input(prompt)
    if not sys.stdin.isatty():
        print(line)  # piped input is not echoed: echo it so the transcript reads like a session
    return line


# ---- the session -------------------------------------------------------------------------------------------------
class Session:
    """An interactive decompose session over ``spec``.

    Args:
        spec (:class:`GoalSpec`): the spec to shape.
        checker (:class:`Checker`): runs the checks after every change (model answers are remembered, so only
            changes cost).
        proposer (:class:`~goalcover_hf.decompose.Proposer`, *optional*): the model for ``regen``; ``None``
            disables it.
        output (``str`` or ``Path``, *optional*): where ``save`` writes by default.
        force (``bool``, defaults to ``False``): replace an existing output without asking.
        dirty (``bool``, defaults to ``True``): whether the starting spec is unsaved work (a fresh proposal is; a
            spec opened from a file is not).
        ask (``Callable[[str], str]``, *optional*), say (``Callable[[str], None]``, *optional*): how the session
            reads a line and prints text (default: the terminal).

    Example:
        >>> spec = Session(spec, Checker(None), output="goal.yaml").run()
    """

    def __init__(self, spec: GoalSpec, checker: Checker, *, proposer=None,
                 output: str | Path | None = None, force: bool = False, dirty: bool = True,
                 ask: Callable[[str], str] | None = None, say: Callable[[str], None] | None = None):
        self.spec, self.checker, self.proposer = spec, checker, proposer
        self.output = Path(output) if output else None
        self.force, self.dirty = force, dirty
        self.ask, self.say = ask or _tty_input, say or (lambda text: print(text, flush=True))
        if ask is None and sys.stdin.isatty():
            try:
                import readline  # noqa: F401  (line editing and history for input() in a terminal)
            except ImportError:
                pass
        self.history: list[GoalSpec] = []
        self.reviewed: set[str] = set(spec.meta.get("reviewed", []))
        self.findings: list[Finding] = []
        self.saved_path: Path | None = None
        self._reading = False

    # -- helpers
    def _check(self) -> None:
        if self.checker.model is not None:
            self.say("(checking...)")
        try:
            self.findings = self.checker.run(self.spec)
        except Exception as err:  # a model failure must not end the session: keep the cheap checks
            self.say(f"! model checks failed ({type(err).__name__}: {err}); continuing without them")
            self.checker.model = None
            self.findings = self.checker.run(self.spec)

    def _change(self, spec: GoalSpec, reviewed: Sequence[str] = ()) -> None:
        if spec.subgoals == self.spec.subgoals and spec.goal == self.spec.goal:
            self.say("(no change)")
            return
        self.history.append(self.spec)
        self.spec, self.dirty = spec, True
        self.reviewed = {i for i in self.reviewed if i in {s.id for s in spec.subgoals}} | set(reviewed)
        self._check()
        self._show()

    def _show(self) -> None:
        self.say(render_list(self.spec, self.findings, self.reviewed))

    def _index(self, arg: str) -> int:
        n = len(self.spec.subgoals)
        if not arg.strip().isdigit() or not 1 <= int(arg) <= n:
            raise GoalcoverError(f"give a subgoal number from 1 to {n}, not {arg.strip() or 'nothing'!r}")
        return int(arg) - 1

    def _read(self, prompt: str, default: str = "") -> str:
        shown = f" [{default}]" if default else ""
        return self._ask(f"{prompt}{shown}: ").strip() or default

    def _confirm(self, question: str) -> bool:
        try:
            return self._ask(f"{question} [y/N] ").strip().lower() in ("y", "yes")
        except EOFError:
            return False

    # -- commands
    def _cmd_accept(self, args: list[str]) -> None:
        ids = [s.id for s in self.spec.subgoals]
        chosen = ids if args == ["all"] else [ids[self._index(a)] for a in args] if args else None
        if not chosen:
            raise GoalcoverError("accept N [N ...] or accept all")
        self.reviewed |= set(chosen)
        self.say(f"Accepted: {', '.join(chosen)}")

    def _cmd_edit(self, args: list[str]) -> None:
        if not args:
            raise GoalcoverError("edit N [FIELD]")
        k = self._index(args[0])
        sub = self.spec.subgoals[k]
        fields = args[1:] or list(EDIT_FIELDS)
        values = {}
        for field in fields:
            check_field(field)  # before asking for any value
            value = self._read(f"{field}", getattr(sub, field))
            values[field] = "" if value == "-" else value
        new = edit(self.spec, k, **values)
        self._change(new, [new.subgoals[k].id])

    def _cmd_add(self, args: list[str]) -> None:
        fields = {"name": self._read("name"), "description": self._read("description")}
        if not (fields["name"] and fields["description"]):
            raise GoalcoverError("a subgoal needs a name and a description; nothing added")
        for field in ("low", "mid", "high"):
            fields[field] = self._read(f"{field} ({LABELS[field][0]}), Enter to skip")
        new = add(self.spec, fields)
        self._change(new, [new.subgoals[-1].id])

    def _cmd_delete(self, args: list[str]) -> None:
        k = self._index(args[0] if args else "")
        name = self.spec.subgoals[k].name
        self._change(delete(self.spec, k))
        self.say(f"Deleted '{name}'.")

    def _cmd_split(self, args: list[str]) -> None:
        k = self._index(args[0] if args else "")
        count = self._read(f"Split '{self.spec.subgoals[k].name}' into how many subgoals", "2")
        if not count.isdigit() or not 2 <= int(count) <= 6:
            raise GoalcoverError("split into 2 to 6 subgoals")
        parts = []
        for p in range(1, int(count) + 1):
            parts.append({"name": self._read(f"part {p} name"), "description": self._read(f"part {p} description")})
        new = split(self.spec, k, parts)
        self._change(new, [s.id for s in new.subgoals[k:k + len(parts)]])
        self.say("Tip: the new subgoals have no rubric anchors yet: edit N low/mid/high.")

    def _cmd_merge(self, args: list[str]) -> None:
        indices = sorted({self._index(a) for a in args})
        if len(indices) < 2:
            raise GoalcoverError("merge N M [...]: give at least two different subgoal numbers")
        first = self.spec.subgoals[indices[0]]
        name = self._read("merged name", first.name)
        description = self._read("merged description", first.description)
        new = merge(self.spec, indices, name=name, description=description)
        self._change(new, [new.subgoals[indices[0]].id])

    def _cmd_move(self, args: list[str]) -> None:
        if len(args) != 2:
            raise GoalcoverError("move N POS")
        self._change(move(self.spec, self._index(args[0]), self._index(args[1])))

    def _cmd_regen(self, args: list[str]) -> None:
        if self.proposer is None:
            raise GoalcoverError("regen needs a model; this session has none")
        if not args:
            raise GoalcoverError("regen N [HINT] or regen all [HINT]")
        hint = " ".join(args[1:])
        if args[0] == "all" and not self._confirm(f"Replace all {len(self.spec.subgoals)} subgoals with a new proposal?"):
            return
        k = None if args[0] == "all" else self._index(args[0])
        self.say(f"Asking {self.proposer.identity} for {'a new proposal' if k is None else f'a new subgoal {k + 1}'}...")
        try:
            if k is None:
                new = self.proposer.propose(self.spec.goal, hint)
                new = new.model_copy(update={"meta": {**self.spec.meta, **new.meta}})
            else:
                new = replace(self.spec, k, self.proposer.regenerate(self.spec, k, hint))
        except ValueError:
            raise
        except Exception as err:  # a model that fails to load or run must not end the session
            raise GoalcoverError(f"regen failed ({type(err).__name__}: {err})") from None
        self._change(new)

    def _cmd_undo(self, args: list[str]) -> None:
        if not self.history:
            raise GoalcoverError("nothing to undo")
        self.spec = self.history.pop()
        self._check()
        self._show()

    def _cmd_list(self, args: list[str]) -> None:
        self._show()

    def _cmd_show(self, args: list[str]) -> None:
        self.say(self.final_spec().to_yaml())

    def _cmd_help(self, args: list[str]) -> None:
        self.say(HELP)

    # -- finishing
    def final_spec(self) -> GoalSpec:
        """The spec as it will be saved.

        Returns:
            :class:`GoalSpec`: with the check findings and the reviewed ids in ``meta``.
        """
        spec = with_findings(self.spec, self.checker, self.findings)
        spec.meta["reviewed"] = [s.id for s in spec.subgoals if s.id in self.reviewed]
        return spec

    def _save(self, args: list[str]) -> bool:
        """Write the spec (asking before replacing a file); True when the session is done."""
        path = Path(args[0]) if args else self.output
        spec = self.final_spec()
        if path is None:  # Python API without an output file: hand the spec back
            self.spec = spec
            return True
        if path.exists() and not self.force and not self._confirm(f"{path} exists. Replace it?"):
            self.say("Not saved. Give another path: save PATH")
            return False
        spec.save(path, overwrite=True)
        self.spec, self.saved_path, self.dirty = spec, path, False
        open_findings = len(self.findings)
        self.say(f"Saved {len(spec.subgoals)} subgoals to {path}"
                 + (f" ({open_findings} check findings recorded in it)" if open_findings else ""))
        return True

    def _draft(self) -> None:
        """Input ended with unsaved work: keep it in a draft file that never replaces anything."""
        if not self.dirty or self.output is None:
            self.say("\nInput ended before save.")
            return
        stem, k = self.output.with_suffix(""), 1
        path = Path(f"{stem}.draft.yaml")
        while path.exists():
            k += 1
            path = Path(f"{stem}.draft{k}.yaml")
        self.final_spec().save(path)
        try:
            self.say(f"\nInput ended before save. Your unsaved subgoals are in {path}; "
                     f"continue with: goalcover decompose --from {path}")
        except OSError:  # the terminal is gone (hangup): the draft is what matters
            pass

    def run(self) -> GoalSpec | None:
        """Run the loop until the person saves or quits.

        Returns:
            :class:`GoalSpec` or ``None``: the saved spec, or ``None`` when the person left without saving (unsaved
            work at the end of input goes to a draft file beside ``output``).
        """
        # A closed terminal (SIGHUP) ends input like Ctrl-D does, so the unsaved work goes to a draft.
        hangup = getattr(signal, "SIGHUP", None)
        if hangup is None or threading.current_thread() is not threading.main_thread():
            return self._loop()
        previous = signal.signal(hangup, self._on_hangup)
        try:
            return self._loop()
        finally:
            signal.signal(hangup, previous)

    def _on_hangup(self, signum, frame) -> None:
        if self._reading:  # waiting for a line that will never come: end input; otherwise finish what runs
            raise EOFError("the terminal was closed")

    def _ask(self, prompt: str) -> str:
        self._reading = True
        try:
            return self.ask(prompt)
        finally:
            self._reading = False

    def _loop(self) -> GoalSpec | None:
        self._check()
        self._show()
        self.say(HELP)
        while True:
            try:
                line = self._ask("> ").strip()
            except (EOFError, KeyboardInterrupt):
                self._draft()
                return None
            if not line:
                continue
            cmd, *args = line.split()
            cmd = ALIASES.get(cmd.lower(), cmd.lower())
            try:
                if cmd == "save":
                    if self._save(args):
                        return self.spec
                elif cmd == "quit":
                    if not self.dirty or self._confirm("Quit and discard your unsaved subgoals?"):
                        return None
                elif hasattr(self, f"_cmd_{cmd}"):
                    getattr(self, f"_cmd_{cmd}")(args)
                else:
                    self.say(f"! unknown command {cmd!r}\n{HELP}")
            except (ValueError, IndexError) as err:
                self.say(f"! {err}")
            except KeyboardInterrupt:
                self.say("\n(cancelled)")
            except EOFError:
                self._draft()
                return None
