"""GradCAM (Selvaraju et al. 2017): where in the last convolutional layer the class evidence is.

For the chosen layer (default ``model.gradcam_layer()``, the last ``Conv2d``) with activations
A (N, C, h, w) and gradients dS/dA of the class score S (see :mod:`.base`: the signed logit,
before the sigmoid), the map is ``ReLU(sum_c w_c A_c)`` with channel weights ``w_c`` = the
spatial mean of the gradients, then upsampled bilinearly to the size of the given images
(256x256) and, with ``normalize=True``, min-max scaled per map.

:class:`BaseCAM` records the layer's activations with a forward hook, as pytorch-grad-cam does,
and a subclass overrides one function, :meth:`BaseCAM.cam_weights` (GradCAM++ lives in
``gradcampp.py``). The hook stores the layer's own output and hands a *copy* downstream, so an
in-place ReLU after the convolution (the seed model has one) cannot alter what is explained:
A is the convolution's output, as in captum's ``LayerGradCam``. The hook is removed after
every batch, even on error, and the model's train/eval flag is restored.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import GalaxymorphError
from .base import Explainer, class_scores, pick_targets


def resolve_layer(model: nn.Module, layer) -> tuple[nn.Module, str]:
    """The layer module and its dotted name; ``layer`` is None, a module or a name."""
    if layer is None:
        layer = model.gradcam_layer()
    names = {id(m): name for name, m in model.named_modules()}
    if isinstance(layer, str):
        modules = dict(model.named_modules())
        if layer not in modules:
            convs = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
            raise GalaxymorphError(f"model has no layer {layer!r}; its convolutions are {', '.join(convs)}")
        return modules[layer], layer
    if id(layer) not in names:
        raise GalaxymorphError("layer is not a module of this model")
    return layer, names[id(layer)]


class BaseCAM(Explainer):
    """Class activation maps from one layer's activations and gradients."""

    name = "cam"

    def __init__(self, model: nn.Module, layer=None):
        super().__init__(model)
        self.layer, self.layer_name = resolve_layer(model, layer)

    def cam_weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """Channel weights (N, C) from activations and gradients (N, C, h, w)."""
        raise NotImplementedError

    def attribute_batch(self, x, targets):
        recorded: list[torch.Tensor] = []

        def keep_output(module, inputs, output):
            if not isinstance(output, torch.Tensor) or output.ndim != 4:
                raise GalaxymorphError(f"layer {self.layer_name!r} does not give a (N, C, h, w) feature map")
            recorded.append(output)
            return output.clone()  # downstream in-place ops change the copy, not what we explain

        x = x.detach().requires_grad_(True)  # so the layer output is in the graph even if weights are frozen
        handle = self.layer.register_forward_hook(keep_output)
        try:
            scores = class_scores(self.model, x)
        finally:
            handle.remove()
        if len(recorded) != 1:
            raise GalaxymorphError(f"layer {self.layer_name!r} ran {len(recorded)} times in one forward pass; "
                                   "choose a layer that runs once")
        activations = recorded[0]
        targets = pick_targets(scores.detach(), targets)
        score = scores.gather(1, targets[:, None]).sum()
        (gradients,) = torch.autograd.grad(score, activations)
        weights = self.cam_weights(activations.detach(), gradients.detach())
        cam = torch.relu((weights[:, :, None, None] * activations.detach()).sum(dim=1))
        return cam, targets


class GradCAM(BaseCAM):
    """GradCAM: channel weights are the spatial mean of the gradients."""

    name = "gradcam"

    def cam_weights(self, activations, gradients):
        return gradients.mean(dim=(2, 3))


def gradcam(model: nn.Module, images, target=None, layer=None, normalize: bool = True,
            batch_size: int = 32, progress: bool = False, return_targets: bool = False):
    """GradCAM maps (N, H, W) float32 for uint8 images (N, H, W, 3) as stored.

    ``target``: class position (0..k-1; binary: 0 negative, 1 positive), one per image, or None
    for the predicted class. ``layer``: module or dotted name (default: last Conv2d). Maps are
    upsampled to the images' own H x W and, with ``normalize``, scaled to [0, 1] per map.
    """
    return GradCAM(model, layer)(images, target=target, normalize=normalize, batch_size=batch_size,
                                 progress=progress, return_targets=return_targets)
