"""``data merge``: Galaxy10-layout files joined image by image, their columns, and its refusals."""

import csv
import shutil

import h5py
import numpy as np
import pytest

from galaxymorph.cli import main
from galaxymorph.data.galaxy10 import NO_CLASS, Galaxy10Writer, open_galaxy10
from galaxymorph.data.merge import close_pairs, merge_files
from galaxymorph.errors import DataError, GalaxymorphError

from conftest import SHARED_DATA


def _write(path, ans, ra, dec, catalog, seed=0, **attrs):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (len(ans), 256, 256, 3), dtype=np.uint8)
    with Galaxy10Writer(path, attrs=attrs) as w:
        w.append(images, ans)
        w.write_columns(catalog=catalog, ra=ra, dec=dec)
    return path, images


def test_merge_joins_images_classes_columns_and_warns_of_duplicates(tmp_path):
    a, img_a = _write(tmp_path / "a.h5", [2, 5, 5], [10.0, 20.0, 30.0], [0.0, 0.0, 0.0],
                      {"smooth": [0.1, 0.2, 0.3], "only_a": [1, 1, 1]}, seed=1)
    # the second image of b is 0.5 arcsec from the first of a: the same galaxy twice
    b, img_b = _write(tmp_path / "b.h5", [NO_CLASS, 2], [40.0, 10.0 + 0.5 / 3600], [5.0, 0.0],
                      {"only_b": [2, 2], "smooth": [0.7, 0.8]}, seed=2, classes_from="gz2-votes")
    out = tmp_path / "ab.h5"
    report = merge_files([a, b], out, progress=False)
    with open_galaxy10(out) as f:
        assert len(f) == 5 and f.labels.tolist() == [2, 5, 5, NO_CLASS, 2]
        np.testing.assert_array_equal(f.images(), np.concatenate([img_a, img_b]))
        np.testing.assert_allclose(f.column("ra"), [10, 20, 30, 40, 10 + 0.5 / 3600])
        assert f.catalog_columns() == ["smooth"]
        np.testing.assert_allclose(f.catalog("smooth"), [0.1, 0.2, 0.3, 0.7, 0.8], rtol=1e-6)
        assert f.attrs["classes_from"] == "gz2-votes"
    assert report.counts == {2: 2, 5: 2} and report.no_class == 1
    assert report.dropped_columns == ["only_a", "only_b"] and report.duplicates == [(0, 4)]
    text = str(report)
    assert "dropped 2 catalog/ column(s) not in every input: only_a, only_b" in text
    assert "warning: 1 pair(s)" in text and "leak" in text


def test_merge_streams_in_batches(tmp_path, monkeypatch):
    import galaxymorph.data.merge as merge

    monkeypatch.setattr(merge, "BATCH", 2)
    sizes = []
    append = Galaxy10Writer.append
    monkeypatch.setattr(Galaxy10Writer, "append", lambda self, images, ans, **c: (sizes.append(len(images)),
                                                                                  append(self, images, ans, **c)))
    a, _ = _write(tmp_path / "a.h5", [2] * 5, np.arange(5.0), np.zeros(5), {})
    b, _ = _write(tmp_path / "b.h5", [5] * 3, np.arange(3.0) + 10, np.zeros(3) + 1, {})
    sizes.clear()
    merge_files([a, b], tmp_path / "out.h5", progress=False)
    assert sum(sizes) == 8 and max(sizes) < 5  # never a whole input at once


