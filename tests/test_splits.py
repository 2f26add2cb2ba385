"""Stratified seeded splits and their manifest."""

import json

import numpy as np
import pytest

from galaxymorph.data.galaxy10 import write_galaxy10
from galaxymorph.data.splits import (check_manifest_matches, load_manifest, prepare, split_indices,
                                     stratified_split)
from galaxymorph.errors import DataError


def test_stratified_split_keeps_class_mix_and_is_seeded():
    labels = np.array([0] * 100 + [1] * 60)
    a = stratified_split(labels, [0.7, 0.15, 0.15], seed=3)
    b = stratified_split(labels, [0.7, 0.15, 0.15], seed=3)
    c = stratified_split(labels, [0.7, 0.15, 0.15], seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert sorted(np.concatenate(a).tolist()) == list(range(160))  # a partition
    assert [int(np.sum(labels[p] == 1)) for p in a] == [42, 9, 9]
    assert [int(np.sum(labels[p] == 0)) for p in a] == [70, 15, 15]


def test_tiny_classes_still_give_every_split_one():
    parts = stratified_split(np.array([0, 0, 0, 1, 1, 1]), [0.8, 0.1, 0.1], seed=0)
    assert [len(p) for p in parts] == [2, 2, 2]
    with pytest.raises(DataError, match="only 2 image"):
        stratified_split(np.array([0, 0, 1, 1, 1]), [0.8, 0.1, 0.1], seed=0)


def test_prepare_writes_a_manifest_tied_to_the_file(tiny_h5, tmp_path):
    out = tmp_path / "split.json"
    manifest = prepare(tiny_h5, out, classes=[2, 5], seed=1)
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(manifest))
    assert saved["classes"] == [2, 5] and saved["class_names"] == ["Round Smooth", "Barred Spiral"]
    train, val, test = (set(split_indices(saved, s)) for s in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert len(train | val | test) == 40
    assert load_manifest(out, tiny_h5)["source"]["sha256"] == saved["source"]["sha256"]


def test_manifest_of_another_file_is_refused(tiny_h5, tmp_path):
    manifest = prepare(tiny_h5, tmp_path / "split.json")
    other = write_galaxy10(tmp_path / "other.h5", np.zeros((6, 256, 256, 3), np.uint8), [2, 5] * 3)
    with pytest.raises(DataError, match="different file"):
        check_manifest_matches(manifest, other)


def test_not_a_manifest(tmp_path):
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="not a galaxymorph split manifest"):
        load_manifest(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{oops")
    with pytest.raises(DataError, match="not JSON"):
        load_manifest(tmp_path / "y.json")
    with pytest.raises(DataError, match="not found"):
        load_manifest(tmp_path / "z.json")


def test_exact_duplicates_across_splits_are_reported(tmp_path):
    images = np.zeros((20, 256, 256, 3), np.uint8)
    for i in range(20):
        images[i, i, i] = 255  # all distinct ...
    images[19] = images[0]  # ... except one pair
    path = write_galaxy10(tmp_path / "dup.h5", images, [2, 5] * 10)
    found = []
    for seed in range(10):  # some seed puts the pair in two different splits
        found += prepare(path, None, seed=seed)["duplicates"]
    assert found and all(sorted(g["indices"]) == [0, 19] for g in found)


@pytest.mark.parametrize("fractions", [[float("nan"), 0.5, 0.5], [0.5, float("inf"), 0.5], [-0.1, 0.6, 0.5]])
def test_fractions_must_be_finite_and_positive(fractions):
    from galaxymorph.data.splits import check_fractions

    with pytest.raises(DataError, match="--fractions needs three positive"):  # NaN made a 2/2/116 split
        check_fractions(fractions)


@pytest.mark.parametrize("argv, message", [
    (["--fractions", "nan", "0.5", "0.5"], "--fractions needs three positive"),
    (["--seed", str(2**70)], "--seed must be between 0 and 2"),
])
def test_prepare_refuses_nan_fractions_and_huge_seeds_in_one_line(tiny_h5, tmp_path, capsys, argv, message):
    from galaxymorph.cli import main

    out = tmp_path / "split.json"
    assert main(["data", "prepare", str(tiny_h5), "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


def _edited_manifest(tiny_h5, tmp_path, edit):
    manifest = prepare(tiny_h5, None, classes=[2, 5], seed=1, check_duplicates=False)
    edit(manifest)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["splits"]["test"].extend(m["splits"]["test"]), "index \\d+ is listed twice in the test split"),
    (lambda m: m["splits"]["val"].append(m["splits"]["train"][0]), "index \\d+ is in both the train and the val split"),
    (lambda m: m["splits"]["test"].append(40), "the test split holds index 40, outside the data file's 40 images"),
    (lambda m: m["splits"]["val"].append(-1), "the val split holds index -1, outside"),
    (lambda m: m["splits"]["train"].append(3.0), "the train split holds 3.0, not an integer image index"),
    (lambda m: m["splits"]["train"].append(True), "the train split holds True, not an integer"),
    (lambda m: m["splits"]["test"].append("7"), "the test split holds '7', not an integer"),
    (lambda m: m["splits"].pop("val"), "'splits' must hold exactly the train, val, test"),
    (lambda m: m["splits"].update(test=[]), "the test split must be a non-empty list"),
    (lambda m: m.pop("classes"), "lacks 'classes'"),
    (lambda m: m["source"].pop("n_images"), "'source' must give the data file's sha256 and n_images"),
])
def test_a_damaged_manifest_is_one_line_naming_split_and_problem(tiny_h5, tmp_path, edit, message):
    path = _edited_manifest(tiny_h5, tmp_path, edit)
    with pytest.raises(DataError, match=message) as err:  # were a double count, a leak or a traceback
        load_manifest(path)
    assert "\n" not in str(err.value)


def test_a_manifest_whose_image_count_is_not_the_files_is_refused(tiny_h5, tmp_path):
    def shrink(m):
        m["source"]["n_images"] = 1000

    with pytest.raises(DataError, match="has 40"):
        load_manifest(_edited_manifest(tiny_h5, tmp_path, shrink), tiny_h5)
