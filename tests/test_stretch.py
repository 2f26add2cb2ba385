"""The one colour stretch (data/stretch.py) is astropy's make_lupton_rgb, for both its users."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("user", ["synthetic", "importers"])
def test_lupton_rgb_is_astropys_make_lupton_rgb(user):
    from astropy.visualization import make_lupton_rgb

    from galaxymorph.data import importers, synthetic
    from galaxymorph.data.stretch import lupton_rgb

    module = {"synthetic": synthetic, "importers": importers}[user]
    offset = np.broadcast_to(np.asarray(module.SKY_OFFSET, dtype=float), (3,))
    rng = np.random.default_rng(5)
    planes = (rng.normal(0, 1, (3, 32, 32)) + rng.uniform(0, 1, (1, 32, 32)) ** 8 * 3e4).astype(np.float32)
    planes[:, 0, :3] = [[-9, 0, 1e5], [-9, 0, 1e3], [-9, 0, 1e5]]  # below black, sky, a saturated core
    expected = make_lupton_rgb(*planes, minimum=[-o for o in offset], stretch=module.LUPTON_STRETCH,
                               Q=module.LUPTON_Q)
    got = lupton_rgb(planes, module.SKY_OFFSET, module.LUPTON_Q, module.LUPTON_STRETCH)
    assert got.shape == expected.shape == (32, 32, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert np.mean(got != expected) < 0.01
    assert got[0, 0].max() == 0 and got[0, 2].max() == 255
