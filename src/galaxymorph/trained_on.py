"""Which galaxies a run's weights learned from, and the check that test images are not among them.

A training run writes ``RUN_DIR/train_galaxies.npz`` (:func:`record_training_galaxies`): one row
per image of its train and val splits, with the position (``ra``, ``dec`` in degrees, NaN where
the data file has none) and the SHA-256 of the image's uint8 pixels (hex), as plain arrays that
load with ``allow_pickle=False`` (:func:`read_training_galaxies`).

``evaluate`` (:func:`check_test_images`) flags test images that the run, or the run its weights
started from (``train --init``, followed back through every init), trained on: the same position
within :data:`MATCH_ARCSEC`, or the same pixels. A model scores such images better than new
ones, so the metrics on them are optimistic: the count and the file indices go into
``eval/metrics.json`` (``leak``), with a warning on stderr and in the report.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from .data.galaxy10 import open_galaxy10
from .data.splits import split_indices
from .errors import GalaxymorphError
from .fileio import atomic_path
from .run_names import resolve_run
from .rundir import RunFolder

TRAIN_GALAXIES = RunFolder.TRAIN_GALAXIES
FORMAT = "galaxymorph-train-galaxies/1"
MATCH_ARCSEC = 1.0  # two positions closer than this are the same galaxy
READ_CHUNK = 256  # test images read (and hashed) at a time


def image_sha256(images: np.ndarray) -> np.ndarray:
    """The SHA-256 (hex) of each uint8 image's pixels (C order), as a plain unicode array."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 as stored, got {images.dtype}")
    return np.array([hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images],
                    dtype="<U64")


