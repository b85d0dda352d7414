"""Library logging, in the style of ``datasets.utils.logging``: a ``goalcover_hf`` logger tree."""

import logging
import os

_ROOT = "goalcover_hf"


def get_logger(name: str) -> logging.Logger:
    """A logger under ``goalcover_hf``, whose level comes from ``$GOALCOVER_VERBOSITY`` (default ``INFO``).

    Args:
        name (``str``): the module's ``__name__``.

    Returns:
        ``logging.Logger``

    Example:
        >>> logger = get_logger(__name__)
    """
    root = logging.getLogger(_ROOT)
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[goalcover] %(message)s"))
        root.addHandler(handler)
        root.setLevel(os.environ.get("GOALCOVER_VERBOSITY", "INFO").upper())
        root.propagate = False
    return logging.getLogger(name)
