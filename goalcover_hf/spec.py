"""GoalSpec: the goal and its ordered subgoals, stored as YAML and validated on load."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Sequence

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import GoalcoverError
from .files import atomic_write_text, refuse_overwrite

SPEC_VERSION = 1
SUBGOAL_ID = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
# Each subgoal adds four columns and one judge call per row; past this a spec is a list of tasks, not one goal.
MAX_SUBGOALS = 64
FIELDS = ("id", "name", "description", "low", "mid", "high", "example")  # a subgoal's, in file order
OPTIONAL_FIELDS = FIELDS[3:]  # a spec file lists only those that are set


class SpecError(GoalcoverError):
    """A goal spec that cannot be used; the message names the file and the field."""


class UnknownSubgoalError(SpecError, KeyError):
    """A subgoal id the spec does not have. Also a ``KeyError``: a spec maps ids to subgoals."""

    __str__ = SpecError.__str__  # KeyError's would quote the message


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


NonBlank = Annotated[str, AfterValidator(_not_blank)]  # stored stripped


class Subgoal(BaseModel):
    """One atomic, independently evaluable capability.

    Args:
        id (``str``): stable slug, used in column names: lowercase letters, digits and underscores.
        name (``str``), description (``str``): what the judge reads; neither may be blank.
        low (``str``, *optional*), mid (``str``, *optional*), high (``str``, *optional*): what a sample scoring
            1, 3 and 5 looks like.
        example (``str``, *optional*): a short sample that would score 5 (for people, not the judge).

    Example:
        >>> Subgoal(id="cites_dosage", name="Cites dosage", description="States a drug dose with units.")
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Stable slug, used in column names: lowercase letters, digits, underscores.")
    name: NonBlank
    description: NonBlank
    low: str = Field("", description="What a sample scoring 1 looks like.")
    mid: str = Field("", description="What a sample scoring 3 looks like (optional).")
    high: str = Field("", description="What a sample scoring 5 looks like.")
    example: str = Field("", description="A short sample that would score 5 (optional; for people, not the judge).")

    def to_dict(self) -> dict[str, str]:
        """The subgoal as a spec file holds it and its hash reads it.

        Returns:
            ``dict[str, str]``: every field, without the optional ones left empty.
        """
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


