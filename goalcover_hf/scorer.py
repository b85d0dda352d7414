"""Scoring: one alignment score and explanation per (sample, subgoal), as a ``datasets.map`` function.

A :class:`Scorer` is a config; the model is a resource. The scorer pickles as its config only (spec, model identity,
prompt version, mode, judging method, decoding settings), so ``datasets`` fingerprints it stably and reuses its cache,
and changing any of those recomputes. The engine loads lazily, once per process. The judging methods themselves (the
arithmetic over one or more prompts) live in :mod:`goalcover_hf.judging`; this module asks the engine.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, Field, ValidationError

from .cache import PairCache, pair_key
from .formats import RowFormatError, RowRenderer
from .logging import get_logger
from .engines import Engine, EngineMisconfigured, engine_options as check_engine_options, resolve_engine_model
from .prompts import load_prompt
from .spec import GoalSpec, Subgoal
from .truncation import MARKER, fit_text, sample_budget

logger = get_logger(__name__)

MODES = ("generate", "logprobs")
# logprobs: reads each sample once for all subgoals and decodes only the explanations gap analysis needs; see README
# "Scoring" for the measurements behind this default.
DEFAULT_MODE = "logprobs"
EXPLAIN = ("low", "all", "none")
SCORE_CHOICES = ("1", "2", "3", "4", "5")
VERDICT_CHOICES = ("Yes", "No")  # one token each in the tokenizers tried (SmolLM2, Qwen2.5)
DEFAULT_METHOD = "expected"  # judging.DEFAULT_METHOD, repeated here so importing the scorer does not import judging
DEFAULT_THRESHOLD = 4  # a sample supports a subgoal when it scores at least this
EXPLANATION_CHARS = 160
COLUMN_PREFIX = "gc_"
TRUNCATED_COLUMN = "gc_truncated_tokens"  # per row: tokens cut from the middle to fit the judge's context (0: none)
SAMPLE_END = "SAMPLE>>>"  # closes the prompt's data block (prompts/score_v1.j2); a row must not close it early


class JudgementJSON(BaseModel):
    """What the judge must produce in ``generate`` mode (explanation first: reasoning before the verdict)."""

    explanation: str = Field(max_length=EXPLANATION_CHARS)
    score: Literal[1, 2, 3, 4, 5]


class VerdictJudgementJSON(BaseModel):
    """``generate`` mode of the ``verdict_first`` method: the yes/no verdict comes before the score."""

    verdict: Literal["yes", "no"]
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


def subgoal_text(sub: Subgoal) -> str:
    """The parts of a subgoal the judge reads (its id does not change a judgement)."""
    import json

    # mid is read too; appended only when set, so keys of subgoals without one stay those written before it existed
    return json.dumps([sub.name, sub.description, sub.low, sub.high] + ([sub.mid] if sub.mid else []),
                      ensure_ascii=False)


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
    feats[TRUNCATED_COLUMN] = Value("int32")
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
    method: str = DEFAULT_METHOD  # a judging.METHODS name, optionally "+cal"; configs pickled before it read "expected"


class Scorer:
    """Callable for ``Dataset.map(scorer, batched=True)`` that adds per-subgoal score columns.

    Args:
        spec: a :class:`GoalSpec` or the path of a spec YAML file.
        model: ``"embedded"`` (default), a Hugging Face id, a local folder or a ``.gguf`` file.
        mode: ``"logprobs"`` (default): score from the next-token distribution over "1".."5" (argmax, plus its expected value),
            explanations generated only where ``explain`` asks; ``"generate"``: Outlines JSON {explanation, score}
            per pair (the paper's method, slower).
        explain: in ``logprobs`` mode, which pairs get an explanation: ``"low"`` (score below ``threshold``, what gap
            analysis reads), ``"all"`` or ``"none"``.
        threshold: score at which a sample supports a subgoal.
        template: Jinja template turning a row into text; by default the row layout is detected from its columns.
        cache: the pair cache: ``None`` (default: ``cache_dir()/pairs.sqlite``), a SQLite file path, or ``False``
            for none. Judgements found there are not recomputed; each computed batch is stored as soon as it is done.
        engine: ``"transformers"`` (default), ``"llamacpp"`` (a .gguf or ``"embedded"``) or ``"openai"`` (a server;
            ``model`` is its served model name, optional when it serves one).
        base_url: the server of ``engine="openai"``, e.g. ``http://127.0.0.1:8000/v1``.
        engine_options: more engine settings, e.g. ``{"max_in_flight": 32, "api_key_env": "MY_KEY"}`` for a server
            (see :mod:`goalcover_hf.engines`).
        method: how the judge's answers become a score (:mod:`goalcover_hf.judging`): ``"expected"`` (default: one
            prompt per pair as described under ``mode``), ``"score"``, ``"no_anchors"``, ``"contrastive"``,
            ``"consistency"``, ``"verdict_first"``, ``"subgoal_first"``; any of them suffixed ``"+cal"`` subtracts,
            per subgoal, the value the judge gives to content-free samples (measured once per scorer and process,
            through the pair cache, and recorded by :meth:`provenance`). In ``logprobs`` mode explanations follow the
            method's score. All are defined in both modes; in ``generate`` mode ``expected`` is the generated score.
        trust_remote_code: let a transformers model folder run its own Python code (``auto_map``). Off unless you
            pass True; only for code you have read.
        max_context_tokens: tokens a prompt and its reply may take, below the model's own context (memory, speed;
            for a server that does not report its context, what it accepts).

    Rows longer than the judge's context are cut in the middle: the head and tail are kept and a line
    ``[... N tokens cut ...]`` replaces the rest, so the judge sees that text is missing. The column
    ``gc_truncated_tokens`` says per row how many tokens were cut (0: none). See :mod:`goalcover_hf.truncation`.

    Example:
        >>> scorer = Scorer("goal.yaml")
        >>> ds = ds.map(scorer, batched=True, batch_size=8)
        >>> remote = Scorer("goal.yaml", "Qwen/Qwen2.5-7B-Instruct", engine="openai", base_url="http://127.0.0.1:8000/v1")
        >>> calibrated = Scorer("goal.yaml", "judge.gguf", method="expected+cal")
    """

    def __init__(
        self,
        spec: GoalSpec | str,
        model: str = "embedded",
        *,
        mode: str = DEFAULT_MODE,
        explain: str = "low",
        threshold: int = DEFAULT_THRESHOLD,
        template: str | None = None,
        engine: "str | Engine" = "transformers",
        max_new_tokens: int = 96,
        batch_size: int = 8,
        cache: str | os.PathLike | bool | None = None,
        base_url: str | None = None,
        engine_options: Mapping[str, Any] | None = None,
        method: str = DEFAULT_METHOD,
        trust_remote_code: bool = False,
        max_context_tokens: int | None = None,
    ):
        from .judging import parse_method, prompt_for

        if not isinstance(spec, GoalSpec):
            spec = GoalSpec.load(spec)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if explain not in EXPLAIN:
            raise ValueError(f"explain must be one of {EXPLAIN}, got {explain!r}")
        if not 1 <= int(threshold) <= 5:
            raise ValueError(f"threshold must be within 1..5, got {threshold}")
        parse_method(method)  # "+calx" (references from other domains) is the benchmark's, not a scorer option
        self._engine = None
        if not isinstance(engine, str):  # an engine instance (tests, or one already loaded): used as it is
            self._engine, engine, model = engine, engine.name, engine.identity
        extra = {"trust_remote_code": True if trust_remote_code else None, "max_context_tokens": max_context_tokens}
        extra["base_url"] = base_url
        given = {**(engine_options or {}), **{k: v for k, v in extra.items() if v is not None}}
        # an engine instance need not be a registered backend: its options are recorded as given, not checked
        options = tuple(sorted(given.items())) if self._engine else check_engine_options(engine, given)
        model, identity = (model, model) if self._engine else resolve_engine_model(model, engine, options)
        self.spec = spec
        self._cache = str(cache) if isinstance(cache, os.PathLike) else cache
        self._pair_cache = None
        self._offsets: dict[str, float] = {}  # calibration offsets by subgoal_text, measured on first use
        self._budgets: dict[tuple, int | None] = {}
        self.config = ScorerConfig(
            spec_yaml=spec.to_yaml(),
            spec_hash=spec.content_hash(),
            model=model,
            model_identity=identity,
            engine=engine,
            prompt_version=load_prompt(prompt_for(method)).version,
            mode=mode,
            explain=explain,
            threshold=int(threshold),
            template=template,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            engine_options=options,
            method=method,
        )

    def init_kwargs(self) -> dict[str, Any]:
        """Arguments that rebuild this scorer, e.g. in each Ray actor: ``fn_constructor_kwargs=scorer.init_kwargs()``."""
        c = self.config
        options = dict(c.engine_options)
        return {"spec": self.spec, "model": c.model, "mode": c.mode, "explain": c.explain, "threshold": c.threshold,
                "template": c.template, "engine": c.engine, "max_new_tokens": c.max_new_tokens,
                "batch_size": c.batch_size, "base_url": options.pop("base_url", None), "engine_options": options,
                "cache": self._cache, "method": c.method}

    def settings(self) -> dict[str, Any]:
        """Every setting of this scorer but its spec and cache, JSON-ready: ``Scorer(spec, **settings)`` rebuilds it.

        A run folder keeps them (``run.json`` ``"scorer"``), so later commands judge exactly as ``score`` did.
        """
        c = self.config
        return {"model": c.model, "engine": c.engine, "engine_options": dict(c.engine_options), "mode": c.mode,
                "explain": c.explain, "threshold": c.threshold, "template": c.template,
                "max_new_tokens": c.max_new_tokens, "batch_size": c.batch_size, "method": c.method}

    # Pickle as config only: the engine is a per-process resource, never part of the fingerprint.
    # The cache location is kept too (it changes where judgements are read, not what they are).
    def __getstate__(self):
        return {"config": asdict(self.config), "cache": self._cache}

    def __setstate__(self, state):
        import yaml

        config = state["config"]
        self.config = ScorerConfig(**{**config, "engine_options": tuple(map(tuple, config.get("engine_options", ())))})
        self._cache = state.get("cache")
        self._engine = None
        self._pair_cache = None
        self._offsets = {}
        self._budgets = {}
        self.spec = GoalSpec.model_validate(yaml.safe_load(self.config.spec_yaml))

    @property
    def engine(self):
        from .engines import get_engine

        if self._engine is not None:
            return self._engine
        return get_engine(self.config.model, self.config.engine, None, self.config.engine_options)

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
    def is_embedded(self) -> bool:
        return self.config.model == "embedded" or "SmolLM2-135M" in self.config.model_identity

    def provenance(self) -> dict[str, Any]:
        """What the card records about how the scores were made (a ``+cal`` method measures its offsets here if no
        judgement has yet)."""
        c = self.config
        extra = {}
        if self._calibrated:
            from .judging import CONTENT_FREE

            offsets = self.calibration()
            extra["calibration"] = {"references": list(CONTENT_FREE),
                                    "offsets": {s.id: round(offsets[subgoal_text(s)], 4) for s in self.spec.subgoals}}
        return {
            "goal": self.spec.goal,
            "spec_hash": c.spec_hash,
            "model": c.model_identity,
            "engine": c.engine,
            "prompt_version": c.prompt_version,
            "mode": c.mode,
            "method": c.method,
            "explain": c.explain if c.mode == "logprobs" else "all",
            "threshold": c.threshold,
            "decoding": {"max_new_tokens": c.max_new_tokens, "do_sample": False},
            "trust_remote_code": bool(dict(c.engine_options).get("trust_remote_code")),
            "scorer": self.settings(),
        } | extra

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
    @property
    def prompt_name(self) -> str:
        """The template this scorer's method judges and explains with."""
        from .judging import prompt_for

        return prompt_for(self.config.method)

    def chat(self, sample: str, sub: Subgoal, ask: str, prompt: str | None = None, **values) -> list[dict]:
        """The chat asking ``ask`` (a ``ask_*`` part) about one pair: the template's other parts in file order."""
        template = load_prompt(prompt or self.prompt_name)
        fields = {"sample": sample, "name": sub.name, "description": sub.description, "low": sub.low, "mid": sub.mid,
                  "high": sub.high}
        body = [template.section(part, **fields) for part in _body_parts(template)]
        user = "\n\n".join(body + [template.section(ask, **values)])
        return [{"role": "system", "content": template.section("system")}, {"role": "user", "content": user}]

    # ---- judging -------------------------------------------------------------------------------------------------
    def key_settings(self) -> dict[str, Any]:
        """What, besides the subgoal and sample texts, decides a judgement: the pair cache's key settings."""
        settings = self._prompt_settings(self.prompt_name, self.config.explain)
        if self.config.method != DEFAULT_METHOD:  # the default keeps the keys written before methods existed
            settings["method"] = self.config.method
        return settings

    def _prompt_settings(self, prompt: str, explain: str) -> dict[str, Any]:
        c = self.config
        # the scorer's own prompt: the version in its config (its fingerprint); another: that template's
        version = c.prompt_version if prompt == self.prompt_name else load_prompt(prompt).version
        settings = {"model": c.model_identity, "engine": c.engine, "prompt_version": version,
                    "mode": c.mode, "max_new_tokens": c.max_new_tokens, "do_sample": False}
        if c.mode == "logprobs":
            settings["explain"] = explain
            if explain == "low":
                settings["threshold"] = c.threshold
        return settings

    @property
    def pair_cache(self) -> PairCache | None:
        if self._cache is False:
            return None
        if self._pair_cache is None:
            self._pair_cache = PairCache(None if self._cache in (None, True) else self._cache)
        return self._pair_cache

    @property
    def raw(self) -> "RawJudge":
        """This scorer's judgements of one prompt with no method on top and no explanations: what
        :mod:`goalcover_hf.judging` builds its methods on (cached in the pair cache like any judgement)."""
        return RawJudge(self)

    @property
    def _calibrated(self) -> bool:
        return self.config.method.endswith("+cal")

    def calibration(self, subgoals: Sequence[Subgoal] | None = None) -> dict[str, float]:
        """``+cal`` offsets by :func:`subgoal_text`: measured once per scorer for each subgoal, on content-free samples.

        Example:
            >>> Scorer(spec, "judge.gguf", method="expected+cal").calibration()
            {'["States a dose", ...]': 0.82, ...}
        """
        from .judging import calibrate, parse_method

        subgoals = list(subgoals or self.spec.subgoals)
        missing = list({subgoal_text(s): s for s in subgoals if subgoal_text(s) not in self._offsets}.values())
        if missing:
            # offsets come back by id; ids need not be unique among reworded subgoals, so number them here
            numbered = [s.model_copy(update={"id": f"s{k}"}) for k, s in enumerate(missing)]
            offsets = calibrate(self.raw, numbered, parse_method(self.config.method)[0])
            self._offsets.update({subgoal_text(s): offsets[f"s{k}"] for k, s in enumerate(missing)})
        return {subgoal_text(s): self._offsets[subgoal_text(s)] for s in subgoals}

    def sample_budget(self, subgoals: Sequence[Subgoal] | None = None) -> int | None:
        """Tokens a sample may take in this scorer's prompts (None: the context is unknown; nothing is cut)."""
        from .judging import DEFAULT_PROMPT

        subgoals = list(subgoals or self.spec.subgoals)
        key = tuple((s.name, s.description, s.low, s.mid, s.high) for s in subgoals)
        if key not in self._budgets:
            c = self.config
            chats = []
            # the method's prompt and the plain one (methods build on it), with every question either may ask
            for prompt in dict.fromkeys((self.prompt_name, DEFAULT_PROMPT)):
                parts = load_prompt(prompt).parts()
                for sub in subgoals:
                    if c.mode == "generate":
                        chats.append(self.chat("", sub, "ask_json", prompt=prompt))
                    elif "ask_verdict" in parts:
                        follow = load_prompt(prompt).section("ask_score_after_verdict")
                        chats.append(self.chat("", sub, "ask_verdict", prompt=prompt)
                                      + [{"role": "assistant", "content": "Yes"}, {"role": "user", "content": follow}])
                    else:
                        chats.append(self.chat("", sub, "ask_digit", prompt=prompt))
                    if c.mode == "logprobs" and c.explain != "none":
                        chats.append(self.chat("", sub, "ask_explanation", prompt=prompt, score=5))
            explains = c.mode == "generate" or c.explain != "none"
            self._budgets[key] = sample_budget(self.counter, chats, c.max_new_tokens if explains else 1)
        return self._budgets[key]

    def fit_samples(self, samples: Sequence[str], subgoals: Sequence[Subgoal] | None = None) -> list[tuple[str, int]]:
        """``(text the judge reads, tokens cut)`` per sample: over-long samples lose their middle to a marker line
        (see :mod:`goalcover_hf.truncation`); the others are unchanged, with 0. The pair cache key hashes this text."""
        budget = self.sample_budget(subgoals)
        # A row that writes the data block's end marker must not close the block early (prompt injection).
        return [fit_text(s.replace(SAMPLE_END, "SAMPLE >>>"), budget, self.counter) for s in samples]

    def judge_texts(self, samples: Sequence[str], subgoals: Sequence[Subgoal] | None = None) -> list[list[Judgement]]:
        """Judge rendered sample texts against subgoals with the scorer's method; returns ``[sample][subgoal]``.

        Samples longer than the judge's context are cut in the middle first (a warning says how many). Pairs
        already in the pair cache are read back (the model is not loaded when all are); the others are computed in
        batches, each stored as soon as it is done.
        """
        subgoals = list(subgoals or self.spec.subgoals)
        fitted = self.fit_samples(samples, subgoals)
        cut = sum(1 for _, n in fitted if n)
        if cut:
            logger.warning("%d of %d samples were longer than the judge's context (%s tokens) and were cut in the "
                           "middle (%s)", cut, len(fitted), self.context_tokens, MARKER.format(n="N"))
        return self._judge_fitted([text for text, _ in fitted], subgoals)

    def _judge_fitted(self, samples: Sequence[str], subgoals: list[Subgoal]) -> list[list[Judgement]]:
        if self.config.method == DEFAULT_METHOD:
            return self._judge_prompt(samples, subgoals, self.prompt_name, self.config.explain)
        return self._judge_method(samples, subgoals)

    def _keys(self, settings, samples, subgoals, results) -> list[list[str]]:
        """Pair-cache keys of every pair; fills ``results`` with the judgements found there."""
        texts = [subgoal_text(sub) for sub in subgoals]
        keys = [[pair_key(settings, t, sample) for t in texts] for sample in samples]
        hits = self.pair_cache.get_many(k for row in keys for k in row)
        for i, row in enumerate(keys):
            for j, key in enumerate(row):
                if key in hits:
                    results[i][j] = Judgement(**hits[key])
        return keys

    def _judge_method(self, samples, subgoals) -> list[list[Judgement]]:
        """A method other than the default: judging's arithmetic over raw judgements, then calibration, then the
        explanations the method's score asks for; the result is cached under settings that name the method."""
        from .judging import apply_calibration, judge, parse_method

        results: list[list[Judgement | None]] = [[None] * len(subgoals) for _ in samples]
        cache, settings, keys = self.pair_cache, self.key_settings(), None
        if cache is not None:
            keys = self._keys(settings, samples, subgoals, results)
        todo = [i for i in range(len(samples)) if any(r is None for r in results[i])]
        if not todo:
            return results
        base, cal = parse_method(self.config.method)
        judged = judge(self.raw, [samples[i] for i in todo], subgoals, base)
        if cal:
            offsets = self.calibration(subgoals)
            judged = apply_calibration(judged, subgoals, {s.id: offsets[subgoal_text(s)] for s in subgoals})
        pairs = [(i, j) for i in todo for j in range(len(subgoals)) if results[i][j] is None]
        for i, row in zip(todo, judged):
            for j, judgement in enumerate(row):
                if results[i][j] is None:
                    results[i][j] = judgement
        if self.config.mode == "logprobs":
            wanted = [(i, j) for i, j in pairs if results[i][j].score is not None
                      and self._wants_explanation(results[i][j].score, self.config.explain)]
            if wanted:
                self._explain(self.engine, samples, subgoals, self._groups(wanted, self.prompt_name),
                              self.prompt_name, results)
        if cache is not None:
            done = {keys[i][j]: asdict(results[i][j]) for i, j in pairs
                    if self._is_final(results[i][j], self.config.explain)}
            cache.put_many(done, settings)
        return results

    def _judge_prompt(self, samples, subgoals, prompt: str, explain: str) -> list[list[Judgement]]:
        """What the engine says for each pair under one prompt template, through the pair cache."""
        results: list[list[Judgement | None]] = [[None] * len(subgoals) for _ in samples]
        cache, settings, keys = self.pair_cache, self._prompt_settings(prompt, explain), None
        if cache is not None:
            keys = self._keys(settings, samples, subgoals, results)
        todo = [(i, j) for i in range(len(samples)) for j in range(len(subgoals)) if results[i][j] is None]
        for chunk in self._chunks(todo):
            if self.config.mode == "generate":
                self._generate(samples, subgoals, chunk, results, prompt)
            else:
                self._logprobs(samples, subgoals, chunk, results, prompt, explain)
            if cache is not None:
                done = {keys[i][j]: asdict(results[i][j]) for i, j in chunk if self._is_final(results[i][j], explain)}
                cache.put_many(done, settings)
        return results

    def _chunks(self, todo: list[tuple[int, int]]):
        size = self.config.batch_size
        if self.config.mode == "generate":
            for start in range(0, len(todo), size):
                yield todo[start : start + size]
            return
        # logprobs: whole samples per chunk, so each sample's shared prefix is run once for all its subgoals.
        samples = list(dict.fromkeys(i for i, _ in todo))
        for start in range(0, len(samples), size):
            chosen = set(samples[start : start + size])
            yield [(i, j) for i, j in todo if i in chosen]

    @staticmethod
    def _groups(pairs: list[tuple[int, int]], prompt: str) -> list[list[tuple[int, int]]]:
        """Pairs grouped by what their chats share after the instructions: the sample when the template puts it
        first (computed once for all its subgoals), else the subgoal."""
        by = 0 if _body_parts(load_prompt(prompt))[0] == "sample" else 1
        groups: dict[int, list[tuple[int, int]]] = {}
        for pair in pairs:
            groups.setdefault(pair[by], []).append(pair)
        return list(groups.values())

    def _wants_explanation(self, score: int, explain: str) -> bool:
        return explain == "all" or (explain == "low" and score < self.config.threshold)

    def _is_final(self, j: Judgement, explain: str) -> bool:
        # Errors and explanations that could not be had are retried on the next run, not cached.
        if j.error is not None:
            return False
        if self.config.mode == "generate" or j.explanation is not None:
            return True
        return not self._wants_explanation(j.score, explain)

    def _generate(self, samples, subgoals, chunk, results, prompt):
        schema = VerdictJudgementJSON if "ask_verdict" in load_prompt(prompt).parts() else JudgementJSON
        chats = [self.chat(samples[i], subgoals[j], "ask_json", prompt=prompt) for i, j in chunk]
        raws = self._safe_generate(chats, schema, len(chunk))
        for (i, j), raw in zip(chunk, raws):
            results[i][j] = parse_judgement(raw, schema)

    def _digit_probs(self, engine, samples, subgoals, groups, prompt) -> list[list[list[float] | None]]:
        """Each pair's distribution over "1".."5", ``[group][member]`` (None where the engine could not score it)."""
        if "ask_verdict" not in load_prompt(prompt).parts():
            chats = [[self.chat(samples[i], subgoals[j], "ask_digit", prompt=prompt) for i, j in g] for g in groups]
            return engine.choice_probs_shared(chats, SCORE_CHOICES)
        # verdict_first: P(verdict), then the digits after each verdict said; mixed by total probability.
        chats = [[self.chat(samples[i], subgoals[j], "ask_verdict", prompt=prompt) for i, j in g] for g in groups]
        verdicts = engine.choice_probs_shared(chats, VERDICT_CHOICES)
        follow = load_prompt(prompt).section("ask_score_after_verdict")
        branches = engine.choice_probs_shared(
            [[c + [{"role": "assistant", "content": v}, {"role": "user", "content": follow}]
              for c in g for v in VERDICT_CHOICES] for g in chats], SCORE_CHOICES)
        out = []
        for vs, bs in zip(verdicts, branches):
            row = []
            for m, pv in enumerate(vs):
                after = bs[len(VERDICT_CHOICES) * m : len(VERDICT_CHOICES) * (m + 1)]
                row.append(None if pv is None or any(b is None for b in after) else
                           [sum(pv[v] * after[v][d] for v in range(len(VERDICT_CHOICES))) for d in range(5)])
            out.append(row)
        return out

    def _logprobs(self, samples, subgoals, chunk, results, prompt, explain):
        groups = self._groups(chunk, prompt)
        engine = self.engine  # a model that cannot load is the user's to fix: let that error through
        try:
            probs = self._digit_probs(engine, samples, subgoals, groups, prompt)
        except EngineMisconfigured:
            raise  # every pair would fail the same way: stop and say why
        except Exception as err:  # one failing batch must not end a long map: mark its pairs and go on
            logger.warning("scoring failed for a batch of %d pairs: %s: %s", len(chunk), type(err).__name__, err)
            for i, j in chunk:
                results[i][j] = Judgement(error=f"scoring failed ({type(err).__name__}: {err})")
            return
        for g, ps in zip(groups, probs):
            for (i, j), p in zip(g, ps):
                if p is None:  # the engine could not score this pair (a request that failed after its retries)
                    results[i][j] = Judgement(error="scoring failed (see log)")
                    continue
                score = max(range(5), key=lambda k: p[k]) + 1
                expected = sum((k + 1) * pk for k, pk in enumerate(p))
                results[i][j] = Judgement(score=score, expected=float(expected))
        wanted = [[(i, j) for i, j in g if results[i][j].score is not None
                   and self._wants_explanation(results[i][j].score, explain)] for g in groups]
        self._explain(engine, samples, subgoals, [g for g in wanted if g], prompt, results)

    def _explain(self, engine, samples, subgoals, groups, prompt, results) -> None:
        """Add an explanation of its score to each judgement of ``groups`` (they keep none where it fails)."""
        if not groups:
            return
        chats = [[self.chat(samples[i], subgoals[j], "ask_explanation", prompt=prompt, score=results[i][j].score)
                  for i, j in g] for g in groups]
        try:
            raws = engine.generate_json_shared(chats, ExplanationJSON, self.config.max_new_tokens)
        except EngineMisconfigured:
            raise
        except Exception as err:  # the scores stand; only the explanations could not be had
            logger.warning("explanations failed for %d pairs: %s: %s", sum(map(len, groups)), type(err).__name__, err)
            return
        for g, rs in zip(groups, raws):
            for (i, j), raw in zip(g, rs):
                try:
                    results[i][j].explanation = ExplanationJSON.model_validate_json(raw).explanation.strip()
                except (ValidationError, TypeError) as err:
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
        fitted = self.fit_samples([texts[k] for k in ok]) if ok else []
        judged = self._judge_fitted([text for text, _ in fitted], list(self.spec.subgoals)) if ok else []
        truncated = [0] * n
        for pos, k in enumerate(ok):
            truncated[k] = fitted[pos][1]
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
        out[TRUNCATED_COLUMN] = pd.Series(truncated, dtype=pd.ArrowDtype(pa.int32()))
        return out


