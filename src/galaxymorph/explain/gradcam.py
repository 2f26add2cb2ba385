"""GradCAM (Selvaraju et al. 2017): where in the last convolutional layer the class evidence is.

For the chosen layer (default ``model.gradcam_layer()``, the last ``Conv2d``) with activations
A (N, C, h, w) and gradients dS/dA of the class score S (see :mod:`.base`: the signed logit,
before the sigmoid), the map is ``ReLU(sum_c w_c A_c)`` with channel weights ``w_c`` = the
spatial mean of the gradients, then upsampled bilinearly to the size of the given images
(256x256) and, with ``normalize=True``, min-max scaled per map.

:class:`BaseCAM` records the layer's activations with a forward hook, as pytorch-grad-cam does,
and a subclass overrides one function, :meth:`BaseCAM.cam_weights` (GradCAM++ lives in
``gradcampp.py``, its sky-relative variant in ``gradcampp_sky.py``). The hook stores the layer's
own output and hands a *copy* downstream, so an in-place ReLU after the convolution (the seed
model has one) cannot alter what is explained: A is the convolution's output, as in captum's
``LayerGradCam``. The hook is removed after every batch, even on error, and the model's
train/eval flag is restored.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import GalaxymorphError
from .base import Explainer, class_scores, pick_targets, upsample, upsample_on_grid

REFERENCES = (None, "sky")


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

    def __init__(self, model: nn.Module, layer=None, reference: str | None = None, aligned: bool = True):
        super().__init__(model)
        if reference not in REFERENCES:
            raise GalaxymorphError(f"unknown reference {reference!r}; known: {', '.join(map(str, REFERENCES))}")
        self.layer, self.layer_name = resolve_layer(model, layer)
        self.reference = reference
        self.aligned = aligned
        self._grid: tuple[float, float] | None = None

    def resize(self, maps, size):
        """Upsample on the layer's true cell centres (:func:`layer_grid`); ``aligned=False``: plain."""
        if not self.aligned:
            return upsample(maps, size)
        if self._grid is None:
            self._grid = layer_grid(self.model, self.layer_name)
        return upsample_on_grid(maps, size, self._grid, self.model.input_size)

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
        features = activations.detach()
        if self.reference == "sky":
            features = features - self._layer_output(sky_images(x))
        cam = torch.relu((weights[:, :, None, None] * features).sum(dim=1))
        return cam, targets

    def _layer_output(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's activations for a batch, without gradients."""
        recorded: list[torch.Tensor] = []
        handle = self.layer.register_forward_hook(lambda m, i, o: recorded.append(o.detach().clone()))
        try:
            with torch.no_grad():
                self.model(x)
        finally:
            handle.remove()
        return recorded[0]


def finer_layer(model: nn.Module, steps: int = 1) -> str:
    """Dotted name of the last module whose feature map is ``steps`` sizes finer than the GradCAM
    layer's (the default model on a 128 px input: ``net.stages.2``, 16x16 cells instead of 8x8,
    at one step; ``net.stages.1``, 32x32, at two)."""
    _, coarse = resolve_layer(model, None)
    shapes: list[tuple[str, tuple[int, ...]]] = []
    hooks = [m.register_forward_hook(lambda mod, i, o, name=name: shapes.append((name, tuple(o.shape))))
             for name, m in model.named_modules() if name and not isinstance(m, nn.Sequential) or name == coarse]
    try:
        with torch.no_grad():
            param = next(model.parameters())
            model(torch.zeros(1, 3, model.input_size, model.input_size, device=param.device, dtype=param.dtype))
    finally:
        for h in hooks:
            h.remove()
    size = dict(shapes)[coarse][-1]
    sizes = sorted({shape[-1] for _, shape in shapes if len(shape) == 4 and shape[-1] > size})
    if not sizes:
        raise GalaxymorphError(f"model has no feature map finer than {coarse!r}'s")
    target = sizes[min(steps, len(sizes)) - 1]
    return [name for name, shape in shapes if len(shape) == 4 and shape[-1] == target][-1]


def layer_grid(model: nn.Module, layer_name: str) -> tuple[float, float]:
    """(origin, stride) of a layer's cells in the model's input pixels: cell i is centred at
    ``origin + stride * i``.

    Measured, not assumed: on a re-initialised copy of the model (so trained weights cannot bias
    it), the centre of each of two neighbouring central cells is the centroid of the input
    gradient's magnitude. The stride is rounded to a whole pixel, the origin to half a pixel.
    """
    probe = copy.deepcopy(model).float().eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for module in probe.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        size = model.input_size
        x = torch.rand(2, 3, size, size, device=next(probe.parameters()).device, requires_grad=True)
    layer = dict(probe.named_modules())[layer_name]
    recorded: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda m, i, o: recorded.append(o))
    try:
        probe(x)
    finally:
        handle.remove()
    activations = recorded[0]
    h, w = activations.shape[-2:]
    pixels = torch.arange(size, dtype=torch.float32, device=x.device)
    centres = []
    for i in (h // 2 - 1, h // 2):
        (grad,) = torch.autograd.grad(activations[:, :, i, i].sum(), x, retain_graph=True)
        weight = grad.abs().sum(dim=(0, 1))
        centres.append(float((weight.sum(dim=1) * pixels).sum() / weight.sum()))  # along y
    stride = max(1.0, float(round(centres[1] - centres[0])))
    origin = round(2 * (centres[1] - stride * (h // 2))) / 2
    return origin, stride


def sky_images(x: torch.Tensor) -> torch.Tensor:
    """Each image of a float NCHW batch replaced by its own sky: the per-channel median everywhere."""
    return x.flatten(2).median(dim=2).values[:, :, None, None].expand_as(x).contiguous()


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
