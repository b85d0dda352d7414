"""The raw judge: what an engine says about (sample, subgoal) pairs under one score prompt, with no method on top.

It owns the output schemas, the reading of digit probabilities, the explanations and the per-pair errors. Pairs are
sent in groups that share a beginning (one sample and all its subgoals, when the template puts the sample first), so
an engine that can reuse a shared prefix computes each sample once for all its subgoals. A failing batch marks its
pairs with an ``error`` and the work goes on; an engine that cannot work at all (:class:`EngineMisconfigured`) stops it.

Example:
    >>> raw = Judge(get_engine("embedded"), mode="logprobs")
    >>> [[dose, risk]] = raw.judge_texts(["QUESTION: ...\\n\\nANSWER: 200 mg every 6 hours."], spec.subgoals)
    >>> dose.score, dose.expected
    (4, 3.7)
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

from pydantic import BaseModel, Field, ValidationError

from .columns import Judgement
from .engines.base import Engine, EngineMisconfigured
from .errors import GoalcoverError
from .logging import get_logger
from .prompts import load_prompt, sample_first, score_chat
from .spec import Subgoal

logger = get_logger(__name__)

MODES = ("generate", "logprobs")
# logprobs: reads each sample once for all subgoals and decodes only the explanations gap analysis needs
DEFAULT_MODE = "logprobs"
DEFAULT_PROMPT = "score_v2"
SCORE_CHOICES = ("1", "2", "3", "4", "5")
EXPLANATION_CHARS = 160

Pair = tuple[int, int]  # (sample index, subgoal index)
Distribution = list[float] | str  # probabilities over the choices, or why the pair could not be scored


class JudgementJSON(BaseModel):
    """What the judge must produce in ``generate`` mode (explanation first: reasoning before the verdict)."""

    explanation: str = Field(max_length=EXPLANATION_CHARS)
    score: Literal[1, 2, 3, 4, 5]


class VerdictJudgementJSON(BaseModel):
    """``generate`` mode of a template that asks a verdict: the yes/no verdict comes before the score."""

    verdict: Literal["yes", "no"]
    explanation: str = Field(max_length=EXPLANATION_CHARS)
    score: Literal[1, 2, 3, 4, 5]


class ExplanationJSON(BaseModel):
    """One explanation of a score already given (``logprobs`` mode)."""

    explanation: str = Field(max_length=EXPLANATION_CHARS)


def parse_judgement(raw: str | None, schema: type[BaseModel] = JudgementJSON) -> Judgement:
    """Validate one generated JSON judgement; invalid output becomes an ``error``, never a score.

    Example:
        >>> parse_judgement('{"explanation": "Gives 200 mg.", "score": 5}').score
        5
    """
    if raw is None:
        return Judgement(error="generation failed (see log)")
    try:
        parsed = schema.model_validate_json(raw)
    except ValidationError as err:
        snippet = raw if len(raw) <= 80 else raw[:77] + "..."
        return Judgement(error=f"invalid model output ({err.errors()[0]['msg']}): {snippet!r}")
    return Judgement(score=parsed.score, expected=float(parsed.score), explanation=parsed.explanation.strip())


def from_distribution(p: Distribution) -> Judgement:
    """A judgement from the probabilities of "1".."5": the argmax is the score, the mean the expected value."""
    if isinstance(p, str):
        return Judgement(error=p)
    score = max(range(len(p)), key=lambda k: p[k]) + 1
    return Judgement(score=score, expected=float(sum((k + 1) * pk for k, pk in enumerate(p))))


class Judge:
    """Raw judgements of (sample, subgoal) pairs from one engine.

    Args:
        engine: an :class:`~goalcover_hf.engines.base.Engine`, or a function returning one (loaded on first use).
        mode: ``"logprobs"`` (the distribution over the score digits; explanations only through :meth:`explain`)
            or ``"generate"`` (schema-constrained JSON with an explanation and a score, per pair).
        prompt: the score template used unless a call names another.
        max_new_tokens: the longest generated reply.
        batch_size: samples per engine call in ``logprobs`` mode (all their subgoals together), pairs per call in
            ``generate`` mode.
    """

    def __init__(self, engine: Engine | Callable[[], Engine], mode: str = DEFAULT_MODE, prompt: str = DEFAULT_PROMPT,
                 max_new_tokens: int = 96, batch_size: int = 8):
        if mode not in MODES:
            raise GoalcoverError(f"mode must be one of {MODES}, got {mode!r}")
        self._engine = engine
        self.mode, self.prompt = mode, prompt
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size

    @property
    def engine(self) -> Engine:
        """The engine, loaded on first use (a model that cannot load raises here: the user's to fix)."""
        if callable(self._engine) and not isinstance(self._engine, Engine):
            self._engine = self._engine()
        return self._engine

    @property
    def loaded_engine(self) -> Engine | None:
        """The engine if it has been loaded (None: every judgement so far came from the pair cache)."""
        return self._engine if isinstance(self._engine, Engine) else None

    def chat(self, sample: str, subgoal: Subgoal, ask: str, prompt: str | None = None, **values) -> list[dict]:
        """The chat asking ``ask`` about one pair under ``prompt`` (default: this judge's)."""
        return score_chat(load_prompt(prompt or self.prompt), sample, subgoal, ask, **values)

    def judge_texts(self, samples: Sequence[str], subgoals: Sequence[Subgoal],
                    prompt: str | None = None) -> list[list[Judgement]]:
        """Judge every sample against every subgoal; returns ``[sample][subgoal]``.

        In ``logprobs`` mode the judgements carry no explanation; in ``generate`` mode each carries the generated one.
        """
        prompt = prompt or self.prompt
        if self.mode == "logprobs":
            probs = self.distributions(samples, subgoals, "ask_digit", SCORE_CHOICES, prompt=prompt)
            return [[from_distribution(p) for p in row] for row in probs]
        template = load_prompt(prompt)
        schema = VerdictJudgementJSON if "ask_verdict" in template.parts() else JudgementJSON
        pairs = [(i, j) for i in range(len(samples)) for j in range(len(subgoals))]
        results: list[list[Judgement]] = [[Judgement() for _ in subgoals] for _ in samples]
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            chats = [self.chat(samples[i], subgoals[j], "ask_json", prompt) for i, j in chunk]
            raws = self._guarded(lambda: self.engine.generate_json(chats, schema, self.max_new_tokens), "generation",
                                 len(chunk))
            failed = isinstance(raws, str)
            for (i, j), raw in zip(chunk, [None] * len(chunk) if failed else raws):
                results[i][j] = Judgement(error=raws) if failed else parse_judgement(raw, schema)
        return results

    def distributions(self, samples: Sequence[str], subgoals: Sequence[Subgoal], ask: str, choices: Sequence[str],
                      follow: Sequence[dict] = (), prompt: str | None = None) -> list[list[Distribution]]:
        """The probabilities of ``choices`` as the judge's next token after ``ask`` (and the ``follow`` turns),
        renormalized over them, per pair ``[sample][subgoal]``; a pair that could not be scored holds its error."""
        prompt = prompt or self.prompt
        out: list[list[Distribution]] = [[""] * len(subgoals) for _ in samples]
        pairs = [(i, j) for i in range(len(samples)) for j in range(len(subgoals))]
        for start in range(0, len(samples), self.batch_size):
            chunk = [(i, j) for i, j in pairs if start <= i < start + self.batch_size]
            groups = self.groups(chunk, prompt)
            chats = [[self.chat(samples[i], subgoals[j], ask, prompt) + list(follow) for i, j in g] for g in groups]
            probs = self._guarded(lambda: self.engine.choice_probs_shared(chats, choices), "scoring", len(chunk))
            if isinstance(probs, str):
                probs = [[probs] * len(g) for g in groups]
            for g, ps in zip(groups, probs):
                for (i, j), p in zip(g, ps):
                    # None: a request that failed after its retries (a server)
                    out[i][j] = "scoring failed (see log)" if p is None else p
        return out

    def explain(self, samples: Sequence[str], subgoals: Sequence[Subgoal], judged: list[list[Judgement]],
                pairs: Sequence[Pair], prompt: str | None = None) -> None:
        """Add to each judgement of ``pairs`` an explanation of its score (in place; one that fails stays None)."""
        if not pairs:
            return
        prompt = prompt or self.prompt
        for start in range(0, len(pairs), self.batch_size * max(1, len(subgoals))):
            groups = self.groups(pairs[start : start + self.batch_size * max(1, len(subgoals))], prompt)
            chats = [[self.chat(samples[i], subgoals[j], "ask_explanation", prompt, score=judged[i][j].score)
                      for i, j in g] for g in groups]
            raws = self._guarded(lambda: self.engine.generate_json_shared(chats, ExplanationJSON, self.max_new_tokens),
                                 "explanations", sum(map(len, groups)))
            if isinstance(raws, str):  # the scores stand; only the explanations could not be had
                continue
            for g, rs in zip(groups, raws):
                for (i, j), raw in zip(g, rs):
                    try:
                        judged[i][j].explanation = ExplanationJSON.model_validate_json(raw).explanation.strip()
                    except (ValidationError, TypeError) as err:
                        logger.debug("explanation output invalid: %s", err)

    @staticmethod
    def groups(pairs: Sequence[Pair], prompt: str) -> list[list[Pair]]:
        """Pairs grouped by what their chats share after the instructions: the sample when the template puts it
        first (computed once for all its subgoals), else the subgoal."""
        by = 0 if sample_first(load_prompt(prompt)) else 1
        groups: dict[int, list[Pair]] = {}
        for pair in pairs:
            groups.setdefault(pair[by], []).append(pair)
        return list(groups.values())

    def _guarded(self, call: Callable, what: str, n: int):
        """``call()``, or the error text when it fails: one failing batch must not end a long map."""
        self.engine  # noqa: B018 - load first: a model that cannot load is the user's to fix, not a batch error
        try:
            return call()
        except EngineMisconfigured:  # every pair would fail the same way: stop and say why
            raise
        except Exception as err:
            logger.warning("%s failed for a batch of %d pairs: %s: %s", what, n, type(err).__name__, err)
            return f"{what} failed ({type(err).__name__}: {err})"
