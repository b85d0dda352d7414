"""Decomposition: ask the model for atomic subgoals of a goal (Outlines schema), check them, return a GoalSpec.

:class:`Proposer` asks the model; :func:`decompose` is the one-call Python API, which opens the terminal session of
:mod:`goalcover_hf.interactive` when asked. The session is handed a proposer and never imports this module.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from pydantic import BaseModel, Field, ValidationError

from .checks import DEFAULT_OVERLAP, Checker, with_findings
from .errors import GoalcoverError
from .interactive import Session
from .logging import get_logger
from .prompts import load_prompt
from .spec import GoalSpec, to_spec

logger = get_logger(__name__)

EXAMPLE_CHARS = 500  # per grounding row shown to the model: enough for its vocabulary, cheap to prefill
TOKENS_PER_SUBGOAL = 220  # bound for one generated subgoal (all its strings are length-capped)


class DecomposeError(GoalcoverError):
    """The model's proposal could not be used; the message says what to do instead."""


class ProposedSubgoal(BaseModel):
    """The schema of one proposed subgoal; every string is length-capped so a generation has a bound.

    Args:
        id, name, description, low, mid, high (``str``): as in :class:`~goalcover_hf.spec.Subgoal`.
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{2,30}$")
    name: str = Field(min_length=3, max_length=48)
    description: str = Field(min_length=10, max_length=140)
    low: str = Field(min_length=3, max_length=90)
    mid: str = Field(min_length=3, max_length=90)
    high: str = Field(min_length=3, max_length=90)


class ProposedSubgoalWithExample(ProposedSubgoal):
    """:class:`ProposedSubgoal` with a short example.

    Args:
        example (``str``): a short sample that would score 5.
    """

    example: str = Field(min_length=10, max_length=160)


@lru_cache(maxsize=None)  # one class per shape, so the engine compiles its automaton once
def proposal_schema(min_n: int, max_n: int, with_example: bool = False) -> type[BaseModel]:
    """The schema of a whole proposal.

    Args:
        min_n (``int``), max_n (``int``): how many subgoals it holds.
        with_example (``bool``, defaults to ``False``): each subgoal also carries an example.

    Returns:
        ``type[BaseModel]``: a model with one field, ``subgoals``.
    """
    item = ProposedSubgoalWithExample if with_example else ProposedSubgoal

    class Proposal(BaseModel):
        subgoals: list[item] = Field(min_length=min_n, max_length=max_n)

    return Proposal


def load_examples(source: str, n: int = 20, template: str | None = None, split: str = "train") -> list[str]:
    """Render the first ``n`` rows of ``source`` as the text the model will see when grounding a proposal.

    Rows that cannot be rendered are skipped with a warning that names them.

    Args:
        source (``str``): a data file, folder or Hub dataset id (see :func:`~goalcover_hf.data.load_data`).
        n (``int``, defaults to 20): rows to read.
        template (``str``, *optional*): the Jinja template that renders a row.
        split (``str``, defaults to ``"train"``): the split to read.

    Returns:
        ``list[str]``: the rendered rows; a :class:`~goalcover_hf.data.DataError` when none renders.

    Example:
        >>> load_examples("../shared/data/external/medical_qa.jsonl", n=3)
    """
    from .data import DataError, load_data
    from .formats import RowFormatError, RowRenderer

    if n < 1:
        raise GoalcoverError(f"--n must be at least 1, got {n}")
    ds = load_data(source, split=split, limit=n)
    renderer = RowRenderer(columns=ds.column_names, template=template)
    texts = []
    for k, row in enumerate(ds):
        try:
            texts.append(renderer.render(row))
        except RowFormatError as err:
            logger.warning("%s, row %d: skipped for grounding (%s)", source, k, err)
    if not texts:
        raise DataError(f"{source}: none of the first {len(ds)} rows could be rendered; pass --template")
    return texts


@dataclass
class Proposer:
    """Asks a model for subgoals: a whole proposal, or one replacement. The model loads on first use.

    Args:
        model (``str`` or :class:`~goalcover_hf.engines.Engine`, defaults to ``"embedded"``): an HF id, a folder,
            a .gguf, or an already loaded engine.
        min_subgoals (``int``, defaults to 3), max_subgoals (``int``, defaults to 8): how many subgoals a proposal
            holds (at most 12).
        examples (``Sequence[str]``): rendered rows of the user's data, shown to borrow its vocabulary (never as
            truth).
        with_example (``bool``, defaults to ``False``): also ask for a short sample that would score 5, per
            subgoal (costs tokens).
        max_new_tokens (``int``, *optional*): the generation budget (default: enough for ``max_subgoals``).

    Example:
        >>> Proposer("embedded", max_subgoals=5).propose("Answer medication questions")
    """

    model: object = "embedded"
    min_subgoals: int = 3
    max_subgoals: int = 8
    examples: Sequence[str] = ()
    with_example: bool = False
    max_new_tokens: int | None = None

    def __post_init__(self):
        if not 1 <= self.min_subgoals <= self.max_subgoals <= 12:
            raise GoalcoverError("need 1 <= min subgoals <= max subgoals <= 12")

    @property
    def engine(self):
        """The engine (loaded on first use)."""
        if isinstance(self.model, str):
            from .engines import get_engine

            return get_engine(self.model)
        return self.model

    @property
    def identity(self) -> str:
        """The model's identity, without loading it."""
        if isinstance(self.model, str):
            from .models import resolve_model

            return resolve_model(self.model).identity
        return self.model.identity

    def meta(self) -> dict:
        """What a proposed spec records in ``meta``.

        Returns:
            ``dict``: the model, the prompt version and today's date.
        """
        return {"decomposed_by": self.identity, "prompt_version": load_prompt("decompose_v1").version,
                "date": _dt.date.today().isoformat()}

    def _generate(self, chat: list[dict], schema: type[BaseModel], n: int) -> BaseModel:
        budget = self.max_new_tokens or n * (TOKENS_PER_SUBGOAL + (60 if self.with_example else 0)) + 20
        raw = self.engine.generate_json([chat], schema, budget)[0]
        try:
            return schema.model_validate_json(raw)
        except (ValidationError, TypeError) as err:
            first = str(err).splitlines()[0]
            raise DecomposeError(
                f"the model's proposal was not valid ({first}); try again, try another --model, "
                "or write the spec by hand and open it with --from"
            ) from None

    def _chat(self, part: str, **values) -> list[dict]:
        examples = [e[:EXAMPLE_CHARS] for e in self.examples]
        return load_prompt("decompose_v1").chat(part, examples=examples, with_example=self.with_example, **values)

    def propose(self, goal: str, hint: str = "") -> GoalSpec:
        """A fresh proposal.

        Args:
            goal (``str``): what the fine-tuned model should do.
            hint (``str``, *optional*): what the person wants different.

        Returns:
            :class:`~goalcover_hf.spec.GoalSpec`: a :class:`DecomposeError` when the model's output is not valid.
        """
        if not goal.strip():
            raise GoalcoverError("the goal is empty: describe what the fine-tuned model should do")
        chat = self._chat("user", goal=goal, min_n=self.min_subgoals, max_n=self.max_subgoals, hint=hint)
        proposal = self._generate(chat, proposal_schema(self.min_subgoals, self.max_subgoals, self.with_example),
                                  self.max_subgoals)
        return to_spec(goal, [p.model_dump() for p in proposal.subgoals], self.meta())

    def regenerate(self, spec: GoalSpec, index: int, hint: str = "") -> dict:
        """A replacement for one subgoal that does not repeat the others.

        Args:
            spec (:class:`~goalcover_hf.spec.GoalSpec`): the current spec.
            index (``int``): 0-based position of the subgoal to replace.
            hint (``str``, *optional*): what the person wants different.

        Returns:
            ``dict``: the new subgoal's fields.
        """
        others = [s for k, s in enumerate(spec.subgoals) if k != index]
        chat = self._chat("regenerate", goal=spec.goal, others=others, old=spec.subgoals[index], hint=hint)
        schema = ProposedSubgoalWithExample if self.with_example else ProposedSubgoal
        return self._generate(chat, schema, 1).model_dump()


