"""Integrated gradients (Sundararajan et al. 2017) at the model's full input resolution.

Attribution of each input pixel = (x - x') times the gradient of the class score averaged along
the straight path from a baseline x' to x (captum's ``IntegratedGradients``, Gauss-Legendre
steps). The baseline is a black image (``"black"``, the paper's choice; the sky of a survey
cutout is nearly black) or the image itself blurred with a wide Gaussian (``"blur"``: removes
bars and arms, keeps the total light). The map is the sum of |attribution| over the three
colour channels, computed at ``model.input_size`` and upsampled bilinearly to the given images'
size (256x256) when the model sees a smaller image (128 px for the default model).

IG maps are per pixel and grainy; they answer "which pixels", GradCAM "which region".
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import GalaxymorphError
from .base import Explainer, class_scores, gaussian_blur, pick_targets

BASELINES = ("black", "blur")


class IntegratedGradientsExplainer(Explainer):
    name = "integrated-gradients"

    def __init__(self, model: nn.Module, baseline: str = "black", n_steps: int = 32, blur_sigma: float | None = None):
        super().__init__(model)
        if baseline not in BASELINES:
            raise GalaxymorphError(f"unknown baseline {baseline!r}; known baselines: {', '.join(BASELINES)}")
        if not isinstance(n_steps, int) or n_steps < 2:
            raise GalaxymorphError(f"n_steps must be an integer >= 2, got {n_steps!r}")
        self.baseline, self.n_steps = baseline, n_steps
        self.blur_sigma = blur_sigma if blur_sigma is not None else model.input_size / 16
        self.layer_name = "input"

    def baselines(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x) if self.baseline == "black" else gaussian_blur(x, self.blur_sigma)

    def attribute_batch(self, x, targets):
        from captum.attr import IntegratedGradients  # lazy: captum takes seconds to import; only this method uses it

        forward = lambda inp: class_scores(self.model, inp)  # noqa: E731  (signed scores, see base)
        if targets is None:
            with torch.no_grad():
                targets = pick_targets(forward(x), None)
        ig = IntegratedGradients(forward)
        attr = ig.attribute(x, baselines=self.baselines(x), target=targets, n_steps=self.n_steps,
                            internal_batch_size=max(len(x), 1) * min(self.n_steps, 8))
        return attr.abs().sum(dim=1), targets


def integrated_gradients(model: nn.Module, images, target=None, normalize: bool = True, batch_size: int = 8,
                         progress: bool = False, return_targets: bool = False, baseline: str = "black",
                         n_steps: int = 32, blur_sigma: float | None = None):
    """Integrated-gradients maps (N, H, W) for uint8 images; ``target`` as :func:`.gradcam.gradcam`."""
    explainer = IntegratedGradientsExplainer(model, baseline=baseline, n_steps=n_steps, blur_sigma=blur_sigma)
    return explainer(images, target=target, normalize=normalize, batch_size=batch_size, progress=progress,
                     return_targets=return_targets)
