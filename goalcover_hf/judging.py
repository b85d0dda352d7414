"""Judging methods that make small judges more useful, layered on any raw judge.

Every function here takes a ``raw`` judge: anything with ``judge_texts(samples, subgoals, prompt=None) ->
[sample][subgoal] Judgement`` that judges with one prompt and no method on top (a :class:`~goalcover_hf.judge.Judge`,
or a caching wrapper around one); ``verdict_first`` in logprobs mode also reads its ``distributions``. Methods change
only the subgoal text or prompt layout the judge sees and the arithmetic on its scores, never the judge itself, so each
is also a Scorer option (``Scorer(..., method=...)``); :class:`MethodJudge` is that option. A method's value is the judgement's
``expected``; methods that take one judgement as it is keep its ``score`` (the argmax digit in logprobs mode), the
others round their value into 1..5. A pair whose underlying judgement failed keeps its ``error`` and gets no score.

Methods (``judge(scorer, samples, subgoals, method=...)``):

- ``"score"``: the scorer's own integer score (argmax digit in logprobs mode, the generated score in generate mode).
- ``"expected"``: the judgement as it is: expected value over the digits (logprobs mode; the generated score in
  generate mode), score the argmax digit.
- ``"no_anchors"``: as ``expected``, with the rubric anchors (``low``/``mid``/``high``) left out of the prompt.
- ``"contrastive"``: ``3 + (v(subgoal) - v(negated subgoal)) / 2``: a judge that says "yes" to everything cancels out.
- ``"consistency"``: mean ``expected`` over three wordings of the subgoal (as written, no anchors, a checklist form).
- ``"verdict_first"``: prompt ``score_verdict_v1``: the judge first answers Yes/No (does the sample demonstrate the
  capability?), then scores. Logprobs mode: the digit distribution is the verdict-weighted mixture
  ``P(Yes) p(digit | Yes said) + P(No) p(digit | No said)`` (total probability over the verdict it would give), whose
  argmax is the score and mean the value; generate mode: JSON ``{verdict, explanation, score}``, value the score.
- ``"subgoal_first"``: prompt ``score_subgoal_first_v1``: the capability is stated before the sample (the default
  layout puts the sample first). The sample can no longer be shared across subgoals: about K times the prompt tokens.

Calibration ("calibrate before use", Zhao et al. 2021), composable with any method: :func:`calibrate` measures per
subgoal the value the judge gives to content-free (or mismatched) samples, which should score 1;
:func:`apply_calibration` shifts every value of that subgoal by the same offset, so a judge's bias toward a digit for
one subgoal cancels out.

Example:
    >>> raw = Scorer(spec, model, mode="logprobs").raw    # a Judge: one prompt, no method, no explanations
    >>> offsets = calibrate(raw, spec.subgoals)
    >>> judged = apply_calibration(judge(raw, texts, spec.subgoals, "expected"), spec.subgoals, offsets)
    >>> Scorer(spec, model, method="expected+cal").judge_texts(texts)   # the same, as a scorer option
"""

from __future__ import annotations

from typing import Callable, Collection, Protocol, Sequence

from .columns import DEFAULT_THRESHOLD, Judgement
from .errors import GoalcoverError
from .judge import DEFAULT_PROMPT, SCORE_CHOICES, Distribution, from_distribution
from .prompts import load_prompt, subgoal_text
from .spec import Subgoal

METHODS = ("score", "expected", "no_anchors", "contrastive", "consistency", "verdict_first", "subgoal_first")
DEFAULT_METHOD = "expected"
# Methods that change the prompt's layout: the template each judges with (every other method uses DEFAULT_PROMPT).
PROMPTS = {"verdict_first": "score_verdict_v1", "subgoal_first": "score_subgoal_first_v1"}
# What a method may be suffixed with: "+cal" (content-free references) anywhere; the benchmark adds "+calx".
CALIBRATIONS = ("cal",)
# Inputs that demonstrate nothing: whatever the judge gives them for a subgoal is its bias for that subgoal.
CONTENT_FREE = ("N/A", "[empty]", "...")
VERDICT_CHOICES = ("Yes", "No")  # one token each in the tokenizers tried (SmolLM2, Qwen2.5)
EXPLAIN = ("sample", "low", "all", "none")  # "sample": scores only here; goalcover_hf.explain picks the pairs


