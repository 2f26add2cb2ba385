"""Chunk-wise reading of any rows of an HDF5 dataset: same result as h5py's indexing, any layout."""

import h5py
import numpy as np
import pytest

from galaxymorph.data import rows
from galaxymorph.data.galaxy10 import open_galaxy10
from galaxymorph.data.rows import chunk_aligned_batches, read_rows
from galaxymorph.errors import DataError

N = 23
# The three layouts a Galaxy10 file comes in, plus chunks that also cut the image into bands.
LAYOUTS = {
    "contiguous": {},
    "one image per chunk (lzf)": {"chunks": (1, 256, 256, 3), "compression": "lzf"},
    "h5py's automatic gzip chunks": {"compression": "gzip"},
    "row blocks cut in bands": {"chunks": (5, 64, 256, 3), "compression": "gzip"},
}


def _h5py_fancy(ds, idx):
    """What h5py's own fancy indexing gives (it wants increasing unique indices)."""
    idx = np.asarray(idx, dtype=np.int64)
    order = np.unique(idx)
    if not len(order):
        return np.empty((0, *ds.shape[1:]), ds.dtype)
    return ds[order][np.searchsorted(order, idx)]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """One Galaxy10-layout file per layout, all holding the same random images."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N, 256, 256, 3), dtype=np.uint8)
    images[:, :128] //= 16  # partly compressible, like sky around a galaxy
    ans = np.arange(N) % 10
    paths = {}
    for name, options in LAYOUTS.items():
        path = tmp_path_factory.mktemp("layouts") / "file.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("images", data=images, **options)
            f.create_dataset("ans", data=ans.astype(np.uint8))
        paths[name] = path
    with h5py.File(paths["h5py's automatic gzip chunks"]) as f:
        assert f["images"].chunks[0] > 1  # the case where one chunk holds several images
    return images, paths


SELECTIONS = {
    "sorted split": lambda rng: np.sort(rng.choice(N, 16, replace=False)),
    "unsorted": lambda rng: rng.choice(N, 12, replace=False),
    "repeated": lambda rng: rng.integers(0, N, 30),
    "empty": lambda rng: np.array([], dtype=np.int64),
    "everything": lambda rng: np.arange(N),
    "everything reversed": lambda rng: np.arange(N)[::-1],
    "one image": lambda rng: [N - 1],
    "last rows of a short last chunk": lambda rng: [N - 2, N - 1, N - 2],
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_images_match_h5py_fancy_indexing(layouts, layout, monkeypatch):
    images, paths = layouts
    with open_galaxy10(paths[layout]) as data, h5py.File(paths[layout]) as f:
        for buffer_bytes in (rows.BUFFER_BYTES, 1):  # 1: chunks read band by band
            monkeypatch.setattr(rows, "BUFFER_BYTES", buffer_bytes)
            for selection, make in SELECTIONS.items():
                idx = make(np.random.default_rng(len(selection)))
                got = data.images(idx)
                assert got.dtype == np.uint8 and got.shape == (len(idx), 256, 256, 3)
                assert np.array_equal(got, images[np.asarray(idx, dtype=np.int64)]), selection
        idx = [7, 2, 7, 19, 3, 4]  # unsorted, repeated, in several chunks
        assert np.array_equal(data.images(idx), _h5py_fancy(f["images"], idx))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_iter_images_and_slices_give_the_same_images(layouts, layout):
    images, paths = layouts
    idx = np.sort(np.random.default_rng(1).choice(N, 17, replace=False))
    with open_galaxy10(paths[layout]) as data:
        parts = list(data.iter_images(idx, batch_size=4))
        assert np.array_equal(np.concatenate([i for i, _ in parts]), idx)
        assert np.array_equal(np.concatenate([b for _, b in parts]), images[idx])
        assert np.array_equal(data.images(slice(3, 20, 4)), images[3:20:4])
        assert np.array_equal(data.images(), images)


def test_batches_end_where_a_chunk_ends():
    """Ascending indices: each batch is stretched to its last chunk's end, so no chunk is read by
    two batches; unsorted indices keep plain batches."""
    with h5py.File("batches.h5", "w", driver="core", backing_store=False) as f:
        ds = f.create_dataset("x", shape=(100, 2), dtype=np.uint8, chunks=(10, 2))
        idx = np.array([0, 3, 9, 10, 11, 25, 26, 27, 28, 60])
        cuts = list(chunk_aligned_batches(ds, idx, batch_size=2))
        assert cuts == [(0, 3), (3, 5), (5, 9), (9, 10)]
        chunks_per_batch = [set(idx[a:b] // 10) for a, b in cuts]
        assert all(not (x & y) for x, y in zip(chunks_per_batch, chunks_per_batch[1:]))
        assert list(chunk_aligned_batches(ds, idx[::-1], batch_size=4)) == [(0, 4), (4, 8), (8, 10)]


def test_any_dataset_of_rows_with_a_preallocated_output_and_progress():
    """The reader is not tied to images: a (N, 256, 256) mask stack or a 1-D column work alike."""
    rng = np.random.default_rng(2)
    masks = rng.integers(0, 2, size=(30, 256, 256), dtype=np.uint8)
    with h5py.File("rows.h5", "w", driver="core", backing_store=False) as f:
        ds = f.create_dataset("masks", data=masks, compression="gzip")
        col = f.create_dataset("z", data=np.linspace(0, 1, 30), chunks=(7,))
        idx = np.array([29, 4, 5, 6, 4])
        out = np.zeros((5, 256, 256), dtype=np.uint8)
        done = []
        assert read_rows(ds, idx, out=out, progress=done.append) is out
        assert np.array_equal(out, masks[idx]) and sum(done) == 5
        assert np.array_equal(read_rows(col, idx), np.linspace(0, 1, 30)[idx])
        with pytest.raises(ValueError, match="out must be"):
            read_rows(ds, idx, out=np.zeros((4, 256, 256), dtype=np.uint8))


def test_index_out_of_range_is_a_one_line_error(tiny_h5):
    with open_galaxy10(tiny_h5) as data:
        with pytest.raises(DataError, match=r"tiny.h5 \('images'\): index 40 out of range 0..39"):
            data.images([0, 40])
        with pytest.raises(DataError, match="index -1 out of range"):
            data.images([-1])
