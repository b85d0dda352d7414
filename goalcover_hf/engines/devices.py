"""Where a transformers judge runs: the device and dtype it is given or finds, whether the model fits one device, how
many tokens a suffix batch may hold there, and what running out of device memory tells the user.

``device="auto"`` takes CUDA if torch sees a GPU (the one with the most free memory), then Apple's MPS, else the CPU;
``dtype="auto"`` takes bfloat16 where the device computes it natively, float16 on other GPUs, float32 on the CPU. A
model larger than the free memory of one GPU is spread with ``device_map="auto"`` (over the GPUs, then the CPU) when
the device was left to ``auto``; an explicit device is taken as asked.
"""

from __future__ import annotations

import ctypes
import functools
import re
from dataclasses import dataclass
from typing import Any

from ..errors import GoalcoverError
from ..logging import get_logger
from .base import EngineMisconfigured

logger = get_logger(__name__)

DEVICES = "auto, cpu, cuda, cuda:N or mps"
DTYPES = ("auto", "float32", "bfloat16", "float16")
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
FIT_HEADROOM = 1.2  # weights x this must fit in a GPU's free memory: the rest holds key/value states and activations
MEMORY_SHARE = 0.5  # of the free device memory a suffix batch may take (the allocator fragments; others may share it)
MAX_BATCH_TOKENS = 1 << 18


class DeviceOutOfMemory(EngineMisconfigured):
    """The device ran out of memory: every later batch would too, so the map stops (finished pairs stay cached)."""


def check_device(value: str) -> str:
    """``value`` if it names a device form goalcover knows; raises :class:`GoalcoverError` otherwise."""
    if not _DEVICE.fullmatch(value):
        raise GoalcoverError(f"engine 'transformers': device must be {DEVICES}, got {value!r}")
    return value


@dataclass(frozen=True)
class Placement:
    """Where the model goes: ``device`` takes the inputs (the first layer's device when spread), ``dtype`` names the
    weights' type, ``device_map`` is ``"auto"`` when the model is spread over several devices."""

    device: str
    dtype: str
    device_map: str | None = None

    def torch_dtype(self):
        """The ``torch.dtype`` of :attr:`dtype`."""
        import torch

        return getattr(torch, self.dtype)

    def load_kwargs(self) -> dict[str, Any]:
        """``from_pretrained`` keywords that put the weights where this placement says, in its dtype."""
        kwargs: dict[str, Any] = {"dtype": self.torch_dtype()}
        if self.device_map:
            kwargs["device_map"] = self.device_map
        elif self.device != "cpu":
            kwargs["device_map"] = self.device  # straight onto the device, never a full copy in host memory first
        return kwargs


def _cuda_index(device: str) -> int:
    import torch

    return int(device.partition(":")[2] or torch.cuda.current_device())


