"""The real benchmark's training subsets (benchmarks.studies.common.subset_manifest)."""

import json

import h5py
import numpy as np

from benchmarks.studies.common import subset_manifest


def _split(tmp_path):
    labels = np.array([2] * 60 + [5] * 20, dtype=np.uint8)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.create_dataset("ans", data=labels)
    train = list(range(0, 80, 2))  # 30 Round Smooth, 10 Barred Spiral
    manifest = {"source": {"path": str(tmp_path / "d.h5")}, "classes": [2, 5],
                "splits": {"train": train, "val": [1, 3], "test": [5, 7]},
                "counts": {"train": {"2": 30, "5": 10}}}
    path = tmp_path / "seed0.json"
    path.write_text(json.dumps(manifest))
    return path, labels


def test_a_share_keeps_the_class_proportions_and_the_other_splits(tmp_path):
    split, labels = _split(tmp_path)
    cut = json.loads(subset_manifest(split, 0, tmp_path / "subsets", 0, fraction=0.5).read_text())
    train = np.array(cut["splits"]["train"])
    assert (labels[train] == 2).sum() == 15 and (labels[train] == 5).sum() == 5
    assert set(train) <= set(range(0, 80, 2)) and len(set(train)) == 20
    assert cut["splits"]["val"] == [1, 3] and cut["splits"]["test"] == [5, 7]
    assert cut["counts"]["train"] == {"2": 15, "5": 5}


def test_a_count_per_class_is_capped_by_what_the_class_has(tmp_path):
    split, labels = _split(tmp_path)
    cut = json.loads(subset_manifest(split, 12, tmp_path / "subsets", 0).read_text())
    train = np.array(cut["splits"]["train"])
    assert (labels[train] == 2).sum() == 12 and (labels[train] == 5).sum() == 10
