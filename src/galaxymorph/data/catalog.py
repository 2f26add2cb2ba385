"""A catalogue joined to an image import: one CSV row per image file.

``data import FOLDER --catalog catalog.csv`` reads a CSV with a header row (UTF-8; a BOM and
spaces around names are fine; names are matched case-insensitively):

- a file column, the first of ``file``, ``filename``, ``path``: the image's path relative to
  FOLDER (``round_smooth/J1.jpg``), or just its file name;
- any of ``ra``, ``dec``, ``redshift``, ``pxscale`` (numbers; blank = unknown): the Galaxy10
  columns. ``pxscale`` is the scale of the image file as it is (arcsec per pixel, > 0);
- a class column, the first of ``galaxy10_class``, ``class``, ``label``: a Galaxy10 class id or
  name, checked against the class the folder or file name gives;
- any other column: kept when every non-blank value is a number (e.g. vote fractions),
  otherwise ignored and named in the import report (free text is no per-image value); so
  are whole numbers past 2**24 (object ids), which the float32 store would change.

:func:`read_catalog` checks the file once; :meth:`Catalog.row_of` finds an image's row, by its
path relative to FOLDER first and then by its name alone.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import DataError
from ..fileio import check_input_file
from .galaxy10 import OPTIONAL_COLUMNS

FILE_COLUMNS = ("file", "filename", "path")
CLASS_COLUMNS = ("galaxy10_class", "class", "label")


@dataclass
class Catalog:
    """The rows of a catalogue CSV, as columns."""

    path: Path
    files: list[str]  # normalised relative paths (or names), one per row
    classes: list[str] | None  # raw class texts ('' = none), or None without a class column
    class_column: str | None
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # ra/dec/redshift/pxscale, float64
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # other numeric columns, float64
    ignored: list[str] = field(default_factory=list)  # non-numeric extra columns

    def __post_init__(self) -> None:
        self._by_path: dict[str, int] = {}
        self._by_name: dict[str, list[int]] = {}
        for row, name in enumerate(self.files):
            if name in self._by_path:
                raise DataError(f"{self.path.name} lists {name} twice (rows {self._by_path[name] + 2} "
                                f"and {row + 2})")
            self._by_path[name] = row
            self._by_name.setdefault(PurePosixPath(name).name, []).append(row)

    def __len__(self) -> int:
        return len(self.files)

    def row_of(self, rel: str | os.PathLike) -> int | None:
        """The row of the image at ``rel`` (relative to the imported folder), or None.

        Matches the relative path first, then the file name alone; a name shared by several
        rows (``a/x.jpg``, ``b/x.jpg``) is an error, since either row could be meant.
        """
        key = _normalise_path(Path(rel).as_posix())
        if key in self._by_path:
            return self._by_path[key]
        rows = self._by_name.get(PurePosixPath(key).name, [])
        if len(rows) > 1:
            listed = ", ".join(self.files[r] for r in rows[:3])
            raise DataError(f"{key}: its name matches {len(rows)} rows of {self.path.name} ({listed}); "
                            "give paths relative to the imported folder there")
        return rows[0] if rows else None


def read_catalog(path: str | os.PathLike) -> Catalog:
    """Read and check a catalogue CSV (see the module docstring for its columns)."""
    path = check_input_file(path, "catalogue")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = [r for r in reader if any(cell.strip() for cell in r)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path.name} is not a readable CSV file ({exc})") from None
    if not header:
        raise DataError(f"{path.name} is empty: expected a header row naming a file column")
    names = [h.strip() for h in header]
    lower = [n.lower() for n in names]
    seen = set()
    for n in lower:
        if n in seen:
            raise DataError(f"{path.name} has two columns named {n!r}")
        seen.add(n)
    file_col = _first(lower, FILE_COLUMNS)
    if file_col is None:
        raise DataError(f"{path.name} has no file column: name one of {', '.join(FILE_COLUMNS)} "
                        f"(columns: {', '.join(names)})")
    for i, row in enumerate(rows):
        if len(row) != len(names):
            raise DataError(f"{path.name} row {i + 2} has {len(row)} fields, the header {len(names)}")
    cells = list(zip(*rows)) if rows else [() for _ in names]
    files = [_normalise_path(v) for v in cells[file_col]]
    blank = [i for i, f in enumerate(files) if not f]
    if blank:
        raise DataError(f"{path.name} row {blank[0] + 2} has no file name")
    class_col = _first(lower, CLASS_COLUMNS)
    catalog = Catalog(path=path, files=files,
                      classes=[v.strip() for v in cells[class_col]] if class_col is not None else None,
                      class_column=names[class_col] if class_col is not None else None)
    for col, name in enumerate(names):
        if col in (file_col, class_col):
            continue
        values = _numbers(cells[col])
        if lower[col] in OPTIONAL_COLUMNS:
            if values is None:
                raise DataError(f"{path.name}: column {name!r} must hold numbers; "
                                f"found {_first_text(cells[col])!r}")
            if lower[col] == "pxscale":
                for row, value in enumerate(values):
                    if not np.isnan(value):
                        check_pixel_scale(value, f"{path.name} row {row + 2}: ")
            catalog.columns[lower[col]] = values
        elif values is None:
            catalog.ignored.append(name)
        elif _too_large_for_float32(values):
            catalog.ignored.append(f"{name} (integers beyond float32, e.g. ids)")
        else:
            catalog.extra[name.replace("/", "_")] = values  # '/' would nest HDF5 groups
    return catalog


def check_pixel_scale(value: float, where: str = "") -> float:
    """The pixel scale as a float, or a one-line error when it is not a positive finite number of
    arcsec per pixel (the one check of it: ``--pixel-scale`` and a catalogue's ``pxscale``)."""
    if not (np.isfinite(value) and value > 0):
        raise DataError(f"{where}the pixel scale must be a positive number of arcsec per pixel, got {value:g}")
    return float(value)


def _first(names: list[str], wanted: tuple[str, ...]) -> int | None:
    for w in wanted:
        if w in names:
            return names.index(w)
    return None


def _normalise_path(text: str) -> str:
    """``./a\\b.jpg`` -> ``a/b.jpg``: the form rows and files are compared in."""
    text = text.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text


def _numbers(texts) -> np.ndarray | None:
    """float64 values (blank -> NaN), or None when a non-blank value is not a number."""
    out = np.full(len(texts), np.nan)
    for i, text in enumerate(texts):
        text = text.strip()
        if not text:
            continue
        try:
            out[i] = float(text)
        except ValueError:
            return None
    return out


def _too_large_for_float32(values: np.ndarray) -> bool:
    """Whole numbers past 2**24 (object ids): float32 would store other numbers."""
    finite = values[np.isfinite(values)]
    return bool(len(finite)) and bool(np.all(finite == np.round(finite))) and \
        float(np.abs(finite).max()) > 2**24


def _first_text(texts) -> str:
    for text in texts:
        text = text.strip()
        if text:
            try:
                float(text)
            except ValueError:
                return text
    return ""


def class_text_is_blank(text: str) -> bool:
    """True for a class cell that says nothing: blank, ``nan``, ``none``, ``n/a``."""
    return text.strip().lower() in ("", "nan", "none", "na", "n/a")
