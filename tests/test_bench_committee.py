"""The real-benchmark committee (benchmarks/studies/committee.py): averaging and shared errors."""

import numpy as np
import pytest

from benchmarks.studies import committee
from benchmarks.studies.common import metrics


def _member(p, y, index):
    conf = np.ones(len(y))
    return {0: {"index": np.asarray(index), "y": np.asarray(y), "p": np.asarray(p, float), "confidence": conf,
                "metrics": metrics(np.asarray(y), np.asarray(p, float), conf >= 0.8)}}


def test_committee_averages_and_counts_shared_errors():
    y, index = [0, 0, 1, 1], [3, 5, 8, 9]
    members = {"a": _member([0.1, 0.6, 0.9, 0.2], y, index),   # wrong on images 5 and 9
               "b": _member([0.2, 0.2, 0.8, 0.3], y, index),   # wrong on image 9
               "c": _member([0.3, 0.7, 0.4, 0.1], y, index)}   # wrong on 5, 8 and 9
    s = committee.committee_scores(members, 0)
    np.testing.assert_allclose(s["p"], [0.2, 0.5, 0.7, 0.2])
    np.testing.assert_allclose(s["share_wrong"], [0, 2 / 3, 1 / 3, 1])
    # p = 0.5 counts as the positive class, as in benchmarks.studies.common.metrics: image 5 is an error
    assert s["metrics"]["accuracy"] == pytest.approx(0.5)
    assert s["member_accuracy"] == pytest.approx(np.mean([0.5, 0.75, 0.25]))


def test_committee_refuses_members_scored_on_different_images():
    members = {"a": _member([0.1, 0.9], [0, 1], [1, 2]), "b": _member([0.1, 0.9], [0, 1], [1, 3])}
    with pytest.raises(SystemExit, match="differ"):
        committee.committee_scores(members, 0)
