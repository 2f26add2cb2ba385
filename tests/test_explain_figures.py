"""Heatmap galleries and pairs: JPEG files, laid out to the inch without overlapping text."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from galaxymorph.explain import figures


def _images(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:32, :32]
    maps = np.exp(-((xx - 16) ** 2 + (yy - 16) ** 2) / 40.0)[None].repeat(n, 0) + rng.random((n, 32, 32)) * 0.1
    return images, maps


@pytest.fixture
def drawn(monkeypatch):
    """Per figure save_gallery, save_pair or save_localisation draws, as drawn before saving: its
    size in pixels at its own dpi, the boxes of its texts (captions, row labels, colour-bar label,
    title last), of its axes (tiles, colour bar last) and of each axes with its ticks and labels."""
    kept = []
    save = figures.save_figure

    def keep(fig, path, **kwargs):
        renderer = fig.canvas.get_renderer()
        fig.draw(renderer)
        texts = [t for ax in fig.axes for t in (ax.title, ax.yaxis.label) if t.get_text()] + [fig._suptitle]
        kept.append({"inches": tuple(fig.get_size_inches()), "pixels": tuple(fig.get_size_inches() * fig.dpi),
                     "texts": [t.get_window_extent(renderer) for t in texts],
                     "axes": [ax.get_window_extent(renderer) for ax in fig.axes],
                     "labelled": [ax.get_tightbbox(renderer) for ax in fig.axes]})
        return save(fig, path, **kwargs)

    monkeypatch.setattr(figures, "save_figure", keep)
    return kept


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 - 0.5 and b.x0 < a.x1 - 0.5 and a.y0 < b.y1 - 0.5 and b.y0 < a.y1 - 0.5


def test_gallery_is_a_jpeg_of_its_computed_size_with_no_text_over_a_tile(tmp_path, drawn):
    images, maps = _images(9)
    groups = [0] * 7 + [1] * 2  # two rows for group 0, one for group 1
    captions = [figures.caption("Round Smooth", "Barred Spiral" if i % 3 else "Round Smooth", 0.87, short=True)
                for i in range(9)]
    path = figures.save_gallery(tmp_path / "g.jpg", images, maps, captions, "GradCAM++: a gallery title",
                                row_labels=["Round Smooth", "Barred Spiral"], groups=groups)
    with Image.open(path) as image:  # saved at 110 dpi, to the figure's own size
        assert image.format == "JPEG" and image.size == tuple(round(v * 110) for v in drawn[0]["inches"])
    width, height = drawn[0]["pixels"]
    boxes, tiles, bar = drawn[0]["texts"], drawn[0]["axes"][:-1], drawn[0]["axes"][-1]
    assert len(tiles) == 3 * figures.COLUMNS
    for box in boxes:  # every caption, label and title inside the picture and off every tile
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height
        assert not any(_overlap(box, tile) for tile in tiles)
    assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert bar.x0 > max(tile.x1 for tile in tiles)  # the colour bar right of the last column


def test_misclassified_gallery_and_pair_are_jpegs(tmp_path, drawn):
    images, maps = _images(2)
    path = figures.save_gallery(tmp_path / "m.jpg", images[:1], maps[:1], ["true A\npred B 0.9  x"], "wrong",
                                second_maps=maps[1:], second_captions=["map for true class\nA"])
    pair = figures.save_pair(tmp_path / "p.jpg", images[0], maps[0], "gradcam", "A", "B", 0.9)
    for written in (path, pair):
        with Image.open(written) as image:
            assert image.format == "JPEG"
    title, original = drawn[1]["texts"][-1], drawn[1]["axes"][0]
    assert title.y0 >= original.y1  # the pair's title above its tiles


def test_localisation_plot_is_drawn_at_its_own_size_with_every_label_inside(tmp_path, drawn):
    """Laid out to the inch (no constrained layout, no tight bounding box: one drawing pass)."""
    rng = np.random.default_rng(0)
    per_class = {name: {"share_on_galaxy_per_image": list(rng.random(20)), "galaxy_area_share_per_image":
                        list(rng.random(20) / 2), "share_on_galaxy": 0.5, "galaxy_area_share": 0.25}
                 for name in ("Round Smooth", "In-between Round Smooth", "Barred Spiral")}
    path = figures.save_localisation(tmp_path / "l.png", per_class, "Integrated gradients: localisation (test)")
    with Image.open(path) as image:
        assert image.size == tuple(round(v * 110) for v in drawn[0]["inches"])
    width, height = drawn[0]["pixels"]
    panels, title = drawn[0]["labelled"], drawn[0]["texts"][-1]
    for box in [*panels, title]:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height
    assert not any(_overlap(a, b) for i, a in enumerate(panels) for b in panels[i + 1:])
    assert all(title.y0 >= panel.y1 for panel in panels)  # the figure's title above every panel's
