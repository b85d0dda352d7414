"""Scoring: one alignment score and explanation per (sample, subgoal), as a ``datasets.map`` function.

A :class:`Scorer` is a config; the model is a resource. The scorer pickles as its config only (spec, model identity,
prompt version, mode, decoding settings), so ``datasets`` fingerprints it stably and reuses its cache, and changing any
of those recomputes. The engine loads lazily, once per process.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, Field, ValidationError

from .formats import RowFormatError, RowRenderer
from .logging import get_logger
from .engines import EngineMisconfigured, engine_options as check_engine_options, resolve_engine_model
from .prompts import load_prompt
from .spec import GoalSpec, Subgoal

logger = get_logger(__name__)

MODES = ("generate", "logprobs")
EXPLAIN = ("low", "all", "none")
SCORE_CHOICES = ("1", "2", "3", "4", "5")
DEFAULT_THRESHOLD = 4  # a sample supports a subgoal when it scores at least this
EXPLANATION_CHARS = 160
COLUMN_PREFIX = "gc_"


class JudgementJSON(BaseModel):
    """What the judge must produce in ``generate`` mode (explanation first: reasoning before the verdict)."""

    explanation: str = Field(max_length=EXPLANATION_CHARS)
    score: Literal[1, 2, 3, 4, 5]


class ExplanationJSON(BaseModel):
    explanation: str = Field(max_length=EXPLANATION_CHARS)


@dataclass
class Judgement:
    """One (sample, subgoal) result. ``score`` is None exactly when ``error`` is set."""

    score: int | None = None
    expected: float | None = None  # expected value over the score digits (logprobs mode) or the score itself
    explanation: str | None = None
    error: str | None = None


def score_columns(subgoal_id: str) -> dict[str, str]:
    base = f"{COLUMN_PREFIX}{subgoal_id}"
    return {
        "score": f"{base}_score",
        "expected": f"{base}_expected",
        "explanation": f"{base}_explanation",
        "error": f"{base}_error",
    }


def output_features(spec: GoalSpec):
    """The ``datasets.Features`` of the columns a scorer adds (explicit, so the Hub viewer types them right)."""
    from datasets import Features, Value

    feats = {}
    for sub in spec.subgoals:
        cols = score_columns(sub.id)
        feats[cols["score"]] = Value("int8")
        feats[cols["expected"]] = Value("float32")
        feats[cols["explanation"]] = Value("string")
        feats[cols["error"]] = Value("string")
    return Features(feats)


@dataclass(frozen=True)
class ScorerConfig:
    """Everything that changes a score. Its pickled form is the scorer's fingerprint."""

    spec_yaml: str
    spec_hash: str
    model: str
    model_identity: str
    engine: str
    prompt_version: str
    mode: str
    explain: str
    threshold: int
    template: str | None
    max_new_tokens: int
    batch_size: int
    # Where the engine is (server address, ...): every worker needs it, so it travels with the config.
    engine_options: tuple = ()


