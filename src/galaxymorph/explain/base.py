"""What every explainer shares: input and target validation, batching, upsampling, scaling.

An explainer turns uint8 images as stored (N, H, W, 3) into one heatmap per image, (N, H, W),
at the resolution of the GIVEN images (256x256 for Galaxy10), whatever size the model itself
sees (``model.input_size``; 128 px for the default model): maps computed at the network's
resolution are upsampled bilinearly (``align_corners=False``), so a map always lies on top of
the image it explains.

A subclass implements one method, :meth:`Explainer.attribute_batch`, on a preprocessed batch.

Scores. The explained quantity is the class *score* before any sigmoid/softmax: for a softmax
model the logit of the target class; for a single-logit binary model the logit for the
positive class (position 1) and MINUS the logit for the negative class (position 0), so that
"evidence for class 0" is evidence that lowers the positive logit.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GalaxymorphError
from ..decision import predicted_positions
from ..inference import check_images
from ..progress import progress_bar


def class_scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Signed scores (N, k) before the sigmoid/softmax: [-z, z] for a one-logit binary model."""
    logits = model(x)
    if logits.shape[1] == 1:
        return torch.cat([-logits, logits], dim=1)
    return logits


def validate_target(target, n_images: int, n_classes: int) -> np.ndarray | None:
    """None (explain the predicted class), or an int64 array (N,) of class positions 0..k-1."""
    if target is None:
        return None
    arr = np.asarray(target)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise GalaxymorphError(f"target must be a class position 0..{n_classes - 1}, a list of them or None, "
                               f"got {target!r}")
    if arr.ndim == 0:
        arr = np.full(n_images, int(arr), dtype=np.int64)
    if arr.shape != (n_images,):
        raise GalaxymorphError(f"target has {arr.size} entries for {n_images} images")
    if n_images and (arr.min() < 0 or arr.max() >= n_classes):
        raise GalaxymorphError(f"target holds class positions outside 0..{n_classes - 1}: {sorted(set(arr.tolist()))}")
    return arr.astype(np.int64)


def pick_targets(scores: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """The given targets, or the predicted class: the decision rule of every stage
    (:func:`decision.predicted_positions`) on the probabilities of the signed scores."""
    return predicted_positions(torch.softmax(scores.float(), dim=1)) if targets is None else targets


def minmax_scale(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale each map (N, H, W) to [0, 1]; a flat (e.g. all-zero) map becomes all zeros."""
    flat = maps.flatten(1)
    lo = flat.min(dim=1).values[:, None, None]
    span = flat.max(dim=1).values[:, None, None] - lo
    return torch.where(span > eps, (maps - lo) / span.clamp_min(eps), torch.zeros_like(maps))


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (align_corners=False) resize of maps (N, h, w) to ``size``; no-op when equal."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def upsample_on_grid(maps: torch.Tensor, size: tuple[int, int], grid: tuple[float, float],
                     input_size: int) -> torch.Tensor:
    """Bilinear resize of maps (N, h, w) whose cell (i, j) is centred at ``origin + stride * (i, j)``
    in the model's input pixels (``grid = (origin, stride)``), onto images of ``size``.

    Plain ``align_corners=False`` resizing assumes the cells tile the input evenly, cell i centred
    at ``stride * (i + 0.5) - 0.5``. A chain of stride-2, padding-1 convolutions centres cell i
    at ``stride * i`` instead, so plain resizing shifts the map by half a cell (15 px on a 256 px
    image for the default model's 8x8 grid) down and to the right. Outside the outermost cell
    centres the map keeps the border value.
    """
    origin, stride = grid
    height, width = size
    n, h, w = maps.shape

    def coords(length: int, cells: int) -> torch.Tensor:
        centres = (torch.arange(length, dtype=maps.dtype, device=maps.device) + 0.5) * input_size / length - 0.5
        cell = (centres - origin) / stride  # position in cell units
        return 2 * cell / max(cells - 1, 1) - 1  # grid_sample's [-1, 1] with align_corners=True

    gy, gx = torch.meshgrid(coords(height, h), coords(width, w), indexing="ij")
    sampling = torch.stack([gx, gy], dim=-1)[None].expand(n, height, width, 2)
    return F.grid_sample(maps[:, None], sampling, mode="bilinear", padding_mode="border",
                         align_corners=True)[:, 0]


class Explainer:
    """Base class: validates inputs, runs batches in eval mode, upsamples and scales the maps."""

    name = "explainer"

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module) or not hasattr(model, "preprocess"):
            raise GalaxymorphError("model must be a galaxymorph Classifier (build_model or load_model)")
        self.model = model

    def attribute_batch(self, x: torch.Tensor, targets: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw maps (n, h, w) for a preprocessed batch, and the class positions explained."""
        raise NotImplementedError

    def resize(self, maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Raw maps onto the given images' pixels (plain bilinear here; CAMs align their grid)."""
        return upsample(maps, size)

    def __call__(self, images, target=None, normalize: bool = True, batch_size: int = 32,
                 progress: bool = False, return_targets: bool = False):
        """Maps (N, H, W) float32 for uint8 images (N, H, W, 3); see the module docstring.

        ``target``: a class position (0..k-1), an array of them (one per image), or None for
        the predicted class. ``normalize`` scales each map to [0, 1]; otherwise the raw map.
        With ``return_targets`` also return the class positions explained, (N,) int64.
        """
        images = check_images(images)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise GalaxymorphError(f"batch_size must be a positive integer, got {batch_size!r}")
        n, height, width = images.shape[0], images.shape[1], images.shape[2]
        targets = validate_target(target, n, len(self.model.class_ids) or self.model.n_outputs)  # tree: answers
        maps, used = [], []
        was_training = self.model.training
        self.model.eval()  # dropout off, batch-norm running statistics: maps are deterministic
        try:
            starts = range(0, n, batch_size)
            for start in progress_bar(starts, desc=self.name, unit="batch", disable=not progress):
                stop = start + batch_size
                x = self.model.preprocess(images[start:stop])
                t = None if targets is None else torch.as_tensor(targets[start:stop], device=x.device)
                with torch.enable_grad():
                    raw, t_used = self.attribute_batch(x, t)
                raw = self.resize(raw.detach().float(), (height, width))
                maps.append((minmax_scale(raw) if normalize else raw).cpu())
                used.append(t_used.detach().cpu())
        finally:
            self.model.train(was_training)
        out = torch.cat(maps).numpy() if maps else np.empty((0, height, width), dtype=np.float32)
        if return_targets:
            return out, (torch.cat(used).numpy().astype(np.int64) if used else np.empty(0, dtype=np.int64))
        return out


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a float NCHW batch (reflect padding keeps the sky level)."""
    radius = max(1, int(round(3 * sigma)))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    padded = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
