"""A scoring run's output folder: the annotated dataset, the spec it was scored with, and the scorer's provenance.

    OUT/dataset/       the annotated dataset (``save_to_disk``)
    OUT/goal.yaml      the spec
    OUT/run.json       provenance (model, prompt version, mode, ...) and the input it came from
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .spec import GoalSpec


class ResultsError(FileNotFoundError):
    pass


@dataclass
class ScoredRun:
    dataset: Any
    spec: GoalSpec
    provenance: dict[str, Any]
    path: Path


def save_run(out: str | Path, dataset, spec: GoalSpec, provenance: dict[str, Any], overwrite: bool = False) -> Path:
    """Write the run folder atomically: a half-written folder is never left under the final name."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; choose another -o or pass --overwrite to replace it")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        dataset.save_to_disk(str(tmp / "dataset"))
        spec.save(tmp / "goal.yaml")
        (tmp / "run.json").write_text(json.dumps(provenance, indent=2, default=str), encoding="utf-8")
    except BaseException:  # Ctrl-C or a full disk: leave nothing half-written behind (a kill leaves only *.partial)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def load_run(path: str | Path) -> ScoredRun:
    from datasets import load_from_disk

    path = Path(path)
    for part in ("dataset", "goal.yaml", "run.json"):
        if not (path / part).exists():
            raise ResultsError(f"{path}: not a goalcover run folder (missing {part}); create one with `goalcover score`")
    return ScoredRun(
        dataset=load_from_disk(str(path / "dataset")),
        spec=GoalSpec.load(path / "goal.yaml"),
        provenance=json.loads((path / "run.json").read_text(encoding="utf-8")),
        path=path,
    )
