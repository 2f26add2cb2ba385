"""Galaxy10 classes from Galaxy Zoo 2 vote fractions: the one rule (``--classes-from gz2-votes``).

Each rule is a list of conditions "these answers' fractions, summed, are at least 0.5"; the
first rule whose conditions all hold gives the class, and a galaxy no rule matches has no class
(``NO_CLASS``). A missing fraction (NaN) never passes a condition.

Galaxy10 splits unbarred spirals into tight (6) and loose (7) by how tightly the arms wind, a
question (t10) the GZ2 catalogues here lack: every unbarred spiral gets class 6, and class 7 is
never given.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .galaxy10 import NO_CLASS

THRESHOLD = 0.5
SOURCES = ("gz2-votes",)  # values of ``--classes-from``
WINDING_NOTE = "any unbarred spiral: the votes have no arm-winding question to split 6 from 7"

_SMOOTH = "t01_smooth_or_features_a01_smooth"
_FEATURES = "t01_smooth_or_features_a02_features_or_disk"
_EDGE_ON = "t02_edgeon_a04_yes"
_NOT_EDGE_ON = "t02_edgeon_a05_no"
_ODD = "t06_odd_a14_yes"

# (class, conditions): each condition is a tuple of answers whose fractions are summed and
# compared with THRESHOLD. Order matters: the first match wins.
RULES: tuple[tuple[int, tuple[tuple[str, ...], ...]], ...] = (
    (1, ((_ODD,), ("t08_odd_feature_a24_merger",))),
    (0, ((_ODD,), ("t08_odd_feature_a21_disturbed",))),
    (2, ((_SMOOTH,), ("t07_rounded_a16_completely_round",))),
    (3, ((_SMOOTH,), ("t07_rounded_a17_in_between",))),
    (4, ((_SMOOTH,), ("t07_rounded_a18_cigar_shaped",))),
    (8, ((_FEATURES,), (_EDGE_ON,), ("t09_bulge_shape_a27_no_bulge",))),
    (9, ((_FEATURES,), (_EDGE_ON,), ("t09_bulge_shape_a25_rounded", "t09_bulge_shape_a26_boxy"))),
    (5, ((_FEATURES,), (_NOT_EDGE_ON,), ("t04_spiral_a08_spiral",), ("t03_bar_a06_bar",))),
    (6, ((_FEATURES,), (_NOT_EDGE_ON,), ("t04_spiral_a08_spiral",), ("t03_bar_a07_no_bar",))),
)


def needed_answers() -> list[str]:
    """The answers whose fractions the rule reads, in the order they first appear."""
    out: list[str] = []
    for _, conditions in RULES:
        for answers in conditions:
            out += [a for a in answers if a not in out]
    return out


def classes_from_votes(fractions: dict[str, np.ndarray]) -> np.ndarray:
    """Galaxy10 class ids (uint8, ``NO_CLASS`` where no rule decides) from vote fractions.

    ``fractions`` maps each answer name of :func:`needed_answers` (``t03_bar_a06_bar``, ...) to
    an array of raw vote fractions, one per galaxy (NaN = unknown).
    """
    missing = [a for a in needed_answers() if a not in fractions]
    if missing:
        raise DataError(f"classes from votes need the vote fraction of {len(missing)} more answer(s) "
                        f"(first: {missing[0]})")
    values = {a: np.asarray(fractions[a], dtype=np.float64) for a in needed_answers()}
    n = len(next(iter(values.values())))
    if any(v.shape != (n,) for v in values.values()):
        raise DataError("vote fractions must be 1-D arrays of one length")
    out = np.full(n, NO_CLASS, dtype=np.uint8)
    undecided = np.ones(n, dtype=bool)
    with np.errstate(invalid="ignore"):
        for class_id, conditions in RULES:
            match = undecided.copy()
            for answers in conditions:
                match &= sum(values[a] for a in answers) >= THRESHOLD
            out[match] = class_id
            undecided &= ~match
    return out
