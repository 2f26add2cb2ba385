"""Import of image folders and FITS cutouts (placeholder)."""

from __future__ import annotations

from ..errors import NotBuiltYet


def import_images(src, out, **kwargs):
    raise NotBuiltYet("'galaxymorph data import' is not built yet")
