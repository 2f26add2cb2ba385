"""Where and in what precision torch runs: device choice, bf16/fp16 autocast, CPU threads.

A foundation: training sets up its device here, and evaluate, explain and predict choose theirs
(:func:`galaxymorph.runs.run_device`).
"""

from __future__ import annotations

import contextlib

import torch

from .config import check_threads
from .errors import GalaxymorphError


def select_device(name: str) -> torch.device:
    """``auto`` = the GPU when there is one; a CUDA device that is not there is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GalaxymorphError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GalaxymorphError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
    return device


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads in torch from now on; 0 keeps torch's own choice (one per core).

    Config checks the value for training; ``evaluate``, ``explain`` and ``predict --threads``
    come here directly, so the rule is checked here too."""
    check_threads(threads)
    if threads > 0:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def tuned_backends(device: torch.device):
    """While training on a GPU: cuDNN times its convolution algorithms for our fixed batch shapes
    (1.28x for the default model on an H200, docs/performance.md), and fp32 matrix products may
    use TF32. Both are put back on leaving, so evaluation and explanation in the same process,
    whose batches come in many shapes, do not pay a new search for each. Nothing changes on
    the CPU."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before[0]
        torch.set_float32_matmul_precision(before[1])


def mixed_precision(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype: bf16 on CPUs with native bf16 (AVX512-BF16/AMX) and capable GPUs, else
    fp16 on older GPUs; None (fp32) when ``amp`` is off or the CPU would only emulate bf16."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bf16 natively (emulated bf16 is slower than fp32)."""
    for probe in ("is_bf16_supported", "_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, probe, None)
        if check is not None:
            try:
                if check():
                    return True
            except Exception:  # an old or odd build: treat as unsupported
                pass
    return False


def dtype_name(dtype: torch.dtype | None) -> str | None:
    """``torch.bfloat16`` -> ``"bfloat16"``; None stays None."""
    return None if dtype is None else str(dtype).replace("torch.", "")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is the GPU or CPU allocator running out of memory."""
    oom = getattr(torch, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    text = str(exc)
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or isinstance(exc, MemoryError))
