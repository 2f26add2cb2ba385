"""The Galaxy10 DECaLS file layout: class names, a lazy validated reader, and a writer.

Galaxy10 DECaLS (Leung & Bovy) is one HDF5 file with ``images`` uint8 (N, 256, 256, 3) and
``ans`` (N,) Galaxy Zoo class ids, plus optional per-image ``ra``, ``dec``, ``redshift`` and
``pxscale``. Everything galaxymorph reads or writes -- the real file, the synthetic sky, imported
folders -- uses this layout, so every later stage treats them alike. New cutouts to classify
may come without ``ans``: ``open_galaxy10(path, labelled=False)`` reads them (``predict``,
``data info``); whatever learns or scores (splitting, training, evaluating) needs the labels.

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

from .. import interrupts
from ..config import CLASS_NAMES, validate_classes
from ..errors import DataError, one_line
from ..fileio import atomic_path
from .filehash import file_sha256
from .rechunk import is_large_selection, open_copy, worth_copying
from .rows import chunk_aligned_batches, read_rows

DEFAULT_CLASSES: tuple[int, ...] = (2, 5)
# ``ans`` of an image without a Galaxy10 class (imported for its volunteer votes alone): never
# selected for a class subset, not counted in ``class_counts``.
NO_CLASS = 255
IMAGE_SHAPE: tuple[int, int, int] = (256, 256, 3)
OPTIONAL_COLUMNS: tuple[str, ...] = ("ra", "dec", "redshift", "pxscale")
DECALS_PIXEL_SCALE = 0.262  # arcsec / pixel of the Legacy Surveys cutouts
# Optional ground truth (the synthetic sky writes it): ``masks`` uint8 (N, 256, 256), one bit per
# component drawn at each pixel. docs/synthetic.md ("Ground truth") defines each one.
MASK_BITS: dict[str, int] = {
    "galaxy": 1,  # the central galaxy's footprint
    "bulge": 2,
    "disk": 4,
    "bar": 8,
    "arms": 16,
    "stars": 32,  # field stars
    "companions": 64,  # other galaxies: background galaxies and a merging partner
}
MASK_SHAPE: tuple[int, int] = IMAGE_SHAPE[:2]
CATALOG_GROUP = "catalog"  # HDF5 group of per-image numeric catalogue columns (float32, NaN = unknown)


def mask_of(masks: np.ndarray, component: str) -> np.ndarray:
    """Boolean map(s) of one component (a ``MASK_BITS`` name) from uint8 ``masks``."""
    if component not in MASK_BITS:
        raise DataError(f"unknown mask component {component!r}; known: {', '.join(MASK_BITS)}")
    return (np.asarray(masks) & MASK_BITS[component]) != 0


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

    ``rechunk``: read selections of pixels from a local copy with one image per chunk when the
    file's chunks span many images (gzip with h5py's automatic chunks, like the real Galaxy10
    file), building it the first time (:mod:`galaxymorph.data.rechunk`). False: always read
    this file (``GALAXYMORPH_NO_RECHUNK=1`` does the same everywhere).

    ``labelled``: True (the default) refuses a file without ``ans`` class ids, in one line that
    names it; False also takes one with ``images`` only (cutouts to classify): ``labels`` is then
    None, and only what needs the labels (:meth:`class_counts`, :meth:`select`) refuses it.
    """

    def __init__(self, path: str | os.PathLike, rechunk: bool = True, labelled: bool = True):
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"data file not found: {self.path}")
        if self.path.is_dir():
            raise folder_given(self.path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise DataError(f"{self.path} is not a readable HDF5 file ({exc})") from None
        try:
            self._validate(labelled)
            self.labels: np.ndarray | None = self._h5["ans"][()].astype(np.int64) if "ans" in self._h5 else None
        except OSError as exc:  # a damaged chunk of 'ans' or a column: "filter returned failure", ...
            self._h5.close()
            reason = one_line(exc, None)
            raise DataError(f"{self.path}: cannot read its class ids, the file is corrupt or truncated "
                            f"({reason})") from None
        except BaseException:
            self._h5.close()
            raise
        self._copy: h5py.File | None = None  # the re-chunked copy, once opened
        self._may_copy = rechunk and worth_copying(self.path, self._h5)

    def _validate(self, labelled: bool) -> None:
        """What a file must hold (the one copy of this rule): ``images``, and ``ans`` when
        ``labelled``; each present dataset or column with the right shape and type."""
        f, name = self._h5, self.path.name
        _check_self_contained(f, name)
        if "images" not in f:
            raise DataError(f"{name} is not in the Galaxy10 layout: no 'images' dataset "
                            f"(found: {', '.join(sorted(f.keys())) or 'nothing'})")
        if labelled and "ans" not in f:
            raise self._no_labels()
        images = f["images"]
        if images.ndim != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
            raise DataError(
                f"{name}: 'images' has shape {images.shape}, expected (N, 256, 256, 3)"
            )
        if images.dtype != np.uint8:
            raise DataError(f"{name}: 'images' has dtype {images.dtype}, expected uint8")
        if "ans" in f:
            self._validate_labels(f["ans"], images.shape[0])
        for key in OPTIONAL_COLUMNS:
            if key in f and f[key].shape != (images.shape[0],):
                raise DataError(
                    f"{name}: '{key}' has shape {f[key].shape}, expected ({images.shape[0]},)"
                )

    def _validate_labels(self, ans: h5py.Dataset, n_images: int) -> None:
        name = self.path.name
        if ans.shape != (n_images,):
            raise DataError(
                f"{name}: 'ans' has shape {ans.shape}, expected ({n_images},) "
                "to match 'images'"
            )
        if not np.issubdtype(ans.dtype, np.integer):
            raise DataError(f"{name}: 'ans' has dtype {ans.dtype}, expected integer class ids")
        values = np.unique(ans[()]) if len(ans) else np.array([], dtype=int)
        bad = [int(v) for v in values if int(v) not in CLASS_NAMES and int(v) != NO_CLASS]
        if bad:
            raise DataError(f"{name}: 'ans' holds class ids {bad} outside Galaxy10's 0..9 "
                            f"(and {NO_CLASS}, no class)")

    def _no_labels(self) -> DataError:
        """The error for a file without class ids where they are needed."""
        found = ", ".join(sorted(self._h5.keys())) or "nothing"
        return DataError(f"{self.path.name} has no 'ans' dataset of class ids (found: {found}): splitting, "
                         "training and evaluating need labelled images; 'predict' classifies unlabelled ones")

    @property
    def labelled(self) -> bool:
        """Whether the file holds class ids (``ans``)."""
        return self.labels is not None

    def _require_labels(self) -> np.ndarray:
        if self.labels is None:
            raise self._no_labels()
        return self.labels

    # -- basic facts -------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._h5["images"].shape[0])

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the file's bytes: ties manifests and runs to exactly this data (remembered
        across runs for a large file while its size and modification time hold)."""
        return file_sha256(self.path)

    def class_counts(self) -> dict[int, int]:
        """Number of images of each class id present in the file (an unlabelled file: an error).
        Images without a class (``ans == NO_CLASS``) are not counted: see :meth:`n_no_class`."""
        ids, counts = np.unique(self._require_labels(), return_counts=True)
        return {int(i): int(n) for i, n in zip(ids, counts) if int(i) != NO_CLASS}

    @property
    def attrs(self) -> dict:
        """The file's HDF5 attributes (``created_by``, ``source``, ``classes_from``, ...)."""
        return dict(self._h5.attrs)

    def n_no_class(self) -> int:
        """Number of images stored without a class (``ans == NO_CLASS``, or no ``ans`` at all)."""
        return len(self) if self.labels is None else int(np.sum(self.labels == NO_CLASS))

    def column(self, key: str) -> np.ndarray | None:
        """An optional per-image column (``ra``, ``dec``, ``redshift``, ``pxscale``), or None."""
        return self._h5[key][()] if key in self._h5 else None

    # -- pixels ------------------------------------------------------------------------
    def images(self, indices: Sequence[int] | np.ndarray | slice | None = None,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """uint8 images (n, 256, 256, 3) at ``indices`` (any order, repeats allowed; None: all).

        Read chunk by chunk at close to the speed of reading the file straight through, into
        one array of the selection's size (:func:`~galaxymorph.data.rows.read_rows`); from the
        re-chunked local copy when the file's chunks span many images (see ``rechunk``).
        ``progress`` is called with the number of images just read.
        """
        if indices is None or isinstance(indices, slice):
            indices = np.arange(len(self))[indices if indices is not None else slice(None)]
        return read_rows(self._pixels("images", indices), indices, progress=progress)

    def masks(self, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray | None:
        """uint8 component masks (n, 256, 256) at ``indices`` (see ``MASK_BITS``), or None when
        the file has none (real data). Any order, repeats allowed, like :meth:`images`."""
        if "masks" not in self._h5:
            return None
        ds = self._h5["masks"]
        if ds.dtype != np.uint8 or tuple(ds.shape) != (len(self), *MASK_SHAPE):
            raise DataError(f"{self.path.name}: 'masks' has {ds.dtype} {ds.shape}, expected uint8 "
                            f"({len(self)}, 256, 256)")
        indices = np.arange(len(self)) if indices is None else indices
        return read_rows(self._pixels("masks", indices), indices)

    def iter_images(self, indices: np.ndarray, batch_size: int = 256):
        """Yield (indices_chunk, images_chunk) in chunks, to stream large selections.

        With ascending indices each chunk ends where an HDF5 chunk ends, so no HDF5 chunk is
        decompressed twice; a chunk then holds up to ``batch_size`` plus one HDF5 chunk's images.
        """
        indices = np.asarray(indices, dtype=np.int64)
        dataset = self._pixels("images", indices)  # decided once, for the whole selection
        for start, stop in chunk_aligned_batches(dataset, indices, batch_size):
            chunk = indices[start:stop]
            yield chunk, read_rows(dataset, chunk)

    def _pixels(self, name: str, indices) -> h5py.Dataset:
        """Pixel dataset ``name`` to read ``indices`` from: the re-chunked copy when there is an
        up-to-date one, or when ``indices`` are a large selection of a file worth copying (it is
        then built); else this file's own. A copy that cannot be built is not tried again here."""
        if self._may_copy and self._copy is None:
            selection = is_large_selection(indices, len(self))
            self._copy = open_copy(self.path, self._h5, build=selection)
            if self._copy is None and selection:
                self._may_copy = False
        return (self._h5 if self._copy is None else self._copy)[name]

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
        return Selection(tuple(classes), indices, label_positions(self.labels[indices], classes))

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
        if self._copy is not None:
            self._copy.close()
        self._h5.close()

    def __enter__(self) -> "Galaxy10File":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Galaxy10File({str(self.path)!r}, n={len(self)})"


def folder_given(path: str | os.PathLike) -> DataError:
    """The error for a folder where a data file is expected: most often a folder of images,
    which ``data import`` turns into one."""
    return DataError(f"expected an HDF5 file, got a folder: {path} (a folder of images becomes one with "
                     f"'galaxymorph data import {path} --out FILE.h5')")


def _check_self_contained(group: h5py.Group, name: str) -> None:
    """Refuse data kept in another file (an external link, a virtual dataset, external raw
    storage): the data file's SHA-256, which runs and manifests pin, would not cover it."""
    for key in group:
        link = group.get(key, getlink=True)
        obj = None if isinstance(link, h5py.ExternalLink) else group[key]
        if isinstance(obj, h5py.Group):
            _check_self_contained(obj, name)
        elif obj is None or obj.is_virtual or obj.external:
            where = f"{group.name.rstrip('/')}/{key}".lstrip("/")
            raise DataError(f"{name}: '{where}' is stored in another file "
                            "(an HDF5 external link or virtual dataset), which the file's SHA-256 does not "
                            "cover; copy the data into one file (e.g. h5repack)")


def open_galaxy10(path: str | os.PathLike, rechunk: bool = True, labelled: bool = True) -> Galaxy10File:
    """Open and validate a Galaxy10-layout HDF5 file (lazily: pixels are read on demand;
    ``rechunk``, ``labelled``: see :class:`Galaxy10File`)."""
    return Galaxy10File(path, rechunk=rechunk, labelled=labelled)


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
        interrupts.check()  # stop at the next batch after a Ctrl-C, even one Python swallowed
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

    def append_masks(self, masks: np.ndarray) -> None:
        """Add component masks, uint8 (n, 256, 256), for the images appended last (optional;
        given for every batch or for none). See ``MASK_BITS``."""
        masks = np.asarray(masks)
        if masks.dtype != np.uint8 or masks.shape[1:] != MASK_SHAPE:
            raise ValueError(f"masks must be uint8 (n, 256, 256), got {masks.dtype} {masks.shape}")
        if "masks" not in self._h5:
            self._h5.create_dataset("masks", shape=(0, *MASK_SHAPE), maxshape=(None, *MASK_SHAPE), dtype=np.uint8,
                                    chunks=(1, *MASK_SHAPE), compression=self.compression)
        n0 = self._h5["masks"].shape[0]
        if n0 + len(masks) > self.n:
            raise ValueError(f"{n0 + len(masks)} masks for {self.n} images: append the images first")
        self._grow("masks", n0 + len(masks))[n0:] = masks

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
        try:
            if exc is None and "masks" in self._h5 and self._h5["masks"].shape[0] != self.n:
                raise ValueError(f"{self._h5['masks'].shape[0]} masks for {self.n} images")
            self._h5.close()
        except BaseException as close_error:  # e.g. disk full while flushing: remove the partial file
            self._close_quietly()
            self._atomic.__exit__(type(close_error), close_error, close_error.__traceback__)
            if exc is None:
                raise
            return
        self._atomic.__exit__(exc_type, exc, tb)

    def _close_quietly(self) -> None:
        """Close the HDF5 file after a failed write; it is deleted anyway."""
        try:
            self._h5.close()
        except Exception:
            pass


def write_galaxy10(path: str | os.PathLike, images: np.ndarray, ans: Sequence[int],
                   attrs: dict | None = None, **columns: Sequence[float]) -> Path:
    """Write a whole Galaxy10-layout file in one call (atomically); returns its path."""
    with Galaxy10Writer(path, attrs=attrs) as w:
        w.append(images, ans, **columns)
    return Path(path)


def label_positions(class_ids: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Positions 0..k-1 in ``classes`` of each Galaxy10 class id: the model's label encoding.

    One vectorised lookup for every stage (selection, training batches, scored splits); an id
    outside ``classes`` is a :class:`DataError` naming it.
    """
    ids = np.asarray(class_ids, dtype=np.int64)
    table = np.full(max(len(CLASS_NAMES), int(ids.max(initial=0)) + 1), -1, dtype=np.int64)
    table[np.asarray(classes, dtype=np.int64)] = np.arange(len(classes))
    positions = table[ids]
    if (positions < 0).any():
        unknown = sorted(set(ids[positions < 0].tolist()))
        raise DataError(f"class id(s) {unknown} are not among the classes {list(classes)}")
    return positions
