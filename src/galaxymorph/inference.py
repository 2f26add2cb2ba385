"""Inference, one copy of each rule: image preprocessing, the D4 symmetries, prediction on any device.

- :func:`to_float_nchw`: uint8 images as stored (N, H, W, 3) -> float32 NCHW in [0, 1] on a
  device. Training batches, ``Classifier.preprocess`` and the explainers all go through it.
- :func:`check_images`: the one check of uint8 (N, H, W, 3) images (preprocessing, the explainers).
- :func:`d4` / :func:`d4_views` / :func:`d4_transform`: the 8 symmetries of the square (one for a
  batch, all 8 of a batch for test-time averaging, a different one per image for augmentation).
- :func:`predict_proba`: class probabilities of uint8 images in batches on the model's device;
  :func:`predict_selection` does it for images of a Galaxy10-layout file. On a GPU the uint8
  pixels are moved once (a quarter of the bytes of floats) and every batch is cut there.
- :func:`predicted_positions`: the decision rule from probabilities to classes, for every stage.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .errors import GalaxymorphError
from .progress import progress_bar

CPU_BATCH = 64     # images per forward pass on the CPU (measured: docs/performance.md)
GPU_BATCH = 512    # on a GPU larger batches keep the card busy; inference needs no gradients
READ_CHUNK = 256   # images read from an HDF5 file at a time on the CPU (bounded memory)


# -- devices --------------------------------------------------------------------------------
def default_batch_size(device: str | torch.device) -> int:
    """Images per forward pass: small on the CPU (cache-friendly), large on a GPU."""
    return GPU_BATCH if torch.device(device).type == "cuda" else CPU_BATCH


# -- preprocessing --------------------------------------------------------------------------
def to_float_nchw(images, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 NHWC images (numpy or torch, on any device) -> float32 NCHW in [0, 1] on ``device``.

    The uint8 pixels travel to the device first (a quarter of the bytes of floats).
    """
    images = check_images(images)
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    return images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)