class Scorer:
    """Callable for ``Dataset.map(scorer, batched=True)`` that adds per-subgoal score columns.

    Args:
        spec: a :class:`GoalSpec` or the path of a spec YAML file.
        model: ``"embedded"`` (default), a Hugging Face id, a local folder or a ``.gguf`` file.
        mode: ``"generate"``: Outlines JSON {explanation, score} per pair (the paper's method);
            ``"logprobs"``: score from the next-token distribution over "1".."5" (argmax, plus its expected value),
            explanations generated only where ``explain`` asks.
        explain: in ``logprobs`` mode, which pairs get an explanation: ``"low"`` (score below ``threshold``, what gap
            analysis reads), ``"all"`` or ``"none"``.
        threshold: score at which a sample supports a subgoal.
        template: Jinja template turning a row into text; by default the row layout is detected from its columns.
        engine: ``"transformers"`` (default), ``"llamacpp"`` (a .gguf or ``"embedded"``) or ``"openai"`` (a server;
            ``model`` is its served model name, optional when it serves one).
        base_url: the server of ``engine="openai"``, e.g. ``http://127.0.0.1:8000/v1``.
        engine_options: more engine settings, e.g. ``{"max_in_flight": 32, "api_key_env": "MY_KEY"}`` for a server
            (see :mod:`goalcover_hf.engines`).

    Example:
        >>> scorer = Scorer("goal.yaml")
        >>> ds = ds.map(scorer, batched=True, batch_size=8)
        >>> remote = Scorer("goal.yaml", "Qwen/Qwen2.5-7B-Instruct", engine="openai", base_url="http://127.0.0.1:8000/v1")
    """

    def __init__(
        self,
        spec: GoalSpec | str,
        model: str = "embedded",
        *,
        mode: str = "generate",
        explain: str = "low",
        threshold: int = DEFAULT_THRESHOLD,
        template: str | None = None,
        engine: str = "transformers",
        max_new_tokens: int = 96,
        batch_size: int = 8,
        base_url: str | None = None,
        engine_options: Mapping[str, Any] | None = None,
    ):
        if not isinstance(spec, GoalSpec):
            spec = GoalSpec.load(spec)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if explain not in EXPLAIN:
            raise ValueError(f"explain must be one of {EXPLAIN}, got {explain!r}")
        if not 1 <= int(threshold) <= 5:
            raise ValueError(f"threshold must be within 1..5, got {threshold}")
        options = check_engine_options(engine, {**(engine_options or {}), "base_url": base_url})
        model, identity = resolve_engine_model(model, engine, options)
        self.spec = spec
        self.config = ScorerConfig(
            spec_yaml=spec.to_yaml(),
            spec_hash=spec.content_hash(),
            model=model,
            model_identity=identity,
            engine=engine,
            prompt_version=load_prompt("score_v1").version,
            mode=mode,
            explain=explain,
            threshold=int(threshold),
            template=template,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            engine_options=options,
        )

    def init_kwargs(self) -> dict[str, Any]:
        """Arguments that rebuild this scorer, e.g. in each Ray actor: ``fn_constructor_kwargs=scorer.init_kwargs()``."""
        c = self.config
        options = dict(c.engine_options)
        return {"spec": self.spec, "model": c.model, "mode": c.mode, "explain": c.explain, "threshold": c.threshold,
                "template": c.template, "engine": c.engine, "max_new_tokens": c.max_new_tokens,
                "batch_size": c.batch_size, "base_url": options.pop("base_url", None), "engine_options": options}

    # Pickle as config only: the engine is a per-process resource, never part of the fingerprint.
    def __getstate__(self):
        return {"config": asdict(self.config)}

    def __setstate__(self, state):
        import yaml

        config = state["config"]
        self.config = ScorerConfig(**{**config, "engine_options": tuple(map(tuple, config.get("engine_options", ())))})
        self.spec = GoalSpec.model_validate(yaml.safe_load(self.config.spec_yaml))

    @property
    def engine(self):
        from .engines import get_engine

        return get_engine(self.config.model, self.config.engine, None, self.config.engine_options)

    @property
    def is_embedded(self) -> bool:
        return self.config.model == "embedded" or "SmolLM2-135M" in self.config.model_identity

    def provenance(self) -> dict[str, Any]:
        """What the card records about how the scores were made."""
        c = self.config
        return {
            "goal": self.spec.goal,
            "spec_hash": c.spec_hash,
            "model": c.model_identity,
            "engine": c.engine,
            "prompt_version": c.prompt_version,
            "mode": c.mode,
            "explain": c.explain if c.mode == "logprobs" else "all",
            "threshold": c.threshold,
            "decoding": {"max_new_tokens": c.max_new_tokens, "do_sample": False},
        }

    def features(self, base=None):
        """Features of the annotated dataset: ``base`` (the input's features) plus the score columns.

        Pass them to ``map`` so every column is typed even when a batch is all null:
        ``ds.map(scorer, batched=True, features=scorer.features(ds.features))``.
        """
        from datasets import Features

        merged = dict(base or {})
        merged.update(output_features(self.spec))
        return Features(merged)

    # ---- prompts -------------------------------------------------------------------------------------------------
    def chat(self, sample: str, sub: Subgoal, ask: str, **values) -> list[dict]:
        prompt = load_prompt("score_v1")
        user = "\n\n".join(
            [
                prompt.section("sample", sample=sample),
                prompt.section("subgoal", name=sub.name, description=sub.description, low=sub.low, high=sub.high),
                prompt.section(ask, **values),
            ]
        )
        return [{"role": "system", "content": prompt.section("system")}, {"role": "user", "content": user}]

    # ---- judging -------------------------------------------------------------------------------------------------
    def judge_texts(self, samples: Sequence[str], subgoals: Sequence[Subgoal] | None = None) -> list[list[Judgement]]:
        """Judge rendered sample texts against subgoals; returns ``[sample][subgoal]`` judgements."""
        subgoals = list(subgoals or self.spec.subgoals)
        pairs = [(i, j) for i in range(len(samples)) for j in range(len(subgoals))]
        results = [[Judgement() for _ in subgoals] for _ in samples]
        size = self.config.batch_size
        for start in range(0, len(pairs), size):
            chunk = pairs[start : start + size]
            if self.config.mode == "generate":
                self._generate(samples, subgoals, chunk, results)
            else:
                self._logprobs(samples, subgoals, chunk, results)
        return results

    def _generate(self, samples, subgoals, chunk, results):
        chats = [self.chat(samples[i], subgoals[j], "ask_json") for i, j in chunk]
        raws = self._safe_generate(chats, JudgementJSON, len(chunk))
        for (i, j), raw in zip(chunk, raws):
            results[i][j] = parse_judgement(raw)

    def _logprobs(self, samples, subgoals, chunk, results):
        chats = [self.chat(samples[i], subgoals[j], "ask_digit") for i, j in chunk]
        probs = self.engine.choice_probs(chats, SCORE_CHOICES)
        to_explain = []
        for (i, j), p in zip(chunk, probs):
            if p is None:  # the engine could not score this pair (a request that failed after its retries)
                results[i][j] = Judgement(error="scoring failed (see log)")
                continue
            score = max(range(5), key=lambda k: p[k]) + 1
            expected = sum((k + 1) * pk for k, pk in enumerate(p))
            results[i][j] = Judgement(score=score, expected=float(expected))
            explain = self.config.explain
            if explain == "all" or (explain == "low" and score < self.config.threshold):
                to_explain.append((i, j))
        if to_explain:
            chats = [
                self.chat(samples[i], subgoals[j], "ask_explanation", score=results[i][j].score) for i, j in to_explain
            ]
            raws = self._safe_generate(chats, ExplanationJSON, len(to_explain))
            for (i, j), raw in zip(to_explain, raws):
                try:
                    results[i][j].explanation = ExplanationJSON.model_validate_json(raw).explanation.strip()
                except (ValidationError, TypeError) as err:
                    # The score stands; only the explanation could not be had.
                    results[i][j].explanation = None
                    logger.debug("explanation output invalid: %s", err)

    def _safe_generate(self, chats, schema, n) -> list[str | None]:
        engine = self.engine  # a model that cannot load is the user's to fix: let that error through
        try:
            return engine.generate_json(chats, schema, self.config.max_new_tokens)
        except EngineMisconfigured:  # every pair would fail the same way: stop the map and say why
            raise
        except Exception as err:  # one failing batch must not end a long map: mark its pairs and go on
            logger.warning("generation failed for a batch of %d pairs: %s: %s", n, type(err).__name__, err)
            return [None] * n

    # ---- datasets.map entry point --------------------------------------------------------------------------------
    def __call__(self, batch, indices: Sequence[int] | None = None):
        """Score a batch: a ``datasets`` dict of lists (returns the new columns, which ``map`` adds), or a
        ``pyarrow.Table`` as Ray Data passes with ``batch_format="pyarrow"`` (returns the table with them appended).

        Example:
            >>> ray_ds.map_batches(Scorer, fn_constructor_kwargs=scorer.init_kwargs(), batch_format="pyarrow",
            ...                    compute=ray.data.ActorPoolStrategy(size=4), batch_size=16)
        """
        import pyarrow as pa

        if isinstance(batch, pa.Table):
            # Not self(...): Ray wraps __call__ in a one-thread executor, and a nested call would wait on itself.
            for name, series in self._score_batch(batch.to_pydict(), indices).items():
                batch = batch.append_column(name, pa.Array.from_pandas(series))
            return batch
        return self._score_batch(batch, indices)

    def _score_batch(self, batch: Mapping[str, list], indices: Sequence[int] | None) -> dict[str, Any]:
        import pandas as pd
        import pyarrow as pa

        columns = list(batch.keys())
        n = len(next(iter(batch.values()))) if batch else 0
        renderer = RowRenderer(columns=columns, template=self.config.template)
        texts, row_errors = [], {}
        for k in range(n):
            row = {c: batch[c][k] for c in columns}
            try:
                texts.append(renderer.render(row))
            except RowFormatError as err:
                where = f"row {indices[k]}" if indices is not None else f"row {k} of this batch"
                row_errors[k] = f"{where}: {err}"
                texts.append(None)
        ok = [k for k in range(n) if k not in row_errors]
        judged = self.judge_texts([texts[k] for k in ok]) if ok else []
        per_row: list[list[Judgement]] = [[] for _ in range(n)]
        for pos, k in enumerate(ok):
            per_row[k] = judged[pos]
        for k, msg in row_errors.items():
            per_row[k] = [Judgement(error=msg) for _ in self.spec.subgoals]
        out = {}
        types = {"score": pa.int8(), "expected": pa.float32(), "explanation": pa.string(), "error": pa.string()}
        for j, sub in enumerate(self.spec.subgoals):
            for field, col in score_columns(sub.id).items():
                # Arrow-typed Series keep their type even when a batch is all null (plain lists would infer "null").
                values = [getattr(per_row[k][j], field) for k in range(n)]
                out[col] = pd.Series(values, dtype=pd.ArrowDtype(types[field]))
        return out