class RawJudge(Protocol):
    """What the methods need of a judge: one prompt's judgements (see :class:`~goalcover_hf.judge.Judge`)."""

    mode: str

    def judge_texts(self, samples: Sequence[str], subgoals: Sequence[Subgoal],
                    prompt: str | None = None) -> list[list[Judgement]]:
        """One prompt's judgements ``[sample][subgoal]``."""

    def distributions(self, samples: Sequence[str], subgoals: Sequence[Subgoal], ask: str, choices: Sequence[str],
                      follow: Sequence[dict] = (), prompt: str | None = None) -> list[list[Distribution]]:
        """Each pair's probabilities of ``choices`` after ``ask``, or the error text."""


def parse_method(method: str, calibrations: Sequence[str] = CALIBRATIONS) -> tuple[str, str]:
    """``"expected+cal"`` -> ``("expected", "cal")``; unknown methods and suffixes are refused with the choices.

    Example:
        >>> parse_method("contrastive")
        ('contrastive', '')
    """
    base, plus, cal = str(method).partition("+")
    if base not in METHODS or (plus and cal not in calibrations):
        suffixes = " or ".join("+" + c for c in calibrations)
        raise GoalcoverError(f"unknown judging method {method!r}; choose from {', '.join(METHODS)}, "
                         f"optionally suffixed {suffixes}")
    return base, cal


def prompt_for(method: str) -> str:
    """The prompt template a method judges with (and explains its scores with)."""
    return PROMPTS.get(parse_method(method, ("cal", "calx"))[0], DEFAULT_PROMPT)


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
    return sub.model_copy(update={"low": "", "mid": "", "high": ""})


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
def _values(raw: RawJudge, samples, subgoals, use_score=False):
    judged = raw.judge_texts(list(samples), list(subgoals))
    return judged, [[_value(j, use_score) for j in row] for row in judged]


def method_subgoals(method: str, sub: Subgoal) -> list[Subgoal]:
    """The wordings of ``sub`` a method shows the judge (the truncation budget must fit the longest)."""
    base = parse_method(method, ("cal", "calx"))[0]
    if base == "no_anchors":
        return [without_anchors(sub)]
    if base == "contrastive":
        return [sub, negate(sub)]
    if base == "consistency":
        return [variant(sub) for variant in VARIANTS]
    return [sub]


def judge(raw: RawJudge, samples: Sequence[str], subgoals: Sequence[Subgoal], method: str = "expected"):
    """Judge every sample against every subgoal with ``method``; returns ``[sample][subgoal]`` judgements."""
    if method not in METHODS:
        raise ValueError(f"unknown judging method {method!r}; choose from {', '.join(METHODS)}")
    samples, subgoals = list(samples), list(subgoals)
    # One judgement per pair, taken as it is (its argmax score, its expected value).
    if method in ("expected", "no_anchors"):
        return raw.judge_texts(samples, [without_anchors(s) for s in subgoals] if method == "no_anchors" else subgoals)
    if method == "verdict_first":
        return _verdict_first(raw, samples, subgoals)
    if method in PROMPTS:
        return raw.judge_texts(samples, subgoals, prompt=PROMPTS[method])
    if method == "score":
        judged, values = _values(raw, samples, subgoals, use_score=True)
        return [[_from_value(v, j) for v, j in zip(vr, jr)] for vr, jr in zip(values, judged)]
    if method == "contrastive":
        judged, pos = _values(raw, samples, subgoals)
        neg_judged, neg = _values(raw, samples, [negate(s) for s in subgoals])
        return [[_from_value(None if p is None or q is None else 3 + (p - q) / 2, j, j.error or n.error)
                 for j, n, p, q in zip(jr, nr, pr, qr)]
                for jr, nr, pr, qr in zip(judged, neg_judged, pos, neg)]
    # consistency: mean over the wordings; any failed wording fails the pair (an average of fewer is another method)
    runs = [_values(raw, samples, [variant(s) for s in subgoals]) for variant in VARIANTS]
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


