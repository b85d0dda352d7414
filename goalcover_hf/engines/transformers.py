"""The default engine: a causal LM in transformers, constrained by Outlines.

The ``*_shared`` methods pay for each shared beginning once. Chats are tokenized whole (so the ids are exactly those
a plain forward would read); the token-level common prefix of a group (system instructions + one sample) is run once
and its key/value cache reused by every member's suffix (one subgoal + the score cue); the common prefix of all groups
(the system instructions) is run once per engine and kept, and so are recent samples' states, which the
explanation prompts (same sample, another cue) start from. Suffixes of all groups are then batched together, sorted
by length, with each row's prefix cache left-padded to the batch's longest and masked.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from pydantic import BaseModel

from ..errors import GoalcoverError
from ..logging import get_logger
from ..models import local_folder, resolve_model
from .base import THREADS, Chat, Engine, EngineOption, _regroup, default_threads
from .registry import register_engine
from .tokens import TokenizerCounter, context_of, lowest

logger = get_logger(__name__)

MIN_SHARED_TOKENS = 8  # below this a shared prefix is not worth a separate forward
BATCH_TOKENS = 8192  # rows x (longest prefix + longest suffix) per suffix batch: bounds the merged cache's memory
KEEP_TOKENS = 8192  # prefix tokens whose key/value states are kept between calls
MAX_BATCH = 64


@dataclass
class _Prefix:
    """One group's shared beginning: its ids and, once run, its key/value tensors per layer ([1, heads, len, dim])."""

    ids: list[int]
    kv: list[tuple] | None = None


@dataclass
class _Row:
    group: int
    member: int
    prefix: _Prefix
    suffix: list[int]


def _common_len(seqs: Sequence[Sequence[int]]) -> int:
    first, n = seqs[0], min(len(s) for s in seqs)
    for other in seqs[1:]:
        k = 0
        while k < n and other[k] == first[k]:
            k += 1
        n = k
    return n


class RemoteCodeRefused(GoalcoverError):
    """The model needs its own Python code, and the user did not allow it."""


def pretrained(auto_class, source: str, identity: str, trust_remote_code: bool = False, **kwargs):
    """``auto_class.from_pretrained`` that runs a model's own code only when ``trust_remote_code`` is True.

    Passing False (never None) also keeps transformers from asking on the terminal.
    """
    try:
        return auto_class.from_pretrained(source, trust_remote_code=bool(trust_remote_code), **kwargs)
    except ValueError as err:
        if trust_remote_code or "trust_remote_code" not in str(err):
            raise
        raise RemoteCodeRefused(
            f"{identity}: this model ships its own Python code (auto_map in its config), and goalcover never runs a "
            "model's code unless told to. Read that code first; if you trust it, pass --trust-remote-code "
            "(Scorer(..., trust_remote_code=True))"
        ) from None


