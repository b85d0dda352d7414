"""Writing outputs safely: never half-written under the final name, never over something without being asked."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import OutputExistsError

PARTIAL = ".partial"  # suffix of an output being written; a killed run leaves only this behind


def refuse_overwrite(path: str | os.PathLike, overwrite: bool, flag: str = "--overwrite") -> None:
    """Raise :class:`OutputExistsError` when ``path`` exists and ``overwrite`` is false.

    Args:
        path: the output file or folder.
        overwrite: whether the user asked to replace it.
        flag: how the user asks for that (the CLI flag, or ``overwrite=True`` from Python).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; choose another output or pass {flag} to replace it")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file renamed into place.

    Returns:
        The path written.
    """
    path = Path(path)
    tmp = path.with_name(path.name + PARTIAL)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write a file or folder into; on success it replaces ``path``.

    On any exception (Ctrl-C included) the temporary output is removed and ``path`` is left as it was.

    Example:
        >>> with atomic_path("out/run") as tmp:
        ...     dataset.save_to_disk(str(tmp / "dataset"))
    """
    path = Path(path)
    tmp = path.with_name(path.name + PARTIAL)
    _remove(tmp)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if path.is_dir() and tmp.is_dir():
        shutil.rmtree(path)
    tmp.replace(path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