def parse_judgement(raw: str | None, schema: type[BaseModel] = JudgementJSON) -> Judgement:
    """Validate one generated JSON judgement; invalid output becomes an ``error``, never a score."""
    if raw is None:
        return Judgement(error="generation failed (see log)")
    try:
        parsed = schema.model_validate_json(raw)
    except ValidationError as err:
        first = err.errors()[0]
        snippet = raw if len(raw) <= 80 else raw[:77] + "..."
        return Judgement(error=f"invalid model output ({first['msg']}): {snippet!r}")
    return Judgement(score=parsed.score, expected=float(parsed.score), explanation=parsed.explanation.strip())


def _body_parts(template) -> list[str]:
    """The parts of a score template that every chat shows, in file order: all but the system part and the asks."""
    return [p for p in template.parts() if p != "system" and not p.startswith("ask_")]


class RawJudge:
    """A scorer's judgements under one prompt (``prompt=``, default ``score_v1``), without its method or
    explanations; the pair cache keys them by that prompt's version. See :attr:`Scorer.raw`."""

    def __init__(self, scorer: Scorer):
        self.scorer, self.config = scorer, scorer.config

    def judge_texts(self, samples: Sequence[str], subgoals: Sequence[Subgoal] | None = None,
                    prompt: str | None = None) -> list[list[Judgement]]:
        from .judging import DEFAULT_PROMPT

        subgoals = list(subgoals or self.scorer.spec.subgoals)
        # texts the scorer already fitted come back unchanged; the benchmark's own texts are fitted here
        fitted = [text for text, _ in self.scorer.fit_samples(samples, subgoals)]
        return self.scorer._judge_prompt(fitted, subgoals, prompt or DEFAULT_PROMPT, "none")


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
