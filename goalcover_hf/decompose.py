"""Decomposition: ask the model for atomic subgoals of a goal (Outlines schema), return a GoalSpec."""

from __future__ import annotations

import datetime as _dt
import re
from typing import Sequence

from pydantic import BaseModel, Field

from .engines import get_engine
from .logging import get_logger
from .prompts import load_prompt
from .spec import GoalSpec, Subgoal

logger = get_logger(__name__)


class ProposedSubgoal(BaseModel):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{2,30}$")
    name: str = Field(min_length=3, max_length=48)
    description: str = Field(min_length=10, max_length=140)
    low: str = Field(min_length=3, max_length=90)
    high: str = Field(min_length=3, max_length=90)


def proposal_schema(min_n: int, max_n: int) -> type[BaseModel]:
    class Proposal(BaseModel):
        subgoals: list[ProposedSubgoal] = Field(min_length=min_n, max_length=max_n)

    return Proposal


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return (slug if slug[:1].isalpha() else f"s_{slug}")[:40] or "subgoal"


def to_spec(goal: str, proposed: Sequence[dict], meta: dict | None = None) -> GoalSpec:
    """Turn proposed subgoal dicts into a valid GoalSpec: clean ids, make them unique, drop empty entries."""
    subgoals, seen = [], set()
    for item in proposed:
        if not str(item.get("name", "")).strip() or not str(item.get("description", "")).strip():
            continue
        base = _slug(str(item.get("id") or item["name"]))
        sid, k = base, 2
        while sid in seen:
            sid, k = f"{base}_{k}", k + 1
        seen.add(sid)
        subgoals.append(Subgoal(id=sid, name=item["name"], description=item["description"],
                                low=item.get("low", ""), high=item.get("high", "")))
    return GoalSpec(goal=goal, subgoals=subgoals, meta=meta or {})


def decompose(
    goal: str,
    model: str = "embedded",
    *,
    min_subgoals: int = 3,
    max_subgoals: int = 8,
    examples: Sequence[str] = (),
    max_new_tokens: int = 1200,
) -> GoalSpec:
    """Ask ``model`` to decompose ``goal`` into ``min_subgoals``..``max_subgoals`` subgoals.

    Example:
        >>> spec = decompose("A patient-facing assistant that answers medication questions")
        >>> spec.save("goal.yaml")
    """
    if not goal.strip():
        raise ValueError("the goal is empty: describe what the fine-tuned model should do")
    if not 1 <= min_subgoals <= max_subgoals <= 12:
        raise ValueError("need 1 <= min_subgoals <= max_subgoals <= 12")
    engine = get_engine(model)
    prompt = load_prompt("decompose_v1")
    chat = [
        {"role": "system", "content": prompt.section("system")},
        {"role": "user", "content": prompt.section("user", goal=goal, min_n=min_subgoals, max_n=max_subgoals,
                                                   examples=[e[:600] for e in examples])},
    ]
    schema = proposal_schema(min_subgoals, max_subgoals)
    raw = engine.generate_json([chat], schema, max_new_tokens)[0]
    try:
        proposal = schema.model_validate_json(raw)
    except ValueError as err:
        raise RuntimeError(
            f"the model's proposal was not valid ({str(err).splitlines()[0]}); try again, raise max_new_tokens, "
            "or write the spec by hand (see examples/)"
        ) from None
    meta = {"decomposed_by": engine.identity, "prompt_version": prompt.version,
            "date": _dt.date.today().isoformat()}
    return to_spec(goal, [p.model_dump() for p in proposal.subgoals], meta)
