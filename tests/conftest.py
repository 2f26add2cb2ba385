"""Shared fixtures: small Galaxy10-layout files and the optional real reference cutouts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GALAXYMORPH_NO_PROGRESS", "1")

# ../shared/data beside the repository; GALAXYMORPH_SHARED_DATA names another place (a git worktree)
SHARED_DATA = Path(os.environ.get("GALAXYMORPH_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")
REFERENCE_H5 = SHARED_DATA / "galaxy10_reference.h5"
SDSS_GZ2 = SHARED_DATA / "sdss_gz2"


def make_blobs(labels: np.ndarray, seed: int = 0, overlapping: bool = False) -> np.ndarray:
    """Cheap uint8 cutouts whose shape depends on the class position.

    By default position 0 gives round blobs and 1 elongated ones: easy to tell apart. With
    ``overlapping`` the axis ratios come from overlapping ranges (not too easy) and position 2
    adds a ring, for three-class tests.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-128:128, -128:128].astype(np.float32)
    out = np.empty((len(labels), 256, 256, 3), dtype=np.uint8)
    for i, lab in enumerate(labels):
        theta = rng.uniform(0, np.pi)
        c, s = np.cos(theta), np.sin(theta)
        u, v = c * xx + s * yy, -s * xx + c * yy
        if overlapping:
            q = rng.uniform(*((0.75, 1.0), (0.35, 0.8), (0.8, 1.0))[lab % 3])
        else:
            q = 1.0 if lab % 2 == 0 else 0.3
        r = np.sqrt(u**2 + (v / q) ** 2)
        img = 200 * np.exp(-r / rng.uniform(10, 20)) + rng.normal(10, 6 if overlapping else 4, size=r.shape)
        if overlapping and lab % 3 == 2:
            img += 120 * np.exp(-((r - 45) ** 2) / 60)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)[..., None]
    return out


@pytest.fixture
def tiny_h5(tmp_path) -> Path:
    """A 40-image Galaxy10-layout file: 20 of class 2 (round) and 20 of class 5 (elongated)."""
    from galaxymorph.data.galaxy10 import write_galaxy10

    ans = np.array([2, 5] * 20, dtype=np.uint8)
    images = make_blobs((ans == 5).astype(int))
    return write_galaxy10(tmp_path / "tiny.h5", images, ans, pxscale=np.full(len(ans), 0.262))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module: tiny convolutions gain nothing from two, and lose a
    lot when the other core is busy (OpenMP threads spin-wait for each other)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def reference_h5() -> Path:
    """The 110 real Galaxy10 DECaLS cutouts in ../shared/data, or a skip when absent."""
    if not REFERENCE_H5.is_file():
        pytest.skip(f"real reference cutouts not present at {REFERENCE_H5}")
    return REFERENCE_H5


@pytest.fixture
def sdss_gz2() -> Path:
    """The real SDSS folder of JPEGs and catalog.csv in ../shared/data, or a skip when absent."""
    if not (SDSS_GZ2 / "catalog.csv").is_file():
        pytest.skip(f"real SDSS galaxies not present at {SDSS_GZ2}")
    return SDSS_GZ2
