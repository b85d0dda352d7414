"""The gaps file (``RUN/gaps.json``): the named gaps of a run with the settings that found them, written once and read
back by report, card and push while it still matches their coverage."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .coverage import CoverageReport, Target
from .embeddings import EMBEDDING_NAME
from .errors import OutputExistsError
from .files import atomic_write_text
from .gaps import UNNAMED, Gap, refresh
from .spec import GoalSpec

GAPS_SCHEMA = "goalcover.gaps"
GAPS_SCHEMA_VERSION = 1
GAPS_FILE = "gaps.json"


def gaps_document(gaps: list[Gap], spec: GoalSpec, report: CoverageReport, provenance: dict[str, Any],
                  settings: dict[str, Any]) -> dict[str, Any]:
    """The ``gaps.json`` document (see the module docstring for its schema).

    Args:
        gaps (``list[Gap]``): from :func:`find_gaps`.
        spec (:class:`GoalSpec`), report (:class:`CoverageReport`): what they were found with.
        provenance (``dict[str, Any]``): the run's provenance (its ``model`` is the judge).
        settings (``dict[str, Any]``): the settings to record besides the threshold (low score, target, ...).

    Returns:
        ``dict[str, Any]``: JSON-serializable.
    """
    return {
        "schema": GAPS_SCHEMA,
        "schema_version": GAPS_SCHEMA_VERSION,
        "goal": spec.goal,
        "spec_hash": spec.content_hash(),
        "judge": provenance.get("model"),
        "namer": next((t.named_by for g in gaps for t in g.themes if t.named_by != UNNAMED), None),
        "embedding_model": EMBEDDING_NAME,
        "settings": {"threshold": report.threshold, **settings},
        "gaps": [g.to_dict() for g in gaps],
    }


def save_gaps(path: str | Path, document: dict[str, Any]) -> Path:
    """Write ``gaps.json`` atomically; an existing file is replaced only if it is a goalcover gaps file.

    Args:
        path (``str`` or ``Path``): where to write (its folder is created).
        document (``dict[str, Any]``): from :func:`gaps_document`.

    Returns:
        ``Path``: the path written; an :class:`~goalcover_hf.errors.OutputExistsError` when another file is there.
    """
    path = Path(path)
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            old = None
        if not isinstance(old, dict) or old.get("schema") != GAPS_SCHEMA:
            raise OutputExistsError(f"{path} exists and is not a goalcover gaps file; choose another -o")
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def load_gaps(path: str | Path, spec: GoalSpec, report: CoverageReport, target: Target | None = None
              ) -> tuple[list[Gap] | None, str]:
    """Read back ``gaps.json`` if it was made with this spec, threshold and target.

    Args:
        path (``str`` or ``Path``): the file.
        spec (:class:`GoalSpec`), report (:class:`CoverageReport`): what the gaps must have been found with.
        target (:class:`Target`, *optional*): the target they must have used (default: the report's).

    Returns:
        ``tuple``: ``(gaps, "")``, or ``(None, why)`` when the file is missing, unreadable or stale.
    """
    path = Path(path)
    if not path.exists():
        return None, f"{path} does not exist"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        return None, f"{path} is not valid JSON ({err})"
    if not isinstance(doc, dict) or doc.get("schema") != GAPS_SCHEMA:
        return None, f"{path} is not a goalcover gaps file"
    if doc.get("schema_version") != GAPS_SCHEMA_VERSION:
        return None, f"{path} has schema version {doc.get('schema_version')}, this goalcover reads {GAPS_SCHEMA_VERSION}"
    target = target or report.target
    settings = doc.get("settings", {})
    if doc.get("spec_hash") != spec.content_hash():
        return None, f"{path} was made with another spec"
    if settings.get("threshold") != report.threshold or settings.get("target") != asdict(target):
        return None, f"{path} was made with another threshold or target ({settings.get('threshold')}, {settings.get('target')})"
    gaps = [Gap.from_dict(g) for g in doc["gaps"]]
    by_id = {s.id: s for s in report.subgoals}
    if {g.subgoal for g in gaps} != {s.id for s in report.subgoals if report.decide(s, target) == "gap"}:
        return None, f"{path} names other gaps than the coverage decides now (labels or rows changed since)"
    return [refresh(g, by_id[g.subgoal], report, target) for g in gaps], ""


# ---- terminal -----------------------------------------------------------------------------------------------------
