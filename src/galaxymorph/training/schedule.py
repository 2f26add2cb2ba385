"""The learning-rate schedule: a multiplier of the peak rate at each optimisation step."""

from __future__ import annotations

import math


def lr_factor(step: int, total: int, schedule: str) -> float:
    """Learning-rate multiplier at ``step`` of ``total``.

    ``onecycle``: cosine warm-up from 1/25 to 1 over the first 25% of steps, then cosine decay
    to 1e-4; ``cosine``: cosine decay from 1 to 0; ``constant``: 1.
    """
    if schedule == "constant":
        return 1.0
    t = min(step / max(total - 1, 1), 1.0)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    warm = 0.25
    if t < warm:
        return 1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi * t / warm))
    return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (t - warm) / (1 - warm)))
