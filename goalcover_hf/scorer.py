"""Scoring: one alignment score and explanation per (sample, subgoal), as a ``datasets.map`` function.

A :class:`Scorer` is a config; the model is a resource loaded lazily, once per process. The scorer composes the
layers below it: the pair cache (:mod:`.cache`) around the judging method (:mod:`.judging`) around the raw judge
(:mod:`.judge`) over an engine (:mod:`.engines`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

from .cache import CachingJudge, PairCache, subgoal_text
from .columns import (DEFAULT_THRESHOLD, FIELD_TYPES, TRUNCATED_COLUMN, TRUNCATED_TYPE, Judgement, arrow_type,
                      output_features, score_columns)
from .errors import GoalcoverError
from .engines import Engine, engine_options as check_engine_options, resolve_engine_model
from .formats import RowFormatError, RowRenderer
from .judge import DEFAULT_MODE, Judge
from .judging import CONTENT_FREE, DEFAULT_METHOD, Calibration, MethodJudge, fixed_chats, parse_method, prompt_for
from .logging import get_logger
from .prompts import escape_sample, load_prompt
from .spec import GoalSpec, Subgoal
from .truncation import MARKER, fit_text, sample_budget

logger = get_logger(__name__)


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
    engine_options: tuple  # where the engine is and how it runs (server address, ...): every worker needs them
    method: str


class Scorer:
    """Callable for ``Dataset.map(scorer, batched=True)`` that adds per-subgoal score columns.

    Args:
        spec: a :class:`GoalSpec` or the path of a spec YAML file.
        model: ``"embedded"`` (default), a Hugging Face id, a local folder or a ``.gguf`` file; for a server, the
            served model name (optional when it serves one).
        engine: a registered engine name (``"transformers"``, the default; ``"llamacpp"``; ``"openai"``), or an
            :class:`~goalcover_hf.engines.base.Engine` instance used as it is (its name and identity are recorded).
        engine_options: the engine's settings, e.g. ``{"base_url": "http://127.0.0.1:8000/v1", "max_in_flight": 32}``
            (see ``goalcover score --help`` for each engine's).
        mode: ``"logprobs"`` (default): score and ``expected`` from the next-token distribution over "1".."5";
            ``"generate"``: Outlines JSON {explanation, score} per pair (the paper's method, slower).
        explain: in ``logprobs`` mode, which pairs get an explanation: ``"sample"`` (default: none in the map; then
            :func:`goalcover_hf.explain.explain_sample` explains a budgeted draw of low-scoring pairs per subgoal),
            ``"low"`` (every pair below ``threshold``), ``"all"`` or ``"none"``.
        threshold: score at which a sample supports a subgoal (default 4).
        template: Jinja template turning a row into text; by default the row layout is detected from its columns.
        max_new_tokens: the longest generated reply (default 96).
        batch_size: samples per engine call (default 8).
        method: how the judge's answers become a score: ``"expected"`` (default) or another of
            :data:`goalcover_hf.judging.METHODS`, optionally suffixed ``"+cal"``.
        cache: the pair cache: ``None`` (default: ``cache_dir()/pairs.sqlite``), a SQLite file path, or ``False``.
        base_url, trust_remote_code, max_context_tokens: shortcuts for the engine options of those names.

    Rows longer than the judge's context lose their middle to a marker line, counted in ``gc_truncated_tokens``.

    Example:
        >>> scorer = Scorer("goal.yaml")
        >>> ds = ds.map(scorer, batched=True, batch_size=8, with_indices=True, features=scorer.features(ds.features))
        >>> remote = Scorer("goal.yaml", "Qwen/Qwen2.5-7B-Instruct", engine="openai", base_url="http://127.0.0.1:8000/v1")
    """

    def __init__(self, spec: GoalSpec | str, model: str = "embedded", *, engine: str | Engine = "transformers",
                 engine_options: Mapping[str, Any] | None = None, mode: str = DEFAULT_MODE, explain: str = "sample",
                 threshold: int = DEFAULT_THRESHOLD, template: str | None = None, max_new_tokens: int = 96,
                 batch_size: int = 8, method: str = DEFAULT_METHOD, cache: str | os.PathLike | bool | None = None,
                 base_url: str | None = None, trust_remote_code: bool = False, max_context_tokens: int | None = None):
        spec = spec if isinstance(spec, GoalSpec) else GoalSpec.load(spec)
        if not 1 <= int(threshold) <= 5:
            raise GoalcoverError(f"threshold must be within 1..5, got {threshold}")
        parse_method(method)  # "+calx" (references from other domains) is the benchmark's, not a scorer option
        self._engine = None if isinstance(engine, str) else engine  # an instance is used as it is, in this process
        if self._engine is not None:
            engine, model = self._engine.name, self._engine.identity
        shortcuts = {"base_url": base_url, "trust_remote_code": trust_remote_code or None,
                     "max_context_tokens": max_context_tokens}
        options = {**(engine_options or {}), **{k: v for k, v in shortcuts.items() if v is not None}}
        if self._engine is not None:  # already built: its options are its own business
            options, identity = tuple(sorted(options.items())), model
        else:
            options = check_engine_options(engine, options)
            model, identity = resolve_engine_model(model, engine, options)
        self.config = ScorerConfig(
            spec_yaml=spec.to_yaml(), spec_hash=spec.content_hash(), model=model, model_identity=identity,
            engine=engine, prompt_version=load_prompt(prompt_for(method)).version, mode=mode, explain=explain,
            threshold=int(threshold), template=template, max_new_tokens=max_new_tokens, batch_size=batch_size,
            engine_options=options, method=method)
        self._cache = str(cache) if isinstance(cache, os.PathLike) else cache
        self._setup(spec)

    def _setup(self, spec: GoalSpec) -> None:
        """The per-process parts: the judging layers (the engine itself loads on first use)."""
        c = self.config
        self.spec = spec
        self._budgets: dict[tuple, int | None] = {}
        self._pair_cache = None if self._cache is False else PairCache(
            None if self._cache in (None, True) else self._cache)
        self.raw = Judge(lambda: self.engine, mode=c.mode, prompt=prompt_for(c.method),
                         max_new_tokens=c.max_new_tokens, batch_size=c.batch_size)
        base = MethodJudge(self.raw, parse_method(c.method)[0])
        if self._pair_cache is not None:  # the references' judgements, under their own key settings
            base = CachingJudge(base, self._pair_cache, self.key_settings() | {"method": base.method}, c.batch_size)
        self._calibration = Calibration(base)
        judge = MethodJudge(self.raw, c.method, c.explain, c.threshold, offsets=self._calibration)
        self._judge = judge if self._pair_cache is None else CachingJudge(judge, self._pair_cache,
                                                                          self.key_settings(), c.batch_size)

    def settings(self) -> dict[str, Any]:
        """Every setting of this scorer but its spec and cache, JSON-ready: ``Scorer(spec, **settings)`` rebuilds it.

        A run folder keeps them (``run.json`` ``"scorer"``), so later commands judge exactly as ``score`` did.
        """
        c = self.config
        return {"model": c.model, "engine": c.engine, "engine_options": dict(c.engine_options), "mode": c.mode,
                "explain": c.explain, "threshold": c.threshold, "template": c.template,
                "max_new_tokens": c.max_new_tokens, "batch_size": c.batch_size, "method": c.method}

    def replace(self, **changes) -> "Scorer":
        """A scorer with the same spec, cache and engine and ``changes`` to its settings, e.g. ``explain="all"``."""
        engine = {"engine": self._engine} if self._engine is not None else {}
        return Scorer(self.spec, **(self.settings() | changes | engine), cache=self._cache)

    def init_kwargs(self) -> dict[str, Any]:
        """Arguments that rebuild this scorer, e.g. in each Ray actor: ``fn_constructor_kwargs=scorer.init_kwargs()``."""
        return {"spec": self.spec, "cache": self._cache} | self.settings()

    # Pickle as config only: the engine is a per-process resource, never part of the fingerprint.
    # The cache location is kept too (it changes where judgements are read, not what they are).
    def __getstate__(self):
        return {"config": asdict(self.config), "cache": self._cache}

    def __setstate__(self, state):
        import yaml

        config = state["config"]
        self.config = ScorerConfig(**{**config, "engine_options": tuple(map(tuple, config["engine_options"]))})
        self._cache, self._engine = state["cache"], None
        self._setup(GoalSpec.model_validate(yaml.safe_load(self.config.spec_yaml)))

    @property
    def engine(self) -> Engine:
        """The engine, loaded once per process."""
        from .engines import get_engine

        if self._engine is not None:
            return self._engine
        return get_engine(self.config.model, self.config.engine, self.config.engine_options)

    @property
    def counter(self):
        """The engine's token counter (tokenizer and context length; no weights), loaded once per process."""
        from .engines import get_counter

        if self._engine is not None:
            return self._engine.token_counter()
        return get_counter(self.config.model, self.config.engine, self.config.engine_options)

    @property
    def context_tokens(self) -> int | None:
        """Tokens the judge can read, prompt plus reply (None: unknown, as for a server that does not say)."""
        return self.counter.context

    @property
    def pair_cache(self) -> PairCache | None:
        """The pair cache this scorer reads and writes (None when off)."""
        return self._pair_cache

    @property
    def is_embedded(self) -> bool:
        """Whether the judge is the embedded demo model (whose judgements are close to chance)."""
        from .models import is_embedded_model

        return is_embedded_model(self.config.model_identity)

    def key_settings(self) -> dict[str, Any]:
        """What, besides the subgoal and sample texts, decides a score: the pair cache's key settings."""
        c = self.config
        return {"model": c.model_identity, "engine": c.engine, "prompt_version": c.prompt_version, "mode": c.mode,
                "method": c.method, "max_new_tokens": c.max_new_tokens, "do_sample": False}

    def chat(self, sample: str, sub: Subgoal, ask: str, **values) -> list[dict]:
        """The chat asking ``ask`` (an ``ask_*`` part of the method's template) about one pair."""
        return self.raw.chat(sample, sub, ask, **values)

    def provenance(self) -> dict[str, Any]:
        """What the card records about how the scores were made (a ``+cal`` method measures its offsets here if no
        judgement has yet)."""
        c = self.config
        extra = {}
        if self.raw.loaded_engine is not None:  # how it ran (device, dtype, threads): no part of the fingerprint
            extra["engine_settings"] = self.raw.loaded_engine.describe()
        if c.method.endswith("+cal"):
            offsets = self.calibration()
            extra["calibration"] = {"references": list(CONTENT_FREE),
                                    "offsets": {s.id: round(offsets[subgoal_text(s)], 4) for s in self.spec.subgoals}}
        return {"goal": self.spec.goal, "spec_hash": c.spec_hash, "model": c.model_identity, "engine": c.engine,
                "prompt_version": c.prompt_version, "mode": c.mode, "method": c.method,
                "explain": c.explain if c.mode == "logprobs" else "all", "threshold": c.threshold,
                "decoding": {"max_new_tokens": c.max_new_tokens, "do_sample": False},
                "trust_remote_code": bool(dict(c.engine_options).get("trust_remote_code")),
                "scorer": self.settings()} | extra

    def features(self, base=None):
        """Features of the annotated dataset: ``base`` (the input's features) plus the score columns.

        Pass them to ``map`` so every column is typed even when a batch is all null:
        ``ds.map(scorer, batched=True, features=scorer.features(ds.features))``.
        """
        from datasets import Features

        return Features(dict(base or {}) | dict(output_features(self.spec)))

    # ---- judging ---------------------------------------------------------------------------------------------------
    def calibration(self, subgoals: Sequence[Subgoal] | None = None) -> dict[str, float]:
        """``+cal`` offsets by :func:`~goalcover_hf.prompts.subgoal_text`, measured once per process for each subgoal on
        content-free samples, through the pair cache (so map workers read them back)."""
        return self._calibration.by_text(list(subgoals or self.spec.subgoals))

    def sample_budget(self, subgoals: Sequence[Subgoal] | None = None) -> int | None:
        """Tokens a sample may take in this scorer's prompts (None: the context is unknown; nothing is cut)."""
        subgoals = list(subgoals or self.spec.subgoals)
        key = tuple(subgoal_text(s) for s in subgoals)
        if key not in self._budgets:
            c = self.config
            replies = c.max_new_tokens if c.mode == "generate" or c.explain != "none" else 1
            chats = fixed_chats(self.raw, c.method, c.explain, subgoals)
            self._budgets[key] = sample_budget(self.counter, chats, replies)
        return self._budgets[key]

    def fit_samples(self, samples: Sequence[str], subgoals: Sequence[Subgoal] | None = None) -> list[tuple[str, int]]:
        """``(text the judge reads, tokens cut)`` per sample: escaped, and over-long samples lose their middle to a
        marker line (see :mod:`goalcover_hf.truncation`). The pair cache key hashes this text."""
        budget = self.sample_budget(subgoals)
        return [fit_text(escape_sample(s), budget, self.counter) for s in samples]

    def judge_texts(self, samples: Sequence[str], subgoals: Sequence[Subgoal] | None = None,
                    explain: Iterable[tuple[int, str]] | None = None) -> list[list[Judgement]]:
        """Judge rendered sample texts against subgoals with the scorer's method; returns ``[sample][subgoal]``.

        Samples longer than the judge's context are cut in the middle first (a warning says how many). Pairs
        already in the pair cache are read back (the model is not loaded when all are); the others are computed in
        batches, each stored as soon as it is done.

        Args:
            explain (*optional*): ``(sample index, subgoal id)`` pairs to explain, and no others, instead of the
                pairs the ``explain`` setting picks (``logprobs`` mode). A sample's pairs share one reading of it.
        """
        subgoals = list(subgoals or self.spec.subgoals)
        if explain is not None:
            where = {sub.id: j for j, sub in enumerate(subgoals)}
            explain = set(explain)
            unknown = sorted({sid for _, sid in explain} - set(where))
            if unknown:
                raise GoalcoverError(f"explain: subgoal(s) {unknown} are not among those judged ({sorted(where)})")
            explain = {(int(i), where[sid]) for i, sid in explain}
        fitted = self.fit_samples(samples, subgoals)
        cut = sum(1 for _, n in fitted if n)
        if cut:
            logger.warning("%d of %d samples were longer than the judge's context (%s tokens) and were cut in the "
                           "middle (%s)", cut, len(fitted), self.context_tokens, MARKER.format(n="N"))
        return self._judge.judge_texts([text for text, _ in fitted], subgoals, explain=explain)

    # ---- datasets.map entry point ------------------------------------------------------------------------------------
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

        columns = list(batch)
        n = len(next(iter(batch.values()))) if batch else 0
        renderer = RowRenderer(columns=columns, template=self.config.template)
        texts, errors = {}, {}
        for k in range(n):
            try:
                texts[k] = renderer.render({c: batch[c][k] for c in columns})
            except RowFormatError as err:
                errors[k] = f"row {indices[k]}" if indices is not None else f"row {k} of this batch"
                errors[k] += f": {err}"
        ok = list(texts)
        fitted = self.fit_samples([texts[k] for k in ok]) if ok else []
        judged = dict(zip(ok, self._judge.judge_texts([t for t, _ in fitted], self.spec.subgoals) if ok else []))
        judged |= {k: [Judgement(error=msg) for _ in self.spec.subgoals] for k, msg in errors.items()}
        cut = dict(zip(ok, (c for _, c in fitted)))
        # Arrow-typed Series keep their type even when a batch is all null (plain lists would infer "null").
        out = {col: pd.Series([getattr(judged[k][j], field) for k in range(n)],
                              dtype=pd.ArrowDtype(arrow_type(FIELD_TYPES[field])))
               for j, sub in enumerate(self.spec.subgoals) for field, col in score_columns(sub.id).items()}
        out[TRUNCATED_COLUMN] = pd.Series([cut.get(k, 0) for k in range(n)],
                                          dtype=pd.ArrowDtype(arrow_type(TRUNCATED_TYPE)))
        return out


_SCORERS: dict[str, Scorer] = {}


def score(batch: Mapping[str, list], indices: Sequence[int] | None = None, *, spec, model: str = "embedded", **options):
    """Function form of :class:`Scorer` for ``ds.map(goalcover.score, batched=True, fn_kwargs={...})``.

    Pass ``spec`` as a :class:`GoalSpec` (not a path) so that editing the spec changes the map's fingerprint.

    Example:
        >>> ds.map(goalcover.score, batched=True, fn_kwargs={"spec": GoalSpec.load("goal.yaml"), "model": "embedded"})
    """
    scorer = Scorer(spec, model, **options)
    return _SCORERS.setdefault(repr(asdict(scorer.config)), scorer)(batch, indices)
