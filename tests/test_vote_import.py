"""Importing images for their Galaxy Zoo votes: images without a class, classes from vote
fractions, ``data info`` on such files, and NO_CLASS in the Galaxy10 reader."""

import csv

import h5py
import numpy as np
import pytest
from PIL import Image

from galaxymorph.cli import main
from galaxymorph.data.galaxy10 import NO_CLASS, open_galaxy10, write_galaxy10
from galaxymorph.data.importers import import_images
from galaxymorph.data.info import describe, format_summary
from galaxymorph.data.tree import load_tree
from galaxymorph.errors import DataError

TREE = load_tree("gz2")
ROUND = {"t01_smooth_or_features_a01_smooth": 0.9, "t07_rounded_a16_completely_round": 0.8}
BARRED = {"t01_smooth_or_features_a02_features_or_disk": 0.9, "t02_edgeon_a05_no": 0.9,
          "t04_spiral_a08_spiral": 0.8, "t03_bar_a06_bar": 0.7}
UNBARRED = {**BARRED, "t03_bar_a06_bar": 0.2, "t03_bar_a07_no_bar": 0.8}
UNDECIDED = {"t01_smooth_or_features_a01_smooth": 0.5, "t07_rounded_a17_in_between": 0.3}


def write_image(path, seed, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(path, format=fmt)
    return path


def write_vote_catalog(path, rows, with_counts=True, with_fractions=True, extra=None):
    """``rows``: (file, ra, dec, {answer: fraction} or None for blank votes)."""
    header = ["file", "ra", "dec"]
    for answer in TREE.answers:
        header += ([answer + "_count"] if with_counts else []) + ([answer + "_fraction"] if with_fractions else [])
    header += list(extra or [])
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for file, ra, dec, votes in rows:
            cells = [file, ra, dec]
            for answer in TREE.answers:
                f = None if votes is None else votes.get(answer, 0.0)
                if with_counts:
                    cells.append("" if f is None else round(40 * f))
                if with_fractions:
                    cells.append("" if f is None else f)
            w.writerow(cells + [1.0] * len(extra or []))
    return path


@pytest.fixture
def vote_folder(tmp_path):
    """Four images with no class folder (JPEG and PNG), a fifth with a class folder, and a catalogue."""
    src = tmp_path / "votes"
    write_image(src / "images" / "a.jpg", 0, "JPEG")
    write_image(src / "images" / "b.png", 1)
    write_image(src / "images" / "c.jpg", 2, "JPEG")
    write_image(src / "images" / "d.png", 3)  # blank votes: skipped as without a class
    write_image(src / "round_smooth" / "e.png", 4)  # votes say barred spiral
    catalog = write_vote_catalog(tmp_path / "votes.csv", [
        ("images/a.jpg", 10.0, 1.0, ROUND), ("images/b.png", 11.0, 1.0, UNBARRED),
        ("images/c.jpg", 12.0, 1.0, UNDECIDED), ("images/d.png", 13.0, 1.0, None),
        ("round_smooth/e.png", 14.0, 1.0, BARRED)])
    return src, catalog


def test_images_without_a_class_are_kept_for_their_votes(vote_folder, tmp_path):
    src, catalog = vote_folder
    out = tmp_path / "votes.h5"
    report = import_images(src, out, catalog=catalog, progress=False)
    assert report.votes and report.no_class == 3 and report.counts == {2: 1}
    assert [str(p) for p, _ in report.unlabelled] == ["images/d.png"]
    text = str(report)
    assert "no class (ans 255, kept for their votes): 3" in text and "vote counts" in text
    with open_galaxy10(out) as f:
        assert f.labels.tolist() == [NO_CLASS] * 3 + [2]  # images/a, b, c; round_smooth/e
        assert f.class_counts() == {2: 1} and f.n_no_class() == 3
        columns = f.catalog_columns()
        assert set(TREE.count_columns()) <= set(columns) and set(TREE.fraction_columns()) <= set(columns)
        np.testing.assert_allclose(f.catalog("t07_rounded_a16_completely_round_fraction"), [0.8, 0, 0, 0])
        counts = TREE.read_counts(f)
        assert counts.shape == (4, 28) and (counts.sum(axis=1) > 0).all()


def test_without_vote_counts_unlabelled_images_are_still_refused(vote_folder, tmp_path):
    src, _ = vote_folder
    fractions_only = write_vote_catalog(tmp_path / "fractions.csv", [("images/a.jpg", 1, 1, ROUND)],
                                        with_counts=False)
    report = import_images(src, tmp_path / "x.h5", catalog=fractions_only, progress=False)
    assert not report.votes and report.no_class == 0 and report.n_written == 1
    assert len(report.unlabelled) == 4
    with pytest.raises(DataError, match="nothing imported"):
        import_images(src / "images", tmp_path / "y.h5", progress=False)


def test_classes_from_votes_overrule_folders_and_count_disagreements(vote_folder, tmp_path):
    src, catalog = vote_folder
    out = tmp_path / "classes.h5"
    report = import_images(src, out, catalog=catalog, classes_from="gz2-votes", progress=False)
    assert report.counts == {2: 1, 5: 1, 6: 1} and report.no_class == 1 and report.disagreements == 1
    text = str(report)
    assert "1 disagree with their folder or catalogue class" in text
    assert "class 6 (Unbarred Tight Spiral): 1 (any unbarred spiral" in text
    with open_galaxy10(out) as f:
        assert f.labels.tolist() == [2, 6, NO_CLASS, 5]
        assert f.attrs["classes_from"] == "gz2-votes"
    info = format_summary(describe(out))
    assert "arm-winding" in info and "no class (ans 255)" in info


def test_classes_from_votes_needs_the_vote_columns(vote_folder, tmp_path):
    src, _ = vote_folder
    with pytest.raises(DataError, match="needs a catalogue of Galaxy Zoo 2 vote counts"):
        import_images(src, tmp_path / "x.h5", classes_from="gz2-votes", progress=False)
    counts_only = write_vote_catalog(tmp_path / "counts.csv", [("images/a.jpg", 1, 1, ROUND)],
                                     with_fractions=False)
    with pytest.raises(DataError, match="lacks the vote fraction column"):
        import_images(src, tmp_path / "x.h5", catalog=counts_only, classes_from="gz2-votes", progress=False)
    with pytest.raises(DataError, match="unknown source of classes"):
        import_images(src, tmp_path / "x.h5", classes_from="gz3", progress=False)


def test_cli_import_classes_from_and_info(vote_folder, tmp_path, capsys):
    src, catalog = vote_folder
    out = tmp_path / "cli.h5"
    assert main(["data", "import", str(src), "--catalog", str(catalog), "--out", str(out),
                 "--classes-from", "gz2-votes"]) == 0
    assert "classes from gz2-votes: 3 with a class, 1 without a class" in capsys.readouterr().out
    assert main(["data", "info", str(out), "--grid", str(tmp_path / "grid.png")]) == 0
    printed = capsys.readouterr().out
    assert "votes     gz2 decision tree vote counts (28 answers) for 4 of 4 images" in printed
    assert (tmp_path / "grid.png").is_file()


def test_no_class_images_are_valid_but_never_selected(tmp_path):
    images = np.zeros((4, 256, 256, 3), np.uint8)
    path = write_galaxy10(tmp_path / "n.h5", images, [2, NO_CLASS, 5, NO_CLASS])
    with open_galaxy10(path) as f:
        assert f.class_counts() == {2: 1, 5: 1} and f.n_no_class() == 2
        assert f.select([2, 5]).indices.tolist() == [0, 2]
    with h5py.File(path, "a") as h5:
        h5["ans"][1] = 254
    with pytest.raises(DataError, match=r"class ids \[254\]"):
        open_galaxy10(path)
