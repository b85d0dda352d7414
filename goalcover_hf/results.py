"""A scoring run's folder: the annotated dataset, the spec it was scored with, and how it was scored.

    OUT/dataset/       the annotated dataset (``save_to_disk``)
    OUT/goal.yaml      the spec
    OUT/run.json       provenance: the scorer's settings (``"scorer"``), model identity, prompt version, the input...

A :class:`Run` rebuilds exactly the scorer that produced it (:meth:`Run.scorer`), so the commands that judge again
(gaps, synthesize, validate) judge as ``score`` did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .columns import DEFAULT_THRESHOLD
from .errors import GoalcoverError
from .files import atomic_path, refuse_overwrite
from .spec import GoalSpec

if TYPE_CHECKING:
    from .scorer import Scorer

PARTS = ("dataset", "goal.yaml", "run.json")


class ResultsError(GoalcoverError, FileNotFoundError):
    """A folder that is not a readable run folder."""


@dataclass
class Run:
    """A scored dataset with its spec and provenance, and the folder it lives in (None until saved).

    Args:
        dataset: the annotated ``datasets.Dataset``.
        spec: the :class:`~goalcover_hf.spec.GoalSpec` it was scored against.
        provenance: what ``run.json`` holds; ``provenance["scorer"]`` is :meth:`Scorer.settings` of its scorer.
        path: the run folder, or None for a run not saved yet.

    Example:
        >>> run = Run.load("out/run")
        >>> scorer = run.scorer(batch_size=16)  # the scorer that produced it, batch size aside
        >>> Run(new_dataset, run.spec, run.provenance).save("out/other", overwrite=True)
    """

    dataset: Any
    spec: GoalSpec
    provenance: dict[str, Any]
    path: Path | None = None

    @classmethod
    def load(cls, path: str | Path) -> "Run":
        """Read a run folder written by :meth:`save` (or ``goalcover score``).

        Raises:
            ResultsError: the folder lacks a part of a run, or its ``run.json`` is not valid JSON.
        """
        from datasets import load_from_disk

        path = Path(path)
        for part in PARTS:
            if not (path / part).exists():
                raise ResultsError(f"{path}: not a goalcover run folder (missing {part}); create one with "
                                   "`goalcover score`")
        try:
            provenance = json.loads((path / "run.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ResultsError(f"{path / 'run.json'}: not valid JSON ({err})") from None
        return cls(load_from_disk(str(path / "dataset")), GoalSpec.load(path / "goal.yaml"), provenance, path)

    def save(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write the run folder to ``out``; a half-written folder is never left under that name.

        Args:
            out: the folder to write.
            overwrite (defaults to False): replace ``out`` if it exists (else :class:`OutputExistsError`).

        Returns:
            ``out``, which is now this run's ``path``.
        """
        out = Path(out)
        refuse_overwrite(out, overwrite)
        with atomic_path(out) as tmp:
            tmp.mkdir(parents=True)
            self.dataset.save_to_disk(str(tmp / "dataset"))
            self.spec.save(tmp / "goal.yaml")
            (tmp / "run.json").write_text(json.dumps(self.provenance, indent=2, default=str), encoding="utf-8")
        self.path = out
        return out

    def derive(self, dataset, **provenance: Any) -> "Run":
        """A new, unsaved run of ``dataset`` made from this one: same spec, provenance plus ``provenance`` and the
        source folder (``"source_run"``)."""
        return replace(self, dataset=dataset, provenance=self.provenance | provenance | {"source_run": str(self.path)},
                       path=None)

    @property
    def settings(self) -> dict[str, Any]:
        """The settings of the scorer that produced this run (:meth:`Scorer.settings`)."""
        if "scorer" not in self.provenance:
            raise ResultsError(f"{self.path / 'run.json'} does not record the scorer that produced the run; score "
                               "the data again with `goalcover score`")
        return dict(self.provenance["scorer"])

    @property
    def threshold(self) -> int:
        """The support threshold the run was scored with."""
        return int(self.provenance.get("scorer", self.provenance).get("threshold", DEFAULT_THRESHOLD))

    def scorer(self, **overrides: Any) -> "Scorer":
        """The scorer that produced this run, with ``overrides`` (any :class:`Scorer` argument) applied.

        ``engine_options`` given for the run's own engine add to the run's (a server keeps its address); another
        ``engine`` starts from none of them.

        Example:
            >>> run.scorer().config == original_scorer.config
            True
        """
        from .scorer import Scorer

        settings = self.settings
        if overrides.get("engine", settings["engine"]) != settings["engine"]:
            settings["engine_options"] = {}
        if "engine_options" in overrides:
            overrides["engine_options"] = {**settings["engine_options"], **overrides["engine_options"]}
        return Scorer(self.spec, **{**settings, **overrides})


def save_run(out: str | Path, dataset, spec: GoalSpec, provenance: dict[str, Any], overwrite: bool = False) -> Path:
    """``Run(dataset, spec, provenance).save(out, overwrite)``: write a run folder; returns ``out``."""
    return Run(dataset, spec, provenance).save(out, overwrite)


def load_run(path: str | Path) -> Run:
    """``Run.load(path)``: read a run folder."""
    return Run.load(path)
