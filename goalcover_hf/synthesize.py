"""Goal-conditioned synthesis: new rows for under-covered subgoals, in the dataset's own format, kept only when the
judge agrees they cover what they were made for.

For each target subgoal: ``n`` generations, each prompted with the goal, the subgoal's description and rubric and a
few real rows (a different seeded pick per generation) as style examples, under an Outlines schema of the dataset's
text columns (:mod:`goalcover_hf.rowschema`). Then, in order, a row is dropped when its output is not a valid row
(``invalid``), when it is a near-duplicate of an existing row or of a synthetic row already kept (``duplicate``:
cosine similarity of all-MiniLM-L6-v2 embeddings at or above ``dedup``), when the judge gave no score on the target
(``score_error``), or when it scores below the threshold on the target (``below_threshold``). Kept rows carry every
score column (re-scored by the same :class:`~goalcover_hf.scorer.Scorer` on every subgoal) and three marks:
``goalcover_synthetic`` (True), ``goalcover_target`` (subgoal id) and ``goalcover_synth_model``.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from .columns import score_columns
from .coverage import DEFAULT_MIN_COVERAGE, compute_coverage
from .embeddings import embed
from .errors import GoalcoverError
from .formats import RowFormatError, RowRenderer
from .logging import get_logger
from .rowschema import DEFAULT_MAX_CHARS, parse_row, row_json, row_schema, text_fields
from .spec import GoalSpec

logger = get_logger(__name__)

SYNTHETIC, TARGET, SYNTH_MODEL = "goalcover_synthetic", "goalcover_target", "goalcover_synth_model"
DEFAULT_DEDUP = 0.9
DROP_REASONS = ("invalid", "duplicate", "score_error", "below_threshold")


@dataclass
class TargetReport:
    """What happened to the rows made for one subgoal.

    Attributes:
        subgoal (``str``): the target subgoal.
        generated (``int``), kept (``int``): rows asked for and rows kept.
        dropped (``dict[str, int]``): rows dropped, by reason (:data:`DROP_REASONS`).
        scores (``list``): the target score of every row that reached the judge (``None``: no score).
    """

    subgoal: str
    generated: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    scores: list[int | None] = field(default_factory=list)


@dataclass
class SynthesisResult:
    """What :func:`synthesize` made.

    Attributes:
        dataset (``datasets.Dataset``): the input rows (marked not synthetic) followed by the kept synthetic rows.
        synthetic (``datasets.Dataset``): the kept synthetic rows only.
        report (``list[TargetReport]``): one per target subgoal.
        settings (``dict[str, Any]``): the model, threshold and generation settings.
    """

    dataset: Any
    synthetic: Any
    report: list[TargetReport]
    settings: dict[str, Any]

    def provenance(self) -> dict[str, Any]:
        """What ``run.json`` records under ``synthesis``.

        Returns:
            ``dict[str, Any]``: the settings and each target's report.
        """
        return {"settings": self.settings, "targets": [asdict(r) for r in self.report]}

    def text(self) -> str:
        """The result for the terminal: per target, rows generated, kept and dropped by reason.

        Returns:
            ``str``
        """
        lines = [f"Synthesis with {self.settings['model']} (keep: target score >= {self.settings['threshold']}):"]
        for r in self.report:
            why = ", ".join(f"{k} {v}" for k, v in r.dropped.items() if v) or "none"
            lines.append(f"  {r.subgoal}: generated {r.generated}, kept {r.kept}; dropped: {why}")
        return "\n".join(lines)


# ---- near-duplicates -----------------------------------------------------------------------------------------------
def near_duplicates(existing: Sequence[str], candidates: Sequence[str], threshold: float) -> list[bool]:
    """Which candidates are near-duplicates of an existing text or of an earlier candidate that was kept.

    Args:
        existing (``Sequence[str]``): texts already in the data.
        candidates (``Sequence[str]``): new texts, in order.
        threshold (``float``): the cosine similarity at which two texts are near-duplicates.

    Returns:
        ``list[bool]``: one flag per candidate.
    """
    import numpy as np

    if not candidates:
        return []
    cand, base = embed(candidates), embed(existing)
    flags, kept = [], []
    for k, vec in enumerate(cand):
        pool = np.vstack([base, cand[kept]]) if kept else base
        dup = bool(len(pool) and float((pool @ vec).max()) >= threshold)
        flags.append(dup)
        if not dup:
            kept.append(k)
    return flags


# ---- synthesis -----------------------------------------------------------------------------------------------------
def synthesize(
    spec: GoalSpec,
    annotated,
    subgoals: Sequence[str] | None = None,
    n: int = 4,
    *,
    scorer=None,
    model: str = "embedded",
    template: str | None = None,
    threshold: int | None = None,
    examples: int = 3,
    dedup: float | None = DEFAULT_DEDUP,
    seed: int = 0,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_new_tokens: int = 400,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> SynthesisResult:
    """Generate up to ``n`` rows per subgoal in ``subgoals`` (default: the gaps of ``annotated``) and keep those the
    judge scores at or above the threshold on their target.

    Args:
        spec (:class:`GoalSpec`): the spec the data was scored with.
        annotated (``datasets.Dataset``): the scored rows (real rows are shown as style examples).
        subgoals (``Sequence[str]``, *optional*): the target subgoal ids (default: the gaps of ``annotated``).
        n (``int``, defaults to 4): rows to generate per target.
        scorer (:class:`~goalcover_hf.scorer.Scorer`, *optional*): the scorer that annotated the data; it re-scores
            the new rows and its model writes them (default: ``Scorer(spec, model, template=template,
            threshold=threshold)``).
        model (``str``, defaults to ``"embedded"``), template (``str``, *optional*), threshold (``int``,
            *optional*): for the default scorer.
        examples (``int``, defaults to 3): real rows shown per generation.
        dedup (``float`` or ``None``, defaults to ``DEFAULT_DEDUP``): cosine similarity at which a new row is a
            near-duplicate; ``None`` skips the check.
        seed (``int``, defaults to 0): seeds the choice of examples.
        max_chars (``int``, defaults to ``DEFAULT_MAX_CHARS``): the maximum length of each generated field.
        max_new_tokens (``int``, defaults to 400): the budget of one generated row.
        min_coverage (``float``, defaults to ``DEFAULT_MIN_COVERAGE``): the gap line when ``subgoals`` is not given.

    Returns:
        :class:`SynthesisResult`

    Example:
        >>> result = synthesize(spec, annotated, n=8, scorer=Scorer(spec, "Qwen/Qwen2.5-1.5B-Instruct"))
        >>> print(result.text()); result.dataset.save_to_disk("with_synthetic")
    """
    from datasets import Dataset, Features, Value, concatenate_datasets

    from .prompts import load_prompt
    from .scorer import Scorer

    if scorer is None:
        scorer = Scorer(spec, model, template=template, **({"threshold": threshold} if threshold else {}))
    threshold = scorer.config.threshold
    template = scorer.config.template
    if n < 1:
        raise GoalcoverError(f"n must be at least 1, got {n}")
    if subgoals is None:
        report = compute_coverage(annotated, spec, threshold=threshold, min_coverage=min_coverage)
        subgoals = [s.id for s in report.gaps]
        if not subgoals:
            logger.info("no subgoal is under-covered (coverage < %.0f%%): nothing to synthesize", min_coverage * 100)
    targets = [spec.subgoal(s) for s in subgoals]
    fields = text_fields(annotated.features, template)
    schema = row_schema(fields, max_chars)
    renderer = RowRenderer(columns=list(annotated.column_names), template=template)
    columns = [c for c in annotated.column_names if c not in (SYNTHETIC, TARGET, SYNTH_MODEL)]
    real = annotated.select_columns([f.name for f in fields]).to_list()
    existing = []
    for row in real:
        try:
            existing.append(renderer.render(row))
        except RowFormatError:
            continue  # an unreadable real row can be neither an example nor a duplicate
    engine = scorer.engine  # with the scorer's engine options (a server's address, trust_remote_code)
    prompt = load_prompt("synthesize_v1")
    rng = random.Random(seed)
    reports, new_rows, kept_texts = [], [], []
    for target in targets:
        rep = TargetReport(target.id)
        chats = []
        for k in range(n):
            picks = rng.sample(range(len(real)), min(examples, len(real)))
            shown = [json.dumps(row_json(real[i], fields, max_chars // 2), ensure_ascii=False) for i in picks]
            chats.append(prompt.chat("user", goal=spec.goal, name=target.name, description=target.description,
                                     high=target.high, low=target.low, examples=shown, k=k + 1))
        raws = []
        for start in range(0, n, scorer.config.batch_size):
            raws += engine.generate_json(chats[start: start + scorer.config.batch_size], schema, max_new_tokens)
        rep.generated = n
        candidates, texts = [], []
        for raw in raws:
            try:
                row = parse_row(raw, schema, fields)
                texts.append(renderer.render(row))
                candidates.append(row)
            except (ValueError, RowFormatError) as err:
                rep.dropped["invalid"] += 1
                logger.debug("synthetic row invalid: %s", err)
        if dedup is not None and candidates:
            flags = near_duplicates(existing + kept_texts, texts, dedup)
            rep.dropped["duplicate"] += sum(flags)
            candidates = [c for c, f in zip(candidates, flags) if not f]
            texts = [t for t, f in zip(texts, flags) if not f]
        judged = scorer.judge_texts(texts) if texts else []
        t_idx = [s.id for s in spec.subgoals].index(target.id)
        for row, text, judgements in zip(candidates, texts, judged):
            score = judgements[t_idx].score
            rep.scores.append(score)
            if score is None:
                rep.dropped["score_error"] += 1
                continue
            if score < threshold:
                rep.dropped["below_threshold"] += 1
                continue
            rep.kept += 1
            kept_texts.append(text)
            full = dict.fromkeys(columns)
            full.update(row)
            if "id" in full and annotated.features.get("id") == Value("string"):
                full["id"] = f"synthetic-{target.id}-{rep.kept}"
            for sub, j in zip(spec.subgoals, judgements):
                for name, col in score_columns(sub.id).items():
                    full[col] = getattr(j, name)
            full.update({SYNTHETIC: True, TARGET: target.id, SYNTH_MODEL: engine.identity})
            new_rows.append(full)
        logger.info("%s: generated %d, kept %d", target.id, rep.generated, rep.kept)
        reports.append(rep)

    marks = {SYNTHETIC: Value("bool"), TARGET: Value("string"), SYNTH_MODEL: Value("string")}
    features = Features({**annotated.select_columns(columns).features, **marks})
    synthetic = Dataset.from_list(new_rows, features=features) if new_rows else Dataset.from_dict(
        {c: [] for c in features}, features=features)
    if SYNTHETIC in annotated.column_names:  # synthesized before: keep the earlier marks
        marked = annotated.select_columns(list(features)).cast(features)
    else:
        marked = annotated.map(lambda b: {SYNTHETIC: [False] * len(b[columns[0]]), TARGET: [None] * len(b[columns[0]]),
                                          SYNTH_MODEL: [None] * len(b[columns[0]])},
                               batched=True, features=features, desc="goalcover mark rows")
    settings = {"model": engine.identity, "threshold": threshold, "n": n, "examples": examples, "dedup": dedup,
                "seed": seed, "max_chars": max_chars, "prompt_version": prompt.version,
                "fields": [f.name for f in fields], "targets": [t.id for t in targets]}
    return SynthesisResult(concatenate_datasets([marked, synthetic]), synthetic, reports, settings)
