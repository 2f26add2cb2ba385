"""Shared figure helpers: a headless matplotlib, atomic PNG/JPEG saving, and image grids."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # galaxymorph never opens windows; figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .fileio import atomic_path  # noqa: E402
from .workers import can_start_workers, usable_cores, worker_context  # noqa: E402


# Photo-like figures (galaxy images under heatmaps) are written as JPEG: as PNG a gallery of
# noisy sky is 4 MB, as JPEG at quality 85 about a fifth of that and ten times faster to
# encode. Chroma is kept at full resolution (4:4:4): with the usual 4:2:0 the thin cyan contours
# and coloured captions come out pale and fringed. Line plots stay PNG (small, sharp edges).
JPEG_OPTIONS = {"quality": 85, "subsampling": 0}
PHOTO_SUFFIX = ".jpg"  # the file ending of photo-like figures (galleries, overlays, example grids)
JPEG_SUFFIXES = (".jpg", ".jpeg")


def save_figure(fig, path: str | os.PathLike, dpi: int = 110, tight: bool = True) -> Path:
    """Save a matplotlib figure atomically and close it: JPEG for a path ending in .jpg or .jpeg,
    else PNG (a path with another ending or none included, as callers have always had it).

    PNG at zlib level 3, not PIL's 6: encoding a large figure is 2.6x faster for files 10% larger.
    ``tight=False`` keeps the figure's own size: for figures laid out to the inch, where a tight
    bounding box would only cost matplotlib a second drawing pass to find the same edges.
    """
    fmt = "jpeg" if Path(path).suffix.lower() in JPEG_SUFFIXES else "png"
    options = JPEG_OPTIONS if fmt == "jpeg" else {"compress_level": 3}
    with closed_after(fig), atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight" if tight else None, format=fmt, pil_kwargs=options)
    return Path(path)


@contextlib.contextmanager
def closed_after(fig):
    """Close ``fig`` when the block ends, also when it raises: pyplot keeps every open figure
    (and its memory) until it is closed, so a figure that failed half-drawn must not stay.

    Every function that makes a figure draws and saves it inside ``with closed_after(fig):``
    (save_figure closes it too, but only once drawing got that far)."""
    try:
        yield fig
    finally:
        plt.close(fig)


class FigurePool:
    """Draw figures in worker processes while this one goes on with other work.

    ``pool.submit(save_something, path, ...)`` runs a module-level function that draws and saves
    one figure; leaving the ``with`` block waits for every figure and raises the first error.
    Drawing a gallery is pure CPU (layout, rasterising, PNG encoding): a few figures drawn on
    several cores, beside the model's own work, take a fraction of the time they take in turn.
    With ``workers=1`` (or one core) every figure is drawn at once, in this process.
    """

    def __init__(self, workers: int | None = None):
        self.workers = max(1, min(8, usable_cores() if workers is None else workers))
        self._pool, self._futures = None, []

    def __enter__(self) -> "FigurePool":
        if self.workers > 1 and can_start_workers():
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=worker_context())
        return self

    def submit(self, draw, *args, **kwargs) -> None:
        if self._pool is None:
            draw(*args, **kwargs)
        else:
            self._futures.append((self._pool.submit(draw, *args, **kwargs), draw, args, kwargs))

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._pool is None:
            return
        from concurrent.futures.process import BrokenProcessPool

        try:
            if exc_type is None:
                for future, draw, args, kwargs in self._futures:
                    try:
                        future.result()  # the first figure that failed raises here
                    except BrokenProcessPool:  # workers could not start or died: draw it here
                        draw(*args, **kwargs)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def image_grid(rows: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str], path: str | os.PathLike,
               titles: Sequence[Sequence[str]] | None = None, title: str | None = None,
               tile_inches: float = 1.6, title_size: float = 7) -> Path:
    """A grid of images, one row per group (e.g. per class), labelled on the left; PNG or JPEG by
    ``path``'s ending (JPEG for a grid of photographs, see :data:`JPEG_OPTIONS`)."""
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=1) or 1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(tile_inches * n_cols + 1.2, tile_inches * n_rows + 0.4),
                             squeeze=False)
    with closed_after(fig):  # also when a row has no label, or drawing fails
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