def check_images(images) -> np.ndarray | torch.Tensor:
    """uint8 images (N, H, W, 3) as stored, numpy (or a nested list) or torch; a one-line error
    otherwise. The one image check of the model's input (preprocessing and the explainers)."""
    if not isinstance(images, torch.Tensor):
        images = np.asarray(images)
    if images.dtype != (torch.uint8 if isinstance(images, torch.Tensor) else np.uint8):
        raise GalaxymorphError(f"images must be uint8 as stored, got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise GalaxymorphError(f"images must have shape (N, H, W, 3), got {tuple(images.shape)}")
    return images


# -- the symmetries of the square -----------------------------------------------------------
def d4(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """One symmetry for a whole NCHW batch: flip left-right if ``flip``, then ``k`` quarter turns."""
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, k, dims=(-2, -1)) if k % 4 else x


def d4_views(x: torch.Tensor) -> list[torch.Tensor]:
    """All 8 symmetries of a batch: the 4 rotations, then the 4 rotations of the flipped batch."""
    return [d4(x, k, flip) for flip in (False, True) for k in range(4)]


def d4_transform(x: torch.Tensor, k: torch.Tensor, flip: torch.Tensor, by_where: bool | None = None) -> torch.Tensor:
    """Per image: flip left-right where ``flip``, then rotate by ``k`` quarter turns.

    An exact permutation of pixels (no interpolation), done on whole groups at once. On a GPU
    as four ``torch.where`` selections over the whole batch, so the host never waits for the
    card (boolean-mask indexing would, on every batch); on the CPU by rotating only each
    quarter-turn group (3x cheaper there: 5 ms against 15 ms for 32 images at 128 px).
    ``by_where`` forces one way (None: by the device); both give the same pixels.
    """
    k, flip = k.to(x.device, non_blocking=True), flip.to(x.device, non_blocking=True)
    by_where = x.is_cuda if by_where is None else by_where
    out = torch.where(flip[:, None, None, None], d4(x, 0, True), x)
    for quarter in (1, 2, 3):
        turn = k == quarter
        if by_where:
            out = torch.where(turn[:, None, None, None], d4(out, quarter, False), out)
        elif turn.any():
            out[turn] = d4(out[turn], quarter, False)
    return out


# -- prediction -----------------------------------------------------------------------------
@torch.no_grad()
def predict_proba(model, images, batch_size: int | None = None, tta: bool = False, progress: bool = False,
                  amp: bool = False) -> np.ndarray:
    """Probabilities (N, k) of uint8 images (numpy or torch) with a Classifier, on its device.

    ``tta`` averages over the 8 D4 symmetries; ``amp`` runs the network under bf16 autocast
    (probabilities stay float32). On a GPU the whole uint8 array is moved there once and the
    batches (``batch_size``, default :func:`default_batch_size`) are cut on the GPU.
    """
    device = model.device
    batch_size = batch_size or default_batch_size(device)
    if batch_size < 1:
        raise GalaxymorphError(f"batch size must be at least 1, got {batch_size}")
    if device.type == "cuda" and len(images):
        images = to_device_uint8(images, device)
    was_training = model.training
    model.eval()
    out = []
    starts = range(0, len(images), batch_size)
    try:
        with full_float32(device, enabled=not amp):
            for start in progress_bar(starts, desc="predict", unit="batch", disable=not progress):
                x = model.preprocess(images[start : start + batch_size])
                # channels-last, contiguous views: rotated views are strided, and convolutions on
                # strided input take slow paths (2.6x slower for the seed CNN's D4 averaging)
                views = [v.contiguous(memory_format=torch.channels_last) for v in (d4_views(x) if tta else [x])]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    out.append(torch.stack([model.probabilities(model(v)) for v in views]).mean(0))
    finally:
        model.train(was_training)
    if not out:
        return np.empty((0, len(model.class_ids) or model.n_outputs), dtype=np.float32)
    probs = torch.cat(out).cpu().numpy()  # one copy back to the host, not one per batch
    check_finite_outputs(probs)
    return probs


@contextlib.contextmanager
def full_float32(device: torch.device, enabled: bool = True):
    """On a CUDA device, convolutions and matrix products in true float32 for the duration:
    PyTorch lets cuDNN convolutions use TF32 (10 mantissa bits) by default, which moved GPU
    probabilities up to 1.5e-3 away from the CPU's (docs/performance.md). Put back on leaving."""
    if not enabled or device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def check_finite_outputs(probs: np.ndarray) -> None:
    """A one-line error when a model gives NaN or infinite probabilities: its weights are broken
    (most often, training diverged), and every label it gives would be meaningless."""
    bad = int(np.sum(~np.isfinite(probs).all(axis=1)))
    if bad:
        raise GalaxymorphError(f"the model gives NaN or infinite outputs for {bad} of {len(probs)} image(s): its "
                               "weights are broken (did training diverge? train again with a lower --lr)")


def to_device_uint8(images, device: torch.device) -> torch.Tensor:
    """uint8 images as one tensor on ``device`` (pinned host memory first, for a fast copy)."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.device.type == "cpu" and torch.device(device).type == "cuda":
        images = images.pin_memory()
    return images.to(device, non_blocking=True)


def predict_selection(model, data, indices: np.ndarray, batch_size: int | None = None, tta: bool = False,
                      progress: bool = True, desc: str = "predict") -> np.ndarray:
    """Probabilities (n, k) for ``indices`` of an open Galaxy10 file, on the model's device.

    On the CPU the pixels are read and classified in bounded chunks (the real test split is
    hundreds of MB); on a GPU the selection is read once, moved to the card as uint8 in one
    copy, and classified there in large batches.
    """
    indices = np.asarray(indices, dtype=np.int64)
    k = len(model.class_ids) or model.n_outputs  # a tree model has answers, not classes
    batch_size = batch_size or default_batch_size(model.device)
    if model.device.type == "cuda":
        chunk = max(len(indices), 1)
    else:
        chunk = max(READ_CHUNK, batch_size)
    out = [np.empty((0, k), dtype=np.float32)]
    with progress_bar(total=len(indices), desc=desc, unit="img", disable=not progress) as bar:
        for idx, images in data.iter_images(indices, chunk):
            out.append(predict_proba(model, images, batch_size=batch_size, tta=tta))
            bar.update(len(idx))
    return np.concatenate(out)
