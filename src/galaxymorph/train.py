"""Training (placeholder)."""

from __future__ import annotations

from .errors import NotBuiltYet


def train(config, out=None, resume=None, **kwargs):
    raise NotBuiltYet("'galaxymorph train' is not built yet")
