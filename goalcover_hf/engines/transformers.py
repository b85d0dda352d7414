"""The default engine: a causal LM in transformers, constrained by Outlines.

The ``*_shared`` methods pay for each shared beginning once (:mod:`goalcover_hf.engines.shared_prefix`): a sample's
key/value states are computed once for all its subgoals, and kept for the explanations that follow.

On a GPU every tensor stays on the device: only the choices' final probabilities (and, when decoding under a JSON
schema, each step's chosen tokens, which the schema's automaton reads on the host) come back. Where the model runs
and in which dtype is :mod:`goalcover_hf.engines.devices`'s business; :meth:`TransformersEngine.describe` says.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any, Sequence

from pydantic import BaseModel

from ..errors import GoalcoverError
from ..logging import get_logger
from ..models import load_kwargs, local_folder, resolve_model
from .base import THREADS, Chat, Engine, EngineOption, default_threads
from .devices import DEVICES, DTYPES, check_device, guard_memory, place
from .registry import register_engine
from .shared_prefix import SharedPrefix, _Prefix
from .tokens import TokenizerCounter, context_of, lowest

logger = get_logger(__name__)


def _choice_probs(logits, ids: list[int], renormalize: bool):
    """Probabilities of the ``ids`` tokens from last-position logits ``[rows, vocab]``, on the logits' device: over
    the choices alone, or (``renormalize=False``) under the whole vocabulary."""
    import torch

    if renormalize:
        return torch.softmax(logits[:, ids].float(), dim=-1)
    return torch.softmax(logits.float(), dim=-1)[:, ids]


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
class TransformersEngine(SharedPrefix, Engine):
    """Scores with a causal LM in transformers (CPU or GPU), JSON constrained by Outlines.

    Args:
        model: ``"embedded"``, a Hugging Face id (``id@revision``), a model folder or a ``.gguf`` file.
        threads: torch's intra-op threads (default: :func:`~goalcover_hf.engines.base.default_threads`).
        trust_remote_code: let the model folder's own Python code run (``auto_map``); only for code you have read.
        device: ``"auto"`` (default: CUDA, then MPS, else CPU; a model too large for one GPU is spread with
            ``device_map="auto"``), or ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
        dtype: ``"auto"`` (default: bfloat16 where the device computes it natively, float16 on other GPUs, float32
            on the CPU), or ``"float32"``, ``"bfloat16"``, ``"float16"``.

    Example:
        >>> engine = TransformersEngine("HuggingFaceTB/SmolLM2-360M-Instruct", device="cuda")
        >>> engine.choice_probs([[{"role": "user", "content": "Pick 1-5"}]], ["1", "2", "3", "4", "5"])
        >>> engine.describe()["dtype"]
        'bfloat16'
    """

    options = (
        THREADS,
        EngineOption("trust_remote_code", bool, "let a transformers model folder run its own Python code (auto_map "
                     "in its config); off by default: read that code first", default=False),
        EngineOption("device", str, f"where a transformers judge runs: {DEVICES} (default auto: CUDA, then MPS, "
                      "else CPU; a model too large for one GPU is spread with device_map=auto)", default="auto"),
        EngineOption("dtype", str, "the transformers judge's weights type (default auto: bfloat16 where the device "
                     "supports it, float16 on other GPUs, float32 on CPU)", default="auto", choices=DTYPES),
    )

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Check ``device`` and ``dtype`` before any load."""
        options = super().normalize_options(options)
        if "device" in options:
            check_device(options["device"])
        return options

    @classmethod
    def resolve(cls, model: str | None, options: dict[str, Any]) -> tuple[str, str]:
        """``(model, identity)`` of a folder, a ``.gguf`` or a Hub id pinned to its commit, without loading weights."""
        return resolve_model(model).names

    @classmethod
    def counter(cls, model: str | None, options: dict[str, Any]) -> TokenizerCounter:
        """The model's tokenizer, read from where the engine reads it; context from its config (``max_position_
        embeddings`` or the like), lowered to the tokenizer's ``model_max_length`` and ``max_context_tokens``."""
        from transformers import AutoConfig, AutoTokenizer

        ref = resolve_model(model)
        source, trust = local_folder(ref), bool(options.get("trust_remote_code"))
        kwargs = load_kwargs(ref)
        config = pretrained(AutoConfig, source, ref.identity, trust, **kwargs)
        tokenizer = pretrained(AutoTokenizer, source, ref.identity, trust, **kwargs)
        return TokenizerCounter(tokenizer, lowest(context_of(config, tokenizer), options.get("max_context_tokens")))

    def __init__(self, model: str | None = "embedded", threads: int | None = None, trust_remote_code: bool = False,
                 device: str = "auto", dtype: str = "auto"):
        import torch
        from transformers import AutoConfig, AutoTokenizer

        self.ref = resolve_model(model)
        self.identity = self.ref.identity
        # One process per core set: intra-op threads only; inter-op threads just contend for the same cores.
        torch.set_num_threads(threads or default_threads())
        source = local_folder(self.ref)
        kwargs = load_kwargs(self.ref)
        self._kept: list[_Prefix] = []  # prefix states kept between calls: the system part, recent samples
        config = pretrained(AutoConfig, source, self.identity, trust_remote_code, **kwargs)
        self.placement = place(check_device(device), dtype, config, trust_remote_code)
        logger.info("loading %s on %s (%s)", self.identity, self.placement.device, self.placement.dtype)
        self.tokenizer = pretrained(AutoTokenizer, source, self.identity, trust_remote_code, **kwargs)
        self.model = self._load(source, trust_remote_code, kwargs | self.placement.load_kwargs()).eval()
        # Inputs go where the first layer is (the only device, unless the model is spread over several).
        self.device = self.model.get_input_embeddings().weight.device
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer.chat_template:
            raise GoalcoverError(f"{self.identity}: the tokenizer has no chat template; use an instruction-tuned model")
        self._outlines_model = None
        # transformers 5 renamed forward's `past_key_values` to `cache`; the cache object is updated in place either way.
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.tokens_read = 0  # prompt tokens run through the model by the shared path (for benchmarks)

    @guard_memory("loading")
    def _load(self, source: str, trust_remote_code: bool, kwargs: dict):
        from transformers import AutoModelForCausalLM

        try:  # PyTorch's fused attention kernels; the padded masks of the shared path run on them too
            return pretrained(AutoModelForCausalLM, source, self.identity, trust_remote_code,
                              attn_implementation="sdpa", **kwargs)
        except ValueError as err:
            if isinstance(err, GoalcoverError) or "sdpa" not in str(err).lower():
                raise
            logger.info("%s does not support sdpa attention; loading its default", self.identity)
            return pretrained(AutoModelForCausalLM, source, self.identity, trust_remote_code, **kwargs)

    def describe(self) -> dict[str, Any]:
        """Where and how the judge runs, none of which changes its identity: ``device`` (where inputs go), ``dtype``,
        ``device_map`` (``"auto"`` when spread; ``devices`` then lists them), ``attn_implementation``,
        ``threads``, and the torch and transformers versions (and ``gpu``, the GPU's name, on CUDA).

        Example:
            >>> get_engine("embedded").describe()
            {'device': 'cpu', 'dtype': 'float32', 'device_map': None, 'attn_implementation': 'sdpa', 'threads': 2, ...}
        """
        import torch
        import transformers

        out = {"device": self.placement.device, "dtype": self.placement.dtype, "device_map": self.placement.device_map,
               "attn_implementation": getattr(self.model.config, "_attn_implementation", None),
               "threads": torch.get_num_threads(), "torch": torch.__version__,
               "transformers": transformers.__version__}
        if self.placement.device_map:
            out["devices"] = sorted({str(d) for d in getattr(self.model, "hf_device_map", {}).values()})
        if self.device.type == "cuda":
            out["gpu"] = torch.cuda.get_device_name(self.device)
        return out

    def token_counter(self) -> TokenizerCounter:
        """The counter of the loaded model: its tokenizer and context."""
        return TokenizerCounter(self.tokenizer, lowest(context_of(self.model.config, self.tokenizer),
                                                       self.max_context_tokens))

    def chat_text(self, chat: Chat) -> str:
        """The chat rendered with the model's chat template, generation cue included."""
        return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    @lru_cache(maxsize=8)
    def _generator(self, schema: type[BaseModel]):
        # Building the logits processor compiles the schema's automaton: do it once per schema.
        import outlines

        if self._outlines_model is None:
            self._outlines_model = outlines.from_transformers(self.model, self.tokenizer)
        return outlines.Generator(self._outlines_model, schema)

    @guard_memory("generation")
    def generate_json(self, chats: Sequence[Chat], schema: type[BaseModel], max_new_tokens: int) -> list[str]:
        """Schema-constrained greedy generation through Outlines, batched."""
        import torch
        from outlines.inputs import Chat as OutlinesChat

        generator = self._generator(schema)
        with torch.inference_mode():
            out = generator.batch([OutlinesChat(list(c)) for c in chats], max_new_tokens=max_new_tokens, do_sample=False)
        return list(out)

    def choice_token_ids(self, choices: Sequence[str]) -> list[int]:
        """The single token id of each choice (a choice of several tokens is refused)."""
        ids = []
        for choice in choices:
            tokens = self.tokenizer.encode(choice, add_special_tokens=False)
            if len(tokens) != 1:
                raise GoalcoverError(f"{self.identity}: choice {choice!r} is not a single token")
            ids.append(tokens[0])
        return ids

    @guard_memory("scoring")
    def choice_probs(self, chats: Sequence[Chat], choices: Sequence[str], renormalize: bool = True
                     ) -> list[list[float]]:
        """Probabilities of ``choices`` as the first reply token: over the choices, or (``renormalize=False``) each
        one's share of the whole next-token distribution."""
        import torch

        ids = self.choice_token_ids(choices)
        texts = [self.chat_text(c) for c in chats]
        self.tokenizer.padding_side = "left"
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        # Left padding: count positions from each row's first real token, as generate() does.
        position_ids = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(**batch, position_ids=position_ids, logits_to_keep=1).logits[:, -1, :]
            return _choice_probs(logits, ids, renormalize).cpu().tolist()

    # ---- shared-prefix path --------------------------------------------------------------------------------------
    @guard_memory("scoring")
    def choice_probs_shared(self, groups: Sequence[Sequence[Chat]], choices: Sequence[str], renormalize: bool = True
                            ) -> list[list[list[float]]]:
        """:meth:`choice_probs` of groups of chats, each group's shared beginning computed once."""
        return self._per_chat(groups, choices, lambda logits, ids: _choice_probs(logits, ids, renormalize))

    @guard_memory("scoring")
    def choice_logits_shared(self, groups: Sequence[Sequence[Chat]], choices: Sequence[str]) -> list[list[list[float]]]:
        """Raw next-token logits of the ``choices`` tokens after each chat, computed with shared prefixes.

        They equal those of a plain full forward of each chat's text (up to float rounding): see the tests.
        """
        return self._per_chat(groups, choices, lambda logits, ids: logits[:, ids].float())

    def _per_chat(self, groups: Sequence[Sequence[Chat]], choices: Sequence[str], reduce) -> list[list[list[float]]]:
        """``reduce(last_logits, choice_ids)`` of every chat, on the device; one host copy of its result per batch."""
        import torch

        ids = self.choice_token_ids(choices)
        out = [[None] * len(g) for g in groups]
        with torch.inference_mode():
            for batch in self._suffix_batches(self._plan(groups)):
                logits, _ = self._run_suffixes(batch)
                for row, values in zip(batch, reduce(logits, ids).cpu().tolist()):
                    out[row.group][row.member] = values
        return out

    @guard_memory("explanations")
    def generate_json_shared(
        self, groups: Sequence[Sequence[Chat]], schema: type[BaseModel], max_new_tokens: int
    ) -> list[list[str]]:
        """Greedy schema-constrained decoding (Outlines' logits processor) continuing from the shared caches."""
        import torch

        processor = self._generator(schema).logits_processor
        eos = self.tokenizer.eos_token_id
        out = [[None] * len(g) for g in groups]
        with torch.inference_mode():
            for batch in self._suffix_batches(self._plan(groups), room=max_new_tokens):
                logits, state = self._run_suffixes(batch, room=max_new_tokens)
                processor.reset()
                # The tokens so far, on the host: the schema's automaton reads each row's last one there anyway
                # (ignored on the first step), so one copy of the chosen ids per step is all that crosses.
                generated = torch.full((len(batch), 1), eos)
                done = torch.zeros(len(batch), dtype=torch.bool, device=logits.device)
                for _ in range(max_new_tokens):
                    logits = processor(generated, logits.clone())
                    nxt = logits.argmax(-1).masked_fill_(done, eos)
                    done |= nxt == eos
                    host = nxt.cpu()
                    generated = torch.cat([generated, host[:, None]], dim=1)
                    if bool((host == eos).all()):
                        break
                    logits = self._step(state, nxt)
                for row, seq in zip(batch, generated[:, 1:].tolist()):
                    if eos in seq:
                        seq = seq[: seq.index(eos)]
                    out[row.group][row.member] = self.tokenizer.decode(seq, skip_special_tokens=True)
        return out
