"""Checks on subgoals: atomic, independently evaluable, no overlap, and goal coverage.

Cheap heuristics always run. The overlap check embeds subgoals with the packaged all-MiniLM-L6-v2 model. The model
checks (a schema'd yes/no + reason per subgoal, and one question about what the subgoals leave out) run when an
engine is given. Every check returns :class:`Finding` objects; a subgoal with no finding passed.

Example:
    >>> from goalcover_hf.checks import Checker
    >>> findings = Checker(model=None).run(spec)  # heuristics and overlap only
    >>> print(format_findings(findings))
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Callable, Literal, Sequence

from pydantic import BaseModel, Field, ValidationError

from .embeddings import embed
from .logging import get_logger
from .prompts import load_prompt
from .spec import GoalSpec, Subgoal

logger = get_logger(__name__)

CHECKS = ("atomic", "evaluable", "overlap", "coverage")
DEFAULT_OVERLAP = 0.75  # cosine; paraphrased subgoals measured ~0.89, related-but-distinct ones 0.2-0.65
SPLIT = "split it into one subgoal per requirement"
ONE_SAMPLE = "say what ONE sample must show, or drop it"


@dataclass(frozen=True)
class Finding:
    """One thing a check found.

    Attributes:
        check (``str``): one of :data:`CHECKS`.
        message (``str``): what was found.
        subgoals (``tuple[str, ...]``): the ids concerned (empty for the goal as a whole).
        source (``str``): ``"heuristic"``, ``"model"`` or ``"embedding"``.
        suggestion (``str``): what to do about it.
        similarity (``float``, *optional*): for an overlap, the cosine similarity of the pair.
    """

    check: str
    message: str
    subgoals: tuple[str, ...] = ()
    source: str = "heuristic"
    suggestion: str = ""
    similarity: float | None = None

    def to_dict(self) -> dict:
        """The finding as a spec file records it.

        Returns:
            ``dict``: the fields that are set.
        """
        data = asdict(self)
        data["subgoals"] = list(self.subgoals)
        return {k: v for k, v in data.items() if v not in ("", None)}


# ---- atomic: heuristic -------------------------------------------------------------------------------------------
# Verbs that start a requirement ("states", "warns", ...): "and" followed by one joins two requirements.
_VERBS = {
    "acknowledge", "adapt", "add", "address", "adjust", "advise", "answer", "apply", "ask", "assess", "avoid",
    "calculate", "check", "cite", "clarify", "classify", "compare", "compute", "confirm", "convert", "correct",
    "define", "describe", "detect", "distinguish", "document", "encourage", "ensure", "estimate", "explain",
    "extract", "flag", "follow", "format", "give", "handle", "highlight", "identify", "include", "indicate", "infer",
    "interpret", "keep", "link", "list", "maintain", "mention", "name", "note", "offer", "outline", "point",
    "preserve", "prioritize", "produce", "provide", "quote", "rank", "recommend", "refer", "refuse", "reference",
    "report", "respect", "respond", "return", "show", "solve", "specify", "state", "structure", "suggest",
    "summarize", "support", "tell", "test", "translate", "use", "validate", "verify", "warn", "write",
}
_CONNECTORS = re.compile(r"\b(as well as|along with|in addition to|while also|and also|and then|and/or)\b", re.I)


def _is_verb(word: str) -> bool:
    word = word.lower()
    forms = {word, word[:-1] if word.endswith("s") else "", word[:-2] if word.endswith("es") else "",
             word[:-3] + "y" if word.endswith("ies") else ""}
    return bool(forms & _VERBS)


def atomic_heuristic(sub: Subgoal) -> list[Finding]:
    """Flag a subgoal whose text joins two requirements ("states the dose and warns about risks").

    Args:
        sub (:class:`Subgoal`): the subgoal.

    Returns:
        ``list[Finding]``: ``atomic`` findings, one per sign found.

    Example:
        >>> atomic_heuristic(Subgoal(id="x", name="Dose and risks", description="States the dose and warns."))[0].check
        'atomic'
    """
    found = []
    name_join = re.search(r"\s(and|&|\+|/)\s", sub.name)
    if name_join:
        found.append(f"the name joins two things with {name_join.group(1)!r}")
    desc = sub.description
    for match in re.finditer(r"\b(and|or),?\s+(?:also\s+|then\s+)?([A-Za-z]+)", desc):
        if _is_verb(match.group(2)):
            found.append(f"the description joins two requirements: {match.group(0)!r}")
            break
    connector = _CONNECTORS.search(desc)
    if connector:
        found.append(f"the description adds a second requirement with {connector.group(1)!r}")
    sentences = [s for s in re.split(r"(?<=[.!?;])\s+(?=[A-Z])", desc.strip()) if s]
    if len(sentences) > 1:
        found.append(f"the description has {len(sentences)} sentences; one capability needs one")
    return [Finding("atomic", msg, (sub.id,), "heuristic", SPLIT) for msg in found]


# ---- independently evaluable: heuristic --------------------------------------------------------------------------
_SAMPLES = r"(?:samples|examples|rows|records|conversations|documents|questions|answers|data|topics)"
# Kept narrow on purpose: "frequency", "balanced diet" or "a variety of options" can describe one sample.
_DATASET_LEVEL = [
    (r"\b(?:the |training |whole |entire )*(?:dataset|data set|corpus|training data)\b", "speaks of the dataset"),
    (r"\b(?:is |are |be |stay |kept )?(?:im|un)?balanced (?:across|between|among|over)\b|\bclass (?:im)?balance\b",
     "balance is a property of many samples"),
    (r"\bdivers(?:e|ity)\b|\bwide range of\b", "diversity is a property of many samples"),
    (rf"\b(?:distribution|proportion|percentage|share|majority|minority) of (?:the )?{_SAMPLES}\b|\d+\s?% of\b",
     "a share or distribution needs many samples"),
    (rf"\b(?:across|between|among) (?:the |all |different |many |multiple )?{_SAMPLES}\b",
     "compares samples with each other"),
    (rf"\b(?:all|most|many|several|enough|some|few) (?:of the )?{_SAMPLES}\b", "counts samples"),
    (r"\b(?:duplicates?|deduplicated|near-duplicates?)\b", "duplication is a property of many samples"),
]


def evaluable_heuristic(sub: Subgoal) -> list[Finding]:
    """Flag a subgoal that describes the dataset ("the dataset is balanced") rather than one sample.

    Args:
        sub (:class:`Subgoal`): the subgoal.

    Returns:
        ``list[Finding]``: at most one ``evaluable`` finding.

    Example:
        >>> evaluable_heuristic(Subgoal(id="x", name="Balanced", description="The dataset is balanced."))[0].check
        'evaluable'
    """
    text = f"{sub.name}. {sub.description}"
    for pattern, why in _DATASET_LEVEL:
        match = re.search(pattern, text, re.I)
        if match:
            return [Finding("evaluable", f"{why} ({match.group(0).strip()!r}); a judge sees one sample at a time",
                            (sub.id,), "heuristic", ONE_SAMPLE)]
    return []


# ---- overlap: embeddings -----------------------------------------------------------------------------------------
def _overlap_text(sub: Subgoal) -> str:
    return f"{sub.name}: {sub.description}"


def overlap_findings(spec: GoalSpec, threshold: float = DEFAULT_OVERLAP,
                     embed_fn: Callable[[Sequence[str]], "object"] = embed) -> list[Finding]:
    """Pairs of subgoals whose name+description embeddings have cosine similarity >= ``threshold``.

    Args:
        spec (:class:`GoalSpec`): the subgoals to compare.
        threshold (``float``, defaults to ``DEFAULT_OVERLAP``): the cosine similarity that counts as overlap.
        embed_fn (``Callable``, defaults to :func:`~goalcover_hf.embeddings.embed`): texts -> unit-length vectors.

    Returns:
        ``list[Finding]``: one ``overlap`` finding per pair, with its similarity.

    Example:
        >>> [f.subgoals for f in overlap_findings(spec)]
        [('states_dose', 'gives_dosage')]
    """
    subs = spec.subgoals
    if len(subs) < 2:
        return []
    vectors = embed_fn([_overlap_text(s) for s in subs])
    sims = vectors @ vectors.T
    found = []
    for i in range(len(subs)):
        for j in range(i + 1, len(subs)):
            if sims[i][j] >= threshold:
                cos = round(float(sims[i][j]), 3)
                found.append(Finding(
                    "overlap", f"'{subs[i].name}' and '{subs[j].name}' are near-duplicates (cosine {cos:.2f})",
                    (subs[i].id, subs[j].id), "embedding", "merge them, or make the descriptions distinct", cos))
    return found


# ---- model checks ------------------------------------------------------------------------------------------------
class SubgoalReview(BaseModel):
    """The schema of the model's answer about one subgoal: a short reason before each yes/no verdict.

    Args:
        atomic_reason (``str``), atomic (``"yes"`` or ``"no"``): is it one capability?
        evaluable_reason (``str``), evaluable (``"yes"`` or ``"no"``): can one sample show it?
    """

    atomic_reason: str = Field(min_length=2, max_length=80)
    atomic: Literal["yes", "no"]
    evaluable_reason: str = Field(min_length=2, max_length=80)
    evaluable: Literal["yes", "no"]


class CoverageReview(BaseModel):
    """The schema of the model's answer about what the subgoals leave out of the goal.

    Args:
        missing (``str``): the missing part, in a few words.
        covered (``"yes"`` or ``"no"``): whether the subgoals cover the whole goal anyway.
    """

    missing: str = Field(min_length=2, max_length=100)
    covered: Literal["yes", "no"]


def model_subgoal_findings(goal: str, subgoals: Sequence[Subgoal], engine, max_new_tokens: int = 120) -> list[Finding]:
    """Ask the model, in one batch, whether each subgoal is atomic and judgeable from one sample.

    Args:
        goal (``str``): the goal, shown as context.
        subgoals (``Sequence[Subgoal]``): the subgoals to ask about.
        engine (:class:`~goalcover_hf.engines.Engine`): the model.
        max_new_tokens (``int``, defaults to 120): the answer's budget.

    Returns:
        ``list[Finding]``: ``atomic`` and ``evaluable`` findings from the model (one says so when its answer was
        not valid).
    """
    if not subgoals:
        return []
    prompt = load_prompt("checks_v1")
    chats = [prompt.chat("subgoal", goal=goal, name=s.name, description=s.description) for s in subgoals]
    raws = engine.generate_json(chats, SubgoalReview, max_new_tokens)
    found = []
    for sub, raw in zip(subgoals, raws):
        try:
            review = SubgoalReview.model_validate_json(raw)
        except (ValidationError, TypeError):
            found.append(Finding("atomic", "the model's check gave no valid answer", (sub.id,), "model"))
            continue
        if review.atomic == "no":
            found.append(Finding("atomic", f"model: not one capability ({review.atomic_reason.strip()})",
                                 (sub.id,), "model", SPLIT))
        if review.evaluable == "no":
            found.append(Finding("evaluable", f"model: not judgeable from one sample ({review.evaluable_reason.strip()})",
                                 (sub.id,), "model", ONE_SAMPLE))
    return found


def model_coverage_finding(spec: GoalSpec, engine, max_new_tokens: int = 80) -> list[Finding]:
    """Ask the model which part of the goal no subgoal covers; a suggestion, shown as such.

    Args:
        spec (:class:`GoalSpec`): the goal and its subgoals.
        engine (:class:`~goalcover_hf.engines.Engine`): the model.
        max_new_tokens (``int``, defaults to 80): the answer's budget.

    Returns:
        ``list[Finding]``: at most one ``coverage`` finding.
    """
    chat = load_prompt("checks_v1").chat("coverage", goal=spec.goal, subgoals=spec.subgoals)
    raw = engine.generate_json([chat], CoverageReview, max_new_tokens)[0]
    try:
        review = CoverageReview.model_validate_json(raw)
    except (ValidationError, TypeError):
        return [Finding("coverage", "the model's coverage check gave no valid answer", (), "model")]
    if review.covered == "yes":
        return []
    return [Finding("coverage", f"model suggests a missing part of the goal: {review.missing.strip()}", (), "model",
                    "add a subgoal for it if you agree")]


# ---- running them all --------------------------------------------------------------------------------------------
class Checker:
    """Runs every check on a spec, remembering model answers so an edit only re-asks about what changed.

    Args:
        model: the model for the model checks (``"embedded"``, an HF id, a folder, a .gguf), an already loaded
            :class:`~goalcover_hf.engines.Engine`, or None to run only the heuristic and embedding checks.
        overlap_threshold: cosine similarity at which two subgoals are flagged as overlapping.
        embed_fn: texts -> unit-length vectors, for the overlap check (default: the packaged MiniLM).

    Example:
        >>> checker = Checker(model="embedded")
        >>> for f in checker.run(spec): print(f.check, f.subgoals, f.message)
    """

    def __init__(self, model=None, overlap_threshold: float = DEFAULT_OVERLAP, embed_fn=embed):
        self.model = model
        self.overlap_threshold = overlap_threshold
        self.embed_fn = embed_fn
        self._sub_cache: dict[tuple, list[Finding]] = {}
        self._coverage_cache: dict[tuple, list[Finding]] = {}

    @property
    def engine(self):
        """The engine of the model checks (loaded on first use), or ``None`` when they are off."""
        if self.model is None or not isinstance(self.model, str):
            return self.model
        from .engines import get_engine

        return get_engine(self.model)

    @property
    def model_identity(self) -> str | None:
        """The identity of the checks' model (without loading it), or ``None``."""
        engine = self.model
        if isinstance(engine, str):
            from .models import resolve_model

            return resolve_model(engine).identity
        return getattr(engine, "identity", None)

    def run(self, spec: GoalSpec) -> list[Finding]:
        """Run every check on a spec.

        Args:
            spec (:class:`GoalSpec`): the spec.

        Returns:
            ``list[Finding]``: in subgoal order, goal-level findings last.
        """
        findings = []
        for sub in spec.subgoals:
            findings += atomic_heuristic(sub) + evaluable_heuristic(sub)
        findings += overlap_findings(spec, self.overlap_threshold, self.embed_fn)
        if self.model is not None:
            findings += self._model_findings(spec)
        order = {s.id: k for k, s in enumerate(spec.subgoals)}
        return sorted(findings, key=lambda f: (order.get(f.subgoals[0], len(order)) if f.subgoals else len(order),
                                               CHECKS.index(f.check)))

    def _model_findings(self, spec: GoalSpec) -> list[Finding]:
        # Keyed by the text the model reads: ids and anchors do not change its answer.
        key = lambda s: (spec.goal, s.name, s.description)  # noqa: E731
        todo = [s for s in spec.subgoals if key(s) not in self._sub_cache]
        if todo:
            new = model_subgoal_findings(spec.goal, todo, self.engine)
            for sub in todo:
                self._sub_cache[key(sub)] = [f for f in new if f.subgoals == (sub.id,)]
        findings = []
        for sub in spec.subgoals:  # re-label cached findings with the subgoal's current id
            findings += [replace(f, subgoals=(sub.id,)) for f in self._sub_cache[key(sub)]]
        cover_key = (spec.goal, tuple((s.name, s.description) for s in spec.subgoals))
        if cover_key not in self._coverage_cache:
            self._coverage_cache[cover_key] = model_coverage_finding(spec, self.engine)
        return findings + self._coverage_cache[cover_key]

    def meta(self, findings: Sequence[Finding]) -> dict:
        """What a saved spec records about its checks (``spec.meta["checks"]``).

        Args:
            findings (``Sequence[Finding]``): from :meth:`run`.

        Returns:
            ``dict``: the checks that ran, the model, the overlap threshold and the findings.
        """
        return {
            "ran": list(CHECKS) if self.model is not None else ["atomic", "evaluable", "overlap"],
            "model": self.model_identity,
            "overlap_threshold": self.overlap_threshold,
            "findings": [f.to_dict() for f in findings],
        }


