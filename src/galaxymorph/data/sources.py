"""The central source of a cutout, found with sep (the Source Extractor library).

Galaxy10-style cutouts are centred on the galaxy that carries the label. Two later stages need
to know where that galaxy is and how large it looks, without any mask from a simulator:

* ``explain`` scores how much of a heatmap falls on the galaxy (:func:`central_source_masks`);
* importers warn when a model is shown galaxies of a clearly different apparent size than it
  was trained on (:func:`apparent_size`).

Each image is reduced to a luminance (mean of R, G, B), its background is modelled and
subtracted with ``sep.Background``, sources are extracted above a threshold in units of the
background noise, and the segment that contains the image centre -- or, when the centre
falls on sky, the segment nearest to it -- is the central source. Segmentation and
photometry are sep's; only the choice of the central segment is ours.
"""

from __future__ import annotations

import numpy as np
import sep

from ..errors import DataError

DETECT_SIGMA = 1.5      # detection threshold, in units of the global background rms
MIN_AREA = 10           # pixels: smaller detections are noise or hot pixels
DEBLEND_CONTRAST = 0.05  # higher than SExtractor's 0.005 so spiral arms stay with their galaxy


def _luminances(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H, W) float64 luminance (channel mean), with a shape check."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"expected images of shape (N, H, W, 3), got {images.shape}")
    return images.astype(np.float64).mean(axis=-1)


def _central_segment(lum: np.ndarray) -> tuple[np.ndarray, float]:
    """Mask of the central source of one luminance image, and its half-light radius in pixels.

    Returns an all-False mask and NaN when sep finds no source at all (an empty or flat image).
    """
    h, w = lum.shape
    data = np.ascontiguousarray(lum)
    # meshes of a quarter image: large enough that a big galaxy does not become "background"
    bkg = sep.Background(data, bw=max(h // 4, 8), bh=max(w // 4, 8), fw=3, fh=3)
    sub = data - bkg.back()
    rms = max(float(bkg.globalrms), 1e-3)
    try:
        objects, seg = sep.extract(sub, DETECT_SIGMA, err=rms, minarea=MIN_AREA,
                                   deblend_cont=DEBLEND_CONTRAST, segmentation_map=True)
    except Exception as exc:  # sep raises plain Exceptions (e.g. too many objects / pixels)
        raise DataError(f"source extraction failed: {exc}") from None
    if len(objects) == 0:
        return np.zeros((h, w), dtype=bool), float("nan")
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    label = int(seg[int(round(cy)), int(round(cx))])
    if label == 0:  # centre on sky: the segment with a pixel nearest to the centre
        ys, xs = np.nonzero(seg)
        nearest = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
        label = int(seg[ys[nearest], xs[nearest]])
    mask = seg == label
    obj = objects[label - 1]
    ys, xs = np.nonzero(mask)
    rmax = float(np.sqrt(((ys - obj["y"]) ** 2 + (xs - obj["x"]) ** 2).max())) + 1.0
    # flux within the segment's enclosing circle, normalised to the segment's own flux
    radius, _flag = sep.flux_radius(sub, np.array([obj["x"]]), np.array([obj["y"]]),
                                    np.array([rmax]), 0.5, normflux=np.array([obj["flux"]]),
                                    subpix=5)
    return mask, float(radius[0])


def central_source_masks(images: np.ndarray) -> np.ndarray:
    """Boolean (N, H, W) footprint of the central source of each uint8 (N, H, W, 3) image."""
    lums = _luminances(images)
    return np.stack([_central_segment(lum)[0] for lum in lums]) if len(lums) else \
        np.zeros(lums.shape, dtype=bool)


def apparent_size(images: np.ndarray) -> np.ndarray:
    """Half-light radius in pixels of the central source of each image (NaN where none is found).

    The half-light radius (sep's ``flux_radius`` at 0.5, normalised to the segment's flux)
    depends far less on the depth of the image and on the stretch of a JPEG than the area of
    the segment does, so it compares sizes across surveys.
    """
    return np.array([_central_segment(lum)[1] for lum in _luminances(images)], dtype=np.float64)
