"""Does a map point at the galaxy? Localisation scores against a known footprint.

A heatmap is only useful if it lands on the galaxy it explains. For each map m >= 0 and a
boolean footprint G of the central galaxy, the **share on the galaxy** is the fraction of the
map's energy (its sum; the "energy-based pointing game" of Score-CAM, Wang et al. 2020) that
falls on G:

    share = sum(m * G) / sum(m)

A uniform map scores exactly the **area share** ``mean(G)``, the fraction of the image the galaxy
covers; so a share means something only next to that area (``lift`` = share / area: 1 is no
better than uniform). Negative map values (none for GradCAM) are clipped to 0 first; an
all-zero map has no share (NaN) and is left out of the medians.

Where the footprints come from:

* synthetic sky: the renderer's ``masks`` dataset (bits: ``data.galaxy10.MASK_BITS``), its
  ``galaxy`` footprint; for barred spirals also the share on ``bar`` and ``arms``;
* real images: the central source found by sep (:func:`galaxymorph.data.sources.central_source_masks`).
"""

from __future__ import annotations

import numpy as np

from ..data.galaxy10 import mask_of
from ..data.sources import central_source_masks
from ..errors import GalaxymorphError
from .methods import explain

BARRED_SPIRAL = 5  # the Galaxy10 class whose bar and arms the synthetic masks mark


def energy_share(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per image, the fraction of the map's energy (sum of its non-negative values) on the mask."""
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    if maps.shape != masks.shape or maps.ndim != 3:
        raise GalaxymorphError(f"maps {maps.shape} and masks {masks.shape} must both be (N, H, W)")
    energy = np.clip(maps, 0, None)
    total = energy.sum(axis=(1, 2))
    inside = (energy * masks).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / total, np.nan)


def area_share(masks: np.ndarray) -> np.ndarray:
    """Per image, the fraction of the image the mask covers: what a uniform map scores."""
    return np.asarray(masks, dtype=bool).mean(axis=(1, 2))


def _median(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None


def localisation_summary(maps: np.ndarray, galaxy: np.ndarray, parts: np.ndarray | None = None) -> dict:
    """Medians over images of the share on the galaxy, its area share and their ratio (lift).

    ``parts`` (optional, boolean (N, H, W)): a sub-structure (bar and arms) scored the same way.
    """
    share, area = energy_share(maps, galaxy), area_share(galaxy)
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = np.where(area > 0, share / area, np.nan)
    out = {
        "n_images": int(np.isfinite(share).sum()),
        "share_on_galaxy": _median(share),
        "galaxy_area_share": _median(area),
        "lift": _median(lift),
        "share_on_galaxy_per_image": [None if not np.isfinite(s) else round(float(s), 4) for s in share],
        "galaxy_area_share_per_image": [round(float(a), 4) for a in area],
    }
    if parts is not None:
        out["share_on_bar_and_arms"] = _median(energy_share(maps, parts))
        out["bar_and_arms_area_share"] = _median(area_share(parts))
    return out


def meets_aim(summary: dict, min_share: float = 0.6, min_lift: float = 2.0) -> bool:
    """The aim of issue 12: median share >= ``min_share`` and >= ``min_lift`` x the median area share."""
    share, area = summary.get("share_on_galaxy"), summary.get("galaxy_area_share")
    return share is not None and area is not None and share >= min_share and share >= min_lift * area


def galaxy_masks(images: np.ndarray, mask_bits: np.ndarray | None) -> np.ndarray:
    """Footprints (N, H, W) of the central galaxy: the renderer's masks if given, else sep's."""
    if mask_bits is not None:
        return mask_of(mask_bits, "galaxy")
    return central_source_masks(images)


def bar_and_arm_masks(mask_bits: np.ndarray) -> np.ndarray:
    """Bar and arms of the renderer's masks, (N, H, W) boolean."""
    return mask_of(mask_bits, "bar") | mask_of(mask_bits, "arms")


def localisation_scores(model, images: np.ndarray, labels: np.ndarray, method: str,
                        mask_bits: np.ndarray | None = None, batch_size: int = 32,
                        galaxy: np.ndarray | None = None, **options) -> dict:
    """Scores per class: each class's images (true label = position c) explained for class c.

    The galaxy is the renderer's footprint when ``mask_bits`` are given (synthetic sky), else
    sep's central source (``galaxy``: footprints already made by :func:`galaxy_masks`, to score
    several methods without segmenting again); with masks, the barred spirals are also scored on
    their bar and arms. Returns ``{class position: summary}`` (see :func:`localisation_summary`).
    """
    labels = np.asarray(labels)
    galaxy = galaxy_masks(images, mask_bits) if galaxy is None else galaxy
    parts = bar_and_arm_masks(mask_bits) if mask_bits is not None else None
    part_class = model.class_ids.index(BARRED_SPIRAL) if BARRED_SPIRAL in model.class_ids else None
    out = {}
    for c in range(len(model.class_ids)):
        rows = np.flatnonzero(labels == c)
        if rows.size == 0:
            continue
        maps = explain(method, model, images[rows], target=c, batch_size=batch_size, **options)
        sub_parts = parts[rows] if parts is not None and c == part_class else None
        out[c] = localisation_summary(maps, galaxy[rows], sub_parts)
    return out


def percent(value) -> str:
    """A share as the CLI prints it ("64%"), or "n/a"."""
    return "n/a" if value is None else f"{value:.0%}"
