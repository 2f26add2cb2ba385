"""Shared figure helpers: a headless matplotlib, atomic PNG saving, and image grids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # galaxymorph never opens windows; figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .fileio import atomic_path  # noqa: E402


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


def image_grid(rows: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str], path: str | os.PathLike,
               titles: Sequence[Sequence[str]] | None = None, title: str | None = None,
               tile_inches: float = 1.6, title_size: float = 7) -> Path:
    """A PNG grid: one row per group (e.g. per class), labelled on the left."""
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=1) or 1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(tile_inches * n_cols + 1.2, tile_inches * n_rows + 0.4),
                             squeeze=False)
    for r, images in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                ax.imshow(images[c], interpolation="nearest")
                if titles is not None and c < len(titles[r]) and titles[r][c]:
                    ax.set_title(titles[r][c], fontsize=title_size)
        axes[r][0].set_ylabel(row_labels[r], fontsize=9, rotation=0, ha="right", va="center", labelpad=6)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)
