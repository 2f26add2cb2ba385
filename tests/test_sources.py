"""The central source found by sep: the galaxy at the centre, not a star at the edge."""

import numpy as np
import pytest

from galaxymorph.data.sources import apparent_size, central_source_masks
from galaxymorph.errors import DataError


def _sky(n=1, size=128, seed=0):
    rng = np.random.default_rng(seed)
    return 30.0 + rng.normal(0, 2.0, (n, size, size))


def _gaussian(size, cy, cx, sigma, peak):
    y, x = np.mgrid[:size, :size]
    return peak * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma ** 2))


def _to_rgb(lum):
    return np.repeat(np.clip(lum, 0, 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def _blob_and_star(size=128, sigma=8.0, seed=0, centre_offset=0.0):
    c = (size - 1) / 2 + centre_offset
    lum = _sky(1, size, seed)[0] + _gaussian(size, c, c, sigma, 150.0) \
        + _gaussian(size, 8, size - 9, 1.5, 200.0)
    return _to_rgb(lum)


def test_central_mask_is_the_blob_not_the_edge_star():
    image = _blob_and_star()
    mask = central_source_masks(image[None])[0]
    assert mask.shape == (128, 128) and mask.dtype == bool
    assert mask[64, 64]                       # the centre is on the galaxy
    assert not mask[8, 119]                   # the star at the edge is another source
    assert not mask[:20, 100:].any()
    assert 0.01 < mask.mean() < 0.3           # a footprint, neither a dot nor the whole image


def test_centre_on_sky_picks_the_nearest_source():
    # a small galaxy displaced from the centre, so the exact centre pixel is sky
    size = 128
    lum = _sky(1, size)[0] + _gaussian(size, 40, 40, 3.0, 150.0) \
        + _gaussian(size, 8, size - 9, 1.5, 200.0)
    mask = central_source_masks(_to_rgb(lum)[None])[0]
    assert not mask[64, 64]
    assert mask[40, 40] and not mask[8, 119]


def test_apparent_size_grows_with_the_galaxy_and_ignores_the_star():
    sizes = apparent_size(np.stack([_blob_and_star(sigma=s) for s in (4.0, 8.0, 12.0)]))
    assert np.all(np.diff(sizes) > 0)
    # a 2-D Gaussian's half-light radius is sigma * sqrt(2 ln 2) ~ 1.18 sigma (segment-truncated)
    assert sizes[1] == pytest.approx(8.0 * np.sqrt(2 * np.log(2)), rel=0.25)


def test_an_empty_image_has_no_source():
    flat = np.full((1, 64, 64, 3), 30, dtype=np.uint8)
    assert not central_source_masks(flat).any()
    assert np.isnan(apparent_size(flat)[0])


def test_wrong_shape_is_a_data_error():
    with pytest.raises(DataError, match="shape"):
        central_source_masks(np.zeros((4, 64, 64), dtype=np.uint8))
