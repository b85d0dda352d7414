"""Engines compute tokens. Each backend is one module behind :class:`Engine`; ``get_engine`` loads one per process.

- ``transformers`` (default): any causal LM folder, hub id or GGUF (converted once), Outlines for JSON.
- ``llamacpp``: a ``.gguf`` file (or ``"embedded"``) through llama-cpp-python (``pip install goalcover_hf[llamacpp]``).
- ``openai``: an OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp) at ``base_url``.

``trust_remote_code`` (transformers only) lets a model folder's own Python code run; it is never on unless asked.
``max_context_tokens`` (any engine) caps the tokens a prompt and its reply may take (see ``get_counter``).

Engine options (``base_url``, ``api_key_env``, ``max_in_flight``, ...) travel as a sorted tuple of ``(name, value)``
pairs so that ``get_engine`` stays hashable and cached per process.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from .base import Engine, EngineMisconfigured

ENGINES = ("transformers", "llamacpp", "openai")
OPTIONS = {
    "transformers": ("threads", "trust_remote_code", "max_context_tokens"),
    "llamacpp": ("n_ctx", "threads", "max_context_tokens"),
    "openai": ("base_url", "api_key_env", "max_in_flight", "timeout", "retries", "backoff", "structured",
               "max_context_tokens"),
}

EngineOptions = tuple[tuple[str, Any], ...]


def engine_options(engine: str, options: Mapping[str, Any] | None = None) -> EngineOptions:
    """Check ``options`` against what ``engine`` takes; return them as a hashable, sorted tuple."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; available: {', '.join(ENGINES)}")
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(OPTIONS[engine]))
    if unknown:
        allowed = ", ".join(OPTIONS[engine]) or "none"
        hint = "; a server needs engine 'openai' (--engine openai)" if "base_url" in unknown else ""
        raise ValueError(f"engine {engine!r} does not take {', '.join(unknown)} (its options: {allowed}){hint}")
    if engine == "openai":
        if not options.get("base_url"):
            raise ValueError("engine 'openai' needs base_url (--base-url http://HOST:PORT/v1)")
        from .openai import normalize_base_url

        options["base_url"] = normalize_base_url(options["base_url"])  # one server, one fingerprint
    return tuple(sorted(options.items()))


def resolve_engine_model(model: str | None, engine: str, options: EngineOptions = ()) -> tuple[str, str]:
    """``(model, identity)`` without loading weights; for a server, one ``GET /v1/models`` asks it."""
    if engine == "openai":
        from .openai import resolve_server_model

        opts = dict(options)
        return resolve_server_model(opts["base_url"], model, opts.get("api_key_env"))
    from ..models import resolve_model

    ref = resolve_model(model)
    if engine == "llamacpp" and ref.kind not in ("embedded", "gguf"):
        raise ValueError(f"{model}: the llamacpp engine reads .gguf files (or 'embedded'); this is a {ref.kind} model")
    return ref.spec, ref.identity


@lru_cache(maxsize=4)
def get_engine(model: str = "embedded", engine: str = "transformers", threads: int | None = None,
               options: EngineOptions = ()) -> Engine:
    """Load (once per process) the engine serving ``model``.

    Example:
        >>> get_engine("embedded", "llamacpp")
        >>> get_engine("my-model", "openai", options=engine_options("openai", {"base_url": "http://127.0.0.1:8000/v1"}))
    """
    opts = dict(engine_options(engine, dict(options)))
    threads = opts.pop("threads", threads)
    opts.pop("max_context_tokens", None)  # the scorer fits samples to it (get_counter); the engine just reads them
    if engine == "transformers":
        from .transformers import TransformersEngine

        return TransformersEngine(model, threads=threads, **opts)
    if engine == "llamacpp":
        from .llamacpp import LlamaCppEngine

        return LlamaCppEngine(model, threads=threads, **opts)
    from .openai import OpenAIEngine

    return OpenAIEngine(model, **opts)


@lru_cache(maxsize=4)
def get_counter(model: str = "embedded", engine: str = "transformers", options: EngineOptions = ()):
    """The token counter of ``model`` on ``engine`` (tokenizer and context length, no weights), once per process.

    Example:
        >>> get_counter("embedded").context
        8192
    """
    from . import counting

    opts = dict(engine_options(engine, dict(options)))
    limit = opts.get("max_context_tokens")
    if engine == "transformers":
        return counting.transformers_counter(model, bool(opts.get("trust_remote_code")), limit)
    if engine == "llamacpp":
        from .llamacpp import DEFAULT_N_CTX

        return counting.gguf_counter(model, opts.get("n_ctx", DEFAULT_N_CTX), limit)
    return counting.server_counter(model, opts)


def remote_code_options(trust_remote_code: bool) -> EngineOptions:
    """Engine options that let the transformers engine run a model's own code (empty unless asked)."""
    return (("trust_remote_code", True),) if trust_remote_code else ()


__all__ = ["get_counter", "remote_code_options", "Engine", "EngineMisconfigured", "get_engine", "engine_options", "resolve_engine_model", "ENGINES"]
