"""The default galaxy model (``--model default``): a small residual CNN for 128 px input.

Galaxies fill the centre of a Galaxy10 cutout and have no preferred orientation, so the model
sees the cutout at half resolution (128 px keeps bars and arms while quartering the cost),
uses batch-normalised residual blocks for stable training from scratch, and pools globally
(no flatten layer tied to one position, so a rotated galaxy gives the same kind of evidence).
"""

from __future__ import annotations

from torch import nn


def _conv_bn(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 strided) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv_bn(in_ch, out_ch, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch))
        self.shortcut = (
            nn.Identity() if stride == 1 and in_ch == out_ch
            else nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class GalaxyResNet(nn.Module):
    def __init__(self, n_outputs: int = 1, input_size: int = 128, widths: tuple[int, ...] = (32, 64, 128, 192),
                 dropout: float = 0.2):
        super().__init__()
        self.input_size = input_size
        self.stem = _conv_bn(3, widths[0], stride=2)
        stages, in_ch = [], widths[0]
        for i, width in enumerate(widths):
            stages.append(ResidualBlock(in_ch, width, stride=1 if i == 0 else 2))
            in_ch = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(in_ch, n_outputs)

    def forward(self, x):
        return self.head(self.dropout(self.pool(self.stages(self.stem(x))).flatten(1)))

    def gradcam_layer(self) -> nn.Module:
        """The last residual block's output: the deepest map that still has a layout in space."""
        return self.stages[-1]
