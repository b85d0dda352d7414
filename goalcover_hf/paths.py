"""Where goalcover keeps its caches (converted models, the pair cache)."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """Return goalcover's cache folder, creating it.

    Order: ``$GOALCOVER_CACHE``, then ``$HF_HOME/goalcover``, then
    ``$XDG_CACHE_HOME/huggingface/goalcover``, then ``~/.cache/huggingface/goalcover``,
    the same places the Hugging Face libraries use for their own caches.

    Returns:
        ``Path``: the folder (it exists).
    """
    if os.environ.get("GOALCOVER_CACHE"):
        path = Path(os.environ["GOALCOVER_CACHE"])
    elif os.environ.get("HF_HOME"):
        path = Path(os.environ["HF_HOME"]) / "goalcover"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(xdg) / "huggingface" / "goalcover"
    path.mkdir(parents=True, exist_ok=True)
    return path
