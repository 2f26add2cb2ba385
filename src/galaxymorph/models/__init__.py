"""Models: a registry of architectures, the classifier wrapper, and (in :mod:`.checkpoints`) checkpoints.

Every trained model is a :class:`Classifier`: a ``torch.nn.Module`` whose ``forward`` takes the
float tensor made by its own :meth:`Classifier.preprocess` from uint8 images (N, 256, 256, 3) as
stored, and returns logits: (N, 1) for two classes (positive = the second class), (N, k) for
more. ``galaxymorph.load_model(run_dir)`` gives one back in eval mode.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.galaxy10 import CLASS_NAMES
from ..errors import GalaxymorphError
from .galaxy import DEFAULT_VARIANT, VARIANTS, GalaxyResNet, variant
from .seed import SeedCNN

REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "seed": SeedCNN,
    "default": variant(DEFAULT_VARIANT),  # chosen by measurement: docs/models.md
    **{name: variant(name) for name in VARIANTS},  # the compared variants (scripts/compare_models.py)
}


NETWORKS: dict[str, type[nn.Module]] = {"SeedCNN": SeedCNN, "GalaxyResNet": GalaxyResNet}


def resolve_architecture(name: str, **net_kwargs) -> dict:
    """The network class and every keyword a registry name stands for, e.g. ``default`` ->
    ``{"net": "GalaxyResNet", "kwargs": {"widths": [16, 32, 64, 128], ...}}``."""
    if name not in REGISTRY:
        raise GalaxymorphError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}")
    factory = REGISTRY[name]
    if isinstance(factory, partial):
        return {"net": factory.func.__name__, "kwargs": {**factory.keywords, **net_kwargs}}
    return {"net": factory.__name__, "kwargs": dict(net_kwargs)}


class Classifier(nn.Module):
    """A network plus what it needs to be used: its classes and its input preprocessing.

    ``architecture`` (as saved in checkpoints) rebuilds exactly the network that was trained,
    even after the registry name it was made from (``default``) has come to mean another one.
    """

    def __init__(self, name: str, class_ids: Sequence[int], architecture: dict | None = None, **net_kwargs):
        super().__init__()
        self.architecture = architecture or resolve_architecture(name, **net_kwargs)
        if self.architecture["net"] not in NETWORKS:
            raise GalaxymorphError(f"unknown network {self.architecture['net']!r} in model {name!r}")
        self.name = name
        self.class_ids = [int(c) for c in class_ids]
        self.net_kwargs = dict(net_kwargs)
        self.n_outputs = 1 if len(self.class_ids) == 2 else len(self.class_ids)
        self.net = NETWORKS[self.architecture["net"]](n_outputs=self.n_outputs, **self.architecture["kwargs"])
        self.input_size = int(self.net.input_size)

    @property
    def class_names(self) -> list[str]:
        return [CLASS_NAMES[c] for c in self.class_ids]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    # -- input ------------------------------------------------------------------------
    def preprocess(self, images) -> torch.Tensor:
        """uint8 images (N, 256, 256, 3), numpy or torch, -> float NCHW tensor on the model's device."""
        return self.resize(to_float_nchw(images, self.device))

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        """Scale a float NCHW batch to the network's input size (area averaging when shrinking)."""
        if x.shape[-1] == self.input_size and x.shape[-2] == self.input_size:
            return x
        mode = "area" if x.shape[-1] > self.input_size else "bilinear"
        return F.interpolate(x, size=(self.input_size, self.input_size), mode=mode)

    # -- output -----------------------------------------------------------------------
    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, k) from logits, for both the binary and softmax heads."""
        if self.n_outputs == 1:
            p = torch.sigmoid(logits.float()[:, 0])
            return torch.stack([1 - p, p], dim=1)
        return torch.softmax(logits.float(), dim=1)

    @torch.no_grad()
    def predict_proba(self, images, batch_size: int = 64, tta: bool = False, progress: bool = False,
                      amp: bool = False) -> np.ndarray:
        """Probabilities (N, k) for uint8 images; ``tta`` averages over the 8 D4 symmetries;
        ``amp`` runs the network under bf16 autocast (probabilities still float32)."""
        from ..progress import progress_bar

        was_training = self.training
        self.eval()
        out = []
        starts = range(0, len(images), batch_size)
        for start in progress_bar(starts, desc="predict", unit="batch", disable=not progress):
            x = self.preprocess(images[start : start + batch_size])
            # channels-last, contiguous views: rotated views are strided, and convolutions on
            # strided input take slow paths (2.6x slower for the seed CNN's D4 averaging)
            views = [v.contiguous(memory_format=torch.channels_last) for v in (d4_views(x) if tta else [x])]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
                out.append(torch.stack([self.probabilities(self(v)) for v in views]).mean(0).cpu())
        self.train(was_training)
        k = len(self.class_ids)
        return torch.cat(out).numpy() if out else np.empty((0, k), dtype=np.float32)

    def gradcam_layer(self) -> nn.Module:
        """The default layer for GradCAM: the one the network names, else its last convolution.

        (In a residual network the last ``Conv2d`` in module order can be a 1x1 shortcut, which
        sees only part of the evidence; such networks name their last block instead.)
        """
        if hasattr(self.net, "gradcam_layer"):
            return self.net.gradcam_layer()
        convs = [m for m in self.net.modules() if isinstance(m, nn.Conv2d)]
        return convs[-1]


def to_float_nchw(images, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 NHWC images (numpy or torch) -> float32 NCHW in [0, 1] on ``device``."""
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise GalaxymorphError(f"images must be uint8 as stored, got {images.dtype}")
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.ndim != 4 or images.shape[-1] != 3:
        raise GalaxymorphError(f"images must have shape (N, H, W, 3), got {tuple(images.shape)}")
    return images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)


def d4_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 symmetries of the square (4 rotations, each with and without a flip)."""
    views = []
    for flipped in (x, x.flip(-1)):
        views.extend(torch.rot90(flipped, k, dims=(-2, -1)) for k in range(4))
    return views


def build_model(name: str, class_ids: Sequence[int], **net_kwargs) -> Classifier:
    """A fresh, randomly initialised :class:`Classifier`."""
    return Classifier(name, class_ids, **net_kwargs)


# checkpoints: at the end, since they build on the Classifier above
from .checkpoints import (  # noqa: E402
    CHECKPOINT_FORMAT, load_model, load_weights, model_from_checkpoint, read_checkpoint, save_checkpoint,
)
