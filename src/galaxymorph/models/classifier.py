"""The registry of architectures and the classifier wrapper that every trained model is.

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
from ..data.tree import load_tree
from ..errors import GalaxymorphError
from ..inference import predict_proba, to_float_nchw
from .galaxy import DEFAULT_VARIANT, VARIANTS, GalaxyResNet, variant
from .seed import SeedCNN
from .tree import concentrations

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

    def __init__(self, name: str, class_ids: Sequence[int], architecture: dict | None = None,
                 tree: str | None = None, **net_kwargs):
        super().__init__()
        self.architecture = architecture or resolve_architecture(name, **net_kwargs)
        if self.architecture["net"] not in NETWORKS:
            raise GalaxymorphError(f"unknown network {self.architecture['net']!r} in model {name!r}")
        self.name = name
        self.class_ids = [int(c) for c in class_ids]
        self.net_kwargs = dict(net_kwargs)
        self.tree = tree  # a decision tree's name (``gz2``): one output per answer, no classes (models/tree.py)
        if tree is not None:
            self.class_ids, self.n_outputs = [], len(load_tree(tree).answers)
        else:
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
        """Class probabilities (N, k) from logits, for both the binary and softmax heads; for a
        tree model, the Dirichlet concentrations (N, answers) (:mod:`.tree`)."""
        if self.tree is not None:
            return concentrations(logits)
        if self.n_outputs == 1:
            p = torch.sigmoid(logits.float()[:, 0])
            return torch.stack([1 - p, p], dim=1)
        return torch.softmax(logits.float(), dim=1)

    def predict_proba(self, images, batch_size: int | None = None, tta: bool = False, progress: bool = False,
                      amp: bool = False) -> np.ndarray:
        """Probabilities (N, k) for uint8 images on the model's device; ``tta`` averages over the 8
        D4 symmetries; ``amp`` runs the network under bf16 autocast (see :func:`inference.predict_proba`)."""
        return predict_proba(self, images, batch_size=batch_size, tta=tta, progress=progress, amp=amp)

    # -- the head and the encoder (fine-tuning: training.finetune) -----------------------
    def head_parameter_names(self) -> list[str]:
        """Names (as in ``state_dict``) of the head's weights: the network's last layer, which
        every registry network names ``head``. The rest of the network is the encoder: what
        ``train --init`` copies from another run and ``--freeze-encoder`` keeps fixed."""
        return [f"net.head.{name}" for name in self.net.head.state_dict()]

    def encoder_state(self, state_dict: dict) -> dict:
        """``state_dict`` (a Classifier's, e.g. from a checkpoint) without the head's entries."""
        head = set(self.head_parameter_names())
        return {k: v for k, v in state_dict.items() if k not in head}

    def freeze_encoder(self) -> None:
        """Train only the head from now on: the encoder's weights take no gradients, and its
        layers stay in eval mode when the model trains, so BatchNorm statistics stay fixed
        (the dropout before the head still applies)."""
        head = set(self.head_parameter_names())
        for name, p in self.named_parameters():
            p.requires_grad_(name in head)
        self.encoder_frozen = True
        self.train(self.training)

    def train(self, mode: bool = True) -> "Classifier":
        super().train(mode)
        if mode and getattr(self, "encoder_frozen", False):
            for name, module in self.net.named_modules():
                if name and name != "head" and not name.startswith("head.") and not isinstance(module, nn.Dropout):
                    module.training = False  # this module only: a Dropout inside a block keeps training
        return self

    def gradcam_layer(self) -> nn.Module:
        """The default layer for GradCAM: the one the network names, else its last convolution.

        (In a residual network the last ``Conv2d`` in module order can be a 1x1 shortcut, which
        sees only part of the evidence; such networks name their last block instead.)
        """
        if hasattr(self.net, "gradcam_layer"):
            return self.net.gradcam_layer()
        convs = [m for m in self.net.modules() if isinstance(m, nn.Conv2d)]
        return convs[-1]


def build_model(name: str, class_ids: Sequence[int], tree: str | None = None, **net_kwargs) -> Classifier:
    """A fresh, randomly initialised :class:`Classifier` (of a decision tree's answers with ``tree``)."""
    return Classifier(name, class_ids, tree=tree, **net_kwargs)
