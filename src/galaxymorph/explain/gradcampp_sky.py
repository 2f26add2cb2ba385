"""GradCAM++ relative to the image's sky, on a finer layer: explain's default method.

A small subclass of :class:`.gradcampp.GradCAMPlusPlus`, as each method of pytorch-grad-cam is:
it keeps GradCAM++'s channel weights and changes only the layer (two feature-map sizes finer)
and the reference (the activations of the image's own empty sky, see :class:`.gradcam.BaseCAM`).
"""

from __future__ import annotations

from torch import nn

from .gradcam import finer_layer
from .gradcampp import GradCAMPlusPlus


class SkyGradCAMPlusPlus(GradCAMPlusPlus):
    """GradCAM++ weights on a layer two steps finer than GradCAM's, relative to the image's sky.

    The default method (see docs/explanations.md for the measurements that chose it). Three
    changes from plain GradCAM, each against one cause of border frames on real galaxies:
    the map is ``ReLU(sum_c w_c (A_c(x) - A_c(sky)))`` -- only where the image's features differ
    from those of its own empty sky (the per-channel median everywhere) can it carry evidence;
    the layer is two feature-map sizes finer (32x32 cells for the default model, 28x28 for the
    seed CNN), so evidence for a smooth galaxy is not smeared into an annulus around it (one
    size finer, 16x16, left barred spirals at 0.60-0.64 of the map on the galaxy; two reach
    0.63-0.70 and lift Round Smooth too: benchmarks/speed/bench_localisation.py,
    docs/explanations.md); and the GradCAM++ weights keep only positive gradients per position,
    so the negative class of a one-logit model is not explained by the mean of gradients
    dominated by the other class.
    """

    name = "gradcam++-sky"
    steps_finer = 2  # feature-map sizes finer than GradCAM's layer

    def __init__(self, model: nn.Module, layer=None, reference: str | None = "sky", aligned: bool = True):
        super().__init__(model, finer_layer(model, self.steps_finer) if layer is None else layer, reference, aligned)