def resolve_device(device: str = "auto") -> str:
    """The device ``device`` names, checked against what torch sees: ``"cpu"``, ``"cuda:N"`` or ``"mps"``."""
    import torch

    check_device(device)
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        if cuda:
            free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
            return f"cuda:{max(range(len(free)), key=free.__getitem__)}"
        return "mps" if mps else "cpu"
    if device.startswith("cuda"):
        if not cuda:
            raise GoalcoverError(f"device {device!r}: torch sees no CUDA GPU (torch {torch.__version__}, CUDA "
                                 f"{torch.version.cuda or 'not built in'}); pass --device cpu or install a CUDA torch")
        index, count = _cuda_index(device), torch.cuda.device_count()
        if index >= count:
            raise GoalcoverError(f"device {device!r}: torch sees {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
        return f"cuda:{index}"
    if device == "mps" and not mps:
        raise GoalcoverError("device 'mps': Apple's Metal backend is not available to this torch")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """The dtype ``dtype`` names on ``device`` (``auto``: bfloat16 where native, float16 on other GPUs, else float32)."""
    import torch

    if dtype not in DTYPES:
        raise GoalcoverError(f"engine 'transformers': dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        # Native bfloat16 from Ampere (compute capability 8) on; before, torch emulates it, slowly. ROCm: ask torch.
        native = torch.cuda.is_bf16_supported() if torch.version.hip else \
            torch.cuda.get_device_capability(_cuda_index(device))[0] >= 8
        return "bfloat16" if native else "float16"
    if device == "mps":
        try:  # bfloat16 on MPS needs a recent macOS: ask the device rather than guess
            torch.zeros(1, dtype=torch.bfloat16, device="mps")
            return "bfloat16"
        except (RuntimeError, TypeError):
            return "float16"
    return "float32"


def weight_bytes(config, dtype: str, trust_remote_code: bool = False) -> int | None:
    """Bytes the weights take in ``dtype``, counted on torch's meta device (no memory, no download); None if the
    model cannot be built that way."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            shell = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except Exception as err:  # an architecture that will not build on meta: no estimate, load as asked
        logger.debug("no size estimate for %s: %s", type(config).__name__, err)
        return None
    return sum(p.numel() for p in shell.parameters()) * torch.empty(0, dtype=getattr(torch, dtype)).element_size()


def place(device: str, dtype: str, config=None, trust_remote_code: bool = False) -> Placement:
    """Where a model of ``config`` goes for the ``device`` and ``dtype`` options (see the module docstring)."""
    import torch

    target = resolve_device(device)
    kind = resolve_dtype(dtype, target)
    if device == "auto" and target.startswith("cuda") and config is not None:
        need = weight_bytes(config, kind, trust_remote_code)
        free = torch.cuda.mem_get_info(_cuda_index(target))[0]
        if need is not None and need * FIT_HEADROOM > free:
            logger.info("%.1f GiB of weights do not fit the %.1f GiB free on %s: spreading them with "
                        "device_map='auto'", need / 2**30, free / 2**30, target)
            return Placement(target, kind, "auto")
    return Placement(target, kind)


def kv_bytes_per_token(config, dtype) -> int:
    """Bytes of key/value states one token takes over all layers (``dtype``: a torch dtype)."""
    import torch

    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    return 2 * text.num_hidden_layers * kv_heads * head_dim * torch.empty(0, dtype=dtype).element_size()


def batch_tokens(config, device: str, dtype, default: int) -> int:
    """Rows x width a suffix batch may hold: ``default`` off CUDA; on CUDA, what :data:`MEMORY_SHARE` of the free
    memory holds now (each token: its key/value states twice, the merged copy and the attention's working set, plus
    the feed-forward activations of a suffix token)."""
    import torch

    if not device.startswith("cuda"):
        return default
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    size = torch.empty(0, dtype=dtype).element_size()
    per_token = 2 * kv_bytes_per_token(config, dtype) + 4 * (getattr(text, "intermediate_size", 0) or 0) * size
    free = torch.cuda.mem_get_info(_cuda_index(device))[0]
    return int(min(MAX_BATCH_TOKENS, max(default // 8, free * MEMORY_SHARE // max(per_token, 1))))


def out_of_memory_message(identity: str, placement: Placement, what: str) -> str:
    """The message of a device out-of-memory error: what ran out and which settings to lower."""
    spread = " spread with device_map='auto'" if placement.device_map else ""
    return (f"{identity} ran out of memory on {placement.device}{spread} ({placement.dtype}) during {what}. Lower "
            "what the judge holds at once: --batch-size (samples per engine call), --max-context-tokens (longer "
            "samples are cut to fit), --dtype (bfloat16 or float16 instead of float32), or let the model spread "
            "over the GPUs and the CPU (--device auto loads with device_map='auto' when the weights do not fit one "
            "GPU). Pairs already judged stay in the pair cache.")


@functools.cache
def _glibc():
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl): nothing to do
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def release_host_memory() -> None:
    """Hand the heap memory freed so far back to the operating system (glibc only).

    glibc keeps freed heap blocks for reuse, so a judge on the CPU would hold the peak of every batch it ran; trimming
    before each batch keeps its resident memory near what the current batch needs (measured on the embedded model's
    explanations: a 2.27 GiB peak became 1.96 GiB).
    """
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def guard_memory(what: str):
    """Method decorator: a device out-of-memory error becomes :class:`DeviceOutOfMemory` naming the settings to lower.

    The engine's kept prefix states (``_kept``) are dropped and the allocator's cache emptied first, so the memory
    is free for whatever runs next in this process.
    """

    def wrap(method):
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            import torch

            try:
                return method(self, *args, **kwargs)
            except torch.OutOfMemoryError:  # torch.cuda.OutOfMemoryError is the same class
                getattr(self, "_kept", []).clear()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise DeviceOutOfMemory(out_of_memory_message(self.identity, self.placement, what)) from None

        return guarded

    return wrap