def decompose(
    goal: str,
    model: object = "embedded",
    *,
    interactive: bool = False,
    min_subgoals: int = 3,
    max_subgoals: int = 8,
    examples: str | Sequence[str] | None = None,
    n: int = 20,
    template: str | None = None,
    with_example: bool = False,
    hint: str = "",
    model_checks: bool = True,
    overlap_threshold: float | None = None,
    output: str | Path | None = None,
    force: bool = False,
    max_new_tokens: int | None = None,
) -> GoalSpec | None:
    """Ask ``model`` to decompose ``goal`` into subgoals, run the checks, and return the spec.

    The check findings are in ``spec.meta["checks"]["findings"]``. With ``interactive=True`` the person shapes the
    proposal in a terminal session first (returns None if they quit without saving).

    Args:
        goal (``str``): what the fine-tuned model should do.
        model (``str`` or :class:`~goalcover_hf.engines.Engine`, defaults to ``"embedded"``): the proposing model.
        interactive (``bool``, defaults to ``False``): open the terminal session on the proposal.
        min_subgoals, max_subgoals, with_example, max_new_tokens: as for :class:`Proposer`.
        examples (``str`` or ``Sequence[str]``, *optional*): a data file/folder/Hub id (its first ``n`` rows are
            rendered, with ``template`` if given) or a list of texts; shown to the model to borrow the data's
            vocabulary, never as correct answers.
        hint (``str``, *optional*): what the person wants from the proposal.
        model_checks (``bool``, defaults to ``True``): also ask the model whether each subgoal is atomic and
            evaluable, and what the subgoals miss.
        overlap_threshold (``float``, *optional*): cosine similarity that counts as overlap.
        output (``str`` or ``Path``, *optional*): where the interactive session saves (it asks before replacing a
            file unless ``force``).

    Returns:
        :class:`~goalcover_hf.spec.GoalSpec` or ``None``: ``None`` when the session was left without saving.

    Example:
        >>> spec = decompose("A patient-facing assistant that answers medication questions", model="embedded")
        >>> [f["check"] for f in spec.meta["checks"]["findings"]]
        >>> spec.save("goal.yaml")
    """
    if isinstance(examples, str):
        texts = load_examples(examples, n=n, template=template)
    else:
        texts = list(examples or [])
    proposer = Proposer(model, min_subgoals, max_subgoals, texts, with_example, max_new_tokens)
    spec = proposer.propose(goal, hint)
    if isinstance(examples, str):
        spec.meta["grounding"] = {"data": examples, "rows": len(texts)}
    # The model checks reuse the proposer's engine: one model in memory.
    checker = Checker(model if model_checks else None, overlap_threshold or DEFAULT_OVERLAP)
    if not interactive:
        return with_findings(spec, checker)
    return Session(spec, checker, proposer=proposer, output=output, force=force).run()
