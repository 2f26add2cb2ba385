"""Import of JPG/PNG folders and FITS cutouts into the Galaxy10 layout.

``import_images(src, out)`` walks ``src`` in sorted order, reads every image, finds its class, and
streams the 256x256 RGB cutouts into a Galaxy10-layout HDF5 file (atomically, through
:class:`~galaxymorph.data.galaxy10.Galaxy10Writer`). An image that cannot be read, is too small
to be a cutout (under ``MIN_SIDE`` px on a side: never blown up to 256 px), or whose class cannot
be told, is skipped and listed in the returned :class:`ImportReport` -- never dropped silently.
Files that are plainly not images (``.csv``, ``.json``, ``.txt``, README, ...; hidden files
and folders) are passed over quietly.

With ``catalog=`` a CSV is joined by file name (:mod:`galaxymorph.data.catalog`): its ``ra``,
``dec``, ``redshift`` and ``pxscale`` become the Galaxy10 columns, its class column is checked
against the folder's class, and every other numeric column is stored as a float32 dataset
``catalog/<name>`` (NaN for images without a row). The ``pxscale`` column records the scale
of each *stored* 256 px image in arcsec/px: the file's own scale (a catalogue ``pxscale``,
else a FITS WCS, else ``pixel_scale``) times the side of the square cut from the file / 256.

Where the class comes from, first match wins:

1. the nearest sub-folder of ``src`` whose name is a class: ``2``, ``5``, ``class5``,
   ``round_smooth``, ``Barred Spiral`` (ids 0..9 or Galaxy10 names, case, spaces, ``_`` and
   ``-`` ignored), or starts with one (``2_round_smooth``);
2. a file-name prefix before ``_`` or ``-``: ``2_xxx.jpg``, ``class5_xxx.png``,
   ``barred_spiral_017.png`` (as the reference notebook named its files);
3. for FITS files, a ``GZCLASS`` header keyword (an id or a name).

When the catalogue carries Galaxy Zoo 2 vote counts (every ``<answer>_count`` column of the
gz2 tree, :mod:`galaxymorph.data.tree`), an image with a catalogue row that has votes but no
class is imported too, with ``ans = NO_CLASS`` (255): a vote-tree model learns from it, class
subsets never include it. ``classes_from="gz2-votes"`` instead takes each image's class from its
vote fractions (:func:`galaxymorph.data.gz2_classes.classes_from_votes`) wherever it has votes:
the votes decide, and the report counts the images whose folder or catalogue class disagrees.

:func:`read_image_file` (JPG/PNG/FITS to uint8 (256, 256, 3)) is public: ``predict`` reuses it.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError, one_line
from ..fileio import printable_name
from ..progress import progress_bar
from .catalog import Catalog, check_pixel_scale, class_text_is_blank, read_catalog
from .galaxy10 import CLASS_NAMES, IMAGE_SHAPE, NO_CLASS, OPTIONAL_COLUMNS, Galaxy10Writer
from .gz2_classes import SOURCES, WINDING_NOTE, classes_from_votes, needed_answers
from .stretch import lupton_rgb
from .tree import FRACTION_SUFFIX, has_votes, load_tree

PIL_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif")
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz")
IMAGE_SUFFIXES = PIL_SUFFIXES + FITS_SUFFIXES
CLASS_KEYWORDS = ("GZCLASS",)  # FITS header keywords that may hold the class
MIN_SIDE = 64  # px: a smaller image is refused rather than blown up to 256 px
# Files passed over quietly: documents, tables and data that sit beside images in a folder.
NOT_IMAGE_SUFFIXES = (".csv", ".tsv", ".txt", ".md", ".rst", ".json", ".yaml", ".yml", ".toml",
                      ".xml", ".html", ".htm", ".pdf", ".py", ".ipynb", ".log", ".ini", ".cfg",
                      ".h5", ".hdf5", ".hdf", ".npy", ".npz", ".parquet", ".db", ".sqlite",
                      ".zip", ".tar", ".tgz", ".pt")
NOT_IMAGE_NAMES = ("readme", "license", "licence", "changelog", "makefile", "thumbs.db", "desktop.ini")

# FITS colour: the Lupton et al. (2004) asinh stretch (astropy's make_lupton_rgb), z -> R,
# r -> G, g -> B. Bands are weighted as the Legacy Surveys viewer weights them (whose JPEGs are
# Galaxy10's images), sky-subtracted, and measured in units of the sky noise, so the result does
# not depend on the file's flux units. The constants put the sky at about grey level 34 with
# noise ~10-15 and a bright core near 255, close to the real Galaxy10 cutouts (whose border
# median is ~34 and noise ~13; tests/test_importers.py checks a synthetic FITS galaxy against them).
BAND_WEIGHTS = {"g": 6.0, "r": 3.4, "z": 2.2}
SKY_OFFSET = 3.5  # sky level shown above black, in units of the sky noise
LUPTON_STRETCH = 22.0  # linear range of the asinh stretch, in units of the sky noise
LUPTON_Q = 8.0

_NO_CLASS = "class unknown"  # reason prefix for files whose class cannot be told


@dataclass
class ImportReport:
    """What ``import_images`` did: images written per class, and every file it skipped."""

    out: Path
    n_written: int = 0
    counts: dict[int, int] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    excluded: int = 0  # readable images of classes not asked for
    ignored: int = 0  # files that are plainly not images, passed over quietly
    catalog: Path | None = None
    not_in_catalog: list[Path] = field(default_factory=list)  # imported images without a row
    unmatched_rows: int = 0  # catalogue rows that match no image file
    stored_columns: list[str] = field(default_factory=list)  # 'ra', ..., 'catalog/smooth'
    ignored_columns: list[str] = field(default_factory=list)  # non-numeric catalogue columns
    votes: bool = False  # the catalogue carries the gz2 tree's vote counts
    no_class: int = 0  # images written without a class (ans = NO_CLASS), for their votes
    classes_from: str | None = None  # 'gz2-votes': classes were taken from the vote fractions
    disagreements: int = 0  # images whose folder/catalogue class the votes overruled

    @property
    def unreadable(self) -> list[tuple[Path, str]]:
        return [(p, r) for p, r in self.skipped if not r.startswith(_NO_CLASS)]

    @property
    def unlabelled(self) -> list[tuple[Path, str]]:
        return [(p, r) for p, r in self.skipped if r.startswith(_NO_CLASS)]

    def __str__(self) -> str:
        lines = [f"wrote {self.n_written} image(s) to {self.out}"]
        lines += [f"  class {c} ({CLASS_NAMES[c]}): {n}" + _class_note(c, self.classes_from)
                  for c, n in sorted(self.counts.items())]
        if self.no_class:
            lines.append(f"  no class (ans {NO_CLASS}, kept for their votes): {self.no_class}")
        if self.votes:
            lines.append("vote counts: every answer of the gz2 decision tree (catalog/<answer>_count)")
        if self.classes_from:
            lines.append(f"classes from {self.classes_from}: {self.n_written - self.no_class} with a class, "
                         f"{self.no_class} without a class; {self.disagreements} disagree with their "
                         "folder or catalogue class (the votes' class is kept)")
        if self.stored_columns:
            lines.append(f"columns: {', '.join(self.stored_columns)}")
        if "pxscale" not in self.stored_columns:
            lines.append("pixel scale unknown: --pixel-scale ARCSEC (or a catalogue pxscale column) records it")
        if self.catalog is not None:
            matched = self.n_written - len(self.not_in_catalog)
            lines.append(f"catalogue {self.catalog.name}: {matched} of {self.n_written} image(s) matched")
            if self.not_in_catalog:
                lines.append(f"  {len(self.not_in_catalog)} image(s) have no row (their values are NaN): "
                             + ", ".join(printable_name(p) for p in self.not_in_catalog[:5])
                             + (", ..." if len(self.not_in_catalog) > 5 else ""))
            if self.unmatched_rows:
                lines.append(f"  {self.unmatched_rows} row(s) match no image file")
            if self.ignored_columns:
                lines.append(f"  ignored column(s) that are not numbers: {', '.join(self.ignored_columns)}")
        if self.excluded:
            lines.append(f"left out {self.excluded} image(s) of classes not asked for")
        for title, items in (("that could not be read or used", self.unreadable),
                             ("with no class", self.unlabelled)):
            if items:
                lines.append(f"skipped {len(items)} file(s) {title}:")
                lines += [f"  {printable_name(p)}: {r}" for p, r in items]
        return "\n".join(lines)


def import_images(src: str | os.PathLike, out: str | os.PathLike, classes=None, size: int = 256,
                  progress: bool = True, catalog: str | os.PathLike | None = None,
                  pixel_scale: float | None = None, classes_from: str | None = None) -> ImportReport:
    """Import a folder of JPG/PNG images or FITS cutouts into a Galaxy10-layout HDF5 file.

    Parameters
    ----------
    src : folder (searched recursively) or a single image file.
    out : HDF5 file to write; nothing appears there unless the import succeeds.
    classes : Galaxy10 class ids to keep (others are counted as ``excluded``); default all.
    size : output side in pixels; the Galaxy10 layout needs 256.
    progress : show a progress bar.
    catalog : a CSV to join by file name (see :mod:`galaxymorph.data.catalog`).
    pixel_scale : arcsec per pixel of the image files, where neither the catalogue nor a FITS
        WCS says; recorded (scaled to the stored 256 px image) as ``pxscale``.
    classes_from : ``"gz2-votes"``: each image's class from its catalogue's vote fractions
        (see the module docstring); None: from folders, names, headers and the class column.

    Returns an :class:`ImportReport`. Raises :class:`DataError` if ``src`` does not exist, no
    file in it could be imported, or the catalogue contradicts the folders.
    """
    if int(size) != IMAGE_SHAPE[0]:
        raise DataError(f"size must be {IMAGE_SHAPE[0]} for the Galaxy10 layout, got {size}")
    if pixel_scale is not None:
        check_pixel_scale(pixel_scale)
    keep = _keep_classes(classes)
    src = Path(src).expanduser()
    if not src.exists():
        raise DataError(f"nothing to import: {src} does not exist")
    table = read_catalog(catalog) if catalog is not None else None
    votes = _votes(table, classes_from)
    files = list_files(src)
    if not files:
        raise DataError(f"nothing to import: no files in {src}")

    report = ImportReport(out=Path(out), catalog=table.path if table is not None else None,
                          votes=votes[0] is not None, classes_from=classes_from)
    matched: dict[int, Path] = {}  # catalogue row -> the image file that matched it
    attrs = {"source": str(src.resolve()), "created_by": "galaxymorph data import"}
    if classes_from:
        attrs["classes_from"] = classes_from
    with Galaxy10Writer(out, attrs=attrs) as writer:
        rows, scales = _write_files(writer, progress_bar(files, desc="importing", unit="file", disable=not progress),
                                    src, size, table, matched, votes, keep, pixel_scale, report)
        report.n_written = writer.n
        if writer.n == 0:  # raising inside the writer leaves nothing at ``out``
            first = f"; first: {printable_name(report.skipped[0][0])}: {report.skipped[0][1]}" if report.skipped else ""
            ignored = f", {report.ignored} non-image file(s) ignored" if report.ignored else ""
            raise DataError(
                f"nothing imported from {src}: {len(report.skipped)} file(s) skipped, "
                f"{report.excluded} of other classes{ignored}{first}"
            )
        columns, extra = _column_values(table, np.asarray(rows, dtype=np.int64), np.asarray(scales))
        writer.write_columns(catalog=extra, **columns)
        report.stored_columns = list(columns) + [f"catalog/{name}" for name in extra]
    if table is not None:
        report.unmatched_rows = len(table) - len(matched)
        report.ignored_columns = list(table.ignored)
    return report


def _keep_classes(classes) -> set[int] | None:
    """The Galaxy10 class ids asked for (ids or names), or None for all."""
    if classes is None:
        return None
    keep = set()
    for c in classes:
        label = _parse_class(str(c))
        if label is None:
            raise DataError(f"unknown class {c!r}: Galaxy10 class ids are 0..9")
        keep.add(label)
    return keep


def _write_files(writer, files, src: Path, size: int, table: Catalog | None, matched: dict[int, Path],
                 votes: tuple, keep: set[int] | None, pixel_scale: float | None,
                 report: ImportReport) -> tuple[list[int], list[float]]:
    """Read, label and append each file to ``writer`` (64 at a time), counting in ``report`` what
    was written and why the rest was not. Returns each written image's catalogue row (-1 for
    none) and stored pixel scale (NaN where unknown)."""
    root = src if src.is_dir() else src.parent
    batch_images: list[np.ndarray] = []
    batch_labels: list[int] = []
    rows: list[int] = []
    scales: list[float] = []
    for path in files:
        rel = path.relative_to(root)
        if not path.name.lower().endswith(IMAGE_SUFFIXES):
            if is_plainly_not_image(path):
                report.ignored += 1
            else:
                report.skipped.append((rel, "not an image file (JPG, PNG or FITS)"))
            continue
        row = _catalog_row(table, rel, matched, src)
        try:
            read = _read(path, size)
        except DataError as exc:
            report.skipped.append((rel, str(exc)))
            continue
        label = _file_class(rel, read.header_class, table, row, votes, report)
        if label is None:
            report.skipped.append(
                (rel, f"{_NO_CLASS}: name a sub-folder or prefix the file name with a "
                      "Galaxy10 class id or name, e.g. 2_xxx.jpg"
                      + (", or give it in the catalogue" if table is not None else ""))
            )
            continue
        if keep is not None and label not in keep:  # NO_CLASS too
            report.excluded += 1
            continue
        batch_images.append(read.image)
        batch_labels.append(label)
        rows.append(-1 if row is None else row)
        scales.append(_stored_scale(read, table, row, pixel_scale, size))
        if table is not None and row is None:
            report.not_in_catalog.append(rel)
        if label == NO_CLASS:
            report.no_class += 1
        else:
            report.counts[label] = report.counts.get(label, 0) + 1
        if len(batch_images) == 64:
            writer.append(np.stack(batch_images), batch_labels)
            batch_images, batch_labels = [], []
    if batch_images:
        writer.append(np.stack(batch_images), batch_labels)
    return rows, scales


def _catalog_row(table: Catalog | None, rel: Path, matched: dict[int, Path], src: Path) -> int | None:
    """The catalogue row of the file ``rel`` (None: no catalogue, or no row), recorded in ``matched``;
    two files matching one row are refused."""
    row = table.row_of(rel) if table is not None else None
    if row is not None:
        if row in matched:
            raise DataError(f"{matched[row]} and {rel} both match row {row + 2} of "
                            f"{table.path.name} ({table.files[row]}); give paths relative to {src}")
        matched[row] = rel
    return row


def _file_class(rel: Path, header_class: int | None, table: Catalog | None, row: int | None, votes: tuple,
                report: ImportReport) -> int | None:
    """The image's class: from its folder or name, else its FITS header; checked against (or taken
    from) the catalogue's class column; with gz2 votes, the votes' class (``classes_from``) or
    NO_CLASS for a voted image with none. None: no class found."""
    voted, vote_classes = votes
    label = class_from_path(rel)
    if label is None:
        label = header_class
    label = _catalog_class(table, row, rel, label)
    if voted is not None and row is not None and voted[row]:
        if vote_classes is not None:
            report.disagreements += int(label is not None and label != vote_classes[row])
            label = int(vote_classes[row])
        elif label is None:
            label = NO_CLASS
    return label


def _votes(table: Catalog | None, classes_from: str | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per catalogue row: whether it has gz2 tree votes (None when the catalogue lacks the vote
    count columns), and with ``classes_from`` the class its vote fractions give."""
    if classes_from is not None and classes_from not in SOURCES:
        raise DataError(f"unknown source of classes {classes_from!r}; known: {', '.join(SOURCES)}")
    tree = load_tree("gz2")
    if table is None or tree.missing_columns(table.extra):
        if classes_from is None:
            return None, None
        what = "no --catalog" if table is None else \
            f"{table.path.name} lacks {tree.missing_columns(table.extra)[0]}"
        raise DataError(f"--classes-from {classes_from} needs a catalogue of Galaxy Zoo 2 vote counts "
                        f"and fractions ({what})")
    counts = np.stack([table.extra[c] for c in tree.count_columns()], axis=1)
    voted = has_votes(counts)
    if classes_from is None:
        return voted, None
    missing = [a + FRACTION_SUFFIX for a in needed_answers() if a + FRACTION_SUFFIX not in table.extra]
    if missing:
        raise DataError(f"--classes-from {classes_from}: {table.path.name} lacks the vote fraction column "
                        f"{missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    return voted, classes_from_votes({a: table.extra[a + FRACTION_SUFFIX] for a in needed_answers()})


def _class_note(class_id: int, classes_from: str | None) -> str:
    """What a class means in the import report when the votes gave it (class 6: see gz2_classes)."""
    return f" ({WINDING_NOTE})" if classes_from and class_id == 6 else ""


def is_plainly_not_image(path: str | os.PathLike) -> bool:
    """True for files that sit beside images but are not images: catalogues, notes, README."""
    name = Path(path).name.lower()
    if name.endswith(IMAGE_SUFFIXES):
        return False
    return name.endswith(NOT_IMAGE_SUFFIXES) or name.startswith(NOT_IMAGE_NAMES)


def _catalog_class(table: Catalog | None, row: int | None, rel: Path, label: int | None) -> int | None:
    """The class the catalogue gives an image, checked against ``label`` from its folder or name."""
    if table is None or table.classes is None or row is None or class_text_is_blank(table.classes[row]):
        return label
    text = table.classes[row]
    listed = _parse_class(text)
    if listed is None and re.fullmatch(r"\d\.0*", text.strip()):
        listed = int(float(text))  # '2.0', as spreadsheets write integers
    if listed is None:
        raise DataError(f"{table.path.name} row {row + 2} ({rel}): {table.class_column} {text!r} is not a "
                        "Galaxy10 class id (0..9) or name")
    if label is not None and label != listed:
        raise DataError(f"{rel}: its folder or name says class {label} ({CLASS_NAMES[label]}) but "
                        f"{table.path.name} says {listed} ({CLASS_NAMES[listed]})")
    return listed


def _stored_scale(read: "ImageRead", table: Catalog | None, row: int | None, pixel_scale: float | None,
                  size: int) -> float:
    """arcsec/px of the stored image: the file's scale (the catalogue's, else its FITS WCS,
    else ``pixel_scale``) times the side of the square cut from it, over the stored side."""
    file_scale = float("nan")
    if table is not None and row is not None and "pxscale" in table.columns:
        file_scale = float(table.columns["pxscale"][row])
    if not np.isfinite(file_scale):
        file_scale = read.wcs_scale
    if not np.isfinite(file_scale) and pixel_scale is not None:
        file_scale = float(pixel_scale)
    return file_scale * read.side / size


def _column_values(table: Catalog | None, rows: np.ndarray, scales: np.ndarray
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-image Galaxy10 columns and ``catalog/`` columns for the written images (NaN where
    an image has no row). ``pxscale`` is written when any image's scale is known."""
    def pick(values: np.ndarray) -> np.ndarray:
        return np.where(rows >= 0, values[np.maximum(rows, 0)], np.nan) if len(values) else \
            np.full(len(rows), np.nan)

    columns: dict[str, np.ndarray] = {}
    extra: dict[str, np.ndarray] = {}
    if table is not None:
        columns = {k: pick(table.columns[k]) for k in OPTIONAL_COLUMNS if k in table.columns and k != "pxscale"}
        extra = {name: pick(values) for name, values in table.extra.items()}
    if np.isfinite(scales).any():
        columns["pxscale"] = scales
    return columns, extra


def read_image_file(path: str | os.PathLike, size: int = 256) -> np.ndarray:
    """Read a JPG/PNG (or other Pillow format) or FITS cutout as uint8 RGB (size, size, 3).

    Non-square images are centre-cropped to a square, then resized (Lanczos) when not
    ``size`` pixels wide; RGBA is composited on black, greyscale and 16-bit images become RGB.
    FITS cutouts become colour with an asinh (Lupton) stretch: a (g, r, z) cube in one HDU or
    one band per HDU (``EXTNAME``/``BAND``/``FILTER``); a single band gives grey. NaNs are
    replaced with the sky level. Raises :class:`DataError` for a file it cannot read, or one
    under ``MIN_SIDE`` pixels on a side (a thumbnail or icon, not a cutout to blow up).
    """
    return read_image(path, size).image


def read_image(path: str | os.PathLike, size: int = 256) -> ImageRead:
    """:func:`read_image_file` with what the file says about itself: its class from a FITS
    header and its pixel scale from a FITS WCS (see :class:`ImageRead`)."""
    return _read(Path(path), size)


def class_from_path(rel: str | os.PathLike) -> int | None:
    """Galaxy10 class id told by a path's folders (nearest first) or its file-name prefix."""
    rel = Path(rel)
    for folder in reversed(rel.parts[:-1]):
        label = _parse_class(folder)
        if label is None:
            label = _parse_prefix(folder)
        if label is not None:
            return label
    return _parse_prefix(_strip_suffix(rel.name))


# -- class names ----------------------------------------------------------------------------
def _normalise(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", text.strip().lower())


_NAME_TO_ID = {_normalise(name): cid for cid, name in CLASS_NAMES.items()}


def _parse_class(token: str) -> int | None:
    """A class id from ``5``, ``class5``, ``class_5``, ``Barred Spiral``, ``barred_spiral``."""
    norm = _normalise(token)
    match = re.fullmatch(r"(?:class)?(\d)", norm)
    if match:
        return int(match.group(1))
    return _NAME_TO_ID.get(norm)


def _parse_prefix(stem: str) -> int | None:
    """A class id from the start of a name, before a ``_``/``-``/space: ``2_x``, ``round_smooth_1``."""
    tokens = re.split(r"[\s_\-]+", stem)
    for k in range(1, len(tokens)):  # something must follow the prefix
        label = _parse_class("".join(tokens[:k]))
        if label is not None:
            return label
    return None


def _strip_suffix(name: str) -> str:
    lower = name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def list_files(src: Path) -> list[Path]:
    """Every file under ``src`` (or ``src`` itself), in sorted order; hidden files and folders
    (``.git``, ``.ipynb_checkpoints``) are left out. Shared by ``data import`` and ``predict``."""
    if src.is_file():
        return [src]
    files = [p for p in src.rglob("*")
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(src).parts)]
    return sorted(files, key=lambda p: p.relative_to(src).as_posix())


# -- reading --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageRead:
    """One image file as stored: the uint8 cutout and what the file said about itself."""

    image: np.ndarray  # uint8 (size, size, 3)
    header_class: int | None  # class id from a FITS header keyword
    side: int  # side in px of the square cut from the file (before resizing)
    wcs_scale: float  # arcsec/px of the file from its FITS WCS, NaN where unknown

    @property
    def pxscale(self) -> float:
        """arcsec/px of the stored image from the file's WCS (NaN where unknown)."""
        return self.wcs_scale * self.side / self.image.shape[0]


def _read(path: Path, size: int) -> ImageRead:
    """Read, check the size of, centre-crop and resize one image file."""
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    header_class, wcs_scale = None, float("nan")
    if path.name.lower().endswith(FITS_SUFFIXES):
        rgb, header_class, wcs_scale = _read_fits(path)
    else:
        rgb = _read_pil(path)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise DataError(f"too small to be a cutout: {w}x{h} px (at least {MIN_SIDE} px on a side; "
                        f"images are stored at {size} px)")
    return ImageRead(_square_resize(rgb, size), header_class, min(h, w), wcs_scale)


def _read_pil(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return _pil_to_rgb(img)
    except Image.DecompressionBombError:  # Pillow's guard against a huge image (a memory bomb)
        raise DataError(f"image too large (over {2 * Image.MAX_IMAGE_PIXELS} pixels)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"unreadable image ({one_line(exc)})") from None


def _pil_to_rgb(img) -> np.ndarray:
    """uint8 (H, W, 3) from any Pillow mode: alpha composited on black, 16-bit scaled."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode == "F":
            lo, hi = np.nanmin(arr), np.nanmax(arr)
            arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        elif arr.max() > 255:
            arr = arr / 257.0 if arr.max() <= 65535 else arr / arr.max() * 255
        grey = np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _square_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize to ``size`` x ``size`` with Lanczos if needed."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    if side < 1:
        raise DataError("empty image")
    top, left = (h - side) // 2, (w - side) // 2
    rgb = rgb[top : top + side, left : left + side]
    if side != size:
        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.LANCZOS, reducing_gap=3.0))
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def _read_fits(path: Path) -> tuple[np.ndarray, int | None, float]:
    """(uint8 RGB, class from the header or None, arcsec/px from the WCS or NaN)."""
    from astropy.io import fits  # lazy: astropy (~0.6 s) only for FITS files, not for every jpg/png import

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a broken file is reported as skipped instead
            with fits.open(path, memmap=False) as hdul:
                header_class = _header_class(hdul)
                planes = _fits_bands(hdul)
                scale = _wcs_scale(hdul)
    except DataError:
        raise
    except Exception as exc:  # astropy raises many kinds of errors for broken files
        raise DataError(f"unreadable FITS file ({one_line(exc)})") from None
    return fits_to_rgb(planes), header_class, scale


def _wcs_scale(hdul) -> float:
    """arcsec/px of the first image HDU with a celestial WCS (mean of astropy's
    ``proj_plane_pixel_scales`` over the two axes), NaN when no header has one."""
    import astropy.units as u  # lazy: astropy only for FITS files, as in _read_fits
    from astropy.wcs import WCS  # lazy: as above
    from astropy.wcs.utils import proj_plane_pixel_scales  # lazy: as above

    for hdu in hdul:
        if not getattr(hdu, "is_image", False) or "CTYPE1" not in hdu.header:
            continue
        try:
            wcs = WCS(hdu.header).celestial
            if not wcs.has_celestial:
                continue
            scales = u.Quantity(proj_plane_pixel_scales(wcs), wcs.wcs.cunit[0]).to_value(u.arcsec)
        except Exception:  # a damaged WCS is no WCS: the scale stays unknown
            continue
        value = float(np.mean(scales))
        if np.isfinite(value) and value > 0:
            return value
    return float("nan")


def _header_class(hdul) -> int | None:
    for hdu in hdul:
        for key in CLASS_KEYWORDS:
            if key in hdu.header:
                return _parse_class(str(hdu.header[key]))
    return None


def _band_name(header, index: int | None = None) -> str | None:
    """The band of an HDU (or of plane ``index`` of a cube), from its header, if it says."""
    keys = [f"BAND{index}"] if index is not None else ["BAND", "FILTER", "EXTNAME"]
    for key in keys:
        value = header.get(key)
        if value is None:
            continue
        text = str(value).strip().lower()
        if text in BAND_WEIGHTS:
            return text
        letters = [t for t in re.split(r"[^a-z0-9]+", text) if t in BAND_WEIGHTS]
        if len(letters) == 1:
            return letters[0]
    return None


def _fits_bands(hdul) -> dict[str, np.ndarray]:
    """The file's images as {band: 2-D array}; band ``"grey"`` for a single unnamed image."""
    images = [hdu for hdu in hdul if getattr(hdu, "is_image", False) and hdu.data is not None
              and hdu.data.ndim >= 2]
    if not images:
        raise DataError("FITS file holds no image data")
    cubes = [h for h in images if np.squeeze(h.data).ndim == 3]
    if cubes:
        hdu = cubes[0]
        data = np.squeeze(hdu.data)
        if data.shape[-1] in (3, 4) and data.shape[0] not in (3, 4):
            data = np.moveaxis(data, -1, 0)  # (H, W, bands) -> (bands, H, W)
        names = [_band_name(hdu.header, i) for i in range(data.shape[0])]
        if all(n is not None for n in names) and set(BAND_WEIGHTS) <= set(names):
            return {n: data[names.index(n)] for n in BAND_WEIGHTS}
        if data.shape[0] == 3:  # no band names: the usual cutout order g, r, z
            return dict(zip(BAND_WEIGHTS, data))
        if data.shape[0] == 1:
            return {"grey": data[0]}
        raise DataError(f"FITS cube has {data.shape[0]} planes and no BANDn keywords naming g, r, z")
    planes = [(h, np.squeeze(h.data)) for h in images if np.squeeze(h.data).ndim == 2]
    named = {}
    for hdu, data in planes:
        band = _band_name(hdu.header)
        if band is not None and band not in named:
            named[band] = data
    if set(BAND_WEIGHTS) <= set(named):
        return {b: named[b] for b in BAND_WEIGHTS}
    if len(planes) == 3 and not named:
        return dict(zip(BAND_WEIGHTS, (d for _, d in planes)))
    if len(planes) == 1:
        return {"grey": planes[0][1]}
    raise DataError(f"FITS file has {len(planes)} images; cannot tell which are the g, r, z bands")


def fits_to_rgb(bands: dict[str, np.ndarray]) -> np.ndarray:
    """uint8 RGB (H, W, 3) from {"g", "r", "z"} (or {"grey"}) images with the Lupton stretch.

    Each band: NaN/inf replaced with its median (the sky), sky subtracted, weighted; then all
    are divided by the sky noise (median absolute deviation) of their mean, offset so the sky is
    dark grey, and stretched with the project's one Lupton stretch (``stretch.lupton_rgb``, equal
    to astropy's ``make_lupton_rgb``; z -> R, r -> G, g -> B). FITS rows run bottom-up, so the result is flipped to the usual top-down order.
    """
    shapes = {b.shape for b in bands.values()}
    if len(shapes) != 1:
        raise DataError(f"FITS bands have different shapes: {sorted(shapes)}")
    clean = {}
    for name, data in bands.items():
        data = np.asarray(data, dtype=np.float64)
        finite = np.isfinite(data)
        if not finite.any():
            raise DataError(f"FITS band {name} holds no finite values")
        sky = float(np.median(data[finite]))
        clean[name] = (np.where(finite, data, sky) - sky) * BAND_WEIGHTS.get(name, 1.0)
    mean = np.mean(list(clean.values()), axis=0)
    noise = 1.4826 * float(np.median(np.abs(mean - np.median(mean))))
    if not noise > 0:
        noise = float(np.std(mean)) or 1.0
    if "grey" in clean:
        r = g = b = clean["grey"] / noise
    else:
        r, g, b = (clean[k] / noise for k in ("z", "r", "g"))
    rgb = lupton_rgb(np.stack([r, g, b]), SKY_OFFSET, LUPTON_Q, LUPTON_STRETCH)
    return np.ascontiguousarray(np.flipud(rgb))
