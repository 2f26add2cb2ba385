"""Stratified, seeded train/val/test splits saved as a JSON manifest.

The manifest ties a split to one data file (by SHA-256) and one class subset, so that every
later stage -- training, model selection, evaluation, explanation -- sees the same images in
the same role and no test image can reach training or model selection.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import check_fractions, check_seed
from ..errors import DataError
from ..fileio import check_input_file, write_json
from .filehash import file_sha256
from .galaxy10 import CLASS_NAMES, DEFAULT_CLASSES, Galaxy10File, open_galaxy10
from .tree import load_tree, with_votes

MANIFEST_FORMAT = "galaxymorph-split/1"
SPLITS = ("train", "val", "test")


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int,
                     names: Sequence[str] | None = None) -> list[np.ndarray]:
    """Positions 0..n-1 split into len(fractions) parts with the same class mix in each.

    Each class is shuffled with ``seed`` and cut by the fractions (rounded, at least one image
    per non-empty part when the class has enough images), so the split is repeatable.
    """
    rng = np.random.default_rng(seed)
    fractions = np.asarray(fractions, dtype=float)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        n = len(members)
        if n < len(fractions):
            what = names[label] if names is not None else f"class position {label}"
            raise DataError(f"{what} has only {n} image(s); need at least {len(fractions)} to give every split one")
        cuts = np.round(np.cumsum(fractions)[:-1] * n).astype(int)
        cuts = np.clip(cuts, np.arange(1, len(fractions)), n - np.arange(len(fractions) - 1, 0, -1))
        for part, chunk in zip(parts, np.split(members, cuts)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def pixel_hashes(data: Galaxy10File, indices: np.ndarray, batch_size: int = 256) -> list[str]:
    """A short hash of each image's pixels, for finding exact duplicates."""
    hashes: list[str] = []
    for _, block in data.iter_images(indices, batch_size):
        hashes.extend(hashlib.blake2b(img.tobytes(), digest_size=12).hexdigest() for img in block)
    return hashes


def find_cross_split_duplicates(data: Galaxy10File, splits: dict[str, np.ndarray]) -> list[dict]:
    """Groups of pixel-identical images that sit in more than one split."""
    owner: dict[str, list[tuple[str, int]]] = {}
    for name, idx in splits.items():
        for i, h in zip(idx, pixel_hashes(data, idx)):
            owner.setdefault(h, []).append((name, int(i)))
    groups = []
    for members in owner.values():
        if len({name for name, _ in members}) > 1:
            groups.append({"indices": [i for _, i in members], "splits": [n for n, _ in members]})
    return groups


DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.15, 0.15)  # train / val / test


def prepare(path: str | os.PathLike, out: str | os.PathLike | None = None,
            classes: Sequence[int] = DEFAULT_CLASSES, fractions: Sequence[float] = DEFAULT_FRACTIONS,
            seed: int = 0, check_duplicates: bool = True, targets: str = "labels") -> dict:
    """Make a stratified split of ``classes`` in a Galaxy10-layout file; save it to ``out``.

    Returns the manifest: the source file's SHA-256, the classes, the seed and fractions, the
    index lists (positions in the source file) and any exact duplicates across splits.
    ``targets="tree"``: split every image with decision-tree votes instead (:func:`prepare_tree`).
    """
    fractions = check_fractions(fractions)
    check_seed(seed)
    if targets == "tree":
        manifest = prepare_tree(path, fractions, seed, check_duplicates)
        if out is not None:
            write_json(out, manifest)
        return manifest
    with open_galaxy10(path) as data:
        sel = data.select(classes)
        names = [f"class {c} ({CLASS_NAMES[c]})" for c in sel.classes]
        parts = stratified_split(sel.labels, fractions, seed, names)
        splits = {name: sel.indices[p] for name, p in zip(SPLITS, parts)}
        duplicates = find_cross_split_duplicates(data, splits) if check_duplicates else []
        manifest = {
            "format": MANIFEST_FORMAT,
            "source": {"path": str(Path(path).resolve()), "sha256": data.sha256, "n_images": len(data)},
            "classes": list(sel.classes),
            "class_names": sel.class_names,
            "seed": int(seed),
            "fractions": [float(f) for f in fractions],
            "counts": {name: {str(c): int(np.sum(data.labels[idx] == c)) for c in sel.classes}
                       for name, idx in splits.items()},
            "duplicates": duplicates,
            "splits": {name: [int(i) for i in idx] for name, idx in splits.items()},
        }
    if out is not None:
        write_json(out, manifest)
    return manifest


