"""Localisation scores: a map on the known footprint scores high, a uniform map scores the area."""

import h5py
import numpy as np
import pytest

from galaxymorph.data.galaxy10 import open_galaxy10, write_galaxy10
from galaxymorph.errors import GalaxymorphError
from galaxymorph.explain.localisation import (area_share, bar_and_arm_masks, energy_share, galaxy_masks,
                                              localisation_summary, meets_aim)


def _disc_masks(n=3, size=64, radius=12):
    y, x = np.mgrid[:size, :size]
    disc = (y - size / 2) ** 2 + (x - size / 2) ** 2 <= radius ** 2
    return np.repeat(disc[None], n, axis=0)


def test_uniform_map_scores_the_area_share():
    masks = _disc_masks()
    maps = np.ones(masks.shape)
    np.testing.assert_allclose(energy_share(maps, masks), area_share(masks))
    summary = localisation_summary(maps, masks)
    assert summary["lift"] == pytest.approx(1.0)
    assert not meets_aim(summary)


def test_map_concentrated_on_the_mask_scores_high():
    masks = _disc_masks()
    maps = masks * 1.0 + 0.01  # nearly all energy inside, a little everywhere
    share = energy_share(maps, masks)
    assert np.all(share > 0.9)
    summary = localisation_summary(maps, masks)
    assert summary["lift"] > 5 and meets_aim(summary)


def test_map_on_the_border_scores_below_uniform():
    masks = _disc_masks()
    frame = np.zeros(masks.shape)
    frame[:, :4, :] = frame[:, -4:, :] = frame[:, :, :4] = frame[:, :, -4:] = 1.0
    assert np.all(energy_share(frame, masks) == 0)


def test_negative_values_are_clipped_and_empty_maps_left_out():
    masks = _disc_masks(n=2)
    maps = np.where(masks, 1.0, -5.0)  # negative outside: clipped, so all energy is inside
    maps[1] = 0.0
    share = energy_share(maps, masks)
    assert share[0] == pytest.approx(1.0) and np.isnan(share[1])
    assert localisation_summary(maps, masks)["n_images"] == 1


def test_shape_mismatch_is_an_error():
    with pytest.raises(GalaxymorphError, match="maps"):
        energy_share(np.ones((2, 8, 8)), np.ones((2, 8, 9), bool))


def test_bits_select_galaxy_and_bar_and_arms():
    from galaxymorph.data.galaxy10 import MASK_BITS as B  # the one table of mask bits

    bits = np.array([[[B["galaxy"] | B["bar"], B["galaxy"] | B["arms"], B["galaxy"] | B["bulge"], B["stars"], 0]]],
                    dtype=np.uint8)
    np.testing.assert_array_equal(galaxy_masks(None, bits)[0, 0], [True, True, True, False, False])
    np.testing.assert_array_equal(bar_and_arm_masks(bits)[0, 0], [True, True, False, False, False])
    maps = np.array([[[3.0, 1.0, 0.0, 0.0, 0.0]]])
    summary = localisation_summary(maps, galaxy_masks(None, bits), bar_and_arm_masks(bits))
    assert summary["share_on_bar_and_arms"] == pytest.approx(1.0)


def test_masks_read_from_file_when_present(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (4, 256, 256, 3), dtype=np.uint8)
    path = tmp_path / "g.h5"
    write_galaxy10(path, images, [2, 5, 2, 5])
    with open_galaxy10(path) as data:
        assert data.masks(np.array([0, 1])) is None  # files without masks work as before
    bits = rng.integers(0, 128, (4, 256, 256), dtype=np.uint8)
    with h5py.File(path, "a") as fh:
        fh.create_dataset("masks", data=bits)
    with open_galaxy10(path) as data:
        np.testing.assert_array_equal(data.masks(np.array([3, 1])), bits[[3, 1]])


def test_localisation_has_no_mask_table_of_its_own():
    import galaxymorph.explain.localisation as loc

    assert not any(name.endswith("_BIT") or name == "MASK_BITS" for name in vars(loc))