def _verdict_first(raw: RawJudge, samples: list[str], subgoals: list[Subgoal]) -> list[list[Judgement]]:
    """Generate mode: the template's JSON {verdict, explanation, score}. Logprobs mode: P(verdict), then the digits
    after each verdict said, mixed by total probability: ``P(Yes) p(d | Yes) + P(No) p(d | No)``."""
    prompt = PROMPTS["verdict_first"]
    if getattr(raw, "mode", None) != "logprobs" or not hasattr(raw, "distributions"):
        return raw.judge_texts(samples, subgoals, prompt=prompt)  # a judge that mixes the verdict itself
    follow = load_prompt(prompt).section("ask_score_after_verdict")
    verdicts = raw.distributions(samples, subgoals, "ask_verdict", VERDICT_CHOICES, prompt=prompt)
    branches = [raw.distributions(samples, subgoals, "ask_verdict", SCORE_CHOICES, prompt=prompt,
                                  follow=[{"role": "assistant", "content": v}, {"role": "user", "content": follow}])
                for v in VERDICT_CHOICES]
    out = []
    for i in range(len(samples)):
        row = []
        for j in range(len(subgoals)):
            pv, after = verdicts[i][j], [b[i][j] for b in branches]
            failed = next((p for p in [pv, *after] if isinstance(p, str)), None)
            row.append(from_distribution(failed if failed is not None else
                                         [sum(pv[v] * after[v][d] for v in range(len(pv))) for d in range(5)]))
        out.append(row)
    return out


def fixed_chats(raw, method: str, explain: str, subgoals: Sequence[Subgoal]) -> list[list[dict]]:
    """Every chat ``method`` may ask about a sample, rendered with an empty one: the prompt that the truncation
    budget must leave room for (the method's template and the plain one, each wording, each question)."""
    chats = []
    for prompt in dict.fromkeys((prompt_for(method), DEFAULT_PROMPT)):
        template = load_prompt(prompt)
        for sub in (w for s in subgoals for w in method_subgoals(method, s)):
            if raw.mode == "generate":
                chats.append(raw.chat("", sub, "ask_json", prompt))
            elif "ask_verdict" in template.parts():
                chats.append(raw.chat("", sub, "ask_verdict", prompt) + [
                    {"role": "assistant", "content": VERDICT_CHOICES[0]},
                    {"role": "user", "content": template.section("ask_score_after_verdict")}])
            else:
                chats.append(raw.chat("", sub, "ask_digit", prompt))
            if raw.mode == "logprobs" and explain != "none":
                chats.append(raw.chat("", sub, "ask_explanation", prompt, score=5))
    return chats


# ---- calibration ---------------------------------------------------------------------------------------------------
def calibrate(
    raw: RawJudge,
    subgoals: Sequence[Subgoal],
    method: str = "expected",
    samples: Sequence[str] = CONTENT_FREE,
    floor: float = 1.0,
) -> dict[str, float]:
    """Per-subgoal offsets: the mean value ``method`` gives to ``samples`` (content-free by default; or samples known
    not to show the subgoal, e.g. from another domain), minus ``floor``, the value such samples should get.

    Example:
        >>> calibrate(raw, spec.subgoals)
        {'states_dose': 1.8, 'warns_side_effects': 0.4}
    """
    judged = judge(raw, samples, subgoals, method)
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


