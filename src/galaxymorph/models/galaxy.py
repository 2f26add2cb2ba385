"""The default galaxy model (``--model default``): a small residual CNN for 128 px input.

Galaxies fill the centre of a Galaxy10 cutout and have no preferred orientation, so the model
sees the cutout at half resolution (128 px keeps bars and arms while quartering the cost),
uses normalised residual blocks for stable training from scratch, and pools globally (no
flatten layer tied to one position, so a rotated galaxy gives the same kind of evidence).

Why the input is standardised and BatchNorm uses momentum 0.3 (measured, see docs/models.md):
cutouts are mostly dark sky, so pixels in [0, 1] have mean ~0.17 and std ~0.12, and the stem
convolution's outputs have a variance near 0.003 -- some 300x below BatchNorm's initial running
variance of 1. With torch's default momentum 0.1 the running statistics forget that initial
value by 0.9 per step, so on a small training set (tens of steps) they stay far too large;
the error compounds layer by layer and in eval mode the network answered one class for every
image (validation accuracy 0.5) while the same weights with batch statistics scored 0.98.
Standardising the input with fixed constants puts activations near unit scale, and momentum
0.3 forgets the initial value within ~10 steps.

Variants for the model comparison (``scripts/compare_models.py``) are registry entries built
from :data:`VARIANTS`: each changes one factor of the base (width, normalisation, pooling,
input size). ``default`` is the variant chosen by that measurement (:data:`DEFAULT_VARIANT`).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

# Per-channel mean and std of Galaxy10 DECaLS cutouts scaled to [0, 1] (110 real reference
# cutouts: 0.166/0.161/0.158 and 0.115/0.111/0.106; synthetic sky within 0.02): round numbers.
INPUT_MEAN = (0.16, 0.16, 0.16)
INPUT_STD = (0.11, 0.11, 0.11)


def _norm(kind: str, channels: int, momentum: float) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, momentum=momentum)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise ValueError(f"norm must be 'batch' or 'group', got {kind!r}")


class ResidualBlock(nn.Module):
    """Two 3x3 conv-norm layers with an identity (or 1x1 strided) shortcut.

    ``zero_init``: the second norm layer's scale starts at 0, so each block starts as its
    shortcut (the "zero-gamma" trick); off by default (it did not help here, docs/models.md).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, norm: str = "batch", momentum: float = 0.3,
                 zero_init: bool = False, padding_mode: str = "zeros"):
        super().__init__()
        conv = partial(nn.Conv2d, kernel_size=3, padding=1, bias=False, padding_mode=padding_mode)
        self.conv1 = nn.Sequential(conv(in_ch, out_ch, stride=stride), _norm(norm, out_ch, momentum), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv(out_ch, out_ch), _norm(norm, out_ch, momentum))
        if zero_init:
            nn.init.zeros_(self.conv2[1].weight)
        self.shortcut = (
            nn.Identity() if stride == 1 and in_ch == out_ch
            else nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), _norm(norm, out_ch, momentum))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class GlobalPool(nn.Module):
    """Global average pooling, or average and max pooling side by side (``"avgmax"``)."""

    def __init__(self, kind: str = "avg"):
        super().__init__()
        if kind not in ("avg", "avgmax"):
            raise ValueError(f"pool must be 'avg' or 'avgmax', got {kind!r}")
        self.kind = kind

    def forward(self, x):
        avg = x.mean((2, 3))
        return torch.cat([avg, x.amax((2, 3))], dim=1) if self.kind == "avgmax" else avg


class GalaxyResNet(nn.Module):
    """Stem (3x3 stride 2) + one residual block per width (stride 2 after the first) + pool + linear.

    ``input_norm=False`` and ``bn_momentum=0.1`` give the original model, which showed the
    eval-mode collapse described in the module docstring (kept for the comparison).
    ``padding_mode``: how the 3x3 convolutions see past the image edge. ``"zeros"`` pads with
    zeros, which after input standardisation is a bright-negative frame the network can find
    everywhere along the border; ``"reflect"`` and ``"replicate"`` continue the sky instead.
    ``last_stride=1`` keeps the last stage at the previous stage's grid (16x16 instead of 8x8 at
    128 px input), so GradCAM maps on the last block are twice as fine.
    """

    def __init__(self, n_outputs: int = 1, input_size: int = 128, widths: tuple[int, ...] = (32, 64, 128, 192),
                 dropout: float = 0.2, norm: str = "batch", pool: str = "avg", bn_momentum: float = 0.3,
                 input_norm: bool = True, zero_init: bool = False, padding_mode: str = "zeros",
                 last_stride: int = 2):
        super().__init__()
        self.input_size = int(input_size)
        self.input_norm = bool(input_norm)
        self.register_buffer("mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(INPUT_STD).view(1, 3, 1, 1), persistent=False)
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False, padding_mode=padding_mode),
                                  _norm(norm, widths[0], bn_momentum), nn.ReLU(inplace=True))
        stages, in_ch = [], widths[0]
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else last_stride if i == len(widths) - 1 else 2
            stages.append(ResidualBlock(in_ch, width, stride, norm, bn_momentum, zero_init, padding_mode))
            in_ch = width
        self.stages = nn.Sequential(*stages)
        self.pool = GlobalPool(pool)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(in_ch * (2 if pool == "avgmax" else 1), n_outputs)

    def forward(self, x):
        if self.input_norm:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return self.head(self.dropout(self.pool(self.stages(self.stem(x)))))

    def gradcam_layer(self) -> nn.Module:
        """The last residual block's output: the deepest map that still has a layout in space."""
        return self.stages[-1]


# One factor at a time from the base (the original architecture with the BatchNorm fix).
VARIANTS: dict[str, dict] = {
    "galaxy-base": {},
    "galaxy-bn-old": dict(input_norm=False, bn_momentum=0.1),  # before the fix
    "galaxy-zero-gamma": dict(zero_init=True),
    "galaxy-narrow": dict(widths=(16, 32, 64, 128)),
    "galaxy-wide": dict(widths=(48, 96, 192, 288)),
    "galaxy-gn": dict(norm="group"),
    "galaxy-avgmax": dict(pool="avgmax"),
    "galaxy-96": dict(input_size=96),
    "galaxy-192": dict(input_size=192),
    # chosen on real galaxies (benchmarks/studies/real.py): see docs/models.md
    "galaxy-narrow-reflect": dict(widths=(16, 32, 64, 128), padding_mode="reflect"),
    "galaxy-narrow-fine": dict(widths=(16, 32, 64, 128), last_stride=1),
    "galaxy-reflect": dict(padding_mode="reflect"),
    "galaxy-narrow-192": dict(widths=(16, 32, 64, 128), input_size=192),
}
# Best on real SDSS galaxies with the 30-epoch recipe, tied with reflect padding and soft vote
# targets at a lower cost; first chosen on the synthetic sky (docs/models.md).
DEFAULT_VARIANT = "galaxy-narrow"


def variant(name: str):
    """A constructor ``(n_outputs=..., **kwargs) -> GalaxyResNet`` for a named variant."""
    return partial(GalaxyResNet, **VARIANTS[name])
