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

Cohen's d = (mean target - mean non-target) / pooled SD, the pooled SD being
``sqrt(((n1 - 1) var1 + (n2 - 1) var2) / (n1 + n2 - 2))`` with sample variances. Confidence intervals (95%, percentile)
come from a bootstrap over rows: each replicate resamples, with replacement, the rows of every target's sample and
recomputes every ``deg(t, s)``, both group means and d.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .corrupt import LLM_REWRITE, Operator, corrupt_rows, get_operator
from .errors import GoalcoverError
from .formats import RowFormatError, RowRenderer
from .logging import get_logger
from .spec import GoalSpec

logger = get_logger(__name__)

META_KEY = "corruption"  # spec.meta["corruption"]: {subgoal_id: operator}, the spec's own choice per subgoal
PAPER = {"target": 0.256, "nontarget": 0.021, "d": 1.24}  # Sun et al. (2026), over medical QA, legal, code


# ---- statistics (pure) ---------------------------------------------------------------------------------------------
def relative_degradation(clean: Sequence[float], corrupted: Sequence[float]) -> float:
    """(mean(clean) - mean(corrupted)) / mean(clean), over the pairs where both are numbers.

    Example:
        >>> relative_degradation([4, 4], [3, 2])
        0.375
    """
    c, x = np.asarray(clean, dtype=float), np.asarray(corrupted, dtype=float)
    ok = ~(np.isnan(c) | np.isnan(x))
    if not ok.any() or c[ok].mean() == 0:
        return math.nan
    return float((c[ok].mean() - x[ok].mean()) / c[ok].mean())


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """(mean(a) - mean(b)) / pooled SD (sample variances); NaN when undefined (a group under 2 values or SD 0).

    Example:
        >>> round(cohens_d([3, 5], [1, 3]), 3)
        1.414
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 1 or len(b) < 1 or len(a) + len(b) < 3:
        return math.nan
    va = a.var(ddof=1) if len(a) > 1 else 0.0
    vb = b.var(ddof=1) if len(b) > 1 else 0.0
    pooled = math.sqrt(((len(a) - 1) * va + (len(b) - 1) * vb) / (len(a) + len(b) - 2))
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else math.nan


Part = tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray], Sequence[str]]  # clean, corrupted, subgoal ids


def _groups(parts: Sequence[Part], picks: Sequence[Mapping[str, np.ndarray]] | None = None):
    """Target and non-target degradation values. A part: per-target (rows x subgoals) clean and corrupted score
    arrays of one domain, keyed by target id, and that domain's subgoal ids; ``picks`` resample each target's rows."""
    target, nontarget = [], []
    for k, (clean, corrupted, subgoals) in enumerate(parts):
        for t, c in clean.items():
            x = corrupted[t]
            if picks is not None:
                c, x = c[picks[k][t]], x[picks[k][t]]
            for j, s in enumerate(subgoals):
                (target if s == t else nontarget).append(relative_degradation(c[:, j], x[:, j]))
    return target, nontarget


def _nanmean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


@dataclass
class GroupSummary:
    """Target vs non-target degradation of one domain (or several pooled), with bootstrap 95% CIs."""

    target: float
    nontarget: float
    d: float
    target_ci: tuple[float, float]
    nontarget_ci: tuple[float, float]
    d_ci: tuple[float, float]
    n_target: int  # values in the target group (target subgoals)
    n_nontarget: int  # values in the non-target group ((target, other subgoal) pairs)
    bootstrap: int


def summarize(parts: Sequence[Part], bootstrap: int = 1000, seed: int = 0) -> GroupSummary:
    """Group means, Cohen's d and row-bootstrap percentile CIs over one domain's part (or several domains' parts).

    Example:
        >>> clean = {"a": np.array([[4.0, 4.0], [4.0, 4.0]]), "b": np.array([[4.0, 4.0], [4.0, 4.0]])}
        >>> bad = {"a": np.array([[2.0, 4.0], [2.0, 4.0]]), "b": np.array([[4.0, 3.0], [4.0, 3.0]])}
        >>> summarize([(clean, bad, ["a", "b"])], bootstrap=0).target
        0.375
    """
    target, nontarget = _groups(parts)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(bootstrap):
        picks = [{t: rng.integers(0, len(c), len(c)) for t, c in clean.items()} for clean, _, _ in parts]
        bt, bn = _groups(parts, picks)
        boots.append((_nanmean(bt), _nanmean(bn), cohens_d(bt, bn)))

    def ci(k):
        values = np.array([b[k] for b in boots], dtype=float)
        values = values[~np.isnan(values)]
        if not len(values):
            return (math.nan, math.nan)
        return (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))

    return GroupSummary(_nanmean(target), _nanmean(nontarget), cohens_d(target, nontarget), ci(0), ci(1), ci(2),
                        sum(not math.isnan(v) for v in target), sum(not math.isnan(v) for v in nontarget), bootstrap)


# ---- the experiment ------------------------------------------------------------------------------------------------
@dataclass
class TargetResult:
    target: str
    operator: str
    applicable: int  # rows of the dataset the operator changes (llm_rewrite: rows it was asked to rewrite)
    failed: int  # llm_rewrite: rows whose rewrite was invalid or unchanged
    ids: list[Any]
    clean: list[list[float | None]]  # rows x subgoals (spec order)
    corrupted: list[list[float | None]]
    degradation: dict[str, float]  # subgoal -> deg(target, subgoal)


@dataclass
class ValidationResult:
    domain: str
    subgoals: list[str]
    provenance: dict[str, Any]
    targets: list[TargetResult]
    summary: GroupSummary
    settings: dict[str, Any] = field(default_factory=dict)

    def part(self) -> Part:
        """Score arrays for :func:`summarize`."""
        return _part(self.targets, self.subgoals)

    def to_dict(self) -> dict[str, Any]:
        return _clean_nan(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ValidationResult":
        """Read back :meth:`to_dict` (``validation.json``), e.g. to pool domains run separately."""
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
        return markdown(self)


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
    """Operator per target: ``overrides`` first, then the spec's ``meta.corruption``, then ``llm_rewrite``."""
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
        scorer: the :class:`~goalcover_hf.scorer.Scorer` that judges clean and corrupted rows (its template
            renders the rows).
        operators: ``{subgoal_id: "NAME[:FIELD,...]"}``; see :mod:`goalcover_hf.corrupt`.
        n: rows per target, sampled (``seed``) among the rows the target's operator changes.
        rewrite_model: model for ``llm_rewrite`` (default: the scorer's model).

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
    """Target vs non-target over several domains: every domain's values in one pair of groups."""
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
    return (f"| {label} | {_pct(s.target)} {_ci(s.target_ci)} | {_pct(s.nontarget)} {_ci(s.nontarget_ci)} | "
            f"{_num(s.d)} {_ci(s.d_ci, pct=False)} | {s.n_target} / {s.n_nontarget} |")


SUMMARY_HEAD = ("| | Target degradation [95% CI] | Non-target degradation [95% CI] | Cohen's d [95% CI] | "
                "values (target / non-target) |\n|---|---:|---:|---:|---:|")


def markdown(result: ValidationResult) -> str:
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
