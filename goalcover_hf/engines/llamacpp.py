"""A GGUF file through llama-cpp-python: quantized CPU inference, Outlines for JSON.

Install with ``pip install goalcover_hf[llamacpp]`` (llama-cpp-python compiles from source, about 11 minutes on 2
cores; Outlines' llama.cpp backend also needs numba).

Both methods render the chat with the GGUF's own chat template and tokenize it as llama.cpp's completion call does,
so a score and an explanation see the same prompt tokens. Digit scoring reads the last position's logits with
``llama_get_logits_ith`` (llama-cpp-python 0.3 no longer keeps them after ``eval``), and reuses the evaluated prefix
of the previous chat: the sample text, shared by all of a sample's subgoals, is computed once per sample.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel

from ..errors import GoalcoverError
from ..logging import get_logger
from ..models import ModelRef, from_gguf, resolve_model
from .base import THREADS, Chat, Engine, EngineOption, default_threads
from .registry import register_engine
from .tokens import TokenizerCounter, context_of, lowest

logger = get_logger(__name__)

DEFAULT_N_CTX = 8192
INSTALL_HINT = "the llamacpp engine needs llama-cpp-python and numba: pip install 'goalcover_hf[llamacpp]'"


def gguf_ref(model: str | None) -> ModelRef:
    """``model`` resolved, refused unless it is a GGUF file (or the embedded one)."""
    ref = resolve_model(model)
    if ref.kind not in ("embedded", "gguf"):
        raise GoalcoverError(f"{model}: the llamacpp engine reads .gguf files (or 'embedded'); this is a {ref.kind} "
                             "model")
    return ref


@register_engine("llamacpp")
class LlamaCppEngine(Engine):
    """Scores with llama.cpp.

    Args:
        model: a ``.gguf`` file or ``"embedded"``.
        threads: CPU threads (default: :func:`~goalcover_hf.engines.base.default_threads`).
        n_ctx: context length in tokens (prompt plus reply).
        n_gpu_layers: layers offloaded to the GPU (default 0: none; -1: all), for a llama-cpp-python built with
            CUDA, Metal or Vulkan (a CPU-only build ignores it).

    Example:
        >>> engine = LlamaCppEngine("embedded")
        >>> engine.choice_probs([[{"role": "user", "content": "Pick 1-5"}]], ["1", "2", "3", "4", "5"])
    """

    options = (
        THREADS,
        EngineOption("n_ctx", int, f"context length in tokens, prompt plus reply (default {DEFAULT_N_CTX}, "
                     "at most the GGUF's own)", default=DEFAULT_N_CTX),
        EngineOption("n_gpu_layers", int, "layers of a llama.cpp judge offloaded to the GPU (default 0: none; -1: "
                     "all); needs a llama-cpp-python built with CUDA, Metal or Vulkan", default=0),
    )

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Check the options before any load (see :meth:`Engine.normalize_options`)."""
        options = super().normalize_options(options)
        if options.get("n_gpu_layers", 0) < -1:
            raise GoalcoverError(f"n_gpu_layers must be -1 (all layers) or more, got {options['n_gpu_layers']}")
        return options

    @classmethod
    def resolve(cls, model: str | None, options: dict[str, Any]) -> tuple[str, str]:
        """``(model, identity)`` of a ``.gguf`` file or the embedded model, without loading it."""
        return gguf_ref(model).names

    @classmethod
    def counter(cls, model: str | None, options: dict[str, Any]) -> TokenizerCounter:
        """The GGUF's tokenizer as transformers reads it (no weights, no llama-cpp-python); context ``n_ctx``, at
        most the GGUF's own and ``max_context_tokens``."""
        from transformers import AutoConfig, AutoTokenizer

        config, tokenizer = from_gguf(Path(gguf_ref(model).location), AutoConfig, AutoTokenizer)
        context = lowest(context_of(config), options.get("n_ctx", DEFAULT_N_CTX), options.get("max_context_tokens"))
        return TokenizerCounter(tokenizer, context)

    def __init__(self, model: str | None = "embedded", threads: int | None = None, n_ctx: int = DEFAULT_N_CTX,
                 n_gpu_layers: int = 0):
        try:
            import llama_cpp
        except ImportError:
            raise ImportError(INSTALL_HINT) from None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.ref = gguf_ref(model)
        self.identity = self.ref.identity
        self.n_ctx, self.n_gpu_layers = n_ctx, n_gpu_layers
        self.threads = threads = threads or default_threads()
        logger.info("loading %s with llama.cpp", self.identity)
        self.llm = llama_cpp.Llama(model_path=self.ref.location, n_ctx=n_ctx, n_threads=threads,
                                   n_threads_batch=threads, n_gpu_layers=n_gpu_layers, logits_all=False,
                                   verbose=False, seed=0)
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise GoalcoverError(f"{self.identity}: the GGUF has no chat template; use an instruction-tuned model")
        vocab = self.llm._model
        self._bos = vocab.token_get_text(vocab.token_bos()) if vocab.token_bos() >= 0 else ""
        self._add_bos = bool(vocab.add_bos_token())
        self._formatter = Jinja2ChatFormatter(template=template, bos_token=self._bos,
                                              eos_token=vocab.token_get_text(vocab.token_eos()))
        self._outlines_model = None

    def describe(self) -> dict[str, Any]:
        """``threads``, ``n_ctx``, ``n_gpu_layers``, whether this llama-cpp-python can offload at all
        (``gpu_offload``), and its version."""
        import llama_cpp

        return {"threads": self.threads, "n_ctx": self.n_ctx, "n_gpu_layers": self.n_gpu_layers,
                "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()), "llama_cpp": llama_cpp.__version__}

    def token_counter(self) -> TokenizerCounter:
        """The counter of the loaded model: its own tokenizer and ``n_ctx``."""
        return self.counter(self.ref.spec, {"n_ctx": self.n_ctx, "max_context_tokens": self.max_context_tokens})

    def chat_text(self, chat: Chat) -> str:
        """The chat rendered with the GGUF's own chat template, generation cue included."""
        text = self._formatter(messages=list(chat)).prompt
        if self._add_bos and self._bos and text.startswith(self._bos):
            text = text[len(self._bos):]  # llama.cpp adds BOS itself: do not send two
        return text

    def tokens(self, chat: Chat) -> list[int]:
        # As Llama.create_completion tokenizes a text prompt: BOS if the model wants one, special tokens parsed.
        """The token ids llama.cpp reads for ``chat``."""
        ids = self.llm.tokenize(self.chat_text(chat).encode("utf-8"), add_bos=False, special=True)
        return ([self.llm.token_bos()] if self._add_bos else []) + ids

    @lru_cache(maxsize=8)
    def _generator(self, schema: type[BaseModel]):
        import outlines

        if self._outlines_model is None:
            # chat_mode=False: we pass the prompt already rendered with the GGUF's template.
            self._outlines_model = outlines.from_llamacpp(self.llm, chat_mode=False)
        return outlines.Generator(self._outlines_model, schema)

    def generate_json(self, chats: Sequence[Chat], schema: type[BaseModel], max_new_tokens: int) -> list[str]:
        """Schema-constrained greedy generation through Outlines, one chat at a time."""
        try:
            import numba  # noqa: F401  Outlines' llama.cpp backend needs it and otherwise returns unconstrained text
        except ImportError:
            raise ImportError(INSTALL_HINT) from None
        generator = self._generator(schema)
        # llama.cpp has no batched generation in Outlines: one chat at a time. Plain greedy, like transformers.
        return [generator(self.chat_text(c), max_tokens=max_new_tokens, temperature=0.0, repeat_penalty=1.0,
                          top_k=1, seed=0) for c in chats]

    def choice_token_ids(self, choices: Sequence[str]) -> list[int]:
        """The single token id of each choice (a choice of several tokens is refused)."""
        ids = []
        for choice in choices:
            tokens = self.llm.tokenize(choice.encode("utf-8"), add_bos=False, special=False)
            if len(tokens) != 1:
                raise GoalcoverError(f"{self.identity}: choice {choice!r} is not a single token")
            ids.append(tokens[0])
        return ids

    def choice_probs(self, chats: Sequence[Chat], choices: Sequence[str], renormalize: bool = True
                     ) -> list[list[float]]:
        """Probabilities of ``choices`` as the first reply token: over the choices, or (``renormalize=False``) under
        the whole vocabulary."""
        import llama_cpp
        import numpy as np

        ids = self.choice_token_ids(choices)
        out = []
        for chat in chats:
            tokens = self.tokens(chat)
            # Keep what the last evaluation shares with this prompt (always re-evaluate at least one token).
            keep = 0
            for a, b in zip(self.llm.input_ids[: self.llm.n_tokens], tokens[:-1]):
                if a != b:
                    break
                keep += 1
            self.llm.n_tokens = keep
            self.llm.eval(tokens[keep:])
            everything = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.llm.ctx, -1),
                                               shape=(self.llm.n_vocab(),)).astype(np.float64)
            logits = everything[ids]
            if renormalize:
                probs = np.exp(logits - logits.max())
                out.append((probs / probs.sum()).tolist())
            else:  # exp(logit - logsumexp(all logits))
                top = everything.max()
                out.append(np.exp(logits - top - np.log(np.exp(everything - top).sum())).tolist())
        return out
