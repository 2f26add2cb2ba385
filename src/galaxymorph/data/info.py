"""``galaxymorph data info``: what is in a Galaxy10-layout file, in words and one picture."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..plotting import image_grid
from .galaxy10 import CLASS_NAMES, NO_CLASS, open_galaxy10
from .gz2_classes import WINDING_NOTE
from .scale import file_scale
from .tree import load_tree


def describe(path: str | os.PathLike, grid: str | os.PathLike | None = None, per_class: int = 8,
             seed: int = 0) -> dict:
    """Counts per class, shapes, optional columns and SHA-256 of a file; optionally a PNG grid.

    The grid shows up to ``per_class`` (at least 1) randomly chosen images of each class present.
    A file without class ids (``ans``: cutouts to classify) is described too: no class counts
    (``class_counts`` is None), and one row of randomly chosen images in the grid. Images stored
    without a class (``ans == NO_CLASS``, kept for their votes) are counted as ``no_class`` and
    get their own row; ``votes`` names the decision tree whose vote counts the file carries.
    """
    if grid is not None and not per_class >= 1:
        raise DataError(f"--n (examples per class in the grid) must be at least 1, got {per_class}")
    with open_galaxy10(path, labelled=False) as data:
        if len(data) == 0:
            raise DataError(f"{path} holds no images (its 'images' dataset has 0 rows)")
        counts = data.class_counts() if data.labelled else None
        summary = {
            "path": str(Path(path)),
            "n_images": len(data),
            "image_shape": [256, 256, 3],
            "dtype": "uint8",
            "sha256": data.sha256,
            "columns": [k for k in ("ra", "dec", "redshift", "pxscale") if data.column(k) is not None],
            "class_counts": None if counts is None else {str(c): n for c, n in sorted(counts.items())},
            "catalog_columns": data.catalog_columns(),
            "no_class": data.n_no_class() if counts is not None else None,
            "votes": _votes(data),
            "classes_from": data.attrs.get("classes_from"),
            "scale": file_scale(path),  # median pxscale where known, median apparent galaxy size
        }
        if grid is not None:
            rng = np.random.default_rng(seed)
            rows, labels = [], []
            groups = [(f"{c} {CLASS_NAMES[c]}", np.flatnonzero(data.labels == c)) for c in sorted(counts)] \
                if counts is not None else [("unlabelled", np.arange(len(data)))]
            if counts is not None and summary["no_class"]:
                groups.append(("no class", np.flatnonzero(data.labels == NO_CLASS)))
            for name, members in groups:
                pick = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
                rows.append(list(data.images(pick)))
                labels.append(f"{name}\n(n={len(members)})")
            image_grid(rows, labels, grid, title=f"{Path(path).name}: examples per class")
            summary["grid"] = str(grid)
    return summary


def _votes(data) -> dict | None:
    """The gz2 tree's vote counts in the file: images with any vote, or None without the columns."""
    tree = load_tree("gz2")
    if tree.missing_columns(data.catalog_columns()):
        return None
    n = len(tree.voted(data))
    return {"tree": tree.name, "answers": len(tree.answers), "n_images": n}


def format_summary(summary: dict) -> str:
    """Human-readable lines for the terminal."""
    lines = [
        f"file      {summary['path']}",
        f"images    {summary['n_images']} x 256x256x3 uint8",
        f"sha256    {summary['sha256']}",
        f"columns   {', '.join(summary['columns']) or '(none)'}",
    ]
    if summary.get("catalog_columns"):
        lines.append(f"catalog   {', '.join(summary['catalog_columns'])}")
    scale = summary.get("scale", {})
    if scale.get("pxscale"):
        lines.append(f"pxscale   {scale['pxscale']:.3g}\"/px (median of {scale['n_pxscale']} images)")
    if scale.get("galaxy_size_px"):
        lines.append(f"galaxies  {scale['galaxy_size_px']:.3g} px median half-light radius "
                     f"(of {scale['n_size']} sampled images)")
    if summary["class_counts"] is None:
        lines.append("classes   none: no 'ans' dataset (unlabelled images, for 'predict')")
    else:
        lines.append("classes:")
        for c, n in summary["class_counts"].items():
            note = f"  ({WINDING_NOTE})" if int(c) == 6 and summary.get("classes_from") else ""
            lines.append(f"  {int(c):2d} {CLASS_NAMES[int(c)]:<26} {n:6d}{note}")
        if summary.get("no_class"):
            lines.append(f"  {f'no class (ans {NO_CLASS})':<29} {summary['no_class']:6d}")
        if summary.get("classes_from"):
            lines.append(f"  (classes from {summary['classes_from']})")
    if summary.get("votes"):
        votes = summary["votes"]
        lines.append(f"votes     {votes['tree']} decision tree vote counts ({votes['answers']} answers) for "
                     f"{votes['n_images']} of {summary['n_images']} images")
    if "grid" in summary:
        lines.append(f"grid      {summary['grid']}")
    return "\n".join(lines)
