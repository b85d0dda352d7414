"""Judging methods that make small judges more useful, layered on any scorer's ``judge_texts``.

Every function here takes a ``scorer``: anything with ``judge_texts(samples, subgoals) -> [sample][subgoal]
Judgement`` (a :class:`~goalcover_hf.scorer.Scorer`, or a caching wrapper around one). Methods change only the
subgoal text the scorer sees and the arithmetic on its scores, never the scorer itself, so any of them can become a
Scorer option. Each returns judgements whose ``expected`` is the method's value and whose ``score`` is that value
rounded into 1..5; a pair whose underlying judgement failed keeps its ``error`` and gets no score.

Methods (``judge(scorer, samples, subgoals, method=...)``):

- ``"score"``: the scorer's own integer score (argmax digit in logprobs mode, the generated score in generate mode).
- ``"expected"``: the scorer's expected value over the digits (logprobs mode; equals the score in generate mode).
- ``"no_anchors"``: as ``expected``, with the rubric anchors (``low``/``high``) left out of the prompt.
- ``"contrastive"``: ``3 + (v(subgoal) - v(negated subgoal)) / 2``: a judge that says "yes" to everything cancels out.
- ``"consistency"``: mean ``expected`` over three wordings of the subgoal (as written, no anchors, a checklist form).

Calibration ("calibrate before use", Zhao et al. 2021), composable with any method: :func:`calibrate` measures per
subgoal the value the judge gives to content-free (or mismatched) samples, which should score 1;
:func:`apply_calibration` shifts every value of that subgoal by the same offset, so a judge's bias toward a digit for
one subgoal cancels out.

Example:
    >>> scorer = Scorer(spec, model, mode="logprobs", explain="none")
    >>> offsets = calibrate(scorer, spec.subgoals)
    >>> judged = apply_calibration(judge(scorer, texts, spec.subgoals, "expected"), spec.subgoals, offsets)
"""

from __future__ import annotations

from typing import Protocol, Sequence

from .scorer import Judgement
from .spec import Subgoal

METHODS = ("score", "expected", "no_anchors", "contrastive", "consistency")
# Inputs that demonstrate nothing: whatever the judge gives them for a subgoal is its bias for that subgoal.
CONTENT_FREE = ("N/A", "[empty]", "...")


class JudgeTexts(Protocol):
    def judge_texts(self, samples: Sequence[str], subgoals: Sequence[Subgoal] | None = None) -> list[list[Judgement]]:
        ...


def to_score(value: float) -> int:
    """Round a 1..5 value to the nearest integer score (halves up), clipped to 1..5."""
    return max(1, min(5, int(value + 0.5)))


def _from_value(value: float | None, base: Judgement, error: str | None = None) -> Judgement:
    if value is None or error:
        return Judgement(error=error or base.error or "no score")
    return Judgement(score=to_score(value), expected=float(value), explanation=base.explanation)


def _value(j: Judgement, use_score: bool = False) -> float | None:
    if j.error or j.score is None:
        return None
    return float(j.score) if use_score or j.expected is None else float(j.expected)


# ---- subgoal rewordings ------------------------------------------------------------------------------------------
def without_anchors(sub: Subgoal) -> Subgoal:
    """The subgoal with its rubric anchors removed."""
    return sub.model_copy(update={"low": "", "high": ""})


def negate(sub: Subgoal) -> Subgoal:
    """The opposite capability: a sample that fully lacks ``sub`` scores 5. Anchors are swapped."""
    return Subgoal(
        id=sub.id,
        name=f"Lacks: {sub.name}",
        description=f"The sample does NOT do this: {sub.description}",
        low=sub.high and f"The sample does this: {sub.high}",
        high=sub.low,
    )


def checklist(sub: Subgoal) -> Subgoal:
    """The subgoal reworded as a strict yes/no check, without anchors."""
    return Subgoal(
        id=sub.id,
        name=f"Check: {sub.name}",
        description=f"Is this true of the sample: {sub.description} Score 5 if clearly true, 1 if clearly false.",
    )


