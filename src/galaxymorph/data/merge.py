"""``galaxymorph data merge``: join Galaxy10-layout files into one.

The inputs' images and class ids (``ans``; ``NO_CLASS`` for a file without them) follow each
other in the order given. ``ra``, ``dec``, ``redshift`` and ``pxscale`` are kept when any input
has them (NaN for the images of the others); a ``catalog/`` column is kept only when every input
has it, and the report names the ones dropped. Images are copied a few hundred at a time, so a
large file is never held in memory whole; the output appears only when the merge succeeds.
Synthetic ground-truth ``masks`` are not carried over.

Two images within 1 arcsec of each other that come from different inputs are most likely the same
galaxy twice, which would leak between the train and test splits: the report warns about them.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from ..errors import DataError
from ..fileio import check_output_file
from ..progress import progress_bar
from .galaxy10 import CLASS_NAMES, NO_CLASS, OPTIONAL_COLUMNS, Galaxy10Writer, open_galaxy10

DUPLICATE_ARCSEC = 1.0
BATCH = 256  # images copied at a time


@dataclass
class MergeReport:
    """What ``merge_files`` wrote."""

    out: Path
    inputs: list[tuple[Path, int]] = field(default_factory=list)  # (file, images)
    counts: dict[int, int] = field(default_factory=dict)
    no_class: int = 0
    columns: list[str] = field(default_factory=list)  # Galaxy10 columns kept
    catalog_columns: list[str] = field(default_factory=list)  # catalog/ columns kept
    dropped_columns: list[str] = field(default_factory=list)  # catalog/ columns not in every input
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # output positions, pairs

    @property
    def n_written(self) -> int:
        return sum(n for _, n in self.inputs)

    def __str__(self) -> str:
        lines = [f"wrote {self.n_written} image(s) to {self.out} from "
                 + ", ".join(f"{p.name} ({n})" for p, n in self.inputs)]
        lines += [f"  class {c} ({CLASS_NAMES[c]}): {n}" for c, n in sorted(self.counts.items())]
        if self.no_class:
            lines.append(f"  no class (ans {NO_CLASS}): {self.no_class}")
        lines.append(f"columns: {', '.join(self.columns) or '(none)'}; {len(self.catalog_columns)} catalog/ column(s)")
        if self.dropped_columns:
            lines.append(f"dropped {len(self.dropped_columns)} catalog/ column(s) not in every input: "
                         + ", ".join(self.dropped_columns))
        if self.duplicates:
            a, b = self.duplicates[0]
            lines.append(f"warning: {len(self.duplicates)} pair(s) of images from different inputs lie within "
                         f"{DUPLICATE_ARCSEC:g} arcsec (first: images {a} and {b} of the output): the same galaxy "
                         "twice would leak between train and test splits")
        return "\n".join(lines)


def merge_files(inputs, out: str | os.PathLike, overwrite: bool = False, progress: bool = True) -> MergeReport:
    """Join the Galaxy10-layout files ``inputs`` (two or more) into ``out``; see the module docstring.

    Raises :class:`DataError` for fewer than two inputs, a file given twice, or a file that is not
    in the Galaxy10 layout (e.g. images of another shape); an existing ``out`` without ``overwrite``.
    """
    paths = [Path(p) for p in inputs]
    if len(paths) < 2:
        raise DataError(f"merge needs two or more files, got {len(paths)}")
    seen: dict[Path, Path] = {}
    for p in paths:
        key = p.resolve()
        if key in seen:
            raise DataError(f"{p} is given twice (also as {seen[key]}): its images would be in the output twice")
        seen[key] = p
    out = check_output_file(out, overwrite=overwrite)
    report = MergeReport(out=out)
    with ExitStack() as stack:
        files = [stack.enter_context(open_galaxy10(p, rechunk=False, labelled=False)) for p in paths]
        report.inputs = [(p, len(f)) for p, f in zip(paths, files)]
        columns = [k for k in OPTIONAL_COLUMNS if any(f.column(k) is not None for f in files)]
        first = files[0].catalog_columns()
        common = [c for c in first if all(c in f.catalog_columns() for f in files[1:])]
        report.dropped_columns = sorted({c for f in files for c in f.catalog_columns()} - set(common))
        attrs = {"created_by": "galaxymorph data merge", "source": "; ".join(str(p) for p in paths)}
        derived = sorted({str(f.attrs["classes_from"]) for f in files if "classes_from" in f.attrs})
        if derived:  # some classes came from votes: 'data info' says what class 6 means then
            attrs["classes_from"] = ", ".join(derived)
        labels = [f.labels if f.labels is not None else np.full(len(f), NO_CLASS, dtype=np.int64) for f in files]
        values = {k: np.concatenate([_column(f, k) for f in files]) for k in columns}  # read once: written, matched
        with Galaxy10Writer(out, attrs=attrs) as writer, \
                progress_bar(total=report.n_written, desc="merging", unit="img", disable=not progress) as bar:
            for f, ans in zip(files, labels):
                for chunk, images in f.iter_images(np.arange(len(f)), batch_size=BATCH):
                    writer.append(images, ans[chunk])
                    bar.update(len(chunk))
            writer.write_columns(catalog={c: np.concatenate([f.catalog(c) for f in files]) for c in common}, **values)
        ans = np.concatenate(labels)
        ids, counts = np.unique(ans, return_counts=True)
        report.counts = {int(i): int(n) for i, n in zip(ids, counts) if int(i) != NO_CLASS}
        report.no_class = int(np.sum(ans == NO_CLASS))
        report.columns, report.catalog_columns = columns, common
        if "ra" in values and "dec" in values:
            source = np.concatenate([np.full(len(f), i) for i, f in enumerate(files)])
            report.duplicates = close_pairs(values["ra"], values["dec"], source)
    return report


def _column(data, key: str) -> np.ndarray:
    values = data.column(key)
    return np.full(len(data), np.nan) if values is None else np.asarray(values, dtype=np.float64)


def close_pairs(ra: np.ndarray, dec: np.ndarray, group: np.ndarray,
                arcsec: float = DUPLICATE_ARCSEC) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of positions (degrees) within ``arcsec`` of each other whose
    ``group`` differs (e.g. images from different files); NaN positions are never paired."""
    ra, dec = np.radians(np.asarray(ra, dtype=np.float64)), np.radians(np.asarray(dec, dtype=np.float64))
    known = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
    if len(known) < 2:
        return []
    xyz = np.stack([np.cos(dec[known]) * np.cos(ra[known]), np.cos(dec[known]) * np.sin(ra[known]),
                    np.sin(dec[known])], axis=1)
    chord = 2 * np.sin(np.radians(arcsec / 3600) / 2)
    pairs = cKDTree(xyz).query_pairs(chord, output_type="ndarray")
    pairs = np.sort(known[pairs], axis=1) if len(pairs) else np.empty((0, 2), dtype=np.int64)
    pairs = pairs[group[pairs[:, 0]] != group[pairs[:, 1]]]
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    return [(int(a), int(b)) for a, b in pairs]