def with_findings(spec: GoalSpec, checker: Checker, findings: Sequence[Finding] | None = None) -> GoalSpec:
    """A copy of ``spec`` whose ``meta["checks"]`` records the findings.

    Args:
        spec (:class:`GoalSpec`): the spec.
        checker (:class:`Checker`): the checker (it runs now when ``findings`` is not given).
        findings (``Sequence[Finding]``, *optional*): findings already had for this spec.

    Returns:
        :class:`GoalSpec`
    """
    findings = checker.run(spec) if findings is None else findings
    return spec.model_copy(update={"meta": {**spec.meta, "checks": checker.meta(findings)}})


def format_findings(findings: Sequence[Finding], indent: str = "      ",
                    command: Callable[[Finding], str] | None = None) -> str:
    """Findings as ``! check: message -> suggestion (command)`` lines.

    Args:
        findings (``Sequence[Finding]``): the findings.
        indent (``str``): put before each line.
        command (``Callable[[Finding], str]``, *optional*): the session command that acts on a finding.

    Returns:
        ``str``
    """
    lines = []
    for f in findings:
        tip = f" -> {f.suggestion}" if f.suggestion else ""
        cmd = command(f) if command and f.suggestion else ""
        lines.append(f"{indent}! {f.check}: {f.message}{tip}{f' ({cmd})' if cmd else ''}")
    return "\n".join(lines)
