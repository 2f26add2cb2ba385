"""Prediction on new images (placeholder)."""

from __future__ import annotations

from .errors import NotBuiltYet


def predict(run_dir, inputs, out, **kwargs):
    raise NotBuiltYet("'galaxymorph predict' is not built yet")
