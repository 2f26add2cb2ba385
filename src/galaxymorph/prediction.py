"""Prediction on new images: files, folders, FITS cutouts or a Galaxy10-layout HDF5 file.

``predict(run_dir, inputs, out)`` loads the run's best model, reads every input the way the
training data was stored (uint8, 256x256x3; the model's own ``preprocess`` scales it to its
input size), classifies it in batches (optionally averaged over the 8 D4 symmetries) and writes
one CSV row per image. Inputs that cannot be read are reported and skipped, never fatal --
unless nothing at all could be read.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .data.galaxy10 import CLASS_NAMES, IMAGE_SHAPE, open_galaxy10
from .data.importers import IMAGE_SUFFIXES, list_files, read_image_file
from .data.scale import check_scale, inputs_scale
from .data.tree import load_tree
from .errors import GalaxymorphError, one_line
from .fileio import atomic_path, check_output_file, printable_name, spreadsheet_safe
from .decision import predicted_positions
from .inference import default_batch_size
from .models import load_model
from .models.tree import expected_fractions, vote_cells, vote_columns
from .progress import progress_bar
from .run_names import resolve_run
from .runs import read_run_json, run_device

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


# -- inputs --------------------------------------------------------------------------------
def _is_hdf5(path: Path) -> bool:
    return path.suffix.lower() in HDF5_SUFFIXES


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    """Image/FITS files (folders searched recursively, sorted) and HDF5 files, in input order.

    A path that does not exist is an error (most likely a typo); inside folders only files
    with a known image, FITS or HDF5 suffix are taken.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not inputs:
        raise GalaxymorphError("no inputs given: name image files, folders, FITS cutouts or an HDF5 file")
    files: list[Path] = []
    h5_files: list[Path] = []
    for item in map(Path, inputs):
        if not item.exists():
            raise GalaxymorphError(f"input not found: {item}")
        if item.is_dir():
            found = list_files(item)
            files.extend(p for p in found if p.name.lower().endswith(IMAGE_SUFFIXES))
            h5_files.extend(p for p in found if _is_hdf5(p))
        elif _is_hdf5(item):
            h5_files.append(item)
        else:
            files.append(item)  # unknown suffixes are tried, and reported if unreadable
    return files, h5_files


def check_not_an_input(out: str | os.PathLike, inputs: Sequence[Path]) -> None:
    """Refuse an output file that is one of the inputs (it would be replaced by the CSV)."""
    out = Path(out)
    if not out.exists():
        return
    for path in inputs:
        if os.path.samefile(out, path):
            raise GalaxymorphError(f"--out {out} is one of the inputs ({path}); choose another --out")


@dataclass
class PredictReport:
    """What :func:`predict` did; ``str()`` gives the summary printed by the CLI."""

    out: Path
    n_predicted: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # predicted class name -> images
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)
    tta: bool = False
    scale_warnings: list[str] = field(default_factory=list)  # inputs at another scale than training
    tree: str | None = None  # a decision-tree model's tree: votes predicted, not classes

    def __str__(self) -> str:
        done = f"predicted the {self.tree} votes of" if self.tree else "classified"
        lines = [f"{done} {self.n_predicted} image(s){' with D4 TTA' if self.tta else ''} -> {self.out}"]
        lines += [f"  {name}: {n}" for name, n in self.counts.items()]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable input(s):")
            lines += [f"  {name}: {why}" for name, why in self.skipped[:20]]
            if len(self.skipped) > 20:
                lines.append(f"  ... and {len(self.skipped) - 20} more")
        return "\n".join(lines)


def _file_batches(files: list[Path], batch_size: int, report: PredictReport
                  ) -> Iterator[tuple[list[str], list[str], np.ndarray]]:
    """(names, blank indices, uint8 images) batches of readable files; unreadable ones noted."""
    names: list[str] = []
    images: list[np.ndarray] = []
    for path in files:
        try:
            images.append(read_image_file(path, size=IMAGE_SHAPE[0]))  # resized as 'data import' does
            names.append(printable_name(path))
        except (GalaxymorphError, OSError, ValueError) as exc:
            report.skipped.append((printable_name(path), one_line(exc)))
        if len(images) == batch_size:
            yield names, [""] * len(names), np.stack(images)
            names, images = [], []
    if images:
        yield names, [""] * len(names), np.stack(images)


def _h5_batches(path: Path, batch_size: int, report: PredictReport
                ) -> Iterator[tuple[list[str], list[str], np.ndarray]]:
    """(file name, index, images) batches of every image of a Galaxy10-layout file (with class
    ids or without: new cutouts to classify have none)."""
    try:
        data = open_galaxy10(path, labelled=False)
    except GalaxymorphError as exc:
        report.skipped.append((printable_name(path), str(exc)))
        return
    with data:
        for idx, images in data.iter_images(np.arange(len(data)), batch_size):
            yield [printable_name(path)] * len(idx), [str(int(i)) for i in idx], images


