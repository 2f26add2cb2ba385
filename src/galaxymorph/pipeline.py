"""The end-to-end run (placeholder)."""

from __future__ import annotations

from .errors import NotBuiltYet


def run(config, out=None, **kwargs):
    raise NotBuiltYet("'galaxymorph run' is not built yet")
