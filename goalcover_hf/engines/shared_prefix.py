"""The shared-prefix machinery of the transformers engine: key/value states of a shared beginning computed once,
kept between calls, and reused by batches of suffixes.

Chats are tokenized whole (so the ids are exactly those a plain forward would read); the token-level common prefix of
a group (system instructions + one sample) is run once and its key/value cache reused by every member's suffix (one
subgoal + the score cue); the common prefix of all groups (the system instructions) is run once per engine and kept,
and so are recent samples' states, which the explanation prompts (same sample, another cue) start from. Suffixes of
all groups are then batched together, sorted by length, with each row's prefix cache left-padded to the batch's
longest and masked. Every tensor stays on the model's device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .base import Chat, _regroup
from .devices import batch_tokens, release_host_memory

MIN_SHARED_TOKENS = 8  # below this a shared prefix is not worth a separate forward
# Rows x (longest prefix + longest suffix) per suffix batch on a CPU (on CUDA: what free memory holds). Scoring runs
# fastest in small batches that stay in the CPU's caches (measured on the embedded model, 32 rows x 8 subgoals: 2048
# beat 1024, 4096 and 8192, at a fifth of 8192's memory). Decoding reads the weights once per step for all its rows,
# so it takes more rows per batch, as far as memory allows (32 rows' explanations: 3072 tokens peaked at 1.85 GiB,
# 7% slower than 4096 at 2.0 GiB).
BATCH_TOKENS = 2048
GENERATE_BATCH_TOKENS = 3072
KEEP_TOKENS = 4096  # prefix tokens whose key/value states are kept between calls
MAX_BATCH = 64  # rows per suffix batch on a CPU
GPU_MAX_BATCH = 256


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


def common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all of ``seqs`` share.

    Example:
        >>> common_prefix_len([[1, 2, 3], [1, 2, 4]])
        2
    """
    first, n = seqs[0], min(len(s) for s in seqs)
    for other in seqs[1:]:
        k = 0
        while k < n and other[k] == first[k]:
            k += 1
        n = k
    return n