@register_engine("transformers")
class TransformersEngine(Engine):
    """Scores with a causal LM in transformers (CPU or GPU), JSON constrained by Outlines.

    Args:
        model: ``"embedded"``, a Hugging Face id (``id@revision``), a model folder or a ``.gguf`` file.
        threads: torch's intra-op threads (default: :func:`~goalcover_hf.engines.base.default_threads`).
        trust_remote_code: let the model folder's own Python code run (``auto_map``); only for code you have read.

    Example:
        >>> engine = TransformersEngine("HuggingFaceTB/SmolLM2-360M-Instruct")
        >>> engine.choice_probs([[{"role": "user", "content": "Pick 1-5"}]], ["1", "2", "3", "4", "5"])
    """

    options = (
        THREADS,
        EngineOption("trust_remote_code", bool, "let a transformers model folder run its own Python code (auto_map "
                     "in its config); off by default: read that code first", default=False),
    )

    @classmethod
    def resolve(cls, model: str | None, options: dict[str, Any]) -> tuple[str, str]:
        return resolve_model(model).names

    @classmethod
    def counter(cls, model: str | None, options: dict[str, Any]) -> TokenizerCounter:
        """The model's tokenizer, read from where the engine reads it; context from its config (``max_position_
        embeddings`` or the like), lowered to the tokenizer's ``model_max_length`` and ``max_context_tokens``."""
        from transformers import AutoConfig, AutoTokenizer

        ref = resolve_model(model)
        source, trust = local_folder(ref), bool(options.get("trust_remote_code"))
        kwargs = {"revision": ref.revision} if ref.revision else {}
        config = pretrained(AutoConfig, source, ref.identity, trust, **kwargs)
        tokenizer = pretrained(AutoTokenizer, source, ref.identity, trust, **kwargs)
        return TokenizerCounter(tokenizer, lowest(context_of(config, tokenizer), options.get("max_context_tokens")))

    def __init__(self, model: str | None = "embedded", threads: int | None = None, trust_remote_code: bool = False):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.ref = resolve_model(model)
        self.identity = self.ref.identity
        # One process per core set: intra-op threads only; inter-op threads just contend for the same cores.
        torch.set_num_threads(threads or default_threads())
        source = local_folder(self.ref)
        kwargs = {"revision": self.ref.revision} if self.ref.revision else {}
        logger.info("loading %s", self.identity)
        self.tokenizer = pretrained(AutoTokenizer, source, self.identity, trust_remote_code, **kwargs)
        self.model = pretrained(AutoModelForCausalLM, source, self.identity, trust_remote_code, dtype=torch.float32,
                                **kwargs).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer.chat_template:
            raise GoalcoverError(f"{self.identity}: the tokenizer has no chat template; use an instruction-tuned model")
        self._outlines_model = None
        # transformers 5 renamed forward's `past_key_values` to `cache`; the cache object is updated in place either way.
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._kept: list[_Prefix] = []  # prefix states kept between calls: the system part, recent samples
        self.tokens_read = 0  # prompt tokens run through the model by the shared path (for benchmarks)

    def token_counter(self) -> TokenizerCounter:
        return TokenizerCounter(self.tokenizer, lowest(context_of(self.model.config, self.tokenizer),
                                                       self.max_context_tokens))

    def chat_text(self, chat: Chat) -> str:
        return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    @lru_cache(maxsize=8)
    def _generator(self, schema: type[BaseModel]):
        # Building the logits processor compiles the schema's automaton: do it once per schema.
        import outlines

        if self._outlines_model is None:
            self._outlines_model = outlines.from_transformers(self.model, self.tokenizer)
        return outlines.Generator(self._outlines_model, schema)

    def generate_json(self, chats: Sequence[Chat], schema: type[BaseModel], max_new_tokens: int) -> list[str]:
        import torch
        from outlines.inputs import Chat as OutlinesChat

        generator = self._generator(schema)
        with torch.inference_mode():
            out = generator.batch([OutlinesChat(list(c)) for c in chats], max_new_tokens=max_new_tokens, do_sample=False)
        return list(out)

    def choice_token_ids(self, choices: Sequence[str]) -> list[int]:
        ids = []
        for choice in choices:
            tokens = self.tokenizer.encode(choice, add_special_tokens=False)
            if len(tokens) != 1:
                raise GoalcoverError(f"{self.identity}: choice {choice!r} is not a single token")
            ids.append(tokens[0])
        return ids

    def choice_probs(self, chats: Sequence[Chat], choices: Sequence[str]) -> list[list[float]]:
        import torch

        ids = self.choice_token_ids(choices)
        texts = [self.chat_text(c) for c in chats]
        self.tokenizer.padding_side = "left"
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        # Left padding: count positions from each row's first real token, as generate() does.
        position_ids = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(**batch, position_ids=position_ids, logits_to_keep=1).logits[:, -1, :]
        return torch.softmax(logits[:, ids].float(), dim=-1).tolist()

    # ---- shared-prefix path --------------------------------------------------------------------------------------
    def choice_probs_shared(self, groups: Sequence[Sequence[Chat]], choices: Sequence[str]) -> list[list[list[float]]]:
        import torch

        logits = self.choice_logits_shared(groups, choices)
        return [torch.softmax(torch.tensor(g), dim=-1).tolist() if g else [] for g in logits]

    def choice_logits_shared(self, groups: Sequence[Sequence[Chat]], choices: Sequence[str]) -> list[list[list[float]]]:
        """Raw next-token logits of the ``choices`` tokens after each chat, computed with shared prefixes.

        They equal those of a plain full forward of each chat's text (up to float rounding): see the tests.
        """
        import torch

        ids = self.choice_token_ids(choices)
        out = [[None] * len(g) for g in groups]
        with torch.inference_mode():
            for batch in self._suffix_batches(self._plan(groups)):
                logits, _ = self._run_suffixes(batch)
                for row, values in zip(batch, logits[:, ids].float().tolist()):
                    out[row.group][row.member] = values
        return out

    def generate_json_shared(
        self, groups: Sequence[Sequence[Chat]], schema: type[BaseModel], max_new_tokens: int
    ) -> list[list[str]]:
        """Greedy schema-constrained decoding (Outlines' logits processor) continuing from the shared caches."""
        import torch

        processor = self._generator(schema).logits_processor
        eos = self.tokenizer.eos_token_id
        out = [[None] * len(g) for g in groups]
        with torch.inference_mode():
            for batch in self._suffix_batches(self._plan(groups)):
                logits, state = self._run_suffixes(batch, room=max_new_tokens)
                processor.reset()
                generated = torch.empty((len(batch), 0), dtype=torch.long)
                done = torch.zeros(len(batch), dtype=torch.bool)
                for _ in range(max_new_tokens):
                    # The processor reads each row's last token to advance its automaton (ignored on the first step).
                    last = generated if generated.shape[1] else torch.full((len(batch), 1), eos)
                    logits = processor(last, logits.clone())
                    nxt = logits.argmax(-1)
                    nxt[done] = eos
                    generated = torch.cat([generated, nxt[:, None]], dim=1)
                    done |= nxt == eos
                    if bool(done.all()):
                        break
                    logits = self._step(state, nxt)
                for row, seq in zip(batch, generated.tolist()):
                    if eos in seq:
                        seq = seq[: seq.index(eos)]
                    out[row.group][row.member] = self.tokenizer.decode(seq, skip_special_tokens=True)
        return out

    def _plan(self, groups: Sequence[Sequence[Chat]]) -> list[_Row]:
        """Tokenize every chat whole, find the shared prefixes and run them once; return one row per chat."""
        tok = self.tokenizer
        texts = [self.chat_text(c) for g in groups for c in g]
        flat = tok(texts, add_special_tokens=False)["input_ids"]
        per_group = _regroup(flat, groups)
        # Every member keeps at least one suffix token: its last position gives the logits.
        prefix_lens = [min(_common_len(g), min(len(s) for s in g) - 1) if g else 0 for g in per_group]
        heads = [g[0][:n] for g, n in zip(per_group, prefix_lens) if g]
        root_len = _common_len(heads) if heads else 0
        if root_len >= MIN_SHARED_TOKENS:
            self._forward_prefix(heads[0][:root_len])
        rows = []
        for gi, (g, n) in enumerate(zip(per_group, prefix_lens)):
            prefix = self._forward_prefix(g[0][:n]) if n >= MIN_SHARED_TOKENS else _Prefix([], None)
            rows.extend(_Row(gi, mi, prefix, seq[len(prefix.ids) :]) for mi, seq in enumerate(g))
        return rows

    def _forward_prefix(self, ids: list[int]) -> _Prefix:
        """The prefix state of ``ids``, starting from the longest kept prefix of it (the system part, or the same
        sample's state from the scoring call when explanations follow), and kept for later calls."""
        base = max((p for p in self._kept if len(p.ids) <= len(ids) and ids[: len(p.ids)] == p.ids),
                   key=lambda p: len(p.ids), default=None)
        if base is not None and len(base.ids) == len(ids):
            return base
        prefix = self._extend(ids, base)
        self._kept.append(prefix)
        # Keep the system part (the first entry) and the most recent samples, within a token budget.
        while len(self._kept) > 2 and sum(len(p.ids) for p in self._kept) > KEEP_TOKENS:
            del self._kept[1]
        return prefix

    def _extend(self, ids: list[int], base: _Prefix | None) -> _Prefix:
        import torch
        from transformers import DynamicCache

        start = len(base.ids) if base is not None else 0
        cache = DynamicCache(base.kv if base is not None else None, config=self.model.config)
        new = ids[start:]
        if new:
            with torch.inference_mode():
                self.model(
                    input_ids=torch.tensor([new]),
                    position_ids=torch.arange(start, len(ids))[None],
                    use_cache=True,
                    **{self._cache_kw: cache},
                    logits_to_keep=1,
                )
            self.tokens_read += len(new)
        return _Prefix(ids, [(layer.keys, layer.values) for layer in cache.layers])

    def _suffix_batches(self, rows: list[_Row]) -> list[list[_Row]]:
        # Sorting by prefix then suffix length keeps the left padding of both small.
        rows = sorted(rows, key=lambda r: (len(r.prefix.ids), len(r.suffix)))
        batches, current, width = [], [], 0
        for row in rows:
            need = max(width, len(row.prefix.ids) + len(row.suffix))
            if current and (len(current) >= MAX_BATCH or need * (len(current) + 1) > BATCH_TOKENS):
                batches.append(current)
                current, need = [], len(row.prefix.ids) + len(row.suffix)
            current.append(row)
            width = need
        if current:
            batches.append(current)
        return batches

    def _run_suffixes(self, batch: list[_Row], room: int = 0):
        """Run a batch of suffixes on their (left-padded, merged) prefix caches; return last logits and the state.

        Layout of row r: [pad][prefix_r][pad][suffix_r], padding masked out, positions counted over real tokens only.
        ``room``: tokens to be generated after it. A cache with room is preallocated (written in place each step);
        a growing cache would copy every row's whole cache at every step.
        """
        import torch
        from transformers import DynamicCache, StaticCache

        pad = self.tokenizer.pad_token_id
        p_max = max(len(r.prefix.ids) for r in batch)
        s_max = max(len(r.suffix) for r in batch)
        n = len(batch)
        input_ids = torch.full((n, s_max), pad, dtype=torch.long)
        mask = torch.zeros((n, p_max + s_max), dtype=torch.long)
        positions = torch.zeros((n, s_max), dtype=torch.long)
        for i, r in enumerate(batch):
            p, s = len(r.prefix.ids), len(r.suffix)
            input_ids[i, s_max - s :] = torch.tensor(r.suffix)
            mask[i, p_max - p : p_max] = 1
            mask[i, p_max + s_max - s :] = 1
            positions[i, s_max - s :] = torch.arange(p, p + s)
        merged = self._merge(batch, p_max) if p_max else None
        if room:
            cache = StaticCache(config=self.model.config, max_cache_len=p_max + s_max + room)
            for layer, (k, v) in zip(cache.layers, merged or []):
                layer.update(k, v)
        else:
            cache = DynamicCache(merged, config=self.model.config)
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_kw: cache},
            logits_to_keep=1,
        )
        self.tokens_read += sum(len(r.suffix) for r in batch)
        state = {"cache": cache, "mask": mask, "next_pos": positions[:, -1] + 1}
        return out.logits[:, -1, :], state

    @staticmethod
    def _merge(batch: list[_Row], p_max: int) -> list[tuple]:
        """Stack the rows' prefix caches along the batch, left-padding each to ``p_max`` (one copy per layer)."""
        layers = []
        for layer in range(len(next(r.prefix.kv for r in batch if r.prefix.kv))):
            pieces = {}
            for kind in (0, 1):
                ref = next(r.prefix.kv for r in batch if r.prefix.kv)[layer][kind]
                merged = ref.new_zeros((len(batch), ref.shape[1], p_max, ref.shape[3]))
                for i, r in enumerate(batch):
                    if r.prefix.kv:
                        t = r.prefix.kv[layer][kind]
                        merged[i, :, p_max - t.shape[2] :] = t[0]
                pieces[kind] = merged
            layers.append((pieces[0], pieces[1]))
        return layers

    def _step(self, state: dict, tokens):
        import torch

        state["mask"] = torch.cat([state["mask"], torch.ones((len(tokens), 1), dtype=torch.long)], dim=1)
        out = self.model(
            input_ids=tokens[:, None],
            attention_mask=state["mask"],
            position_ids=state["next_pos"][:, None],
            use_cache=True,
            **{self._cache_kw: state["cache"]},
            logits_to_keep=1,
        )
        state["next_pos"] = state["next_pos"] + 1
        return out.logits[:, -1, :]
