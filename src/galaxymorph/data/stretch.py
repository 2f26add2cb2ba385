"""The one colour stretch of galaxymorph: the Lupton et al. (2004) asinh mapping.

Both the synthetic sky (:func:`galaxymorph.data.synthetic.asinh_rgb`) and FITS imports
(:func:`galaxymorph.data.importers.fits_to_rgb`) turn three flux planes into a colour cutout
with :func:`lupton_rgb`. It is astropy's ``make_lupton_rgb`` (the stretch acts on the mean
intensity and scales every band by the same factor, so bright cores keep their colour),
written out in float32 and in place because astropy's version took a tenth of a synthetic
render; tests/test_stretch.py checks that the two agree to one grey level.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def lupton_rgb(rgb: np.ndarray, offset: float | Sequence[float], q: float, stretch: float) -> np.ndarray:
    """float (3, H, W) R, G, B planes -> uint8 (H, W, 3).

    Equal (to one count) to ``astropy.visualization.make_lupton_rgb(R, G, B, minimum=-offset,
    stretch=stretch, Q=q)``: ``offset`` (one value, or one per plane) is the flux shown above
    black, e.g. the grey sky pedestal of the real cutouts; pixels brighter than the top of the
    range keep their colour instead of turning white.
    """
    rgb = np.asarray(rgb, dtype=np.float32) + np.asarray(offset, dtype=np.float32).reshape(-1, 1, 1)
    intensity = rgb.mean(axis=0)
    ratio = np.multiply(intensity, np.float32(q / stretch))
    np.arcsinh(ratio, out=ratio)
    ratio *= np.float32(0.1 / np.arcsinh(0.1 * q))  # astropy's LuptonAsinhStretch slope
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio /= intensity
    ratio[intensity <= 0] = 0
    rgb *= ratio
    np.clip(rgb, 0.0, None, out=rgb)
    brightest = rgb.max(axis=0)
    np.maximum(brightest, np.float32(1.0), out=brightest)  # saturated pixels keep their colour
    rgb /= brightest
    rgb *= np.float32(255.0)
    return np.moveaxis(rgb, 0, -1).astype(np.uint8, order="C")
