"""Gaps: subgoals whose support falls short of a target, and the missing capabilities behind them.

For every subgoal short of the target, the explanations of its low-scoring pairs (score <= ``low_score``) are
embedded with all-MiniLM-L6-v2 and clustered (agglomerative, average linkage, cosine distance cut at ``distance``:
deterministic, no random state), so that many rows saying the same thing become one theme. A model names each
theme (Outlines schema: title, one sentence, subgoal id); every theme keeps the ids of all its rows and quotes its
most central explanations. A subgoal is a gap when its coverage interval lies below the target (the report's
decision: see :mod:`goalcover_hf.coverage`); a subgoal with no scored row is no evidence, never a gap.

Gaps are written to ``gaps.json`` by :mod:`goalcover_hf.gaps_file` (schema ``goalcover.gaps``)::

    {"schema": "goalcover.gaps", "schema_version": 1, "goal", "spec_hash", "judge", "namer", "embedding_model",
     "settings": {"threshold", "low_score", "target": {"min_fraction", "min_samples"}, "distance", "min_theme",
                  "max_themes"},
     "gaps": [...]}  # Gap.to_dict() each (its Theme objects as dicts), largest relative shortfall first

``id``/``row_ids``/``unclustered`` hold the dataset's ``id`` column (row positions when it has none);
``row``/``rows``/``unclustered_rows`` hold row positions in the annotated dataset.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Literal, Sequence

from pydantic import BaseModel, Field, ValidationError, create_model

from .columns import score_columns
from .coverage import CoverageReport, SubgoalCoverage, Target, interval_text, iter_low
from .embeddings import DEFAULT_DISTANCE, central_order, cluster_vectors, embed
from .logging import get_logger
from .prompts import load_prompt
from .spec import GoalSpec

logger = get_logger(__name__)

DEFAULT_MIN_THEME = 2  # rows a cluster needs to become a theme; smaller ones are listed as unclustered
DEFAULT_MAX_THEMES = 5  # themes kept (and named) per subgoal, largest first
QUOTES = 3
TITLE_CHARS = 60
DESCRIPTION_CHARS = 160
UNNAMED = "representative explanation"


@dataclass
class Theme:
    """One cluster of similar low-score explanations, named as a missing capability.

    Attributes:
        title (``str``), description (``str``): the missing capability, as the naming model put it.
        named_by (``str``): the naming model's identity, or ``UNNAMED`` when the title is the most central
            explanation.
        named_subgoal (``str`` or ``None``): the subgoal id the naming model chose (``None`` when not named).
        size (``int``): rows in the cluster.
        row_ids (``list``): their ``id`` column (row positions when the dataset has none).
        rows (``list[int]``): their row positions in the annotated dataset, in the order of ``row_ids``.
        quotes (``list[dict]``): the most central explanations: ``{"id", "row", "score", "explanation"}``.
    """

    title: str
    description: str
    named_by: str
    named_subgoal: str | None
    size: int
    row_ids: list[Any]
    rows: list[int]
    quotes: list[dict[str, Any]]


@dataclass
class Gap:
    """A subgoal short of its target, with the themes found in its low-score explanations.

    Attributes:
        subgoal (``str``), name (``str``): the subgoal.
        coverage (``float``), support (``int``), scored (``int``): as in its :class:`SubgoalCoverage`.
        low, high (``float``), method (``str``), labels (``int``): the coverage's interval, what it rests on
            (``"judge"`` or ``"calibrated"``) and the human labels behind it.
        required (``int``), shortfall (``int``): the supporting scored rows its :class:`Target` asks for, and how
            many are missing (from the calibrated estimate when there is one).
        rank (``int``): 1 for the largest shortfall relative to ``required``.
        low_pairs (``int``), unexplained (``int``): pairs at or below the low score; those without an explanation.
        themes (``list[Theme]``): largest first.
        unclustered (``list``), unclustered_rows (``list[int]``): ids and positions of explained low pairs in no
            theme.
        evidence (``list[dict]``): the lowest-scoring rows: ``{"id", "row", "score", "expected", "explanation"}``.
    """

    subgoal: str
    name: str
    coverage: float
    support: int
    scored: int
    low: float | None = None
    high: float | None = None
    method: str = "judge"
    labels: int = 0
    required: int = 1
    shortfall: int = 0
    rank: int = 0
    low_pairs: int = 0
    unexplained: int = 0
    themes: list[Theme] = field(default_factory=list)
    unclustered: list[Any] = field(default_factory=list)
    unclustered_rows: list[int] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The gap as plain data (one entry of ``gaps.json``'s ``gaps``).

        Returns:
            ``dict[str, Any]``
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Gap":
        """Read back :meth:`to_dict`.

        Args:
            data (``dict[str, Any]``): one entry of ``gaps.json``'s ``gaps``.

        Returns:
            :class:`Gap`
        """
        data = dict(data)
        data["themes"] = [Theme(**t) for t in data.get("themes", [])]
        return cls(**data)


# ---- naming -------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=16)
def naming_schema(subgoal_ids: tuple[str, ...]) -> type[BaseModel]:
    """The Outlines/pydantic schema of a theme's name (cached per spec, so the engine compiles it once).

    Args:
        subgoal_ids (``tuple[str, ...]``): the spec's ids, the only values its ``subgoal`` field takes.

    Returns:
        ``type[BaseModel]``: fields ``title``, ``description`` and ``subgoal``.
    """
    return create_model(
        "GapName",
        # room past TITLE_CHARS, so that a long name ends where the model ended it and is then cut between words
        title=(str, Field(min_length=3, max_length=2 * TITLE_CHARS)),
        description=(str, Field(min_length=3, max_length=DESCRIPTION_CHARS)),
        subgoal=(Literal[subgoal_ids], ...),  # type: ignore[valid-type]
    )


def name_themes(engine, spec: GoalSpec, requests: Sequence[tuple[str, Sequence[str]]],
                batch_size: int = 8) -> list[BaseModel | None]:
    """Ask a model to name clusters of explanations; a failed batch is logged, never raised.

    Args:
        engine (:class:`~goalcover_hf.engines.Engine`): the naming model.
        spec (:class:`GoalSpec`): the spec, shown as context.
        requests (``Sequence[tuple[str, Sequence[str]]]``): one ``(subgoal_id, quotes)`` per cluster.
        batch_size (``int``, defaults to 8): chats per call to the engine.

    Returns:
        ``list``: per request, the validated name (``title``, ``description``, ``subgoal``), or ``None`` where the
        output was not valid.
    """
    schema = naming_schema(tuple(s.id for s in spec.subgoals))
    out: list[BaseModel | None] = []
    for start in range(0, len(requests), batch_size):
        chunk = requests[start:start + batch_size]
        chats = [load_prompt("gaps_v1").chat("user", goal=spec.goal, subgoals=spec.subgoals,
                                             subgoal=spec.subgoal(sid), quotes=quotes) for sid, quotes in chunk]
        try:
            raws = engine.generate_json(chats, schema, max_new_tokens=120)
        except Exception as err:  # naming is a nicety: themes keep their evidence without it
            logger.warning("naming failed for %d themes: %s: %s", len(chunk), type(err).__name__, err)
            raws = [None] * len(chunk)
        for raw in raws:
            try:
                named = schema.model_validate_json(raw) if raw is not None else None
            except ValidationError as err:
                logger.debug("theme name output invalid: %s", err)
                named = None
            if named is not None and not (named.title.strip() and named.description.strip()):
                named = None
            out.append(named)
    return out


# ---- gaps ---------------------------------------------------------------------------------------------------------
def _low_pairs(annotated: Any, subgoal_id: str, low_score: int) -> list[dict[str, Any]]:
    cols = score_columns(subgoal_id)
    ids = annotated["id"] if "id" in annotated.column_names else list(range(len(annotated)))
    return [
        {"row": k, "id": ids[k], "score": s, "explanation": (x or "").strip() or None}
        for k, (s, x) in enumerate(zip(annotated[cols["score"]], annotated[cols["explanation"]]))
        if s is not None and s <= low_score
    ]


def _themes(pairs, vectors, distance, min_theme, max_themes):
    """Cluster the explained pairs: (list of member index lists, largest first; unclustered indices)."""
    labels = cluster_vectors(vectors, distance)
    groups = [[k for k, lab in enumerate(labels) if lab == c] for c in range(max(labels, default=-1) + 1)]
    kept = [g for g in groups if len(g) >= min_theme][:max_themes]
    kept_set = {k for g in kept for k in g}
    return kept, [k for k in range(len(pairs)) if k not in kept_set]


def find_gaps(
    annotated: Any,
    spec: GoalSpec,
    report: CoverageReport,
    evidence: int = 3,
    *,
    target: Target | None = None,
    low_score: int | None = None,
    cluster: bool = True,
    namer: Any = None,
    distance: float = DEFAULT_DISTANCE,
    min_theme: int = DEFAULT_MIN_THEME,
    max_themes: int = DEFAULT_MAX_THEMES,
) -> list[Gap]:
    """Subgoals short of ``target``, ranked by shortfall, with themes from their low-score explanations.

    Args:
        annotated (``datasets.Dataset``): the scored rows.
        spec (:class:`GoalSpec`): the spec they were scored with.
        report (:class:`CoverageReport`): their coverage (support counts and threshold come from it).
        evidence (``int``, defaults to 3): how many lowest-scoring rows to keep per gap.
        target (:class:`Target`, *optional*): the coverage each subgoal needs (default: the report's target, whose
            decisions it keeps; another target is decided afresh on the report's intervals).
        low_score (``int``, *optional*): pairs scoring at or below this are analysed (default:
            ``report.threshold - 1``, every pair that does not support the subgoal).
        cluster (``bool``, defaults to ``True``): embed and cluster explanations into themes (loads
            all-MiniLM-L6-v2, ~8 s once per process).
        namer (:class:`~goalcover_hf.engines.Engine` or ``str``, *optional*): the model that names each theme (a
            string goes to ``get_engine``); ``None`` titles a theme with its most central explanation.
        distance (``float``, defaults to ``DEFAULT_DISTANCE``): cosine distance at which clusters stop merging
            (lower: more, tighter themes).
        min_theme (``int``, defaults to ``DEFAULT_MIN_THEME``): rows a cluster needs to be a theme.
        max_themes (``int``, defaults to ``DEFAULT_MAX_THEMES``): themes kept per subgoal.

    Returns:
        ``list[Gap]``: ranked, largest relative shortfall first.

    Example:
        >>> report = compute_coverage(ds, spec)
        >>> gaps = find_gaps(ds, spec, report, namer="embedded")
        >>> save_gaps("gaps.json", gaps_document(gaps, spec, report, run.provenance, settings={}))
    """
    target = target or report.target
    low_score = report.threshold - 1 if low_score is None else low_score
    if isinstance(namer, str):
        from .engines import get_engine

        namer = get_engine(namer)
    gaps, explained_by = [], {}
    for s in report.subgoals:
        if report.decide(s, target) != "gap":
            continue
        pairs = _low_pairs(annotated, s.id, low_score)
        explained = [p for p in pairs if p["explanation"]]
        gaps.append(refresh(Gap(subgoal=s.id, name=s.name, coverage=s.coverage, support=s.support, scored=s.scored,
                                low_pairs=len(pairs), unexplained=len(pairs) - len(explained),
                                evidence=list(iter_low(annotated, spec, s.id, evidence))), s, report, target))
        explained_by[s.id] = explained
    position = {s.id: k for k, s in enumerate(spec.subgoals)}
    gaps.sort(key=lambda g: (-g.shortfall / g.required, -g.shortfall, position[g.subgoal]))
    for rank, g in enumerate(gaps, start=1):
        g.rank = rank
    if cluster:
        _add_themes(gaps, explained_by, spec, namer, distance, min_theme, max_themes)
    return gaps


def refresh(gap: Gap, s: SubgoalCoverage, report: CoverageReport, target: Target) -> Gap:
    """Set a gap's figures from the report's: coverage, interval, method, labels, and the supporting scored rows the
    target asks for with how many are missing (from the calibrated estimate when there is one)."""
    gap.coverage, gap.low, gap.high, gap.method, gap.labels = s.coverage, s.low, s.high, s.method, s.labels
    gap.support, gap.scored = s.support, s.scored
    gap.required = max(1, math.ceil(round(target.fraction(report.population) * s.scored, 9)))
    gap.shortfall = max(1, math.ceil(round(gap.required - s.coverage * s.scored, 9)))
    return gap


def _add_themes(gaps: list[Gap], explained_by, spec: GoalSpec, namer, distance, min_theme, max_themes) -> None:
    requests, slots = [], []
    for g in gaps:
        pairs = explained_by[g.subgoal]
        if not pairs:
            continue
        vectors = embed([p["explanation"] for p in pairs])
        groups, rest = _themes(pairs, vectors, distance, min_theme, max_themes)
        g.unclustered = [pairs[k]["id"] for k in rest]
        g.unclustered_rows = [pairs[k]["row"] for k in rest]
        for members in groups:
            central = central_order(vectors, members)
            quotes, seen = [], set()
            for k in central:
                if pairs[k]["explanation"] not in seen:
                    seen.add(pairs[k]["explanation"])
                    quotes.append({key: pairs[k][key] for key in ("id", "row", "score", "explanation")})
            g.themes.append(Theme(
                title=_clip(quotes[0]["explanation"], TITLE_CHARS), description="", named_by=UNNAMED,
                named_subgoal=None, size=len(members), row_ids=[pairs[k]["id"] for k in sorted(members)],
                rows=[pairs[k]["row"] for k in sorted(members)],
                quotes=quotes[:QUOTES],
            ))
            requests.append((g.subgoal, [q["explanation"] for q in quotes[:6]]))
            slots.append(g.themes[-1])
    if namer is None or not requests:
        return
    for theme, named in zip(slots, name_themes(namer, spec, requests)):
        if named is not None:
            theme.title, theme.description = _clip(named.title, TITLE_CHARS), named.description.strip()
            theme.named_by, theme.named_subgoal = namer.identity, named.subgoal


def _clip(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters: cut at a word boundary and marked with an ellipsis, never
    mid-word (a first word longer than ``limit`` is kept whole)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if text[limit - 1] != " ":  # the cut falls inside a word: drop that word
        head = head.rsplit(" ", 1)[0] if " " in head else text.split(" ", 1)[0]
    return text if head == text else (head.rstrip(" ,;:-–—") or head) + "…"


# ---- gaps.json ----------------------------------------------------------------------------------------------------
def gaps_text(gaps: list[Gap], target: Target | None = None) -> str:
    """The ranked gaps as plain text for the terminal.

    Args:
        gaps (``list[Gap]``): from :func:`find_gaps` or :func:`load_gaps`.
        target (:class:`Target`, *optional*): named in the heading when given.

    Returns:
        ``str``
    """
    if not gaps:
        return "No gaps: no subgoal falls short of the target with 95% confidence."
    lines = [f"{len(gaps)} gap(s), ranked by shortfall" + (f" (target: {target.describe()})" if target else "")]
    for g in gaps:
        lines.append(f"\n{g.rank}. GAP {g.subgoal} ({g.name}): {gap_figures(g)}; needs {g.required}, short by "
                     f"{g.shortfall}")
        if g.low_pairs:
            lines.append(f"   {g.low_pairs} low-scoring pairs, {g.unexplained} without an explanation")
        for t in g.themes:
            named = "" if t.named_by != UNNAMED else " [unnamed: most central explanation]"
            lines.append(f"   - {t.title}{named} ({t.size} rows)")
            if t.description and t.description != t.title:
                lines.append(f"     {t.description}")
            lines.append(f"     rows: {_ids(t.row_ids)}")
            for q in t.quotes:
                lines.append(f"       \"{_clip(q['explanation'], 140)}\" (row {q['id']}, score {q['score']})")
        if g.unclustered:
            lines.append(f"   unclustered: {_ids(g.unclustered)}")
        if not g.themes:
            for ev in g.evidence:
                why = _clip(ev["explanation"] or "(no explanation)", 140)
                lines.append(f"   row {ev['id']}: score {ev['score']}: {why}")
    return "\n".join(lines)


def gap_figures(g: Gap) -> str:
    """A gap's coverage in words, with its interval and what it rests on."""
    if g.method == "calibrated":
        return (f"calibrated coverage {g.coverage:.0%}, 95% interval {interval_text(g.low, g.high)}, from {g.labels} "
                f"labels (the judge: {g.support}/{g.scored})")
    return (f"{g.support}/{g.scored} samples support it ({g.coverage:.0%}, 95% interval "
            f"{interval_text(g.low, g.high)}, the judge's opinion)")


def _ids(ids: Sequence[Any], limit: int = 12) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... (+{len(ids) - limit})" if len(ids) > limit else "")