class SharedPrefix:
    """Mixin of :class:`~goalcover_hf.engines.transformers.TransformersEngine`: what its ``*_shared`` methods run on.

    It reads the engine's ``model``, ``tokenizer``, ``device``, ``chat_text`` and ``_cache_kw``, and keeps
    ``_kept`` (prefix states between calls) and ``tokens_read`` (prompt tokens run through the model, for benchmarks).
    """

    _kept: list[_Prefix]
    tokens_read: int = 0
    # Run the samples' prefixes of a call together, padded, rather than one by one: None (default) does so off the
    # CPU, where one long forward leaves most of the device idle; on a CPU the padding would cost more than it saves.
    batch_prefixes: bool | None = None

    def _plan(self, groups: Sequence[Sequence[Chat]]) -> list[_Row]:
        """Tokenize every chat whole, find the shared prefixes and run them once; return one row per chat."""
        tok = self.tokenizer
        texts = [self.chat_text(c) for g in groups for c in g]
        flat = tok(texts, add_special_tokens=False)["input_ids"]
        per_group = _regroup(flat, groups)
        # Every member keeps at least one suffix token: its last position gives the logits.
        prefix_lens = [min(common_prefix_len(g), min(len(s) for s in g) - 1) if g else 0 for g in per_group]
        heads = [g[0][:n] for g, n in zip(per_group, prefix_lens) if g]
        root_len = common_prefix_len(heads) if heads else 0
        if root_len >= MIN_SHARED_TOKENS:
            self._forward_prefix(heads[0][:root_len])
        states = iter(self._forward_prefixes([g[0][:n] for g, n in zip(per_group, prefix_lens)
                                              if n >= MIN_SHARED_TOKENS]))
        rows = []
        for gi, (g, n) in enumerate(zip(per_group, prefix_lens)):
            prefix = next(states) if n >= MIN_SHARED_TOKENS else _Prefix([], None)
            rows.extend(_Row(gi, mi, prefix, seq[len(prefix.ids) :]) for mi, seq in enumerate(g))
        return rows

    def _base(self, ids: list[int]) -> _Prefix | None:
        """The longest kept prefix state ``ids`` starts with (the system part, or the same sample's state from the
        scoring call when explanations follow)."""
        return max((p for p in self._kept if len(p.ids) <= len(ids) and ids[: len(p.ids)] == p.ids),
                   key=lambda p: len(p.ids), default=None)

    def _keep(self, prefix: _Prefix) -> _Prefix:
        self._kept.append(prefix)
        # Keep the system part (the first entry) and the most recent samples, within a token budget.
        while len(self._kept) > 2 and sum(len(p.ids) for p in self._kept) > KEEP_TOKENS:
            del self._kept[1]
        return prefix

    def _forward_prefix(self, ids: list[int]) -> _Prefix:
        """The prefix state of ``ids``, from the longest kept prefix of it, and kept for later calls."""
        base = self._base(ids)
        if base is not None and len(base.ids) == len(ids):
            return base
        return self._keep(self._extend(ids, base))

    def _forward_prefixes(self, wanted: list[list[int]]) -> list[_Prefix]:
        """:meth:`_forward_prefix` of each of ``wanted``; with :attr:`batch_prefixes`, those not kept are run
        together as suffixes of their kept bases, and each row's states are cut back out of the batch's cache."""
        import torch

        together = self.batch_prefixes if self.batch_prefixes is not None else self.device.type != "cpu"
        if not together:
            return [self._forward_prefix(ids) for ids in wanted]
        found: dict[tuple[int, ...], _Prefix] = {}
        rows = []
        for ids in wanted:
            key, base = tuple(ids), self._base(ids)
            if base is not None and len(base.ids) == len(ids):
                found[key] = base
            elif key not in found:
                found[key] = base = base or _Prefix([], None)  # stands in until computed below
                rows.append(_Row(0, len(rows), base, ids[len(base.ids) :]))
        with torch.inference_mode():
            for batch in self._suffix_batches(rows):
                _, state = self._run_suffixes(batch)
                p_max = max(len(r.prefix.ids) for r in batch)
                for i, r in enumerate(batch):
                    p, s = len(r.prefix.ids), len(r.suffix)
                    # Row i of the batch: [pad][base][pad][new]; its state is base + new, without the padding.
                    kv = [tuple(torch.cat([t[i : i + 1, :, p_max - p : p_max], t[i : i + 1, :, t.shape[2] - s :]], 2)
                                for t in (layer.keys, layer.values)) for layer in state["cache"].layers]
                    found[tuple(r.prefix.ids + r.suffix)] = self._keep(_Prefix(r.prefix.ids + r.suffix, kv))
        return [found[tuple(ids)] for ids in wanted]

    def _extend(self, ids: list[int], base: _Prefix | None) -> _Prefix:
        import torch
        from transformers import DynamicCache

        start = len(base.ids) if base is not None else 0
        cache = DynamicCache(base.kv if base is not None else None, config=self.model.config)
        new = ids[start:]
        if new:
            with torch.inference_mode():
                self.model(
                    input_ids=torch.tensor([new], device=self.device),
                    position_ids=torch.arange(start, len(ids), device=self.device)[None],
                    use_cache=True,
                    **{self._cache_kw: cache},
                    logits_to_keep=1,
                )
            self.tokens_read += len(new)
        return _Prefix(ids, [(layer.keys, layer.values) for layer in cache.layers])

    def _suffix_batches(self, rows: list[_Row], room: int = 0) -> list[list[_Row]]:
        """Rows in batches of at most ``rows x (widest prefix + suffix + room)`` tokens (room: tokens to generate)."""
        budget = batch_tokens(self.model.config, str(self.device), self.model.dtype,
                              GENERATE_BATCH_TOKENS if room else BATCH_TOKENS)
        most = MAX_BATCH if self.device.type == "cpu" else GPU_MAX_BATCH
        # Scoring: suffix length first, since every padded suffix token runs through the whole model while a padded
        # prefix position is only attended to (one subgoal's suffix is the same for every sample, so its rows go
        # together). Decoding: prefix first, since every row's cache, padding included, is read at every step.
        rows = sorted(rows, key=(lambda r: (len(r.prefix.ids), len(r.suffix))) if room else
                      (lambda r: (len(r.suffix), len(r.prefix.ids))))
        batches, current, width = [], [], 0
        for row in rows:
            need = max(width, len(row.prefix.ids) + len(row.suffix) + room)
            if current and (len(current) >= most or need * (len(current) + 1) > budget):
                batches.append(current)
                current, need = [], len(row.prefix.ids) + len(row.suffix) + room
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

        if self.device.type == "cpu":
            release_host_memory()
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
        input_ids, mask, positions = (t.to(self.device) for t in (input_ids, mask, positions))
        merged = self._merge(batch, p_max) if p_max else None
        if room:
            cache = StaticCache(config=self.model.config, max_cache_len=p_max + s_max + room)
            for layer, (k, v) in zip(cache.layers, merged or []):
                layer.update(k, v)
            merged = None  # copied into the preallocated cache: drop the merged copy before the forward
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
        """Stack the rows' prefix caches along the batch, left-padding each to ``p_max``. Each distinct prefix (a
        sample's, shared by its subgoals' rows) is padded once, then gathered to its rows in one copy per layer."""
        import torch

        slots: dict[int | None, int] = {}
        owners: list[_Prefix | None] = []  # None: rows without a prefix state (zeros, masked out)
        index = []
        for r in batch:
            key = id(r.prefix) if r.prefix.kv else None
            if key not in slots:
                slots[key] = len(owners)
                owners.append(r.prefix if r.prefix.kv else None)
            index.append(slots[key])
        first = next(p for p in owners if p is not None)
        gather: dict = {}  # the rows' slots, once per device (a model spread over devices keeps layers apart)
        layers = []
        for layer in range(len(first.kv)):
            pair = []
            for kind in (0, 1):
                ref = first.kv[layer][kind]
                padded = ref.new_zeros((len(owners), ref.shape[1], p_max, ref.shape[3]))
                for k, p in enumerate(owners):
                    if p is not None:
                        t = p.kv[layer][kind]
                        padded[k, :, p_max - t.shape[2] :] = t[0]
                if len(owners) < len(batch):
                    if ref.device not in gather:
                        gather[ref.device] = torch.tensor(index, device=ref.device)
                    padded = padded.index_select(0, gather[ref.device])
                pair.append(padded)
            layers.append(tuple(pair))
        return layers

    def _step(self, state: dict, tokens):
        import torch

        ones = torch.ones((len(tokens), 1), dtype=torch.long, device=state["mask"].device)
        state["mask"] = torch.cat([state["mask"], ones], dim=1)
        out = self.model(
            input_ids=tokens[:, None].to(self.device),
            attention_mask=state["mask"],
            position_ids=state["next_pos"][:, None],
            use_cache=True,
            **{self._cache_kw: state["cache"]},
            logits_to_keep=1,
        )
        state["next_pos"] = state["next_pos"] + 1
        return out.logits[:, -1, :]
