"""Figures drawn in worker processes: written, and a failure is not lost."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from galaxymorph.plotting import FigurePool, image_grid


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_figure_pool_draws_every_figure_and_raises_the_first_error(tmp_path, workers):
    tile = np.zeros((8, 8, 3), dtype=np.uint8)
    with FigurePool(workers) as pool:
        for k in range(3):
            pool.submit(image_grid, [[tile]], ["row"], tmp_path / f"grid{k}.png")
    assert all((tmp_path / f"grid{k}.png").stat().st_size > 0 for k in range(3))
    with pytest.raises(IndexError):
        with FigurePool(workers) as pool:
            pool.submit(image_grid, [[tile]], [], tmp_path / "bad.png")  # no label for the row
    assert not (tmp_path / "bad.png").exists()


@pytest.mark.parametrize("name, magic", [("f.jpg", b"\xff\xd8\xff"), ("f.JPEG", b"\xff\xd8\xff"),
                                         ("f.png", b"\x89PNG"), ("f", b"\x89PNG")])
def test_save_figure_writes_jpeg_by_the_ending_else_png(tmp_path, name, magic):
    from galaxymorph.plotting import plt, save_figure

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.imshow(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8))
    path = save_figure(fig, tmp_path / name)
    assert path.read_bytes().startswith(magic)
    assert not plt.fignum_exists(fig.number)  # closed


def test_save_figure_untight_keeps_the_figure_size(tmp_path):
    from PIL import Image

    from galaxymorph.plotting import plt, save_figure

    for tight, expected in ((False, (300, 100)), (True, None)):
        fig = plt.figure(figsize=(3, 1))
        fig.text(0.5, 0.5, "x")  # a tight box shrinks to this
        with Image.open(save_figure(fig, tmp_path / f"{tight}.jpg", dpi=100, tight=tight)) as image:
            assert (image.size == expected) if expected else (image.size[0] < 100 and image.mode == "RGB")


def test_image_grid_and_save_figure_close_their_figure_when_they_fail(tmp_path):
    """A row without a label raised with the figure left open in pyplot (and its memory held)."""
    from galaxymorph.plotting import plt, save_figure

    tile = np.zeros((8, 8, 3), dtype=np.uint8)
    before = set(plt.get_fignums())
    with pytest.raises(IndexError):
        image_grid([[tile], [tile]], ["only one label"], tmp_path / "bad.jpg")
    assert set(plt.get_fignums()) == before and not (tmp_path / "bad.jpg").exists()
    fig = plt.figure()
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(OSError):
        save_figure(fig, tmp_path / "file" / "f.png")
    assert not plt.fignum_exists(fig.number)


def test_image_grid_is_drawn_at_its_own_size_with_every_label_beside_its_tiles(tmp_path, monkeypatch):
    """Laid out to the inch (no tight bounding box: one drawing pass); the row labels' width is
    measured, so a long or two-line label is neither cut off nor drawn over a tile."""
    import galaxymorph.plotting as plotting

    drawn, save = [], plotting.save_figure

    def keep(fig, path, **kwargs):
        fig.set_dpi(plotting.FIGURE_DPI)
        renderer = fig.canvas.get_renderer()
        fig.draw(renderer)
        drawn.append({"inches": tuple(fig.get_size_inches()), "pixels": tuple(fig.get_size_inches() * fig.dpi),
                      "texts": [t.get_window_extent(renderer) for ax in fig.axes for t in (ax.title, ax.yaxis.label)
                                if t.get_text()] + [fig._suptitle.get_window_extent(renderer)],
                      "tiles": [ax.get_window_extent(renderer).frozen() for ax in fig.axes]})
        return save(fig, path, **kwargs)

    monkeypatch.setattr(plotting, "save_figure", keep)
    tile = np.zeros((8, 8, 3), dtype=np.uint8)
    path = image_grid([[tile] * 3, [tile] * 2], ["3 In-between Round Smooth", "5 Barred Spiral\n(n=600)"],
                      tmp_path / "grid.jpg", titles=[["real", "real", "synthetic"], ["a", "b"]], title="examples")
    with Image.open(path) as image:
        assert image.size == tuple(round(v * plotting.FIGURE_DPI) for v in drawn[0]["inches"])
    width, height = drawn[0]["pixels"]
    texts, tiles = drawn[0]["texts"], drawn[0]["tiles"]
    assert len(texts) == 5 + 2 + 1  # captions, row labels, title
    for box in texts:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height
        assert not any(box.x0 < t.x1 - 0.5 and t.x0 < box.x1 - 0.5 and box.y0 < t.y1 - 0.5 and t.y0 < box.y1 - 0.5
                       for t in tiles)
