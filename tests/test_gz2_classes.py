"""The Galaxy10 class rule from Galaxy Zoo 2 vote fractions: every branch, one row each."""

import numpy as np
import pytest

from galaxymorph.data.galaxy10 import NO_CLASS
from galaxymorph.data.gz2_classes import RULES, classes_from_votes, needed_answers
from galaxymorph.errors import DataError

SMOOTH, FEATURES = "t01_smooth_or_features_a01_smooth", "t01_smooth_or_features_a02_features_or_disk"
EDGE, NOT_EDGE = "t02_edgeon_a04_yes", "t02_edgeon_a05_no"
BAR, NO_BAR, SPIRAL = "t03_bar_a06_bar", "t03_bar_a07_no_bar", "t04_spiral_a08_spiral"
ODD, MERGER, DISTURBED, RING = ("t06_odd_a14_yes", "t08_odd_feature_a24_merger",
                                "t08_odd_feature_a21_disturbed", "t08_odd_feature_a19_ring")
ROUND, BETWEEN, CIGAR = "t07_rounded_a16_completely_round", "t07_rounded_a17_in_between", "t07_rounded_a18_cigar_shaped"
ROUNDED, BOXY, NO_BULGE = "t09_bulge_shape_a25_rounded", "t09_bulge_shape_a26_boxy", "t09_bulge_shape_a27_no_bulge"
SPIRAL_BASE = {FEATURES: 0.9, NOT_EDGE: 0.9, SPIRAL: 0.8}

CASES = [  # (fractions that are not 0, expected class)
    ({ODD: 0.6, MERGER: 0.6}, 1),
    ({ODD: 0.6, MERGER: 0.6, SMOOTH: 0.9, ROUND: 0.9}, 1),  # merger is tried first
    ({ODD: 0.6, DISTURBED: 0.5}, 0),
    ({ODD: 0.4, DISTURBED: 0.9}, NO_CLASS),
    ({ODD: 0.9, RING: 0.9, SMOOTH: 0.8, ROUND: 0.8}, 2),  # odd, but neither merger nor disturbed
    ({SMOOTH: 0.5, ROUND: 0.5}, 2),  # the threshold itself passes
    ({SMOOTH: 0.7, BETWEEN: 0.6}, 3),
    ({SMOOTH: 0.7, CIGAR: 0.6}, 4),
    ({SMOOTH: 0.49, ROUND: 0.9}, NO_CLASS),
    ({SMOOTH: 0.9, ROUND: 0.4, BETWEEN: 0.4}, NO_CLASS),
    ({FEATURES: 0.8, EDGE: 0.9, NO_BULGE: 0.6}, 8),
    ({FEATURES: 0.8, EDGE: 0.9, ROUNDED: 0.3, BOXY: 0.3}, 9),  # rounded + boxy together
    ({FEATURES: 0.8, EDGE: 0.9, ROUNDED: 0.3, BOXY: 0.1, NO_BULGE: 0.4}, NO_CLASS),
    ({FEATURES: 0.4, EDGE: 0.9, NO_BULGE: 0.9}, NO_CLASS),
    ({**SPIRAL_BASE, BAR: 0.6}, 5),
    ({**SPIRAL_BASE, NO_BAR: 0.6}, 6),
    ({**SPIRAL_BASE, BAR: 0.4, NO_BAR: 0.4}, NO_CLASS),
    ({**SPIRAL_BASE, SPIRAL: 0.4, BAR: 0.9}, NO_CLASS),
    ({**SPIRAL_BASE, NOT_EDGE: 0.4, BAR: 0.9}, NO_CLASS),
    ({**SPIRAL_BASE, FEATURES: 0.3, BAR: 0.9}, NO_CLASS),
    ({}, NO_CLASS),
]


def _fractions(cases, fill=0.0):
    return {a: np.array([c[0].get(a, fill) for c in cases]) for a in needed_answers()}


def test_every_branch_of_the_rule():
    got = classes_from_votes(_fractions(CASES))
    assert got.dtype == np.uint8
    assert got.tolist() == [expected for _, expected in CASES]
    # every rule's class is reached by some row above, so each branch is exercised
    assert {c for c, _ in RULES} <= set(got.tolist())


def test_unknown_fractions_never_decide_and_missing_answers_are_named():
    nan = _fractions([({SMOOTH: 0.9}, None)], fill=np.nan)
    assert classes_from_votes(nan).tolist() == [NO_CLASS]
    partial = _fractions(CASES[:1])
    del partial[MERGER]
    with pytest.raises(DataError, match=MERGER):
        classes_from_votes(partial)
