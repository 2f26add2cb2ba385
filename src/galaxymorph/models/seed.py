"""The reference notebook's CNN, exactly: the faithful baseline (``--model seed``).

Five 3x3 valid convolutions 3->32->64->128->256->256 with ReLU, 2x2 max-pooling after the
first four, flatten, dropout 0.5 and one logit (a softmax head for more than two classes).
At 256x256 input: 1,015,361 parameters; feature maps 254, 127, 125, 62, 60, 30, 28, 14, 12 px.
"""

from __future__ import annotations

import torch
from torch import nn

WIDTHS = (32, 64, 128, 256, 256)


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2)``; on a GPU (``mode="auto"``) computed as a reshape and a max over each
    2x2 block: the same output (an odd last row or column is dropped, as floor mode does), and
    the same gradient but where two maxima of a block tie, which then share it. Why: for
    channels-last bf16 tensors on a GPU, ``max_pool2d``'s backward pass took a quarter of the
    seed CNN's training step (``benchmarks/bench_train.py --profile``), while a reduction and
    its backward are plain memory-bound kernels. On the CPU the reshape form is 3x slower, so
    ``max_pool2d`` it is.
    """

    def __init__(self, mode: str = "auto"):
        super().__init__()
        if mode not in ("auto", "reshape", "maxpool"):
            raise ValueError(f"pool must be 'auto', 'reshape' or 'maxpool', got {mode!r}")
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "maxpool" or (self.mode == "auto" and not x.is_cuda):
            return nn.functional.max_pool2d(x, 2)
        n, c, h, w = x.shape
        h2, w2 = h // 2, w // 2
        x = x[:, :, : 2 * h2, : 2 * w2]
        if x.stride(1) == 1:  # channels-last: pool the (n, h, w, c) view, hand back an NCHW view of it
            blocks = x.permute(0, 2, 3, 1).reshape(n, h2, 2, w2, 2, c)
            return blocks.amax(dim=(2, 4)).permute(0, 3, 1, 2)
        return x.reshape(n, c, h2, 2, w2, 2).amax(dim=(3, 5))


class SeedCNN(nn.Module):
    input_size = 256  # the reference trained on full 256x256 cutouts, scaled to [0, 1]

    def __init__(self, n_outputs: int = 1, input_size: int = 256, pool: str = "auto"):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch, size = 3, input_size
        for i, width in enumerate(WIDTHS):
            layers += [nn.Conv2d(in_ch, width, kernel_size=3), nn.ReLU(inplace=True)]
            size -= 2
            if i < len(WIDTHS) - 1:
                layers.append(MaxPool2x2(pool))
                size //= 2
            in_ch = width
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(in_ch * size * size, n_outputs)
        self.input_size = input_size

    def forward(self, x):
        return self.head(self.dropout(self.features(x).flatten(1)))