def parse_judgement(raw: str | None) -> Judgement:
    """Validate one generated JSON judgement; invalid output becomes an ``error``, never a score."""
    if raw is None:
        return Judgement(error="generation failed (see log)")
    try:
        parsed = JudgementJSON.model_validate_json(raw)
    except ValidationError as err:
        first = err.errors()[0]
        snippet = raw if len(raw) <= 80 else raw[:77] + "..."
        return Judgement(error=f"invalid model output ({first['msg']}): {snippet!r}")
    return Judgement(score=parsed.score, expected=float(parsed.score), explanation=parsed.explanation.strip())


_SCORERS: dict[str, Scorer] = {}


def score(batch: Mapping[str, list], indices: Sequence[int] | None = None, *, spec, model: str = "embedded", **options):
    """Function form of :class:`Scorer` for ``ds.map(goalcover.score, batched=True, fn_kwargs={...})``.

    Pass ``spec`` as a :class:`GoalSpec` (not a path) so that editing the spec changes the map's fingerprint.

    Example:
        >>> ds.map(goalcover.score, batched=True, fn_kwargs={"spec": GoalSpec.load("goal.yaml"), "model": "embedded"})
    """
    scorer = Scorer(spec, model, **options)
    key = repr(asdict(scorer.config))
    scorer = _SCORERS.setdefault(key, scorer)
    return scorer(batch, indices)
