"""Figures drawn in worker processes: written, and a failure is not lost."""

from __future__ import annotations

import numpy as np
import pytest

from galaxymorph.plotting import FigurePool, image_grid


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
