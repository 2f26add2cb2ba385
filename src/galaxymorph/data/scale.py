"""The scale of a set of images, and a warning when a model is shown another scale.

A CNN learns galaxies at the scale it was trained on: a Galaxy10 DECaLS cutout covers 67" at
0.262"/px, the SDSS set in ../shared/data 25.6" (0.1"/px once stored at 256 px), so the same
galaxy looks 2.6 times larger there, and a model trained on one misreads the other. Two
measures, each where it can be had:

- **pixel scale**: the median ``pxscale`` (arcsec per pixel of the stored 256 px images) that
  the data file records (``data import --pixel-scale``, a catalogue, a FITS WCS);
- **apparent galaxy size**: the median half-light radius in pixels of the central source
  (:func:`galaxymorph.data.sources.apparent_size`, sep), measured on up to ``SIZE_SAMPLE``
  images picked with a fixed seed. It needs no metadata, so it also catches JPEGs of unknown
  scale, and cutouts of another field size at the same pixel scale.

:func:`scale_summary` and :func:`file_scale` measure; :func:`training_scale` gives a run's
(``run.json["data_scale"]`` where training recorded it, else measured from its training
split); :func:`compare_scales` turns two summaries into warnings, and :func:`check_scale`
prints them as one line on stderr for ``predict`` and ``evaluate``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import GalaxymorphError
from ..rundir import RunFolder
from .galaxy10 import open_galaxy10
from .importers import read_image
from .splits import load_manifest, split_indices
from .sources import apparent_size

SIZE_SAMPLE = 32  # images measured for the median apparent size (sep takes ~20 ms each)
MAX_RATIO = 1.5  # a clear difference: larger or smaller by more than this factor
MEASURES = (("pxscale", "pixel scale", '"/px'), ("galaxy_size_px", "galaxy size (median half-light radius)", " px"))


def scale_summary(images: np.ndarray | None = None, pxscale: np.ndarray | None = None) -> dict:
    """``{"pxscale", "n_pxscale", "galaxy_size_px", "n_size"}`` of some images.

    ``pxscale``: median of the known (finite, positive) per-image scales, None if none;
    ``galaxy_size_px``: median apparent size of ``images`` (uint8 (N, 256, 256, 3)), None when
    no images are given or sep finds no central source in any.
    """
    px = np.asarray(pxscale if pxscale is not None else [], dtype=np.float64)
    known = px[np.isfinite(px) & (px > 0)]
    summary = {"pxscale": round(float(np.median(known)), 4) if len(known) else None,
               "n_pxscale": int(len(known)), "galaxy_size_px": None, "n_size": 0}
    if images is not None and len(images):
        sizes = apparent_size(np.asarray(images))
        sizes = sizes[np.isfinite(sizes)]
        if len(sizes):
            summary["galaxy_size_px"] = round(float(np.median(sizes)), 2)
            summary["n_size"] = int(len(sizes))
    return summary


def sample_indices(n: int, sample: int = SIZE_SAMPLE, seed: int = 0) -> np.ndarray:
    """Up to ``sample`` positions out of ``n``, sorted, the same for the same arguments."""
    if n <= sample:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))


def file_scale(path: str | os.PathLike, indices: np.ndarray | None = None, sample: int = SIZE_SAMPLE) -> dict:
    """:func:`scale_summary` of a Galaxy10-layout file's images at ``indices`` (all by
    default): the pixel scale of all of them, the apparent size of a fixed sample.

    This is the hook for training: ``file_scale(data_path, train_indices)`` is the dict a run
    keeps as ``run.json["data_scale"]``."""
    with open_galaxy10(path, labelled=False) as data:  # pixels and pxscale only: labels or none
        indices = np.arange(len(data)) if indices is None else np.asarray(indices, dtype=np.int64)
        px = data.column("pxscale")
        picked = indices[sample_indices(len(indices), sample)]
        return scale_summary(data.images(picked), None if px is None else px[indices])


def training_scale(run_dir: str | os.PathLike, run: dict) -> dict:
    """The scale of a run's training data: ``run["data_scale"]`` (``run``: the run's run.json)
    where training recorded it, else measured from the training split of the run's data file; {}
    when neither can be had. The caller reads run.json (:mod:`galaxymorph.runs`, a higher layer)."""
    run_dir = Path(run_dir)
    if isinstance(run.get("data_scale"), dict):
        return run["data_scale"]
    data = run.get("data")
    if not isinstance(data, str) or not Path(data).is_file():
        return {}
    try:
        indices = split_indices(load_manifest(RunFolder(run_dir).manifest_path), "train")
        return file_scale(data, indices)
    except GalaxymorphError:
        return {}


def compare_scales(train: dict, inputs: dict, max_ratio: float = MAX_RATIO) -> list[str]:
    """One message per measure known on both sides that differs by more than ``max_ratio``."""
    messages = []
    for key, what, unit in MEASURES:
        a, b = train.get(key), inputs.get(key)
        if not a or not b:
            continue
        ratio = b / a
        if max(ratio, 1 / ratio) > max_ratio:
            messages.append(f"{what} {b:.3g}{unit} vs {a:.3g}{unit} in training ({ratio:.2g}x)")
    return messages


def check_scale(run_dir: str | os.PathLike, run: dict, measure_inputs: Callable[[], dict],
                stream=None) -> list[str]:
    """Compare the inputs' scale (``measure_inputs()``, called only when the training data's
    scale is known) with the run's training data; when they differ clearly, print one warning
    line on stderr and return the messages (for metrics.json or a CSV's run info); [] when
    they agree or either side is unknown. ``run``: the run's run.json."""
    train = training_scale(run_dir, run)
    messages = compare_scales(train, measure_inputs()) if train else []
    if messages:
        print("warning: the inputs are at another scale than the training data: " + "; ".join(messages)
              + ". The model may misread them; resample the images or train at their scale.",
              file=stream or sys.stderr)
    return messages


def inputs_scale(files: list[Path], h5_files: list[Path], sample: int = SIZE_SAMPLE) -> dict:
    """:func:`scale_summary` of ``predict``'s inputs: a fixed sample of the image files (pixel
    scale where a FITS WCS gives it) and of each Galaxy10-layout file (its ``pxscale`` column).
    Unreadable inputs are left out here; ``predict`` reports them."""
    images, scales = [], []
    for i in sample_indices(len(files), sample):
        try:
            read = read_image(files[i])
        except (GalaxymorphError, OSError, ValueError):
            continue
        images.append(read.image)
        scales.append(read.pxscale)
    for path in h5_files:
        try:
            with open_galaxy10(path, labelled=False) as data:  # cutouts to classify have no labels
                images.extend(data.images(sample_indices(len(data), sample)))
                px = data.column("pxscale")
                scales.extend([] if px is None else px)
        except GalaxymorphError:
            continue
    return scale_summary(np.stack(images) if images else None, np.asarray(scales, dtype=np.float64))


def check_file_scale(run_dir: str | os.PathLike, run: dict, data_path: str | os.PathLike,
                     indices: np.ndarray) -> list[str]:
    """:func:`check_scale` for images of a Galaxy10-layout file (``evaluate``). The run's own
    data file is at the training scale by construction, so it is not measured again."""
    trained_on = run.get("data")
    if isinstance(trained_on, str) and Path(trained_on).resolve() == Path(data_path).resolve():
        return []
    return check_scale(run_dir, run, lambda: file_scale(data_path, indices))
