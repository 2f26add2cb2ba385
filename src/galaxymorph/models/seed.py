"""The reference notebook's CNN, exactly: the faithful baseline (``--model seed``).

Five 3x3 valid convolutions 3->32->64->128->256->256 with ReLU, 2x2 max-pooling after the
first four, flatten, dropout 0.5 and one logit (a softmax head for more than two classes).
At 256x256 input: 1,015,361 parameters; feature maps 254, 127, 125, 62, 60, 30, 28, 14, 12 px.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

WIDTHS = (32, 64, 128, 256, 256)


class SeedCNN(nn.Module):
    input_size = 256  # the reference trained on full 256x256 cutouts, scaled to [0, 1]

    def __init__(self, n_outputs: int = 1, input_size: int = 256):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch, size = 3, input_size
        for i, width in enumerate(WIDTHS):
            layers += [nn.Conv2d(in_ch, width, kernel_size=3), nn.ReLU(inplace=True)]
            size -= 2
            if i < len(WIDTHS) - 1:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            in_ch = width
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(in_ch * size * size, n_outputs)
        self.input_size = input_size
        self.pool_first = False  # see features_of

    def forward(self, x):
        return self.head(self.dropout(self.features_of(x).flatten(1)))

    def features_of(self, x):
        """``self.features(x)``, with each ReLU applied after the max-pool that follows it.

        ReLU is monotone, so ``relu(maxpool(x)) == maxpool(relu(x))`` exactly, gradients included:
        the same network as the reference, with a quarter of the ReLU work. Off by default
        (``pool_first=False``, the reference's order): with it on, the ReLU modules are not called,
        so explain's hooks on them would see nothing. benchmarks/speed/bench_train.py compares the two.
        """
        if not self.pool_first:
            return self.features(x)
        layers = list(self.features)
        i = 0
        while i < len(layers):
            pair = layers[i:i + 2]
            if len(pair) == 2 and isinstance(pair[0], nn.ReLU) and isinstance(pair[1], nn.MaxPool2d):
                x = F.relu(pair[1](x))
                i += 2
            else:
                x = layers[i](x)
                i += 1
        return x