class Calibration:
    """``+cal`` offsets for a judge, measured once per subgoal wording and kept (a callable giving them by id).

    Args:
        judge: judges content-free samples with the method's base (anything with ``judge_texts``).
    """

    def __init__(self, judge):
        self.judge, self.offsets = judge, {}

    def by_text(self, subgoals: Sequence[Subgoal]) -> dict[str, float]:
        """Offsets by :func:`~goalcover_hf.prompts.subgoal_text`, measuring those not yet known."""
        missing = list({subgoal_text(s): s for s in subgoals if subgoal_text(s) not in self.offsets}.values())
        if missing:
            # offsets come back by id; ids need not be unique among reworded subgoals, so number them here
            numbered = [s.model_copy(update={"id": f"s{k}"}) for k, s in enumerate(missing)]
            measured = calibrate(self.judge, numbered, "expected")
            self.offsets.update({subgoal_text(s): measured[f"s{k}"] for k, s in enumerate(missing)})
        return {subgoal_text(s): self.offsets[subgoal_text(s)] for s in subgoals}

    def __call__(self, subgoals: Sequence[Subgoal]) -> dict[str, float]:
        offsets = self.by_text(subgoals)
        return {s.id: offsets[subgoal_text(s)] for s in subgoals}


# ---- a method as a judge ---------------------------------------------------------------------------------------------
class MethodJudge:
    """A judging method over a raw judge: the method's arithmetic, its calibration, then the explanations its scores
    call for (``logprobs`` mode). This is what a :class:`~goalcover_hf.scorer.Scorer` judges with.

    Args:
        raw: the raw judge (:class:`~goalcover_hf.judge.Judge`).
        method: a :data:`METHODS` name, optionally suffixed ``"+cal"``.
        explain: in ``logprobs`` mode, which pairs get an explanation here: ``"low"`` (score below ``threshold``),
            ``"all"``, or none (``"none"``, and ``"sample"``, whose budgeted draw :mod:`goalcover_hf.explain` makes).
        threshold: the score at which a sample supports a subgoal.
        offsets: for ``+cal``: a function giving each subgoal's calibration offset by id (see :func:`calibrate`).
    """

    def __init__(self, raw, method: str = DEFAULT_METHOD, explain: str = "none", threshold: int = DEFAULT_THRESHOLD,
                 offsets: Callable[[Sequence[Subgoal]], dict[str, float]] | None = None):
        if explain not in EXPLAIN:
            raise GoalcoverError(f"explain must be one of {EXPLAIN}, got {explain!r}")
        self.base, self.cal = parse_method(method)
        if self.cal and offsets is None:
            raise ValueError(f"method {method!r} needs calibration offsets")
        self.raw, self.method, self.explain, self.threshold, self.offsets = raw, method, explain, threshold, offsets

    def judge_texts(self, samples: Sequence[str], subgoals: Sequence[Subgoal],
                    explain: Collection[tuple[int, int]] | None = None) -> list[list[Judgement]]:
        """Judge every sample against every subgoal; returns ``[sample][subgoal]``.

        ``explain``: the (sample, subgoal) positions to explain, instead of those the ``explain`` setting picks.
        """
        subgoals = list(subgoals)
        judged = judge(self.raw, samples, subgoals, self.base)
        if self.cal:
            judged = apply_calibration(judged, subgoals, self.offsets(subgoals))
        wanted = [(i, j) for i, row in enumerate(judged) for j, one in enumerate(row)
                  if self.owes_explanation(one, None if explain is None else (i, j) in explain)]
        self.add_explanations(samples, subgoals, judged, wanted)
        return judged

    def add_explanations(self, samples: Sequence[str], subgoals: Sequence[Subgoal], judged: list[list[Judgement]],
                         pairs: Sequence[tuple[int, int]]) -> None:
        """Explain the scores of ``pairs`` of ``judged`` (in place), with the method's template."""
        if pairs:
            self.raw.explain(list(samples), list(subgoals), judged, pairs, prompt=prompt_for(self.method))

    def wants_explanation(self, j: Judgement) -> bool:
        """Whether this method's settings give a judgement an explanation (generate mode: always, with its score)."""
        if self.raw.mode != "logprobs":
            return True
        return j.score is not None and (self.explain == "all" or (self.explain == "low" and j.score < self.threshold))

    def owes_explanation(self, j: Judgement, asked: bool | None = None) -> bool:
        """Whether a scored judgement still lacks the explanation this method's settings ask for, or, with ``asked``,
        the one a caller's own choice of pairs asks for."""
        wanted = self.wants_explanation(j) if asked is None else asked and j.score is not None
        return j.explanation is None and self.raw.mode == "logprobs" and wanted
