"""The decision rule of every stage: class positions from class probabilities.

Evaluate, predict, training's running accuracy, explain's targets and the benchmarks all call
:func:`predicted_positions`, so a tie is decided one way everywhere. It works on numpy arrays
and on torch tensors alike (a tensor stays on its device), without importing torch itself.
"""

from __future__ import annotations

import numpy as np


def predicted_positions(probs, threshold: float = 0.5):
    """Class positions 0..k-1 from class probabilities (N, k), numpy or torch.

    Two classes: the positive class iff p(positive) >= ``threshold``, so a tie at 0.5 (logit 0) is
    positive; more classes: argmax (the first of equal maxima). Returns int64 of the input's kind.
    """
    if not isinstance(probs, np.ndarray) and hasattr(probs, "argmax") and hasattr(probs, "long"):  # a tensor
        if probs.shape[1] == 2:
            return (probs[:, 1] >= threshold).long()
        return probs.argmax(dim=1)
    probs = np.asarray(probs)
    if probs.shape[1] == 2:
        return (probs[:, 1] >= threshold).astype(np.int64)
    return probs.argmax(axis=1).astype(np.int64)
