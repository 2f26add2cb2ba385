"""Galaxy Zoo vote fractions: soft training targets and vote-aware evaluation.

A catalogue imported with the images (``data import --catalog``) stores per-image numbers in
the HDF5 group ``catalog/`` (one float dataset per column, in image order). Where that group
holds the Galaxy Zoo vote fractions that decide a Galaxy10 class, this module turns them into

* a **soft target** per image, the share of the volunteers' evidence for the positive class,
  so a model can learn from the votes rather than from thresholded labels (as Zoobot does);
* a **vote confidence** per image, the weakest of the fractions that decided its label, so
  accuracy can be read against how much the volunteers themselves agreed;
* a **calibration check** of predicted probabilities against the vote-based target.

The deciding answers follow the Galaxy10 / Galaxy Zoo 2 label rule (see the sdss_gz2 README):
Round Smooth = smooth and completely round; Barred Spiral = features or disk, not edge-on,
bar and spiral. A class's vote score is the product of its deciding fractions (the share of
volunteers who would walk that path of the decision tree); the soft target of a two-class task
is score(positive) / (score(negative) + score(positive)).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from .data.galaxy10 import CATALOG_GROUP, open_galaxy10
from .data.splits import split_indices
from .decision import predicted_positions
from .errors import DataError

DECIDING_VOTES: dict[int, tuple[str, ...]] = {
    2: ("smooth", "completely_round"),
    5: ("features_or_disk", "not_edge_on", "bar", "spiral"),
}
CONFIDENCE_LEVELS = (0.0, 0.6, 0.8)  # all labels, votes >= 0.6, votes >= 0.8 ("confident")


def read_votes(data_path: str | os.PathLike, indices: np.ndarray, class_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """Per class id: the deciding vote fractions of the images at ``indices``, shape (n, n_answers)."""
    missing_class = [c for c in class_ids if int(c) not in DECIDING_VOTES]
    if missing_class:
        raise DataError(f"no Galaxy Zoo vote rule for class(es) {missing_class}; "
                        f"vote targets are defined for classes {sorted(DECIDING_VOTES)}")
    indices = np.asarray(indices, dtype=np.int64)
    with open_galaxy10(data_path) as data:
        have = set(data.catalog_columns())
        out = {}
        for c in class_ids:
            columns = DECIDING_VOTES[int(c)]
            absent = [col for col in columns if col not in have]
            if absent:
                raise DataError(f"{data_path} has no vote column(s) {', '.join(absent)} under '{CATALOG_GROUP}/'; "
                                "import the images with --catalog pointing at a catalogue of vote fractions")
            out[int(c)] = np.stack([data.catalog(col, indices).astype(np.float64) for col in columns], axis=1)
    return out


def class_scores(votes: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Per class: the product of its deciding vote fractions, clipped to [0, 1]."""
    return {c: np.clip(v, 0.0, 1.0).prod(axis=1) for c, v in votes.items()}


def soft_targets(data_path: str | os.PathLike, indices: np.ndarray, class_ids: Sequence[int],
                 require_votes: bool = False) -> np.ndarray:
    """float32 p(second class) per image from the votes: score(second) / sum of both scores.

    An image whose classes both score 0 (no deciding votes at all) gets 0.5, and so does one
    without vote fractions (NaN: no catalogue row, or a blank cell) -- unless ``require_votes``,
    where that is an error: a training target of 0.5 would overrule the image's known class.
    """
    if len(class_ids) != 2:
        raise DataError(f"vote targets need a two-class task, got classes {list(class_ids)}")
    votes = read_votes(data_path, indices, class_ids)
    if require_votes:
        unknown = np.flatnonzero(np.any([np.isnan(v).any(axis=1) for v in votes.values()], axis=0))
        if len(unknown):
            raise DataError(f"{len(unknown)} of {len(indices)} image(s) have no vote fractions "
                            f"(NaN under '{CATALOG_GROUP}/', e.g. image {int(np.asarray(indices)[unknown[0]])}: "
                            "no catalogue row or a blank cell); import with a catalogue that covers every image, "
                            "or train with --targets labels")
    scores = class_scores(votes)
    neg, pos = scores[int(class_ids[0])], scores[int(class_ids[1])]
    total = neg + pos
    return np.where(total > 0, pos / np.where(total > 0, total, 1.0), 0.5).astype(np.float32)


def split_soft_targets(data_path: str | os.PathLike, manifest: dict, split: str) -> np.ndarray:
    """:func:`soft_targets` for one split of a manifest, in the order ``load_split`` gives images;
    the training targets, so every image must have its votes."""
    return soft_targets(data_path, split_indices(manifest, split), [int(c) for c in manifest["classes"]],
                        require_votes=True)


def vote_confidence(data_path: str | os.PathLike, indices: np.ndarray, class_ids: Sequence[int],
                    y: np.ndarray) -> np.ndarray:
    """Per image: the smallest deciding vote fraction of its own (labelled) class."""
    votes = read_votes(data_path, indices, class_ids)
    weakest = {c: v.min(axis=1) for c, v in votes.items()}
    return np.array([weakest[int(class_ids[k])][i] for i, k in enumerate(np.asarray(y, dtype=int))])


def accuracy_by_confidence(y: np.ndarray, p_positive: np.ndarray, confidence: np.ndarray,
                           levels: Sequence[float] = CONFIDENCE_LEVELS) -> list[dict]:
    """Accuracy (threshold 0.5) on the images whose vote confidence is >= each level."""

    y, p_positive, confidence = map(np.asarray, (y, p_positive, confidence))
    correct = predicted_positions(np.stack([1 - p_positive, p_positive], axis=1)) == y
    rows = []
    for level in levels:
        keep = confidence >= level
        rows.append({"min_vote": float(level), "n": int(keep.sum()),
                     "accuracy": float(correct[keep].mean()) if keep.any() else float("nan")})
    return rows


def calibration_against_votes(p_positive: np.ndarray, vote_target: np.ndarray, n_bins: int = 10) -> dict:
    """How predicted probabilities compare with the vote-based target.

    Returns the mean absolute difference, the Pearson correlation, and per bin of predicted
    probability the mean prediction and the mean vote target (a reliability table whose
    reference is the volunteers' split, not the thresholded label).
    """
    p, t = np.asarray(p_positive, dtype=float), np.asarray(vote_target, dtype=float)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    bins = [{"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": int((which == b).sum()),
             "mean_predicted": float(p[which == b].mean()), "mean_vote_target": float(t[which == b].mean())}
            for b in range(n_bins) if (which == b).any()]
    corr = float(np.corrcoef(p, t)[0, 1]) if len(p) > 1 and p.std() > 0 and t.std() > 0 else float("nan")
    return {"mean_abs_difference": float(np.abs(p - t).mean()), "correlation": corr, "bins": bins}


def vote_summary(data_path: str | os.PathLike, indices: np.ndarray, class_ids: Sequence[int], y: np.ndarray,
                 p_positive: np.ndarray) -> dict | None:
    """What ``evaluate`` reports about the votes of a two-class split: accuracy against vote
    confidence (all labels, deciding votes >= 0.6, >= 0.8) and calibration against the vote
    fractions; None when the data file carries no votes for these classes (synthetic or plain
    image folders)."""
    try:
        confidence = vote_confidence(data_path, indices, class_ids, y)
        target = soft_targets(data_path, indices, class_ids)
    except DataError:
        return None
    return {"accuracy_by_confidence": accuracy_by_confidence(y, p_positive, confidence),
            "calibration_against_votes": calibration_against_votes(p_positive, target)}
