"""Import of JPG/PNG folders and FITS cutouts into the Galaxy10 layout.

``import_images(src, out)`` walks ``src`` in sorted order, reads every image, finds its class, and
streams the 256x256 RGB cutouts into a Galaxy10-layout HDF5 file (atomically, through
:class:`~galaxymorph.data.galaxy10.Galaxy10Writer`). A file that cannot be read, or whose class
cannot be told, is skipped and listed in the returned :class:`ImportReport` -- never dropped
silently.

Where the class comes from, first match wins:

1. the nearest sub-folder of ``src`` whose name is a class: ``2``, ``5``, ``class5``,
   ``round_smooth``, ``Barred Spiral`` (ids 0..9 or Galaxy10 names, case, spaces, ``_`` and
   ``-`` ignored), or starts with one (``2_round_smooth``);
2. a file-name prefix before ``_`` or ``-``: ``2_xxx.jpg``, ``class5_xxx.png``,
   ``barred_spiral_017.png`` (as the reference notebook named its files);
3. for FITS files, a ``GZCLASS`` header keyword (an id or a name).

:func:`read_image_file` (JPG/PNG/FITS to uint8 (256, 256, 3)) is public: ``predict`` reuses it.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..progress import progress_bar
from .galaxy10 import CLASS_NAMES, IMAGE_SHAPE, Galaxy10Writer

PIL_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif")
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz")
IMAGE_SUFFIXES = PIL_SUFFIXES + FITS_SUFFIXES
CLASS_KEYWORDS = ("GZCLASS",)  # FITS header keywords that may hold the class

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

    @property
    def unreadable(self) -> list[tuple[Path, str]]:
        return [(p, r) for p, r in self.skipped if not r.startswith(_NO_CLASS)]

    @property
    def unlabelled(self) -> list[tuple[Path, str]]:
        return [(p, r) for p, r in self.skipped if r.startswith(_NO_CLASS)]

    def __str__(self) -> str:
        lines = [f"wrote {self.n_written} image(s) to {self.out}"]
        lines += [f"  class {c} ({CLASS_NAMES[c]}): {n}" for c, n in sorted(self.counts.items())]
        if self.excluded:
            lines.append(f"left out {self.excluded} image(s) of classes not asked for")
        for title, items in (("unreadable", self.unreadable), ("with no class", self.unlabelled)):
            if not items:
                continue
            if title == "unreadable":
                lines.append(f"skipped {len(items)} unreadable file(s):")
            else:
                lines.append(f"skipped {len(items)} file(s) {title}:")
            lines += [f"  {p}: {r}" for p, r in items]
        return "\n".join(lines)


def import_images(src: str | os.PathLike, out: str | os.PathLike, classes=None, size: int = 256,
                  progress: bool = True) -> ImportReport:
    """Import a folder of JPG/PNG images or FITS cutouts into a Galaxy10-layout HDF5 file.

    Parameters
    ----------
    src : folder (searched recursively) or a single image file.
    out : HDF5 file to write; nothing appears there unless the import succeeds.
    classes : Galaxy10 class ids to keep (others are counted as ``excluded``); default all.
    size : output side in pixels; the Galaxy10 layout needs 256.
    progress : show a progress bar.

    Returns an :class:`ImportReport`. Raises :class:`DataError` if ``src`` does not exist or no
    file in it could be imported.
    """
    if int(size) != IMAGE_SHAPE[0]:
        raise DataError(f"size must be {IMAGE_SHAPE[0]} for the Galaxy10 layout, got {size}")
    keep = None
    if classes is not None:
        keep = set()
        for c in classes:
            label = _parse_class(str(c))
            if label is None:
                raise DataError(f"unknown class {c!r}: Galaxy10 class ids are 0..9")
            keep.add(label)
    src = Path(src).expanduser()
    if not src.exists():
        raise DataError(f"nothing to import: {src} does not exist")
    root = src if src.is_dir() else src.parent
    files = list_files(src)
    if not files:
        raise DataError(f"nothing to import: no files in {src}")

    report = ImportReport(out=Path(out))
    batch_images: list[np.ndarray] = []
    batch_labels: list[int] = []
    with Galaxy10Writer(out, attrs={"source": str(src.resolve()), "created_by": "galaxymorph data import"}) as writer:
        for path in progress_bar(files, desc="importing", unit="file", disable=not progress):
            rel = path.relative_to(root)
            if not path.name.lower().endswith(IMAGE_SUFFIXES):
                report.skipped.append((rel, "not an image file (JPG, PNG or FITS)"))
                continue
            try:
                image, header_class = _read(path, size)
            except DataError as exc:
                report.skipped.append((rel, str(exc)))
                continue
            label = class_from_path(rel)
            if label is None:
                label = header_class
            if label is None:
                report.skipped.append(
                    (rel, f"{_NO_CLASS}: name a sub-folder or prefix the file name with a "
                          "Galaxy10 class id or name, e.g. 2_xxx.jpg")
                )
                continue
            if keep is not None and label not in keep:
                report.excluded += 1
                continue
            batch_images.append(image)
            batch_labels.append(label)
            report.counts[label] = report.counts.get(label, 0) + 1
            if len(batch_images) == 64:
                writer.append(np.stack(batch_images), batch_labels)
                batch_images, batch_labels = [], []
        if batch_images:
            writer.append(np.stack(batch_images), batch_labels)
        report.n_written = writer.n
        if writer.n == 0:  # raising inside the writer leaves nothing at ``out``
            first = f"; first: {report.skipped[0][0]}: {report.skipped[0][1]}" if report.skipped else ""
            raise DataError(
                f"nothing imported from {src}: {len(report.skipped)} file(s) skipped, "
                f"{report.excluded} of other classes{first}"
            )
    return report


def read_image_file(path: str | os.PathLike, size: int = 256) -> np.ndarray:
    """Read a JPG/PNG (or other Pillow format) or FITS cutout as uint8 RGB (size, size, 3).

    Non-square images are centre-cropped to a square, then resized (Lanczos) when not
    ``size`` pixels wide; RGBA is composited on black, greyscale and 16-bit images become RGB.
    FITS cutouts become colour with an asinh (Lupton) stretch: a (g, r, z) cube in one HDU or
    one band per HDU (``EXTNAME``/``BAND``/``FILTER``); a single band gives grey. NaNs are
    replaced with the sky level. Raises :class:`DataError` for a file it cannot read.
    """
    return _read(Path(path), size)[0]


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
def _read(path: Path, size: int) -> tuple[np.ndarray, int | None]:
    """(uint8 image (size, size, 3), class id from the FITS header or None)."""
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    if path.name.lower().endswith(FITS_SUFFIXES):
        rgb, header_class = _read_fits(path)
    else:
        rgb, header_class = _read_pil(path), None
    return _square_resize(rgb, size), header_class


def _read_pil(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return _pil_to_rgb(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"unreadable image ({_short(exc)})") from None


def _pil_to_rgb(img) -> np.ndarray:
    """uint8 (H, W, 3) from any Pillow mode: alpha composited on black, 16-bit scaled."""
    from PIL import Image

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
    from PIL import Image

    h, w = rgb.shape[:2]
    side = min(h, w)
    if side < 1:
        raise DataError("empty image")
    top, left = (h - side) // 2, (w - side) // 2
    rgb = rgb[top : top + side, left : left + side]
    if side != size:
        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.LANCZOS, reducing_gap=3.0))
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def _read_fits(path: Path) -> tuple[np.ndarray, int | None]:
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a broken file is reported as skipped instead
            with fits.open(path, memmap=False) as hdul:
                header_class = _header_class(hdul)
                planes = _fits_bands(hdul)
    except DataError:
        raise
    except Exception as exc:  # astropy raises many kinds of errors for broken files
        raise DataError(f"unreadable FITS file ({_short(exc)})") from None
    return fits_to_rgb(planes), header_class


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
    dark grey, and stretched with ``astropy.visualization.make_lupton_rgb`` (z -> R, r -> G,
    g -> B). FITS rows run bottom-up, so the result is flipped to the usual top-down order.
    """
    from astropy.visualization import LuptonAsinhStretch, ManualInterval, make_lupton_rgb

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
    rgb = make_lupton_rgb(r, g, b, interval=ManualInterval(vmin=-SKY_OFFSET, vmax=None),
                          stretch_object=LuptonAsinhStretch(stretch=LUPTON_STRETCH, Q=LUPTON_Q))
    return np.ascontiguousarray(np.flipud(rgb), dtype=np.uint8)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