def _positions(data_path: str | os.PathLike, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ra, dec (degrees, float64) of ``indices`` in a Galaxy10-layout file; NaN where it has none."""
    with open_galaxy10(data_path, labelled=False) as data:
        out = []
        for key in ("ra", "dec"):
            column = data.column(key)
            out.append(np.full(len(indices), np.nan) if column is None else column[indices].astype(np.float64))
    return out[0], out[1]


def write_training_galaxies(run_dir: str | os.PathLike, data_path: str | os.PathLike, manifest: dict,
                            images: dict[str, np.ndarray]) -> Path:
    """Write ``RUN_DIR/train_galaxies.npz`` for the splits in ``images`` (split name -> its uint8
    images, in the manifest's order: what training holds in memory already)."""
    indices = np.concatenate([split_indices(manifest, name) for name in images]).astype(np.int64)
    split = np.concatenate([np.full(len(split_indices(manifest, name)), name, dtype="<U8") for name in images])
    sha = np.concatenate([image_sha256(x) for x in images.values()]) if images else np.empty(0, "<U64")
    if len(sha) != len(indices):
        raise ValueError("the images given do not match the manifest's splits")
    ra, dec = _positions(data_path, indices)
    path = RunFolder(run_dir).train_galaxies_path
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, format=np.array(FORMAT), ra=ra, dec=dec, sha256=sha, index=indices, split=split,
                            data_sha256=np.array(str(manifest.get("source", {}).get("sha256", ""))))
    return path


def record_training_galaxies(run_dir: str | os.PathLike, data_path: str | os.PathLike, manifest: dict,
                             images: dict[str, np.ndarray]) -> None:
    """:func:`write_training_galaxies` once per run: a resumed run keeps its record (and a run
    from before the record existed gets one when it resumes)."""
    if not (RunFolder(run_dir).train_galaxies_path).is_file():
        write_training_galaxies(run_dir, data_path, manifest, images)


def read_training_galaxies(run_dir: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The arrays of ``RUN_DIR/train_galaxies.npz`` (``ra``, ``dec``, ``sha256``, ``index``,
    ``split``), or None when the run has no readable record. Never unpickles anything."""
    path = RunFolder(run_dir).train_galaxies_path
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            record = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        print(f"warning: cannot read {path} ({exc}); its galaxies are not checked", file=sys.stderr)
        return None
    if not {"ra", "dec", "sha256"} <= set(record) or not len(record["ra"]) == len(record["dec"]) == len(record["sha256"]):
        print(f"warning: {path} is not a record of training galaxies; its galaxies are not checked", file=sys.stderr)
        return None
    return record


# -- the check ----------------------------------------------------------------------------------
def weight_sources(run_dir: str | os.PathLike) -> list[dict]:
    """The run and every run its weights started from (``init`` in each config.toml, followed
    back), as dicts: ``run`` (the name given), ``role`` ("this run" or "init model"), ``folder``
    (None where an init run cannot be found, and ``why`` says so)."""
    sources = [{"run": str(run_dir), "role": "this run", "folder": Path(run_dir), "why": ""}]
    seen = {Path(run_dir).resolve()}
    folder = Path(run_dir)
    while True:
        try:
            config = RunFolder(folder).read_config()
            init = str(config.init) if config is not None else ""
        except GalaxymorphError:
            init = ""
        if not init:
            return sources
        try:
            folder = resolve_run(init)
            why = "" if folder.is_dir() else "run folder not found"
        except GalaxymorphError as exc:  # a shipped model that is not installed
            why = str(exc)
        if why:
            sources.append({"run": init, "role": "init model", "folder": None, "why": why})
            return sources
        if folder.resolve() in seen:
            return sources
        seen.add(folder.resolve())
        sources.append({"run": init, "role": "init model", "folder": folder, "why": ""})


def match_galaxies(ra: np.ndarray, dec: np.ndarray, sha: np.ndarray, record: dict[str, np.ndarray],
                   arcsec: float = MATCH_ARCSEC) -> tuple[np.ndarray, np.ndarray]:
    """Two boolean arrays over the images (``ra``, ``dec`` in degrees, NaN = unknown; ``sha`` hex):
    within ``arcsec`` of a recorded position, and the same pixels as a recorded image."""
    by_pixels = np.isin(sha, record["sha256"]) if len(sha) else np.zeros(0, bool)
    by_position = np.zeros(len(ra), dtype=bool)
    mine = np.isfinite(ra) & np.isfinite(dec)
    ref_ra, ref_dec = np.asarray(record["ra"], np.float64), np.asarray(record["dec"], np.float64)
    theirs = np.isfinite(ref_ra) & np.isfinite(ref_dec)
    if mine.any() and theirs.any():
        from astropy import units as u  # lazy: astropy (~0.6 s) only when both sides have sky positions
        from astropy.coordinates import SkyCoord  # lazy: as above

        catalog = SkyCoord(ref_ra[theirs] * u.deg, ref_dec[theirs] * u.deg)
        _, separation, _ = SkyCoord(ra[mine] * u.deg, dec[mine] * u.deg).match_to_catalog_sky(catalog)
        by_position[mine] = separation.arcsec <= arcsec
    return by_position, by_pixels


def check_test_images(run_dir: str | os.PathLike, data_path: str | os.PathLike, indices: np.ndarray,
                      split: str = "test", warn: bool = True) -> dict:
    """The ``leak`` section of ``eval/metrics.json``: which images at ``indices`` of the data file
    the run or its init model trained on (position within :data:`MATCH_ARCSEC`, or the same
    pixels). Prints one warning line on stderr when any is flagged, or when an init model's
    galaxies cannot be checked."""
    indices = np.asarray(indices, dtype=np.int64)
    sources = weight_sources(run_dir)
    for source in sources:
        source["record"] = read_training_galaxies(source["folder"]) if source["folder"] is not None else None
    flagged = np.zeros(len(indices), dtype=bool)
    section: dict = {"split": split, "match": f"position within {MATCH_ARCSEC:g} arcsec, or the same pixels "
                                              "(SHA-256 of the uint8 image)", "sources": [], "unchecked": []}
    if any(source["record"] is not None for source in sources):
        ra, dec = _positions(data_path, indices)
        sha = np.empty(len(indices), dtype="<U64")
        order = {int(i): k for k, i in enumerate(indices)}
        with open_galaxy10(data_path, labelled=False) as data:
            for chunk, images in data.iter_images(indices, READ_CHUNK):
                sha[[order[int(i)] for i in chunk]] = image_sha256(images)
    for source in sources:
        if source["record"] is None:
            section["unchecked"].append({"run": source["run"], "role": source["role"],
                                         "why": source["why"] or f"no readable {TRAIN_GALAXIES}"})
            continue
        record = source["record"]
        if source["role"] == "this run" and "split" in record:  # scoring its own val split: not a leak
            record = {k: v[record["split"] != split] for k, v in record.items() if np.ndim(v) == 1}
        by_position, by_pixels = match_galaxies(ra, dec, sha, record)
        hit = by_position | by_pixels
        flagged |= hit
        section["sources"].append({"run": source["run"], "role": source["role"], "n_flagged": int(hit.sum()),
                                   "by_position": int(by_position.sum()), "by_pixels": int(by_pixels.sum())})
    section["n_flagged"] = int(flagged.sum())
    section["indices"] = [int(i) for i in indices[flagged]]
    if warn and section["n_flagged"]:
        names = ", ".join(s["run"] for s in section["sources"] if s["n_flagged"])
        print(f"warning: {section['n_flagged']} of the {len(indices)} {split} image(s) were trained on by {names} "
              f"(same position or pixels; file indices in eval/metrics.json 'leak'): metrics on them are "
              "optimistic", file=sys.stderr)
    unchecked_inits = [u for u in section["unchecked"] if u["role"] != "this run"]
    if warn and unchecked_inits:
        print(f"warning: the galaxies of init model {unchecked_inits[0]['run']} cannot be checked against the "
              f"{split} images ({unchecked_inits[0]['why']})", file=sys.stderr)
    return section
