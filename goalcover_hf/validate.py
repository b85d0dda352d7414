"""The paper's validity check: corrupt one capability at a time and see whether the judge notices it, and only it.

For each target subgoal ``t`` the harness samples ``n`` rows that ``t``'s corruption operator changes, scores the
clean rows and their corrupted copies with the same :class:`~goalcover_hf.scorer.Scorer` on every subgoal, and
computes, per subgoal ``s``, the relative degradation

    deg(t, s) = (mean clean score of s - mean corrupted score of s) / mean clean score of s

over the pairs (row, s) that have a score in both copies. Scores are the judge's expected value over "1".."5" in
``logprobs`` mode and the generated integer in ``generate`` mode.

The two groups compared, per domain:

- **target**: one value per target subgoal ``t``: ``deg(t, t)``, how much ``t``'s own score fell when ``t`` was damaged;
- **non-target**: one value per (target ``t``, other subgoal ``s != t``): ``deg(t, s)``, how much the scores of the
  capabilities that were *not* damaged fell in the same corrupted copies.

Cohen's d between the groups and the bootstrap intervals are computed by :mod:`goalcover_hf.degradation`.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .corrupt import LLM_REWRITE, Operator, corrupt_rows, get_operator
from .degradation import GroupSummary, Part, cohens_d, relative_degradation, summarize
from .errors import GoalcoverError
from .formats import RowFormatError, RowRenderer
from .logging import get_logger
from .spec import GoalSpec

logger = get_logger(__name__)

META_KEY = "corruption"  # spec.meta["corruption"]: {subgoal_id: operator}, the spec's own choice per subgoal
PAPER = {"target": 0.256, "nontarget": 0.021, "d": 1.24}  # Sun et al. (2026), over medical QA, legal, code


# ---- the experiment ------------------------------------------------------------------------------------------------
@dataclass
class TargetResult:
    """The experiment for one target subgoal.

    Attributes:
        target (``str``): the corrupted subgoal.
        operator (``str``): the operator, as written.
        applicable (``int``): rows of the dataset the operator changes (``llm_rewrite``: rows it was asked to
            rewrite).
        failed (``int``): ``llm_rewrite`` rows whose rewrite was invalid or unchanged.
        ids (``list``): the rows used (their ``id`` column, or positions).
        clean, corrupted (``list[list[float | None]]``): rows x subgoals scores (spec order).
        degradation (``dict[str, float]``): subgoal -> ``deg(target, subgoal)``.
    """

    target: str
    operator: str
    applicable: int
    failed: int
    ids: list[Any]
    clean: list[list[float | None]]
    corrupted: list[list[float | None]]
    degradation: dict[str, float]


@dataclass
class ValidationResult:
    """The corruption experiment over one domain (what ``validation.json`` holds).

    Attributes:
        domain (``str``): a name for the data.
        subgoals (``list[str]``): the spec's ids, in order.
        provenance (``dict[str, Any]``): the judge's provenance.
        targets (``list[TargetResult]``): one per target subgoal.
        summary (:class:`GroupSummary`): target vs non-target.
        settings (``dict[str, Any]``): rows per target, seed, bootstrap, rewrite model.
    """

    domain: str
    subgoals: list[str]
    provenance: dict[str, Any]
    targets: list[TargetResult]
    summary: GroupSummary
    settings: dict[str, Any] = field(default_factory=dict)

    def part(self) -> Part:
        """Score arrays for :func:`summarize`.

        Returns:
            ``Part``: ``(clean, corrupted, subgoal ids)``, the arrays keyed by target.
        """
        return _part(self.targets, self.subgoals)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (NaN as ``None``).

        Returns:
            ``dict[str, Any]``
        """
        return _clean_nan(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ValidationResult":
        """Read back :meth:`to_dict` (``validation.json``), e.g. to pool domains run separately.

        Args:
            data (``Mapping[str, Any]``): from :meth:`to_dict`.

        Returns:
            :class:`ValidationResult`
        """
        def nan(v):
            return math.nan if v is None else v

        s = dict(data["summary"])
        for key in ("target", "nontarget", "d"):
            s[key] = nan(s[key])
        for key in ("target_ci", "nontarget_ci", "d_ci"):
            s[key] = tuple(nan(v) for v in s[key])
        targets = [TargetResult(**(t | {"degradation": {k: nan(v) for k, v in t["degradation"].items()}}))
                   for t in data["targets"]]
        return cls(data["domain"], list(data["subgoals"]), dict(data["provenance"]), targets, GroupSummary(**s),
                   dict(data.get("settings", {})))

    def to_markdown(self) -> str:
        """The report: degradation per target and subgoal, then the summary row and how the groups are made.

        Returns:
            ``str``: Markdown.
        """
        return _markdown(self)


def _part(targets: Sequence[TargetResult], subgoals: list[str]) -> Part:
    width = len(subgoals)
    return ({t.target: _array(t.clean, width) for t in targets}, {t.target: _array(t.corrupted, width) for t in targets},
            subgoals)


def _array(rows, width: int) -> np.ndarray:
    return np.array([[math.nan if v is None else v for v in r] for r in rows], dtype=float).reshape(len(rows), width)


def _clean_nan(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_nan(v) for v in value]
    return value


def resolve_operators(spec: GoalSpec, targets: Sequence[str], overrides: Mapping[str, str] | None,
                      features: Mapping[str, Any]) -> dict[str, Operator]:
    """The operator of each target: ``overrides`` first, then the spec's ``meta.corruption``, then ``llm_rewrite``.

    Args:
        spec (:class:`GoalSpec`): the spec.
        targets (``Sequence[str]``): the target subgoal ids.
        overrides (``Mapping[str, str]``, *optional*): subgoal id -> operator, as written.
        features (``Mapping[str, Any]``): the dataset's ``features`` (operators are bound to its columns).

    Returns:
        ``dict[str, Operator]``: a misspelt subgoal id is an :class:`~goalcover_hf.spec.UnknownSubgoalError`.
    """
    chosen = dict(spec.meta.get(META_KEY) or {})
    for sid in list(chosen) + list(overrides or {}):
        spec.subgoal(sid)  # a misspelt id is an error, not a silent default
    chosen.update(overrides or {})
    return {t: get_operator(chosen.get(t, LLM_REWRITE)).bind(features) for t in targets}


def validate(dataset, spec: GoalSpec, scorer, *, targets: Sequence[str] | None = None,
             operators: Mapping[str, str] | None = None, n: int = 20, seed: int = 0, bootstrap: int = 1000,
             domain: str = "data", rewrite_model: str | None = None, progress: bool = True) -> ValidationResult:
    """Run the corruption experiment on ``dataset`` for ``targets`` (default: every subgoal).

    Args:
        dataset (``datasets.Dataset``): the rows (scores are not needed).
        spec (:class:`GoalSpec`): the subgoals.
        scorer (:class:`~goalcover_hf.scorer.Scorer`): judges clean and corrupted rows (its template renders them).
        targets (``Sequence[str]``, *optional*): the subgoals to corrupt (default: all).
        operators (``Mapping[str, str]``, *optional*): ``{subgoal_id: "NAME[:FIELD,...]"}``; see
            :mod:`goalcover_hf.corrupt`.
        n (``int``, defaults to 20): rows per target, sampled (``seed``) among the rows the target's operator
            changes.
        seed (``int``, defaults to 0), bootstrap (``int``, defaults to 1000): see :func:`summarize`.
        domain (``str``, defaults to ``"data"``): a name for the report.
        rewrite_model (``str``, *optional*): model for ``llm_rewrite`` (default: the scorer's).
        progress (``bool``, defaults to ``True``): show a progress bar.

    Returns:
        :class:`ValidationResult`

    Example:
        >>> result = validate(ds, spec, Scorer(spec, mode="logprobs", explain="none"), n=10)
        >>> print(result.to_markdown())
    """
    from .rowschema import text_fields

    if n < 2:
        raise GoalcoverError("n must be at least 2 rows per target")
    subgoals = [s.id for s in spec.subgoals]
    targets = list(targets or subgoals)
    for t in targets:
        spec.subgoal(t)
    ops = resolve_operators(spec, targets, operators, dataset.features)
    template = scorer.config.template
    renderer = RowRenderer(columns=list(dataset.column_names), template=template)
    try:
        kinds = text_fields(dataset.features, template)
    except RowFormatError:
        kinds = None
    rows = dataset.to_list()

    def render(row):
        try:
            return renderer.render(row)
        except RowFormatError:
            return None

    clean_text = {}
    samples: dict[str, tuple[list[int], list[str], int, int]] = {}
    for k, t in enumerate(targets):
        op = ops[t]
        order = list(range(len(rows)))
        random.Random(seed * 1009 + k).shuffle(order)
        order = [i for i in order if render(rows[i]) is not None]
        if op.is_llm:
            picked = order[:n]
            rewritten = corrupt_rows([rows[i] for i in picked], op, goal=spec.goal, subgoal=spec.subgoal(t),
                                     text_fields=kinds, model=rewrite_model or scorer.engine)
            pairs = [(i, r) for i, r in zip(picked, rewritten) if r is not None and render(r) is not None]
            applicable, failed = len(picked), len(picked) - len(pairs)
        else:
            pairs, applicable = [], 0
            for i in order:
                new = op.apply(rows[i])
                if new is not None and render(new) is not None:
                    applicable += 1
                    if len(pairs) < n:
                        pairs.append((i, new))
            failed = 0
        if len(pairs) < 2:
            raise GoalcoverError(f"subgoal {t!r}: operator {op.spec!r} changed {len(pairs)} of {len(rows)} rows; need at "
                             "least 2. Choose another operator (--operator) or field, or check the column names")
        for i, _ in pairs:
            clean_text.setdefault(i, render(rows[i]))
        samples[t] = ([i for i, _ in pairs], [render(r) for _, r in pairs], applicable, failed)
        logger.info("%s: %s changed %d rows; using %d", t, op.spec, applicable, len(pairs))

    clean_ids = sorted(clean_text)
    texts = [clean_text[i] for i in clean_ids] + [x for t in targets for x in samples[t][1]]
    values = _judge(scorer, texts, progress)
    clean_scores = dict(zip(clean_ids, values[: len(clean_ids)]))
    pos = len(clean_ids)
    ids = dataset["id"] if "id" in dataset.column_names else list(range(len(rows)))
    results = []
    for t in targets:
        picked, corrupted_texts, applicable, failed = samples[t]
        corrupted = values[pos: pos + len(picked)]
        pos += len(picked)
        clean = [clean_scores[i] for i in picked]
        c, x = _array(clean, len(subgoals)), _array(corrupted, len(subgoals))
        results.append(TargetResult(
            target=t, operator=ops[t].spec, applicable=applicable, failed=failed, ids=[ids[i] for i in picked],
            clean=clean, corrupted=corrupted,
            degradation={s: relative_degradation(c[:, j], x[:, j]) for j, s in enumerate(subgoals)},
        ))
    return ValidationResult(
        domain=domain, subgoals=subgoals, provenance=scorer.provenance(), targets=results,
        summary=summarize([_part(results, subgoals)], bootstrap=bootstrap, seed=seed),
        settings={"n": n, "seed": seed, "bootstrap": bootstrap, "rows": len(rows),
                  "rewrite_model": rewrite_model or scorer.config.model},
    )


def _judge(scorer, texts: list[str], progress: bool) -> list[list[float | None]]:
    """Expected score per (text, subgoal); None where the judge produced no score."""
    from tqdm.auto import tqdm

    out = []
    step = max(1, scorer.config.batch_size)
    bar = tqdm(total=len(texts), desc="goalcover validate", disable=not progress)
    for start in range(0, len(texts), step):
        for judged in scorer.judge_texts(texts[start: start + step]):
            out.append([j.expected if j.expected is not None else (float(j.score) if j.score else None)
                        for j in judged])
        bar.update(min(step, len(texts) - start))
    bar.close()
    return out


def pooled(results: Sequence[ValidationResult], bootstrap: int = 1000, seed: int = 0) -> GroupSummary:
    """Target vs non-target over several domains: every domain's values in one pair of groups.

    Args:
        results (``Sequence[ValidationResult]``): one per domain.
        bootstrap (``int``, defaults to 1000), seed (``int``, defaults to 0): see :func:`summarize`.

    Returns:
        :class:`GroupSummary`
    """
    return summarize([r.part() for r in results], bootstrap=bootstrap, seed=seed)


# ---- output --------------------------------------------------------------------------------------------------------
def _pct(v: float) -> str:
    return "-" if v is None or math.isnan(v) else f"{v * 100:.1f}%"


def _ci(ci, pct=True) -> str:
    lo, hi = ci
    if lo is None or math.isnan(lo):
        return "-"
    return f"[{_pct(lo)}, {_pct(hi)}]" if pct else f"[{lo:.2f}, {hi:.2f}]"


def _num(v: float) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.2f}"


