"""Download of the real Galaxy10 DECaLS file (placeholder)."""

from __future__ import annotations

from ..errors import NotBuiltYet


def fetch(dest=None, **kwargs):
    raise NotBuiltYet("'galaxymorph data fetch' is not built yet")