VARIANTS = (lambda s: s, without_anchors, checklist)


# ---- methods -------------------------------------------------------------------------------------------------------
def _values(scorer: JudgeTexts, samples, subgoals, use_score=False):
    judged = scorer.judge_texts(list(samples), list(subgoals))
    return judged, [[_value(j, use_score) for j in row] for row in judged]


def judge(scorer: JudgeTexts, samples: Sequence[str], subgoals: Sequence[Subgoal], method: str = "expected"):
    """Judge every sample against every subgoal with ``method``; returns ``[sample][subgoal]`` judgements."""
    if method not in METHODS:
        raise ValueError(f"unknown judging method {method!r}; choose from {', '.join(METHODS)}")
    subgoals = list(subgoals)
    if method in ("score", "expected", "no_anchors"):
        subs = [without_anchors(s) for s in subgoals] if method == "no_anchors" else subgoals
        judged, values = _values(scorer, samples, subs, use_score=method == "score")
        return [[_from_value(v, j) for v, j in zip(vr, jr)] for vr, jr in zip(values, judged)]
    if method == "contrastive":
        judged, pos = _values(scorer, samples, subgoals)
        neg_judged, neg = _values(scorer, samples, [negate(s) for s in subgoals])
        out = []
        for jr, nr, pr, qr in zip(judged, neg_judged, pos, neg):
            out.append([
                _from_value(None if p is None or q is None else 3 + (p - q) / 2, j, j.error or n.error)
                for j, n, p, q in zip(jr, nr, pr, qr)
            ])
        return out
    # consistency: mean over the wordings; any failed wording fails the pair (an average of fewer is another method)
    runs = [_values(scorer, samples, [variant(s) for s in subgoals]) for variant in VARIANTS]
    out = []
    for i in range(len(samples)):
        row = []
        for k in range(len(subgoals)):
            js = [judged[i][k] for judged, _ in runs]
            vs = [values[i][k] for _, values in runs]
            error = next((j.error or "no score" for j, v in zip(js, vs) if v is None), None)
            row.append(_from_value(None if error else sum(vs) / len(vs), js[0], error))
        out.append(row)
    return out


# ---- calibration ---------------------------------------------------------------------------------------------------
def calibrate(
    scorer: JudgeTexts,
    subgoals: Sequence[Subgoal],
    method: str = "expected",
    samples: Sequence[str] = CONTENT_FREE,
    floor: float = 1.0,
) -> dict[str, float]:
    """Per-subgoal offsets: the mean value ``method`` gives to ``samples`` (content-free by default; or samples known
    not to show the subgoal, e.g. from another domain), minus ``floor``, the value such samples should get.

    Example:
        >>> calibrate(scorer, spec.subgoals)
        {'states_dose': 1.8, 'warns_side_effects': 0.4}
    """
    judged = judge(scorer, samples, subgoals, method)
    offsets = {}
    for k, sub in enumerate(subgoals):
        values = [row[k].expected for row in judged if row[k].error is None]
        if not values:
            raise RuntimeError(f"calibration failed for subgoal {sub.id!r}: no reference sample got a score")
        offsets[sub.id] = sum(values) / len(values) - floor
    return offsets


def apply_calibration(
    judgements: list[list[Judgement]], subgoals: Sequence[Subgoal], offsets: dict[str, float]
) -> list[list[Judgement]]:
    """Subtract each subgoal's offset from its values, clipped to 1..5 (failed pairs stay failed)."""
    missing = [s.id for s in subgoals if s.id not in offsets]
    if missing:
        raise KeyError(f"no calibration offset for subgoal(s) {', '.join(missing)}; run calibrate() on them")
    out = []
    for row in judgements:
        new = []
        for j, sub in zip(row, subgoals):
            if j.error or j.expected is None:
                new.append(j)
            else:
                value = max(1.0, min(5.0, j.expected - offsets[sub.id]))
                new.append(Judgement(score=to_score(value), expected=value, explanation=j.explanation))
        out.append(new)
    return out