class GoalSpec(BaseModel):
    """A high-level goal decomposed into subgoals.

    Args:
        goal (``str``): what the fine-tuned model should do.
        subgoals (``list[Subgoal]``): 1 to ``MAX_SUBGOALS`` subgoals with unique ids, in order.
        version (``int``, defaults to ``SPEC_VERSION``): the spec format.
        meta (``dict``, *optional*): free-form provenance: model, checks, dates.

    Example:
        >>> spec = GoalSpec.load("examples/medication_qa/goal.yaml")
        >>> [s.id for s in spec.subgoals]
    """

    model_config = ConfigDict(extra="forbid")

    goal: NonBlank
    subgoals: list[Subgoal]
    version: int = SPEC_VERSION
    meta: dict[str, Any] = Field(default_factory=dict, description="Free-form provenance: model, checks, dates.")

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
        """A hash of what changes scores (goal and subgoals), not of ``meta``.

        Returns:
            ``str``: 16 hex digits.
        """
        payload = {"goal": self.goal, "subgoals": [s.to_dict() for s in self.subgoals]}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def subgoal(self, subgoal_id: str) -> Subgoal:
        """The subgoal with this id.

        Args:
            subgoal_id (``str``): its id.

        Returns:
            :class:`Subgoal`: an :class:`UnknownSubgoalError` lists the spec's ids when there is none.
        """
        for sub in self.subgoals:
            if sub.id == subgoal_id:
                return sub
        raise UnknownSubgoalError(f"no subgoal {subgoal_id!r} in the spec; ids: {', '.join(s.id for s in self.subgoals)}")

    @classmethod
    def from_dict(cls, data: Any, source: str = "<spec>") -> "GoalSpec":
        """Validate parsed YAML or JSON into a spec.

        Args:
            data (``Any``): a mapping with ``goal`` and ``subgoals``.
            source (``str``, defaults to ``"<spec>"``): how error messages name where it came from.

        Returns:
            :class:`GoalSpec`: a :class:`SpecError` lists every invalid field otherwise.
        """
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
        """Read and validate a spec file.

        Args:
            path (``str`` or ``Path``): a YAML file.

        Returns:
            :class:`GoalSpec`: a :class:`SpecError` names the file and what is wrong with it otherwise.

        Example:
            >>> GoalSpec.load("examples/medication_qa/goal.yaml").goal
        """
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
        """The spec as a spec file holds it.

        Returns:
            ``str``: YAML; ``meta`` only when it has something.
        """
        data = self.model_dump(exclude_defaults=False)
        data["subgoals"] = [s.to_dict() for s in self.subgoals]
        if not data["meta"]:
            data.pop("meta")
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the spec as YAML, atomically.

        Args:
            path (``str`` or ``Path``): the file (its folder is created).
            overwrite (``bool``, defaults to ``False``): replace an existing file; otherwise that is an
                :class:`~goalcover_hf.errors.OutputExistsError`.

        Returns:
            ``Path``: the path written.
        """
        refuse_overwrite(path, overwrite, "overwrite=True (CLI: --force)")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(path, self.to_yaml())


# ---- building and editing specs: every function returns a new, valid spec ------------------------------------------
def slug(text: str) -> str:
    """A valid subgoal id made from any text.

    Args:
        text (``str``): a name or a draft id.

    Returns:
        ``str``: lowercase letters, digits and underscores, starting with a letter, at most 48 characters.

    Example:
        >>> slug("Cites the dose!")
        'cites_the_dose'
    """
    value = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    value = value if value[:1].isalpha() else f"s_{value}"
    return value[:48].rstrip("_") or "subgoal"


def has_name(fields: dict) -> bool:
    """Whether subgoal fields have a non-blank name and description, the two a subgoal cannot do without.

    Args:
        fields (``dict``): a subgoal's fields.

    Returns:
        ``bool``
    """
    return bool(str(fields.get("name", "")).strip() and str(fields.get("description", "")).strip())


def to_spec(goal: str, proposed: Sequence[dict], meta: dict | None = None) -> GoalSpec:
    """Turn loose subgoal dicts (a model's proposal, an edit) into a valid spec.

    Ids are cleaned with :func:`slug` (from the name when there is none) and made unique; entries without a name or
    a description are dropped.

    Args:
        goal (``str``): the goal.
        proposed (``Sequence[dict]``): subgoal fields: ``name``, ``description``, and optionally ``id`` and
            :data:`OPTIONAL_FIELDS`.
        meta (``dict``, *optional*): provenance kept in ``spec.meta``.

    Returns:
        :class:`GoalSpec`

    Example:
        >>> to_spec("Answer medication questions", [{"name": "States a dose", "description": "Gives a dose."}])
    """
    subgoals, seen = [], set()
    for item in proposed:
        if not has_name(item):
            continue
        base = slug(str(item.get("id") or item["name"]))
        sid, k = base, 2
        while sid in seen:
            sid, k = f"{base[:44]}_{k}", k + 1
        seen.add(sid)
        fields = {f: str(item.get(f) or "").strip() for f in OPTIONAL_FIELDS}
        subgoals.append(Subgoal(id=sid, name=item["name"], description=item["description"], **fields))
    return GoalSpec(goal=goal, subgoals=subgoals, meta=dict(meta or {}))


def _dicts(spec: GoalSpec) -> list[dict]:
    return [s.model_dump() for s in spec.subgoals]


def _rebuild(spec: GoalSpec, subs: list[dict]) -> GoalSpec:
    if not subs:
        raise SpecError("a spec needs at least one subgoal")
    return to_spec(spec.goal, subs, spec.meta)


def check_field(field: str) -> None:
    """Raise :class:`SpecError` unless ``field`` is one of :data:`FIELDS`.

    Args:
        field (``str``): a field name.
    """
    if field not in FIELDS:
        raise SpecError(f"unknown field {field!r}; use one of {', '.join(FIELDS)}")


def delete(spec: GoalSpec, index: int) -> GoalSpec:
    """Remove one subgoal.

    Args:
        spec (:class:`GoalSpec`): the spec to edit (left unchanged).
        index (``int``): 0-based position of the subgoal.

    Returns:
        :class:`GoalSpec`: the new spec; removing the last subgoal is a :class:`SpecError`.
    """
    return _rebuild(spec, [s for k, s in enumerate(_dicts(spec)) if k != index])


def edit(spec: GoalSpec, index: int, **fields: str) -> GoalSpec:
    """Change fields of one subgoal: an empty optional field is cleared, an empty name or description refused.

    Args:
        spec (:class:`GoalSpec`): the spec to edit (left unchanged).
        index (``int``): 0-based position of the subgoal.
        **fields (``str``): new values by field name (:data:`FIELDS`); a new ``id`` must be a valid, unused slug.

    Returns:
        :class:`GoalSpec`

    Example:
        >>> edit(spec, 0, description="Gives a dose with units and frequency.", mid="A dose without units.")
    """
    subs = _dicts(spec)
    for field, value in fields.items():
        check_field(field)
        value = (value or "").strip()
        if not value and field not in OPTIONAL_FIELDS:
            raise SpecError(f"{field} must not be empty")
        if field == "id":
            if value != slug(value):
                raise SpecError(f"{value!r} is not a valid id; for example {slug(value)!r}")
            if any(k != index and s["id"] == value for k, s in enumerate(subs)):
                raise SpecError(f"id {value!r} is already used by another subgoal")
        subs[index][field] = value
    return _rebuild(spec, subs)


def add(spec: GoalSpec, fields: dict, position: int | None = None) -> GoalSpec:
    """Insert a new subgoal; its id comes from ``fields["id"]`` or from its name.

    Args:
        spec (:class:`GoalSpec`): the spec to edit (left unchanged).
        fields (``dict``): the subgoal's fields; a name and a description are required.
        position (``int``, *optional*): 0-based position; at the end by default.

    Returns:
        :class:`GoalSpec`
    """
    if not has_name(fields):
        raise SpecError("a subgoal needs a name and a description")
    subs = _dicts(spec)
    subs.insert(len(subs) if position is None else position, dict(fields))
    return _rebuild(spec, subs)


def split(spec: GoalSpec, index: int, parts: Sequence[dict]) -> GoalSpec:
    """Replace one subgoal by several, in its place.

    Args:
        spec (:class:`GoalSpec`): the spec to edit (left unchanged).
        index (``int``): 0-based position of the subgoal to split.
        parts (``Sequence[dict]``): two or more subgoals' fields, each with a name and a description.

    Returns:
        :class:`GoalSpec`
    """
    if len(parts) < 2:
        raise SpecError("split into at least two subgoals")
    for k, part in enumerate(parts, 1):
        if not has_name(part):
            raise SpecError(f"part {k} needs a name and a description")
    subs = _dicts(spec)
    subs[index:index + 1] = [dict(p) for p in parts]
    return _rebuild(spec, subs)


def merge(spec: GoalSpec, indices: Sequence[int], **fields: str) -> GoalSpec:
    """Merge several subgoals into one at the first one's place.

    Args:
        spec (:class:`GoalSpec`): the spec to edit (left unchanged).
        indices (``Sequence[int]``): 0-based positions, at least two different ones.
        **fields (``str``): fields of the merged subgoal; it keeps the first one's fields and id otherwise.

    Returns:
        :class:`GoalSpec`
    """
    indices = sorted(set(indices))
    if len(indices) < 2:
        raise SpecError("merge needs at least two different subgoals")
    subs = _dicts(spec)
    merged = dict(subs[indices[0]])
    merged.update({k: v for k, v in fields.items() if v is not None})
    out = [s for k, s in enumerate(subs) if k not in indices]
    out.insert(indices[0], merged)
    return _rebuild(spec, out)


def move(spec: GoalSpec, index: int, position: int) -> GoalSpec:
    """Move one subgoal.

    Args:
        spec (:class:`GoalSpec`): the spec to edit (left unchanged).
        index (``int``): 0-based position of the subgoal.
        position (``int``): its new 0-based position (clamped to the list).

    Returns:
        :class:`GoalSpec`
    """
    subs = _dicts(spec)
    item = subs.pop(index)
    subs.insert(max(0, min(position, len(subs))), item)
    return _rebuild(spec, subs)


def replace(spec: GoalSpec, index: int, fields: dict) -> GoalSpec:
    """Replace one subgoal entirely (by a regenerated one).

    Args:
        spec (:class:`GoalSpec`): the spec to edit (left unchanged).
        index (``int``): 0-based position of the subgoal.
        fields (``dict``): the new subgoal's fields; its id comes from them.

    Returns:
        :class:`GoalSpec`
    """
    subs = _dicts(spec)
    subs[index] = dict(fields)
    return _rebuild(spec, subs)
