"""Loading the user's data: a file, a folder, or a Hugging Face Hub dataset id."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .errors import GoalcoverError
from .logging import get_logger

logger = get_logger(__name__)

_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


class DataError(GoalcoverError):
    """Data that cannot be loaded or read; the message names the file, line or source and says what to do."""


def is_hub_id(source: str) -> bool:
    """Whether ``source`` names a Hub dataset rather than a local file or folder (that exists or not).

    Args:
        source (``str``): what :func:`load_data` is given.

    Returns:
        ``bool``: ``False`` for an existing path, a path-like name (``./``, ``/``, ``~``) or a known data file suffix.
    """
    path = Path(source).expanduser()
    return not (path.exists() or source.startswith((".", "/", "~")) or path.suffix.lower() in _FORMATS)


def hub_source(source: str, revision: str | None = None) -> dict[str, str | None] | None:
    """The Hub dataset behind ``source``, for the run's provenance: ``{"id": ..., "revision": commit SHA}``.

    The commit is asked of the Hub; offline, it is the one huggingface_hub cached for that revision (``None`` when
    nothing is cached: the data then fails to load anyway).

    Args:
        source (``str``): what :func:`load_data` is given.
        revision (``str``, *optional*): a branch, tag or commit of the dataset (default: its main branch).

    Returns:
        ``dict`` or ``None``: ``None`` for a local file or folder.

    Example:
        >>> hub_source("openai/gsm8k")
        {'id': 'openai/gsm8k', 'revision': 'e53f048856ff4f594e959d75785d2c2d37b678ee'}
    """
    if not is_hub_id(source):
        return None
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HFValidationError, HfHubHTTPError, OfflineModeIsEnabled

    if not constants.HF_HUB_OFFLINE:
        try:
            info = HfApi().dataset_info(source, revision=revision)
            return {"id": info.id, "revision": info.sha}
        except HFValidationError:
            raise DataError(f"{source}: no such file or folder, and not a Hub dataset id (user/name)") from None
        except (HfHubHTTPError, OfflineModeIsEnabled, OSError) as err:  # loading says what is wrong, and how
            logger.info("cannot ask the Hub for %s's commit (%s); using the cached one", source, type(err).__name__)
    return {"id": source, "revision": _cached_commit(source, revision or "main")}


def _cached_commit(repo_id: str, revision: str) -> str | None:
    """The commit huggingface_hub's cache holds for ``revision`` of a dataset repo (its ``refs`` file), if any."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    if re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    ref = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="dataset") / "refs" / revision
    try:
        return ref.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def load_data(source: str, split: str = "train", limit: int | None = None, *, revision: str | None = None):
    """Load ``source`` as a ``datasets.Dataset``.

    Args:
        source (``str``): a .jsonl/.json/.csv/.parquet/.txt file, a folder written by ``save_to_disk``, a folder of
            data files, or a Hub dataset id.
        split (``str``, defaults to ``"train"``): the split of a folder, a ``DatasetDict`` or a Hub dataset.
        limit (``int``, *optional*): keep only the first rows.
        revision (``str``, *optional*): for a Hub dataset, the branch, tag or commit to load (pass
            ``hub_source(source)["revision"]`` to load exactly the commit the provenance records).

    Returns:
        ``datasets.Dataset``: never empty; a :class:`DataError` names the file, line or reason otherwise.

    Example:
        >>> load_data("examples/medication_qa/data.jsonl", limit=5)
    """
    import datasets

    path = Path(source).expanduser()
    try:
        if path.is_file():
            fmt = _FORMATS.get(path.suffix.lower())
            if fmt is None:
                raise DataError(f"{path}: unknown file type {path.suffix!r}; use one of {', '.join(_FORMATS)}")
            if path.stat().st_size == 0:
                raise DataError(f"{path}: the file is empty; nothing to score")
            if fmt == "json":
                _check_lines(path, jsonl=path.suffix.lower() == ".jsonl")
            ds = datasets.load_dataset(fmt, data_files=str(path), split="train")
        elif path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
                ds = datasets.load_from_disk(str(path))
                if isinstance(ds, datasets.DatasetDict):
                    ds = ds[split]
            else:
                ds = datasets.load_dataset(str(path), split=split)
        elif not is_hub_id(source):
            raise DataError(f"{source}: no such file or folder")
        else:
            ds = datasets.load_dataset(source, split=split, revision=revision)
    except DataError:
        raise
    except Exception as err:  # datasets raises many types; the user needs the file and the reason
        raise DataError(f"{source}: cannot load data ({type(err).__name__}: {err})") from None
    if len(ds) == 0:
        raise DataError(f"{source}: the dataset is empty; nothing to score")
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return ds


def json_object(line: str, where: str, error: type[Exception] = DataError) -> dict[str, Any]:
    """One line of a JSON Lines file as a dict.

    Args:
        line (``str``): the line's text.
        where (``str``): how an error names the line, e.g. ``"data.jsonl, line 3"``.
        error (``type``, defaults to :class:`DataError`): the error raised when the line is not valid JSON or not a
            JSON object.

    Returns:
        ``dict[str, Any]``: the parsed object.
    """
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        raise error(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(value, dict):
        raise error(f"{where}: expected a JSON object per line, got {type(value).__name__}")
    return value


def _check_lines(path: Path, jsonl: bool) -> None:
    """Name the first line that is not UTF-8 (or, for JSON Lines, not a JSON object): datasets' own error does not."""
    rows = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{path}, line {lineno}: not valid UTF-8 (byte {err.start}); re-encode the file as UTF-8"
                ) from None
            if jsonl and line.strip():
                json_object(line, f"{path}, line {lineno}")
                rows += 1
    if jsonl and not rows:
        raise DataError(f"{path}: the file holds only blank lines, no rows; nothing to score")