def _count_images(files: list[Path], h5_files: list[Path]) -> int:
    total = len(files)
    for path in h5_files:
        try:
            with open_galaxy10(path, labelled=False) as data:
                total += len(data)
        except GalaxymorphError:
            pass
    return total


# -- the command ---------------------------------------------------------------------------
def predict(run_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike] | str | os.PathLike,
            out: str | os.PathLike, tta: bool = False, batch_size: int | None = None,
            progress: bool = True, device: str | None = None, overwrite: bool = True) -> PredictReport:
    """Classify new images with a run's best model; write a CSV; return a summary.

    ``inputs``: JPG/PNG files, folders of them (searched recursively, in sorted order), FITS
    cutouts, or Galaxy10-layout HDF5 files (every image, identified by its ``index``; the file
    needs ``images`` only, ``ans`` class ids are not read).
    The CSV (written atomically) has ``file``, ``index`` (blank except for HDF5 rows),
    ``predicted`` (Galaxy10 class id), ``predicted_name`` and ``prob_<class id>`` columns. Text
    cells that a spreadsheet would run as a formula (starting with = + - @) get a leading ``'``;
    a file name that is not UTF-8 is written with ``\\xNN`` escapes for its odd bytes.
    For two classes the predicted class is the positive one when its probability is >= 0.5.
    A decision-tree model (``--targets tree``) writes ``file``, ``index``, then every answer's
    expected vote fraction (``<answer>_fraction``) and Dirichlet concentration
    (``<answer>_concentration``) instead (docs/votes.md).
    ``device``: where the model runs (default: the run's configured device when this machine
    has it, else ``auto``); ``batch_size``: images per forward pass (default 64 on the CPU,
    512 on a GPU). ``out`` is never one of the inputs; an existing ``out`` is replaced only with
    ``overwrite`` (the API's default; the CLI's ``--overwrite``).
    """
    run_dir = resolve_run(run_dir)  # "gz2": the shipped model
    if batch_size is not None and batch_size < 1:
        raise GalaxymorphError(f"--batch-size must be at least 1, got {batch_size}")
    files, h5_files = collect_inputs(inputs)
    check_not_an_input(out, files + h5_files)  # said first: --overwrite would not help
    check_output_file(out, overwrite=overwrite)  # before any work, not after it
    target = run_device(run_dir, device)
    batch_size = batch_size or default_batch_size(target)
    model = load_model(run_dir, device=target)
    class_ids = list(model.class_ids)
    report = PredictReport(out=Path(out), tta=bool(tta), counts={CLASS_NAMES[c]: 0 for c in class_ids},
                           tree=model.tree)
    report.scale_warnings = check_scale(run_dir, read_run_json(run_dir), lambda: inputs_scale(files, h5_files))  # one line on stderr

    def batches() -> Iterable[tuple[list[str], list[str], np.ndarray]]:
        yield from _file_batches(files, batch_size, report)
        for path in h5_files:
            yield from _h5_batches(path, batch_size, report)

    header = ["file", "index", "predicted", "predicted_name"] + [f"prob_{c}" for c in class_ids]
    if model.tree is not None:  # a decision-tree model: expected vote fractions and Dirichlet concentrations
        tree = load_tree(model.tree)
        header = ["file", "index"] + vote_columns(tree)
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        with progress_bar(total=_count_images(files, h5_files), desc="predict", unit="img",
                          disable=not progress) as bar:
            for names, indices, images in batches():
                probs = model.predict_proba(images, batch_size=batch_size, tta=tta)
                if model.tree is not None:
                    _write_votes(writer, names, indices, probs, tree)
                    report.n_predicted += len(names)
                    bar.update(len(names))
                    continue
                predicted = predicted_positions(probs)
                for name, index, p, row in zip(names, indices, predicted, probs):
                    cid = class_ids[p]
                    report.counts[CLASS_NAMES[cid]] += 1
                    writer.writerow([spreadsheet_safe(name), index, cid, spreadsheet_safe(CLASS_NAMES[cid])]
                                    + [f"{v:.6f}" for v in row])
                report.n_predicted += len(names)
                bar.update(len(names))
        if report.n_predicted == 0:
            why = f" ({len(report.skipped)} unreadable: {report.skipped[0][0]}: {report.skipped[0][1]})" \
                if report.skipped else ""
            raise GalaxymorphError(f"no readable image among the inputs{why}")
    return report


def _write_votes(writer, names: list[str], indices: list[str], conc: np.ndarray, tree) -> None:
    """Rows of a tree model's predictions: expected vote fraction, then concentration, of every answer."""
    fractions = expected_fractions(conc.astype(np.float64), tree)
    for name, index, cells in zip(names, indices, vote_cells(fractions, conc)):
        writer.writerow([spreadsheet_safe(name), index] + cells)
