"""Engines compute tokens. Each backend is one module behind :class:`Engine`; ``get_engine`` loads one per process."""

from __future__ import annotations

from functools import lru_cache

from .base import Engine

ENGINES = ("transformers",)


@lru_cache(maxsize=4)
def get_engine(model: str = "embedded", engine: str = "transformers", threads: int | None = None) -> Engine:
    """Load (once per process) the engine serving ``model``."""
    if engine == "transformers":
        from .transformers import TransformersEngine

        return TransformersEngine(model, threads=threads)
    raise ValueError(f"unknown engine {engine!r}; available: {', '.join(ENGINES)}")


__all__ = ["Engine", "get_engine", "ENGINES"]
