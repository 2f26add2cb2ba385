"""Batches: the split in memory, the seeded sharded sampler, and the batched augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galaxymorph.data.batches import (Augmenter, BatchSampler, affine, d4_transform, iterate_batches, load_split,
                                      make_batch)
from galaxymorph.data.splits import prepare
from galaxymorph.errors import GalaxymorphError
from galaxymorph.inference import d4_views
from galaxymorph.models import build_model


def test_sampler_is_seeded_reshuffled_and_complete():
    s = BatchSampler(23, 5, seed=3)
    a, b = s.positions(0), BatchSampler(23, 5, seed=3).positions(0)
    assert np.array_equal(a, b)
    assert sorted(a.tolist()) == list(range(23))
    assert not np.array_equal(a, s.positions(1))  # a new order every epoch
    assert [len(x) for x in s.batches(0)] == [5, 5, 5, 5, 3]
    assert len(s) == 5


def test_sampler_shards_equally_across_ranks():
    shards = [BatchSampler(23, 4, seed=1, rank=r, world_size=3) for r in range(3)]
    parts = [s.positions(2) for s in shards]
    assert {len(p) for p in parts} == {8}  # 23 padded to 24: every rank runs the same steps
    assert set(np.concatenate(parts).tolist()) == set(range(23))
    evals = [BatchSampler(23, 4, shuffle=False, rank=r, world_size=3).positions() for r in range(3)]
    assert sorted(np.concatenate(evals).tolist()) == list(range(23))  # each image exactly once


def test_d4_transform_is_exact():
    x = torch.rand(8, 3, 6, 6)
    k = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    flip = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]).bool()
    out = d4_transform(x, k, flip)
    assert torch.equal(out, d4_transform(x, k, flip, by_where=True))  # the GPU's way, on the CPU
    for i in range(8):
        expected = x[i].flip(-1) if flip[i] else x[i]
        expected = torch.rot90(expected, int(k[i]), dims=(-2, -1))
        assert torch.equal(out[i], expected)


def test_d4_augmentation_gives_exact_symmetries_and_keeps_dtype_shape():
    x = torch.rand(64, 3, 8, 8)
    out = Augmenter("d4", rotation=0, zoom=0, shift=0)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    seen = set()
    for i in range(len(x)):
        matches = [j for j, v in enumerate(d4_views(x[i : i + 1])) if torch.equal(v[0], out[i])]
        assert matches, f"image {i} is not a rotation/flip of its input"
        seen.add(matches[0])
    assert len(seen) == 8  # 64 draws hit every symmetry


def test_augmentation_is_seeded_and_varies_per_image():
    x = torch.rand(6, 3, 32, 32)
    aug = Augmenter("d4", rotation=0.5, zoom=0.1, shift=0.05)
    a = aug(x, torch.Generator().manual_seed(5))
    b = aug(x, torch.Generator().manual_seed(5))
    c = aug(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert float(a.min()) >= 0 and float(a.max()) <= 1  # reflection padding: no values from outside


def test_seed_augmentation_flips_only_horizontally():
    x = torch.rand(32, 3, 8, 8)
    out = Augmenter("seed", rotation=0, zoom=0)(x, torch.Generator().manual_seed(1))
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(32)]
    kept = [torch.equal(out[i], x[i]) for i in range(32)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)
    assert Augmenter("none")(x) is x


def test_affine_identity_and_quarter_turn():
    x = torch.rand(2, 3, 16, 16)
    zero, one = torch.zeros(2), torch.ones(2)
    assert torch.allclose(affine(x, zero, one, torch.zeros(2, 2)), x, atol=1e-5)
    turned = affine(x, torch.full((2,), np.pi / 2), one, torch.zeros(2, 2))
    assert any(torch.allclose(turned, torch.rot90(x, k, dims=(-2, -1)), atol=1e-4) for k in (1, 3))
    zoomed = affine(x, zero, torch.full((2,), 2.0), torch.zeros(2, 2))
    assert not torch.allclose(zoomed, x, atol=1e-3)


def test_bad_augmentation_settings():
    with pytest.raises(ValueError, match="augment"):
        Augmenter("spin")
    with pytest.raises(GalaxymorphError, match="--zoom must be below 1"):
        Augmenter("d4", zoom=1.5)
    with pytest.raises(GalaxymorphError, match="--shift must be below 0.5"):
        Augmenter("d4", shift=2.0)
    assert Augmenter("d4", shift=0.45).shift == 0.45


def test_load_split_and_batches(tiny_h5, tmp_path):
    manifest = prepare(tiny_h5, tmp_path / "m.json", classes=[5, 2], seed=0, check_duplicates=False)
    images, labels = load_split(tiny_h5, manifest, "train")
    assert images.dtype == np.uint8 and images.shape == (28, 256, 256, 3)
    # labels are positions in the manifest's class order: 5 -> 0, 2 -> 1 (tiny_h5 alternates 2, 5)
    expected = np.array([0 if i % 2 else 1 for i in manifest["splits"]["train"]])
    assert np.array_equal(labels, expected)

    model = build_model("default", [5, 2])
    x, y = make_batch(images, labels, np.array([3, 0, 7]), torch.device("cpu"), model.resize,
                      Augmenter("d4"), torch.Generator().manual_seed(0), channels_last=True)
    assert x.shape == (3, 3, 128, 128) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert y.tolist() == labels[[3, 0, 7]].tolist()

    sampler = BatchSampler(len(labels), 8, seed=0)
    run1 = [b[0] for b in iterate_batches(images, labels, sampler, 1, torch.device("cpu"), model.resize,
                                          Augmenter("d4"), seed=0)]
    run2 = [b[0] for b in iterate_batches(images, labels, sampler, 1, torch.device("cpu"), model.resize,
                                          Augmenter("d4"), seed=0)]
    assert len(run1) == 4 and all(torch.equal(a, b) for a, b in zip(run1, run2))


def test_a_split_held_as_tensors_gives_the_same_batches(tiny_h5, tmp_path):
    """What a GPU run does (the split moved to the device once, batches cut there), checked on
    the CPU: tensors in give exactly the batches that numpy arrays give."""
    manifest = prepare(tiny_h5, tmp_path / "m.json", classes=[2, 5], seed=0, check_duplicates=False)
    images, labels = load_split(tiny_h5, manifest, "train")
    held_images, held_labels = torch.from_numpy(images), torch.from_numpy(labels)
    model = build_model("default", [2, 5])
    sampler = BatchSampler(len(labels), 8, seed=0)
    as_numpy = list(iterate_batches(images, labels, sampler, 2, torch.device("cpu"), model.resize,
                                    Augmenter("d4"), seed=0))
    as_tensors = list(iterate_batches(held_images, held_labels, sampler, 2, torch.device("cpu"), model.resize,
                                      Augmenter("d4"), seed=0))
    assert len(as_numpy) == len(as_tensors) == 4
    for (xa, ya), (xb, yb) in zip(as_numpy, as_tensors):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