GROUPS_NOTE = (
    "Target group: one value per target subgoal t, deg(t, t) = relative drop of t's own mean score when t is "
    "corrupted. Non-target group: one value per (t, s) with s != t, deg(t, s) = relative drop of another subgoal's "
    "mean score in the same corrupted rows. d = (mean target - mean non-target) / pooled SD of the two groups. "
    "95% CIs: percentile bootstrap over rows (rows resampled within each target's sample)."
)


def summary_row(label: str, s: GroupSummary) -> str:
    """One row of the summary table (under :data:`SUMMARY_HEAD`).

    Args:
        label (``str``): the first cell.
        s (:class:`GroupSummary`): the figures.

    Returns:
        ``str``: a Markdown table row.
    """
    return (f"| {label} | {_pct(s.target)} {_ci(s.target_ci)} | {_pct(s.nontarget)} {_ci(s.nontarget_ci)} | "
            f"{_num(s.d)} {_ci(s.d_ci, pct=False)} | {s.n_target} / {s.n_nontarget} |")


SUMMARY_HEAD = ("| | Target degradation [95% CI] | Non-target degradation [95% CI] | Cohen's d [95% CI] | "
                "values (target / non-target) |\n|---|---:|---:|---:|---:|")


def _markdown(result: ValidationResult) -> str:
    p = result.provenance
    lines = [
        f"## Corruption validation: {result.domain}", "",
        f"Judge `{p.get('model')}` ({p.get('mode')} mode); {result.settings['n']} rows per target at most "
        f"(seed {result.settings['seed']}), {result.settings['rows']} rows in the data.", "",
        "Relative degradation of each subgoal's mean score (columns) in the copies where one target (rows) was "
        "corrupted:", "",
        "| Target | Operator | Rows (changed / used) | " + " | ".join(f"`{s}`" for s in result.subgoals) + " |",
        "|---|---|---:|" + "---:|" * len(result.subgoals),
    ]
    for t in result.targets:
        cells = [f"**{_pct(v)}**" if s == t.target else _pct(v) for s, v in t.degradation.items()]
        lines.append(f"| `{t.target}` | `{t.operator}` | {t.applicable} / {len(t.ids)} | " + " | ".join(cells) + " |")
    lines += ["", SUMMARY_HEAD, summary_row(result.domain, result.summary), "", GROUPS_NOTE]
    if any(t.failed for t in result.targets):
        lines.append("llm_rewrite rows whose output was invalid or unchanged were left out: "
                     + ", ".join(f"{t.target}: {t.failed}" for t in result.targets if t.failed) + ".")
    return "\n".join(lines) + "\n"


__all__ = ["validate", "ValidationResult", "TargetResult", "resolve_operators", "pooled", "summary_row", "SUMMARY_HEAD",
           "GROUPS_NOTE", "PAPER", "GroupSummary", "cohens_d", "relative_degradation", "summarize"]
