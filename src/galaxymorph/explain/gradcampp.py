"""GradCAM++ (Chattopadhyay et al. 2018): pixel-weighted gradients for the channel weights.

GradCAM averages the gradients, so one large blob can drown several small ones; GradCAM++
weights each position by alpha = g^2 / (2 g^2 + sum(A) g^3) and keeps only positive gradients:
``w_c = sum_ij alpha_ij ReLU(g_ij)``. The second and third derivatives of the paper are taken
with the "exp trick" (for a score exp(S) they are powers of the first derivative), exactly as
pytorch-grad-cam does. Everything else (layer, scores, upsampling, scaling) is GradCAM's.
"""

from __future__ import annotations

import torch
from torch import nn

from .gradcam import BaseCAM

EPS = 1e-6


class GradCAMPlusPlus(BaseCAM):
    name = "gradcam++"

    def cam_weights(self, activations, gradients):
        g2 = gradients.pow(2)
        g3 = g2 * gradients
        sum_a = activations.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + sum_a * g3 + EPS)
        alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
        return (alpha * torch.relu(gradients)).sum(dim=(2, 3))


def gradcampp(model: nn.Module, images, target=None, layer=None, normalize: bool = True,
              batch_size: int = 32, progress: bool = False, return_targets: bool = False):
    """GradCAM++ maps (N, H, W) for uint8 images; arguments as :func:`.gradcam.gradcam`."""
    return GradCAMPlusPlus(model, layer)(images, target=target, normalize=normalize, batch_size=batch_size,
                                         progress=progress, return_targets=return_targets)
