"""The decompose prompt loop: a thin layer over pure edit functions that tests call directly."""

from __future__ import annotations

from typing import Callable

from .decompose import to_spec
from .spec import GoalSpec

HELP = """Commands:
  s            save and finish          q   quit without saving
  e N          edit subgoal N           d N delete subgoal N
  a            add a subgoal            p   print the list again"""


def delete(spec: GoalSpec, index: int) -> GoalSpec:
    subs = [s.model_dump() for k, s in enumerate(spec.subgoals) if k != index]
    if not subs:
        raise ValueError("a spec needs at least one subgoal")
    return to_spec(spec.goal, subs, spec.meta)


def replace(spec: GoalSpec, index: int | None, **fields) -> GoalSpec:
    """Edit subgoal ``index`` (or add one when ``index`` is None) with the given fields."""
    subs = [s.model_dump() for s in spec.subgoals]
    if index is None:
        subs.append({"id": fields.get("id") or fields.get("name", ""), "low": "", "high": "", **fields})
    else:
        subs[index].update({k: v for k, v in fields.items() if v})
    return GoalSpec(goal=spec.goal, subgoals=to_spec(spec.goal, subs).subgoals, meta=spec.meta)


def show(spec: GoalSpec) -> str:
    lines = [f"Goal: {spec.goal}"]
    for k, s in enumerate(spec.subgoals, 1):
        lines.append(f"{k:>2}. {s.name} [{s.id}]\n    {s.description}")
        if s.low or s.high:
            lines.append(f"    1 = {s.low}\n    5 = {s.high}")
    return "\n".join(lines)


def edit_loop(spec: GoalSpec, ask: Callable[[str], str] = input, say: Callable[[str], None] = print) -> GoalSpec | None:
    """Let the person accept, edit, delete or add subgoals. Returns the spec to save, or None to discard."""
    say(show(spec))
    say(HELP)
    while True:
        try:
            line = ask("> ").strip()
        except EOFError:
            line = "q"
        cmd, _, arg = line.partition(" ")
        try:
            if cmd == "s":
                return spec
            if cmd == "q":
                return None
            if cmd == "p":
                say(show(spec))
            elif cmd == "d":
                spec = delete(spec, _index(spec, arg))
                say(show(spec))
            elif cmd == "e":
                k = _index(spec, arg)
                sub = spec.subgoals[k]
                fields = {f: ask(f"{f} [{getattr(sub, f)}]: ").strip() for f in ("name", "description", "low", "high")}
                spec = replace(spec, k, **fields)
                say(show(spec))
            elif cmd == "a":
                fields = {f: ask(f"{f}: ").strip() for f in ("name", "description", "low", "high")}
                spec = replace(spec, None, **fields)
                say(show(spec))
            else:
                say(HELP)
        except (ValueError, IndexError) as err:
            say(f"! {err}")


def _index(spec: GoalSpec, arg: str) -> int:
    if not arg.strip().isdigit() or not 1 <= int(arg) <= len(spec.subgoals):
        raise ValueError(f"give a subgoal number from 1 to {len(spec.subgoals)}")
    return int(arg) - 1
