"""The reference notebook's CNN, exactly: the faithful baseline (``--model seed``).

Five 3x3 valid convolutions 3->32->64->128->256->256 with ReLU, 2x2 max-pooling after the
first four, flatten, dropout 0.5 and one logit (a softmax head for more than two classes).
At 256x256 input: 1,015,361 parameters; feature maps 254, 127, 125, 62, 60, 30, 28, 14, 12 px.
"""

from __future__ import annotations

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

    def forward(self, x):
        return self.head(self.dropout(self.features(x).flatten(1)))