def prepare_tree(path: str | os.PathLike, fractions: Sequence[float], seed: int,
                 check_duplicates: bool = True, tree_name: str = "gz2") -> dict:
    """A seeded split of every image whose decision-tree vote counts add up to more than 0,
    whatever its class (or none): stratified by the volunteers' majority answer to the first
    question, a majority held by fewer images than there are splits joining the largest one.
    The manifest has no classes and records ``targets: tree`` and the tree's name."""
    tree = load_tree(tree_name)
    with open_galaxy10(path, labelled=False) as data:
        counts = tree.read_counts(data)
        indices = with_votes(counts)
        if len(indices) < len(fractions):
            raise DataError(f"{Path(path).name} has {len(indices)} image(s) with {tree.name} votes; "
                            f"need at least {len(fractions)} to give every split one")
        first = tree.slices[0]
        majority = counts[indices, first].argmax(1)
        sizes = np.bincount(majority, minlength=first.stop - first.start)
        majority[sizes[majority] < len(fractions)] = sizes.argmax()
        parts = stratified_split(majority, fractions, seed)
        splits = {name: indices[p] for name, p in zip(SPLITS, parts)}
        return _tree_manifest(data, counts, splits, seed, fractions, tree, check_duplicates)


def tree_manifest_from(path: str | os.PathLike, splits: dict[str, Sequence[int]], seed: int = 0,
                       out: str | os.PathLike | None = None, tree_name: str = "gz2",
                       check_duplicates: bool = True) -> dict:
    """A decision-tree split manifest of ``path`` with the given train/val/test index lists (for
    benchmarks that choose which galaxies a model may see); checked like any manifest."""
    tree = load_tree(tree_name)
    with open_galaxy10(path, labelled=False) as data:
        parts = {name: np.asarray(splits[name], dtype=np.int64) for name in SPLITS}
        fractions = [len(parts[n]) / max(1, sum(map(len, parts.values()))) for n in SPLITS]
        manifest = _tree_manifest(data, tree.read_counts(data), parts, seed, fractions, tree, check_duplicates)
    check_manifest(manifest, out or "(tree split)")
    if out is not None:
        write_json(out, manifest)
    return manifest


def _tree_manifest(data: Galaxy10File, counts: np.ndarray, splits: dict[str, np.ndarray], seed: int, fractions,
                   tree, check_duplicates: bool) -> dict:
    """The manifest of a decision-tree split (``counts``: the file's vote counts, read once by the caller)."""
    first = tree.slices[0]
    duplicates = find_cross_split_duplicates(data, splits) if check_duplicates else []
    answers = tree.questions[0].answers
    top = {name: counts[idx, first].argmax(1) for name, idx in splits.items()}
    return {
        "format": MANIFEST_FORMAT,
        "source": {"path": str(Path(data.path).resolve()), "sha256": data.sha256, "n_images": len(data)},
        "targets": "tree",
        "tree": tree.name,
        "classes": [],
        "class_names": [],
        "seed": int(seed),
        "fractions": [float(f) for f in fractions],
        # images per split by the volunteers' majority answer to the first question
        "counts": {name: {a: int(np.sum(t == i)) for i, a in enumerate(answers)} for name, t in top.items()},
        "duplicates": duplicates,
        "splits": {name: [int(i) for i in idx] for name, idx in splits.items()},
    }


