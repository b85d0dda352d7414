"""GoalSpec: the goal and its ordered subgoals, stored as YAML and validated on load."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import GoalcoverError
from .files import atomic_write_text, refuse_overwrite

SPEC_VERSION = 1
SUBGOAL_ID = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
# Each subgoal adds four columns and one judge call per row; past this a spec is a list of tasks, not one goal.
MAX_SUBGOALS = 64
OPTIONAL_FIELDS = ("low", "mid", "high", "example")  # a spec file lists only those that are set


class SpecError(GoalcoverError):
    """A goal spec that cannot be used; the message names the file and the field."""


class UnknownSubgoalError(SpecError, KeyError):
    """A subgoal id the spec does not have. Also a ``KeyError``: a spec maps ids to subgoals."""

    __str__ = SpecError.__str__  # KeyError's would quote the message


class Subgoal(BaseModel):
    """One atomic, independently evaluable capability.

    Example:
        >>> Subgoal(id="cites_dosage", name="Cites dosage", description="States a drug dose with units.")
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Stable slug, used in column names: lowercase letters, digits, underscores.")
    name: str
    description: str
    low: str = Field("", description="What a sample scoring 1 looks like.")
    mid: str = Field("", description="What a sample scoring 3 looks like (optional).")
    high: str = Field("", description="What a sample scoring 5 looks like.")
    example: str = Field("", description="A short sample that would score 5 (optional; for people, not the judge).")

    def to_dict(self) -> dict[str, str]:
        """Fields as a dict, without the optional ones left empty: what a spec file holds and its hash reads."""
        data = self.model_dump()
        return {k: v for k, v in data.items() if v or k not in OPTIONAL_FIELDS}

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SUBGOAL_ID.match(value):
            raise ValueError(
                f"{value!r} is not a valid id: use 1-48 lowercase letters, digits or underscores, starting with a letter"
            )
        return value

    @field_validator("name", "description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()


class GoalSpec(BaseModel):
    """A high-level goal decomposed into subgoals.

    Example:
        >>> spec = GoalSpec.load("examples/medication_qa/goal.yaml")
        >>> [s.id for s in spec.subgoals]
    """

    model_config = ConfigDict(extra="forbid")

    goal: str
    subgoals: list[Subgoal]
    version: int = SPEC_VERSION
    meta: dict[str, Any] = Field(default_factory=dict, description="Free-form provenance: model, checks, dates.")

    @field_validator("goal")
    @classmethod
    def _goal_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @model_validator(mode="after")
    def _unique_ids(self) -> "GoalSpec":
        if not self.subgoals:
            raise ValueError("subgoals: at least one subgoal is needed")
        if len(self.subgoals) > MAX_SUBGOALS:
            raise ValueError(
                f"subgoals: {len(self.subgoals)} subgoals, more than the {MAX_SUBGOALS} goalcover scores in one run; "
                "split the goal into several specs"
            )
        seen = set()
        for sub in self.subgoals:
            if sub.id in seen:
                raise ValueError(f"subgoals: duplicate id {sub.id!r}; ids must be unique")
            seen.add(sub.id)
        return self

    def content_hash(self) -> str:
        """Hash of what changes scores (goal and subgoals), not of ``meta``."""
        payload = {"goal": self.goal, "subgoals": [s.to_dict() for s in self.subgoals]}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def subgoal(self, subgoal_id: str) -> Subgoal:
        for sub in self.subgoals:
            if sub.id == subgoal_id:
                return sub
        raise UnknownSubgoalError(f"no subgoal {subgoal_id!r} in the spec; ids: {', '.join(s.id for s in self.subgoals)}")

    @classmethod
    def from_dict(cls, data: Any, source: str = "<spec>") -> "GoalSpec":
        if not isinstance(data, dict):
            raise SpecError(f"{source}: expected a mapping with 'goal' and 'subgoals', got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            lines = [f"{source}: invalid goal spec"]
            for e in err.errors():
                where = ".".join(str(p) for p in e["loc"]) or "(top level)"
                msg = "unknown key (allowed: see README 'Goal spec')" if e["type"] == "extra_forbidden" else e["msg"]
                lines.append(f"  - {where}: {msg}")
            raise SpecError("\n".join(lines)) from None

    @classmethod
    def load(cls, path: str | Path) -> "GoalSpec":
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"{path}: spec file not found")
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            raise SpecError(f"{path}: spec file is empty; write 'goal:' and 'subgoals:' or run `goalcover decompose`")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise SpecError(f"{path}: not valid YAML: {err}") from None
        return cls.from_dict(data, source=str(path))

    def to_yaml(self) -> str:
        data = self.model_dump(exclude_defaults=False)
        data["subgoals"] = [s.to_dict() for s in self.subgoals]
        if not data["meta"]:
            data.pop("meta")
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the spec; refuses to replace an existing file unless ``overwrite``."""
        refuse_overwrite(path, overwrite, "overwrite=True (CLI: --force)")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(path, self.to_yaml())


def slug(text: str) -> str:
    """A valid subgoal id from any text: ``slug("Cites the dose!") == "cites_the_dose"``."""
    value = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    value = value if value[:1].isalpha() else f"s_{value}"
    return value[:48].rstrip("_") or "subgoal"


def to_spec(goal: str, proposed: Sequence[dict], meta: dict | None = None) -> GoalSpec:
    """Turn subgoal dicts into a valid GoalSpec: clean ids, make them unique, drop entries without name/description.

    Example:
        >>> to_spec("Answer medication questions", [{"name": "States a dose", "description": "Gives a dose."}])
    """
    subgoals, seen = [], set()
    for item in proposed:
        if not str(item.get("name", "")).strip() or not str(item.get("description", "")).strip():
            continue
        base = slug(str(item.get("id") or item["name"]))
        sid, k = base, 2
        while sid in seen:
            sid, k = f"{base[:44]}_{k}", k + 1
        seen.add(sid)
        fields = {f: str(item.get(f) or "").strip() for f in OPTIONAL_FIELDS}
        subgoals.append(Subgoal(id=sid, name=item["name"], description=item["description"], **fields))
    return GoalSpec(goal=goal, subgoals=subgoals, meta=dict(meta or {}))