def test_merge_refusals(tmp_path, capsys):
    a, _ = _write(tmp_path / "a.h5", [2], [1.0], [1.0], {})
    b, _ = _write(tmp_path / "b.h5", [5], [2.0], [2.0], {})
    small = tmp_path / "small.h5"
    with h5py.File(small, "w") as h5:
        h5["images"] = np.zeros((1, 128, 128, 3), np.uint8)
        h5["ans"] = np.array([2], np.uint8)
    with pytest.raises(DataError, match=r"'images' has shape \(1, 128, 128, 3\)"):
        merge_files([a, small], tmp_path / "x.h5", progress=False)
    with pytest.raises(DataError, match="two or more"):
        merge_files([a], tmp_path / "x.h5", progress=False)
    with pytest.raises(DataError, match="given twice"):
        merge_files([a, tmp_path / "." / "a.h5"], tmp_path / "x.h5", progress=False)
    with pytest.raises(GalaxymorphError, match="already exists"):
        merge_files([a, b], b, progress=False)
    assert not (tmp_path / "x.h5").exists()
    # the command line: one line and status 2 for an existing --out; --overwrite replaces it
    out = tmp_path / "ab.h5"
    out.write_bytes(b"old")
    assert main(["data", "merge", str(a), str(b), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"old"
    assert main(["data", "merge", str(a), str(b), "--out", str(out), "--overwrite"]) == 0
    assert "wrote 2 image(s)" in capsys.readouterr().out
    with open_galaxy10(out) as f:
        assert f.labels.tolist() == [2, 5]


def test_close_pairs_only_across_groups_and_never_for_unknown_positions():
    ra = np.array([100.0, 100 + 0.5 / 3600, 359.99995, 0.00005, np.nan, 100.0, 200.0, 200 + 0.3 / 3600])
    dec = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 2 / 3600, 0.0, 0.0])
    group = np.array([0, 1, 0, 1, 1, 1, 0, 0])
    # 0-1: 0.5"; 2-3: 0.36" across ra = 0; 0-5: 2" (too far); 4: unknown; 6-7: one group
    assert close_pairs(ra, dec, group) == [(0, 1), (2, 3)]
    assert close_pairs(ra, dec, np.zeros(8, int)) == []


def test_real_gz2_tree_and_sdss_gz2_import_and_merge(tmp_path):
    """A few real galaxies of each set: the tree's without classes, SDSS's with folder classes."""
    tree_dir, sdss_dir = SHARED_DATA / "gz2_tree", SHARED_DATA / "sdss_gz2"
    if not ((tree_dir / "catalog.csv").is_file() and (sdss_dir / "catalog.csv").is_file()):
        pytest.skip(f"real gz2_tree / sdss_gz2 not present under {SHARED_DATA}")
    from galaxymorph.data.importers import import_images

    def subset(src, name, n, pick=lambda r: True):
        with open(src / "catalog.csv", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = [r for r in reader if pick(r)][:n]
            header = reader.fieldnames
        dest = tmp_path / name
        for r in rows:
            (dest / r["file"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / r["file"], dest / r["file"])
        with open(tmp_path / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, header)
            w.writeheader()
            w.writerows(rows)
        return dest, tmp_path / f"{name}.csv", rows

    tree_src, tree_csv, tree_rows = subset(tree_dir, "tree", 12)
    sdss_src, sdss_csv, _ = subset(sdss_dir, "sdss", 8, lambda r: r["file"].startswith("round_smooth/"))
    tree = import_images(tree_src, tmp_path / "tree.h5", catalog=tree_csv, pixel_scale=0.2, progress=False)
    assert tree.n_written == 12 and tree.no_class == 12 and tree.votes and tree.skipped == []
    sdss = import_images(sdss_src, tmp_path / "sdss.h5", catalog=sdss_csv, pixel_scale=0.2, progress=False)
    assert sdss.counts == {2: 8}
    report = merge_files([tmp_path / "tree.h5", tmp_path / "sdss.h5"], tmp_path / "all.h5", progress=False)
    assert report.n_written == 20 and report.no_class == 12 and report.counts == {2: 8}
    assert report.duplicates == []  # the sets share no galaxy
    with open_galaxy10(tmp_path / "all.h5") as f:
        counts = f.catalog("t01_smooth_or_features_a01_smooth_count")
        first = sorted(tree_rows, key=lambda r: r["file"])[0]
        assert counts[0] == float(first["t01_smooth_or_features_a01_smooth_count"])
        assert "galaxy10_class" not in f.catalog_columns() and len(f.catalog_columns()) >= 84
    votes = import_images(tree_src, tmp_path / "votes.h5", catalog=tree_csv, classes_from="gz2-votes",
                          progress=False)
    assert votes.n_written == 12 and sum(votes.counts.values()) + votes.no_class == 12
