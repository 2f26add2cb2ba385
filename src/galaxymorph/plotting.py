"""Shared figure helpers: a headless matplotlib, atomic PNG/JPEG saving, and image grids."""

from __future__ import annotations

import contextlib
import os
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # galaxymorph never opens windows; figures go to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import RendererAgg  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402

from .fileio import atomic_path  # noqa: E402
from .workers import WorkerPool, can_start_workers, usable_cores, worker_context  # noqa: E402


# Photo-like figures (galaxy images under heatmaps) are written as JPEG: as PNG a gallery of
# noisy sky is 4 MB, as JPEG at quality 85 about a fifth of that and ten times faster to
# encode. Chroma is kept at full resolution (4:4:4): with the usual 4:2:0 the thin cyan contours
# and coloured captions come out pale and fringed. Line plots stay PNG (small, sharp edges).
JPEG_OPTIONS = {"quality": 85, "subsampling": 0}
PHOTO_SUFFIX = ".jpg"  # the file ending of photo-like figures (galleries, overlays, example grids)
JPEG_SUFFIXES = (".jpg", ".jpeg")


FIGURE_DPI = 110  # the resolution figures are saved at


def save_figure(fig, path: str | os.PathLike, dpi: int = FIGURE_DPI, tight: bool = True) -> Path:
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
            self._pool = WorkerPool(max_workers=self.workers, mp_context=worker_context())
        return self

    def submit(self, draw, *args, **kwargs) -> None:
        if self._pool is None:
            draw(*args, **kwargs)
        else:
            future = self._pool.submit(draw, *args, **kwargs)
            self._futures.append((future, draw, args, kwargs))

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._pool is None:
            return
        try:
            if exc_type is None:
                for future, draw, args, kwargs in self._futures:
                    try:
                        future.result()  # the first figure that failed raises here
                    except BrokenProcessPool:  # workers could not start or died: draw it here
                        draw(*args, **kwargs)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


# a tile grid's margins, in inches
GAP = 0.07            # between the tiles of a row
ROW_GAP = 0.15        # between a row's tiles and the next row's captions
EDGE = 0.1            # around the figure
LABEL_SPACE = 0.32    # left of the first column for row labels written upright (a y-axis label)
BAR_SPACE = 0.75      # right of the last column: the colour bar, its ticks and its label
BAR_WIDTH = 0.14
LINE = 1.25 / 72      # one line of text, in inches per point of font size
ROW_LABEL_SIZE = 9    # image_grid's row labels, in points
ROW_LABEL_PAD = 6     # between a row label and its first tile, in points
IMAGE_GAP = 0.1       # between image_grid's tiles, across and down


def tile_grid(n_rows: int, n_cols: int, tile: float, caption_lines: int, caption_size: float,
              title_lines: int, title_size: float, label_width: float = 0.0, colour_bar: bool = True,
              gap: float = GAP, row_gap: float = ROW_GAP):
    """A figure of ``n_rows`` x ``n_cols`` square tiles ``tile`` inches wide, ``gap`` apart in a
    row and ``row_gap`` between rows, each under a caption band of ``caption_lines`` lines (none
    for 0), below a title of ``title_lines`` lines, ``label_width`` inches left of the first
    column for row labels, and a colour bar on the right unless ``colour_bar`` is false; returns
    (figure, axes[row][column], colour-bar axes or None).

    The layout is computed here, to the inch: the figure is as large as its tiles need and no
    layout engine or tight bounding box runs (they draw every tile twice to find the same edges).
    """
    caption = caption_lines * caption_size * LINE + (0.05 if caption_lines else 0.0)
    title = title_lines * title_size * LINE + 0.15
    left = EDGE + label_width
    width = left + n_cols * tile + (n_cols - 1) * gap + (BAR_SPACE if colour_bar else EDGE)
    height = title + n_rows * (caption + tile) + (n_rows - 1) * row_gap + EDGE
    fig = plt.figure(figsize=(width, height))
    axes = [[fig.add_axes(((left + c * (tile + gap)) / width,
                           1 - (title + r * (caption + tile + row_gap) + caption + tile) / height,
                           tile / width, tile / height)) for c in range(n_cols)] for r in range(n_rows)]
    cax = None
    if colour_bar:
        grid_height = height - title - EDGE
        cax = fig.add_axes(((width - BAR_SPACE + GAP) / width, (EDGE + 0.1 * grid_height) / height,
                            BAR_WIDTH / width, 0.8 * grid_height / height))
    return fig, axes, cax


def bare(ax) -> None:
    """No ticks and no frame: a tile that shows a picture."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def line_count(text: str | None) -> int:
    """How many lines ``text`` takes (0 for none)."""
    return text.count("\n") + 1 if text else 0


def text_inches(text: str, size: float, dpi: float = FIGURE_DPI) -> float:
    """The width of ``text`` (its widest line) in matplotlib's default font at ``size`` points, as
    Agg draws it at ``dpi`` (hinting makes that a few per cent off the font's outline), measured
    without drawing anything."""
    renderer, font = RendererAgg(1, 1, dpi), FontProperties(size=size)
    return max(renderer.get_text_width_height_descent(line, font, ismath=False)[0]
               for line in text.split("\n")) / dpi


def image_grid(rows: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str], path: str | os.PathLike,
               titles: Sequence[Sequence[str]] | None = None, title: str | None = None,
               tile_inches: float = 1.45, title_size: float = 7) -> Path:
    """A grid of images, one row per group (e.g. per class), labelled on the left; PNG or JPEG by
    ``path``'s ending (JPEG for a grid of photographs, see :data:`JPEG_OPTIONS`).

    Laid out to the inch (:func:`tile_grid`; the labels' width measured from the font), so the
    figure is drawn once, not once more for a tight bounding box."""
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=1) or 1
    label_width = max((text_inches(row_labels[r], ROW_LABEL_SIZE) for r in range(n_rows)), default=0.0)
    caption_lines = max((line_count(t) for row in titles or [] for t in row), default=0)
    fig, axes, _ = tile_grid(max(n_rows, 1), n_cols, tile_inches, caption_lines, title_size, line_count(title), 11,
                             label_width=label_width + ROW_LABEL_PAD / 72, colour_bar=False,
                             gap=IMAGE_GAP, row_gap=IMAGE_GAP)
    with closed_after(fig):  # also when drawing fails
        for r, images in enumerate(rows):
            for c, ax in enumerate(axes[r]):
                bare(ax)
                if c < len(images):
                    ax.imshow(images[c], interpolation="nearest")
                    if titles is not None and c < len(titles[r]) and titles[r][c]:
                        ax.set_title(titles[r][c], fontsize=title_size, pad=3)
            axes[r][0].set_ylabel(row_labels[r], fontsize=ROW_LABEL_SIZE, rotation=0, ha="right", va="center",
                                  labelpad=ROW_LABEL_PAD)
        if title:
            fig.suptitle(title, fontsize=11, y=1 - EDGE / fig.get_figheight(), va="top")
        return save_figure(fig, path, tight=False)
