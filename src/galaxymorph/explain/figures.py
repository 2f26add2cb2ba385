"""Heatmap figures: original | overlay pairs, and galleries of overlays as PNG grids.

An overlay is the reference notebook's picture (tf-keras-vis): the map in the jet colormap laid
over the image at alpha 0.4. Our titles say more than its "Original Image / Pixel Heatmap":
the true class, the predicted class and its probability, and the method.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..plotting import image_grid

ALPHA = 0.4
COLUMNS = 6  # wide enough to scan, narrow enough that captions stay legible in the report
METHOD_TITLES = {"gradcam": "GradCAM", "gradcam++": "GradCAM++", "integrated-gradients": "Integrated gradients"}


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """uint8 RGB: ``(1 - alpha) * image + alpha * jet(map)``, the map scaled to [0, 1] first."""
    from matplotlib import colormaps

    m = np.asarray(heatmap, dtype=np.float32)
    span = float(m.max() - m.min())
    m = (m - m.min()) / span if span > 0 else np.zeros_like(m)
    colour = colormaps["jet"](m)[..., :3] * 255.0
    return ((1 - alpha) * image.astype(np.float32) + alpha * colour).round().clip(0, 255).astype(np.uint8)


def caption(true_name: str | None, pred_name: str, prob: float, short: bool = False) -> str:
    """'true: X / predicted: Y (p=0.97)'; a wrong prediction is marked."""
    mark = "" if true_name is None or true_name == pred_name else "  \u2717"
    if short:
        head = "" if true_name is None else f"true {true_name}\n"
        return f"{head}pred {pred_name} {prob:.2f}{mark}"
    head = "" if true_name is None else f"true: {true_name}  |  "
    return f"{head}predicted: {pred_name} (p = {prob:.2f}){mark}"


def save_pair(path: str | os.PathLike, image: np.ndarray, heatmap: np.ndarray, method: str,
              true_name: str | None, pred_name: str, prob: float) -> Path:
    """One explained image: original | heatmap overlay, titled with truth, prediction, probability."""
    label = METHOD_TITLES.get(method, method)
    return image_grid([[image, overlay(image, heatmap)]], [""], path, titles=[["original", f"{label} overlay"]],
                      title=caption(true_name, pred_name, prob), tile_inches=3.2)


def save_gallery(path: str | os.PathLike, images: np.ndarray, maps: np.ndarray, captions: Sequence[str],
                 title: str, row_labels: Sequence[str] | None = None, groups: Sequence[int] | None = None,
                 columns: int = COLUMNS) -> Path:
    """A grid of overlays, ``columns`` wide; ``groups`` (one per image) starts a new row per group."""
    groups = list(groups) if groups is not None else [0] * len(images)
    rows, row_titles, labels = [], [], []
    for g in dict.fromkeys(groups):  # groups in order of first appearance
        members = [i for i, gi in enumerate(groups) if gi == g]
        for start in range(0, max(len(members), 1), columns):
            chunk = members[start : start + columns]
            rows.append([overlay(images[i], maps[i]) for i in chunk])
            row_titles.append([captions[i] for i in chunk])
            labels.append(row_labels[g] if row_labels is not None and start == 0 else "")
    if not rows:  # nothing to show (e.g. no misclassified image): an empty panel with the title
        rows, row_titles, labels = [[]], [[]], [""]
    return image_grid(rows, labels, path, titles=row_titles, title=title, tile_inches=1.9, title_size=10)
