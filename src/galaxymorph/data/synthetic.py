"""The synthetic Galaxy10-like sky (placeholder)."""

from __future__ import annotations

from ..errors import NotBuiltYet


def synthesize(out, **kwargs):
    raise NotBuiltYet("'galaxymorph data synth' is not built yet")
