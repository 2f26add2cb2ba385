"""The Galaxy10 DECaLS file layout: class names, a lazy validated reader, and a writer.

Galaxy10 DECaLS (Leung & Bovy) is one HDF5 file with ``images`` uint8 (N, 256, 256, 3) and
``ans`` (N,) Galaxy Zoo class ids, plus optional per-image ``ra``, ``dec``, ``redshift`` and
``pxscale``. Everything galaxymorph reads or writes -- the real file, the synthetic sky, imported
folders -- uses this layout, so every later stage treats them alike.

Images stay uint8 on disk and in memory; a float copy of the whole set is never made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Sequence

import h5py
import numpy as np

from ..errors import DataError
from ..fileio import atomic_path, sha256_file

CLASS_NAMES: dict[int, str] = {
    0: "Disturbed",
    1: "Merging",
    2: "Round Smooth",
    3: "In-between Round Smooth",
    4: "Cigar Shaped Smooth",
    5: "Barred Spiral",
    6: "Unbarred Tight Spiral",
    7: "Unbarred Loose Spiral",
    8: "Edge-on without Bulge",
    9: "Edge-on with Bulge",
}
DEFAULT_CLASSES: tuple[int, ...] = (2, 5)
IMAGE_SHAPE: tuple[int, int, int] = (256, 256, 3)
OPTIONAL_COLUMNS: tuple[str, ...] = ("ra", "dec", "redshift", "pxscale")
DECALS_PIXEL_SCALE = 0.262  # arcsec / pixel of the Legacy Surveys cutouts
CATALOG_GROUP = "catalog"  # HDF5 group of per-image numeric catalogue columns (float32, NaN = unknown)


def class_name(class_id: int) -> str:
    """Galaxy Zoo name of a Galaxy10 class id, with a clear error for an unknown id."""
    return CLASS_NAMES[validate_classes([class_id])[0]]


def check_class_id(class_id) -> int:
    """One Galaxy10 class id as an int, with an error that names a bad one."""
    try:
        ci = int(class_id)
    except (TypeError, ValueError):
        raise DataError(f"class id {class_id!r} is not an integer (Galaxy10 ids are 0..9)") from None
    if ci not in CLASS_NAMES:
        raise DataError(f"unknown class id {ci}: Galaxy10 class ids are 0..9")
    return ci


def validate_classes(classes: Iterable[int] | int, minimum: int = 2,
                     check: Callable[[object], int] = check_class_id) -> list[int]:
    """Check a class subset: each id passes ``check``, no repeats, at least ``minimum`` (two to
    classify; one is enough to render). Keeps the order."""
    if isinstance(classes, (int, np.integer)):
        classes = [classes]
    out: list[int] = []
    for c in classes:
        ci = check(c)
        if ci in out:
            raise DataError(f"class id {ci} is given twice")
        out.append(ci)
    if not out:
        raise DataError("no classes given: name Galaxy10 class ids (0..9)")
    if len(out) < minimum:
        raise DataError(f"need at least two classes to classify, got {out}")
    return out


@dataclass(frozen=True)
class Selection:
    """Indices of a class subset in a file, and their labels 0..k-1 in the order given."""

    classes: tuple[int, ...]
    indices: np.ndarray  # positions in the source file, ascending
    labels: np.ndarray  # 0..k-1, position of the image's class in ``classes``

    @property
    def class_names(self) -> list[str]:
        return [CLASS_NAMES[c] for c in self.classes]


class Galaxy10File:
    """A lazy, validated reader for any HDF5 file in the Galaxy10 layout.

    Opening checks keys, shapes and dtypes and reads only the small columns; pixels are read
    on demand with :meth:`images`. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"data file not found: {self.path}")
        if self.path.is_dir():
            raise DataError(f"expected an HDF5 file, got a folder: {self.path}")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise DataError(f"{self.path} is not a readable HDF5 file ({exc})") from None
        try:
            self._validate()
        except BaseException:
            self._h5.close()
            raise
        self.labels: np.ndarray = self._h5["ans"][()].astype(np.int64)

    def _validate(self) -> None:
        f, name = self._h5, self.path.name
        for key in ("images", "ans"):
            if key not in f:
                raise DataError(
                    f"{name} is not in the Galaxy10 layout: no '{key}' dataset "
                    f"(found: {', '.join(sorted(f.keys())) or 'nothing'})"
                )
        images, ans = f["images"], f["ans"]
        if images.ndim != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
            raise DataError(
                f"{name}: 'images' has shape {images.shape}, expected (N, 256, 256, 3)"
            )
        if images.dtype != np.uint8:
            raise DataError(f"{name}: 'images' has dtype {images.dtype}, expected uint8")
        if ans.shape != (images.shape[0],):
            raise DataError(
                f"{name}: 'ans' has shape {ans.shape}, expected ({images.shape[0]},) "
                "to match 'images'"
            )
        if not np.issubdtype(ans.dtype, np.integer):
            raise DataError(f"{name}: 'ans' has dtype {ans.dtype}, expected integer class ids")
        values = np.unique(ans[()]) if len(ans) else np.array([], dtype=int)
        bad = [int(v) for v in values if int(v) not in CLASS_NAMES]
        if bad:
            raise DataError(f"{name}: 'ans' holds class ids {bad} outside Galaxy10's 0..9")
        for key in OPTIONAL_COLUMNS:
            if key in f and f[key].shape != (images.shape[0],):
                raise DataError(
                    f"{name}: '{key}' has shape {f[key].shape}, expected ({images.shape[0]},)"
                )

    # -- basic facts -------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._h5["images"].shape[0])

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the file's bytes: ties manifests and runs to exactly this data."""
        return sha256_file(self.path)

    def class_counts(self) -> dict[int, int]:
        """Number of images of each class id present in the file."""
        ids, counts = np.unique(self.labels, return_counts=True)
        return {int(i): int(n) for i, n in zip(ids, counts)}

    def column(self, key: str) -> np.ndarray | None:
        """An optional per-image column (``ra``, ``dec``, ``redshift``, ``pxscale``), or None."""
        return self._h5[key][()] if key in self._h5 else None

    # -- pixels ------------------------------------------------------------------------
    def images(self, indices: Sequence[int] | np.ndarray | slice | None = None) -> np.ndarray:
        """uint8 images (n, 256, 256, 3) at ``indices`` (any order, repeats allowed)."""
        ds = self._h5["images"]
        if indices is None:
            return ds[()]
        if isinstance(indices, slice):
            return ds[indices]
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0:
            return np.empty((0, *IMAGE_SHAPE), dtype=np.uint8)
        if idx.min() < 0 or idx.max() >= len(self):
            raise DataError(f"image index out of range 0..{len(self) - 1} in {self.path.name}")
        order = np.unique(idx)  # h5py wants increasing, unique indices
        block = ds[order] if len(order) > 1 else ds[int(order[0])][None]
        return block[np.searchsorted(order, idx)]

    def iter_images(self, indices: np.ndarray, batch_size: int = 256):
        """Yield (indices_chunk, images_chunk) in chunks, to stream large selections."""
        indices = np.asarray(indices, dtype=np.int64)
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            yield chunk, self.images(chunk)

    # -- class subsets -----------------------------------------------------------------
    def select(self, classes: Iterable[int] = DEFAULT_CLASSES) -> Selection:
        """Images of the given classes with labels 0..k-1 in the order given.

        Raises :class:`DataError` for an unknown class id or a class with no images here.
        """
        classes = validate_classes(classes)
        counts = self.class_counts()
        empty = [c for c in classes if counts.get(c, 0) == 0]
        if empty:
            names = ", ".join(f"{c} ({CLASS_NAMES[c]})" for c in empty)
            present = ", ".join(str(c) for c in sorted(counts)) or "none"
            raise DataError(
                f"{self.path.name} has no images of class {names}; classes present: {present}"
            )
        mask = np.isin(self.labels, classes)
        indices = np.flatnonzero(mask)
        lookup = {c: i for i, c in enumerate(classes)}
        labels = np.array([lookup[int(c)] for c in self.labels[indices]], dtype=np.int64)
        return Selection(tuple(classes), indices, labels)

    # -- catalogue columns (written by ``data import --catalog``) -------------------------
    def catalog_columns(self) -> list[str]:
        """Names of the per-image numeric columns under the ``catalog/`` group, in the
        catalogue's order (e.g. Galaxy Zoo vote fractions); empty when there are none."""
        group = self._h5.get(CATALOG_GROUP)
        return list(group.keys()) if isinstance(group, h5py.Group) else []

    def catalog(self, name: str, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """float32 values of catalogue column ``name`` at ``indices`` (all by default); NaN
        where the catalogue had no value for an image."""
        if name not in self.catalog_columns():
            have = ", ".join(self.catalog_columns()) or "none"
            raise DataError(f"{self.path.name} has no catalogue column {name!r} (columns: {have})")
        ds = self._h5[CATALOG_GROUP][name]
        if ds.shape != (len(self),):
            raise DataError(f"{self.path.name}: '{CATALOG_GROUP}/{name}' has shape {ds.shape}, "
                            f"expected ({len(self)},)")
        values = ds[()].astype(np.float32)
        return values if indices is None else values[np.asarray(indices, dtype=np.int64)]

    # -- lifetime ----------------------------------------------------------------------
    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> "Galaxy10File":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Galaxy10File({str(self.path)!r}, n={len(self)})"


def open_galaxy10(path: str | os.PathLike) -> Galaxy10File:
    """Open and validate a Galaxy10-layout HDF5 file (lazily: pixels are read on demand)."""
    return Galaxy10File(path)


class Galaxy10Writer:
    """Write a Galaxy10-layout HDF5 file batch by batch, atomically.

    Nothing appears at ``path`` until the ``with`` block ends without an error; a failure or
    Ctrl-C leaves any earlier file at ``path`` untouched and no partial file behind::

        with Galaxy10Writer(out) as w:
            w.append(images, ans, pxscale=np.full(len(ans), 0.262))
    """

    def __init__(self, path: str | os.PathLike, attrs: dict | None = None, compression: str | None = "lzf"):
        self.path = Path(path)
        self.attrs = dict(attrs or {})
        self.compression = compression
        self.n = 0

    def __enter__(self) -> "Galaxy10Writer":
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._h5 = h5py.File(tmp, "w")
        h5 = self._h5
        h5.create_dataset("images", shape=(0, *IMAGE_SHAPE), maxshape=(None, *IMAGE_SHAPE),
                          dtype=np.uint8, chunks=(1, *IMAGE_SHAPE), compression=self.compression)
        h5.create_dataset("ans", shape=(0,), maxshape=(None,), dtype=np.uint8, chunks=(4096,))
        for key, value in self.attrs.items():
            h5.attrs[key] = value
        return self

    def append(self, images: np.ndarray, ans: Sequence[int], **columns: Sequence[float]) -> None:
        """Add a batch: uint8 images (n, 256, 256, 3), class ids, optional float columns."""
        images = np.asarray(images)
        ans = np.asarray(ans)
        if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"images must be uint8 (n, 256, 256, 3), got {images.dtype} {images.shape}")
        if ans.shape != (len(images),):
            raise ValueError(f"ans must have shape ({len(images)},), got {ans.shape}")
        unknown = set(columns) - set(OPTIONAL_COLUMNS)
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)}; allowed: {OPTIONAL_COLUMNS}")
        n0, n1 = self.n, self.n + len(images)
        self._grow("images", n1)[n0:n1] = images
        self._grow("ans", n1)[n0:n1] = ans.astype(np.uint8)
        for key, values in columns.items():
            if key not in self._h5:
                if n0:
                    raise ValueError(f"column {key!r} must be given from the first batch on")
                self._h5.create_dataset(key, shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(4096,))
            self._grow(key, n1)[n0:n1] = np.asarray(values, dtype=np.float64)
        self.n = n1

    def write_columns(self, catalog: dict[str, Sequence[float]] | None = None,
                      **columns: Sequence[float]) -> None:
        """Whole per-image columns for all images appended so far, after the last batch:
        ``OPTIONAL_COLUMNS`` (float64, as :meth:`append` writes them) and ``catalog`` values as
        float32 datasets ``catalog/<name>`` (NaN where unknown), kept in the order given."""
        unknown = set(columns) - set(OPTIONAL_COLUMNS)
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)}; allowed: {OPTIONAL_COLUMNS}")
        items = [(key, np.asarray(v, dtype=np.float64)) for key, v in columns.items()]
        items += [(f"{CATALOG_GROUP}/{name}", np.asarray(v, dtype=np.float32))
                  for name, v in (catalog or {}).items()]
        if catalog and CATALOG_GROUP not in self._h5:
            self._h5.create_group(CATALOG_GROUP, track_order=True)
        for key, values in items:
            if values.shape != (self.n,):
                raise ValueError(f"column {key!r} has shape {values.shape}, expected ({self.n},)")
            if key in self._h5:
                raise ValueError(f"column {key!r} was already written")
            self._h5.create_dataset(key, data=values, chunks=True)

    def _grow(self, key: str, n: int):
        ds = self._h5[key]
        ds.resize((n, *ds.shape[1:]))
        return ds

    def __exit__(self, exc_type, exc, tb) -> None:
        self._h5.close()
        self._atomic.__exit__(exc_type, exc, tb)


def write_galaxy10(path: str | os.PathLike, images: np.ndarray, ans: Sequence[int],
                   attrs: dict | None = None, **columns: Sequence[float]) -> Path:
    """Write a whole Galaxy10-layout file in one call (atomically); returns its path."""
    with Galaxy10Writer(path, attrs=attrs) as w:
        w.append(images, ans, **columns)
    return Path(path)