def load_manifest(path: str | os.PathLike, data_path: str | os.PathLike | None = None) -> dict:
    """Read a split manifest; with ``data_path``, check that it was made from that very file."""
    path = check_input_file(path, "split manifest")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a split manifest (not JSON: {exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{path} is not a galaxymorph split manifest (format {MANIFEST_FORMAT})")
    check_manifest(manifest, path)
    if data_path is not None:
        check_manifest_matches(manifest, data_path)
    return manifest


REQUIRED_KEYS = ("source", "classes", "seed", "fractions", "counts", "splits")


def check_manifest(manifest: dict, path: str | os.PathLike) -> None:
    """A one-line error naming the split and the problem when a manifest cannot be trusted: a
    missing key; an index that is not an integer, lies outside the data file, is listed twice, or
    sits in two splits (a test image counted twice, or a validation image also trained on)."""
    where = f"split manifest {path}"
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise DataError(f"{where} lacks {', '.join(repr(k) for k in missing)}; make it with 'galaxymorph data prepare'")
    source, splits = manifest["source"], manifest["splits"]
    if not (isinstance(source, dict) and isinstance(source.get("sha256"), str) and _is_index(source.get("n_images"))):
        raise DataError(f"{where}: 'source' must give the data file's sha256 and n_images")
    if not isinstance(manifest["classes"], list) or not all(_is_index(c) for c in manifest["classes"]):
        raise DataError(f"{where}: 'classes' must be a list of class ids")
    if not isinstance(splits, dict) or sorted(splits) != sorted(SPLITS):
        raise DataError(f"{where}: 'splits' must hold exactly the {', '.join(SPLITS)} index lists")
    n, owner = source["n_images"], {}
    for name in SPLITS:
        indices = splits[name]
        if not isinstance(indices, list) or not indices:
            raise DataError(f"{where}: the {name} split must be a non-empty list of image indices")
        for i in indices:
            if not _is_int(i):
                raise DataError(f"{where}: the {name} split holds {i!r}, not an integer image index")
            if not 0 <= i < n:
                raise DataError(f"{where}: the {name} split holds index {i}, outside the data file's "
                                f"{n} images (0..{n - 1})")
            if i in owner:
                raise DataError(f"{where}: index {i} is listed twice in the {name} split" if owner[i] == name else
                                f"{where}: index {i} is in both the {owner[i]} and the {name} split")
            owner[i] = name


def _is_int(value) -> bool:
    """An int as JSON writes an integer (not a bool, a float such as 3.0, or a string)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_index(value) -> bool:
    return _is_int(value) and value >= 0


def check_manifest_matches(manifest: dict, data_path: str | os.PathLike) -> None:
    """Raise if ``data_path`` is not the file the manifest was made from (by SHA-256)."""
    actual = file_sha256(data_path)
    expected = manifest["source"]["sha256"]
    if actual != expected:
        raise DataError(
            f"split manifest was made from a different file (SHA-256 {expected[:12]}...), "
            f"but {Path(data_path).name} has SHA-256 {actual[:12]}...; run 'galaxymorph data prepare' again"
        )
    with open_galaxy10(data_path, rechunk=False, labelled=False) as data:
        if len(data) != manifest["source"]["n_images"]:  # the manifest's index bound is this file's size
            raise DataError(f"split manifest says its data file has {manifest['source']['n_images']} images, "
                            f"but {Path(data_path).name} has {len(data)}; run 'galaxymorph data prepare' again")


def split_indices(manifest: dict, split: str) -> np.ndarray:
    """Source-file indices of one split (``train``, ``val`` or ``test``) of a manifest."""
    if split not in manifest["splits"]:
        raise DataError(f"unknown split {split!r}; the manifest has {', '.join(manifest['splits'])}")
    return np.asarray(manifest["splits"][split], dtype=np.int64)


def describe_manifest(manifest: dict) -> str:
    """A few lines for the terminal: counts per split and class, duplicates found."""
    lines = []
    for name in SPLITS:
        counts = manifest["counts"][name]
        if manifest.get("targets") == "tree":  # by majority answer to the first question
            per_class = ", ".join(f"{a}: {n}" for a, n in counts.items())
        else:
            per_class = ", ".join(f"{CLASS_NAMES[int(c)]}: {n}" for c, n in counts.items())
        lines.append(f"{name:>5}: {sum(counts.values()):6d}  ({per_class})")
    dups = manifest["duplicates"]
    lines.append(f"exact duplicates across splits: {len(dups)} group(s)" + (
        " -- listed in the manifest under 'duplicates'" if dups else ""))
    return "\n".join(lines)
