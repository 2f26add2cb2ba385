"""Heatmap figures: original | overlay pairs and galleries (JPEG), and the localisation plot (PNG).

How a map is drawn (the reference notebook laid a jet map over the image at alpha 0.4, which
hid the galaxy under a uniformly tinted square):

* a perceptual colormap (``inferno``) whose opacity grows with the map value, so where the map
  is low the galaxy shows through untouched, plus a contour at half the map's maximum that
  outlines the region the map points at without covering it;
* a stated scale: every map is scaled to its own maximum (per-image scale, 0..1), and each
  figure carries a colour bar for that scale;
* maps arrive already upsampled smoothly (bilinear) to the image's 256 px and are drawn with
  bilinear interpolation, so structure finer than one network cell is not faked as blocks;
* captions are short (two lines) and rows are spaced for them, so titles never overlap;
* misclassified images show the maps for the predicted AND the true class side by side.

How a figure is laid out: galleries and pairs are grids of equal tiles, so their layout is
computed to the inch (:func:`galaxymorph.plotting.tile_grid`) instead of by matplotlib's
constrained layout and a tight bounding box. Those cost a second drawing pass of every tile and
most of a gallery's time; the pictures are the same. So is the localisation plot's: its axes
always run from 0 to 1 under the same labels, so its margins are fixed inches. Galleries and
pairs are photographs under heatmaps and are saved as JPEG
(:data:`galaxymorph.plotting.JPEG_OPTIONS`), about a fifth of the PNG's size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib import colormaps

from ..plotting import EDGE, LABEL_SPACE, bare, closed_after, line_count, plt, save_figure, tile_grid

CMAP = "inferno"
MAX_ALPHA = 0.65
CONTOUR_LEVEL = 0.5
COLUMNS = 6  # wide enough to scan, narrow enough that captions stay legible in the report
TILE_INCHES = 2.1
PAIR_INCHES = 3.2       # each of the two tiles of an original | overlay pair
CAPTION_SIZE = 7.5      # gallery captions, in points
METHOD_TITLES = {"gradcam": "GradCAM", "gradcam++": "GradCAM++", "integrated-gradients": "Integrated gradients",
                 "gradcam++-sky": "GradCAM++ (sky reference)"}
SCALE_NOTE = "each map scaled to its own maximum (per-image scale); contour at half the maximum"


def scaled(heatmap: np.ndarray) -> np.ndarray:
    """The map scaled to [0, 1] by its own range (a flat map becomes zeros)."""
    m = np.asarray(heatmap, dtype=np.float32)
    span = float(m.max() - m.min())
    return (m - m.min()) / span if span > 0 else np.zeros_like(m)


def draw_overlay(ax, image: np.ndarray, heatmap: np.ndarray, title: str = "", title_size: float = CAPTION_SIZE):
    """Image, the map in a perceptual colormap with value-proportional opacity, a half-max contour."""
    m = scaled(heatmap)
    ax.imshow(image, interpolation="bilinear")
    mappable = ax.imshow(m, cmap=CMAP, vmin=0, vmax=1, alpha=MAX_ALPHA * m, interpolation="bilinear")
    if m.max() > CONTOUR_LEVEL:
        ax.contour(m, levels=[CONTOUR_LEVEL], colors="cyan", linewidths=0.8)
    bare(ax)
    if title:
        ax.set_title(title, fontsize=title_size, pad=3)
    return mappable


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = MAX_ALPHA) -> np.ndarray:
    """uint8 RGB of the overlay (no contour): for places that need pixels rather than a figure."""
    m = scaled(heatmap)
    colour = colormaps[CMAP](m)[..., :3] * 255.0
    a = (alpha * m)[..., None]
    return ((1 - a) * image.astype(np.float32) + a * colour).round().clip(0, 255).astype(np.uint8)


def _colour_bar(fig, mappable, cax) -> None:
    bar = fig.colorbar(mappable, cax=cax)
    bar.set_label("map / its maximum", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    bar.solids.set_alpha(1)


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
    """One explained image: original | overlay, titled with truth, prediction, probability."""
    label = METHOD_TITLES.get(method, method)
    fig, axes, cax = tile_grid(1, 2, PAIR_INCHES, caption_lines=1, caption_size=9, title_lines=1, title_size=10)
    with closed_after(fig):
        axes[0][0].imshow(image, interpolation="bilinear")
        bare(axes[0][0])
        axes[0][0].set_title("original", fontsize=9, pad=3)
        mappable = draw_overlay(axes[0][1], image, heatmap, f"{label} for {pred_name}", title_size=9)
        _colour_bar(fig, mappable, cax)
        fig.suptitle(caption(true_name, pred_name, prob), fontsize=10, y=1 - EDGE / fig.get_figheight(), va="top")
        return save_figure(fig, path, tight=False)


def save_gallery(path: str | os.PathLike, images: np.ndarray, maps: np.ndarray, captions: Sequence[str],
                 title: str, row_labels: Sequence[str] | None = None, groups: Sequence[int] | None = None,
                 columns: int = COLUMNS, second_maps: np.ndarray | None = None,
                 second_captions: Sequence[str] | None = None) -> Path:
    """A grid of overlays, ``columns`` wide; ``groups`` (one per image) starts a new row per group.

    With ``second_maps`` each image takes two tiles side by side (e.g. the maps for the
    predicted and for the true class of a misclassified image), captioned by ``second_captions``.
    """
    groups = list(groups) if groups is not None else [0] * len(images)
    per_image = 2 if second_maps is not None else 1
    per_row = max(1, columns // per_image)
    layout: list[tuple[str, list[int]]] = []
    for g in dict.fromkeys(groups):  # groups in order of first appearance
        members = [i for i, gi in enumerate(groups) if gi == g]
        for start in range(0, max(len(members), 1), per_row):
            layout.append((row_labels[g] if row_labels is not None and start == 0 else "",
                           members[start : start + per_row]))
    all_captions = [*captions, *(second_captions or [])]
    fig, axes, cax = tile_grid(max(len(layout), 1), max(per_row * per_image, 1), TILE_INCHES,
                               caption_lines=max([1, *map(line_count, all_captions)]),
                               caption_size=CAPTION_SIZE, title_lines=2, title_size=10,
                               label_width=LABEL_SPACE if row_labels is not None else 0.0)
    with closed_after(fig):
        mappable = None
        for row_axes in axes:
            for ax in row_axes:
                bare(ax)
        for r, (label, members) in enumerate(layout):
            for k, i in enumerate(members):
                ax = axes[r][k * per_image]
                mappable = draw_overlay(ax, images[i], maps[i], captions[i])
                if second_maps is not None:
                    draw_overlay(axes[r][k * per_image + 1], images[i], second_maps[i],
                                 second_captions[i] if second_captions is not None else "")
            if label:
                axes[r][0].set_ylabel(label, fontsize=9)
        if not layout or not any(m for _, m in layout):
            title += " -- none"
        if mappable is not None:
            _colour_bar(fig, mappable, cax)
        else:
            cax.set_visible(False)
        fig.suptitle(f"{title}\n{SCALE_NOTE}", fontsize=10, y=1 - EDGE / fig.get_figheight(), va="top")
        return save_figure(fig, path, tight=False)


# the localisation plot: one panel per class, laid out to the inch (its ticks run 0 to 1 and its
# labels never change, so the margins they need are fixed; no layout engine needs to measure them)
LOCALISATION_PANEL = 3.6   # inches wide, per class
LOCALISATION_HEIGHT = 3.7
LOCALISATION_MARGINS = {"left": 0.5, "right": 0.17, "bottom": 0.45, "top": 0.54}  # of each panel, in inches


def save_localisation(path: str | os.PathLike, per_class: dict[str, dict], title: str) -> Path:
    """Per class: each image's share of the map on the galaxy against the galaxy's area share.

    The diagonal is what a uniform map scores; the dashed line is twice that (the aim).
    """
    names = list(per_class)
    n = max(len(names), 1)
    width, m = LOCALISATION_PANEL * n, LOCALISATION_MARGINS
    fig, axes = plt.subplots(1, n, figsize=(width, LOCALISATION_HEIGHT), squeeze=False)
    panel_width = LOCALISATION_PANEL - m["left"] - m["right"]
    fig.subplots_adjust(left=m["left"] / width, right=1 - m["right"] / width, bottom=m["bottom"] / LOCALISATION_HEIGHT,
                        top=1 - m["top"] / LOCALISATION_HEIGHT, wspace=(m["left"] + m["right"]) / panel_width)
    with closed_after(fig):
        for ax, name in zip(axes[0], names):
            s = per_class[name]
            share = np.array([np.nan if v is None else v for v in s["share_on_galaxy_per_image"]], dtype=float)
            area = np.array(s.get("galaxy_area_share_per_image", []), dtype=float)
            if area.size == share.size and area.size:
                ax.scatter(area, share, s=8, alpha=0.5, color="tab:blue", label="images")
            ax.plot([0, 1], [0, 1], color="grey", lw=1, label="uniform map")
            ax.plot([0, 0.5], [0, 1], color="grey", lw=1, ls="--", label="2 x uniform")
            if s.get("share_on_galaxy") is not None:
                ax.scatter([s["galaxy_area_share"]], [s["share_on_galaxy"]], s=80, marker="*", color="tab:red",
                           zorder=3, label=f"median {s['share_on_galaxy']:.2f} vs {s['galaxy_area_share']:.2f}")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("galaxy's share of the image", fontsize=8)
            ax.set_ylabel("map's share on the galaxy", fontsize=8)
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6.5, loc="lower right")
        fig.suptitle(title, fontsize=10, y=1 - EDGE / LOCALISATION_HEIGHT, va="top")
        return save_figure(fig, path, tight=False)
