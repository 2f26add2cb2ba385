"""The Galaxy10 layout: validated lazy reading, class subsets, atomic writing."""

import h5py
import numpy as np
import pytest

from galaxymorph.data.galaxy10 import (CLASS_NAMES, Galaxy10Writer, open_galaxy10, validate_classes,
                                       write_galaxy10)
from galaxymorph.errors import DataError


def test_class_names_are_galaxy10s():
    assert CLASS_NAMES[2] == "Round Smooth" and CLASS_NAMES[5] == "Barred Spiral"
    assert sorted(CLASS_NAMES) == list(range(10))


def test_reads_lazily_and_selects_classes_in_given_order(tiny_h5):
    with open_galaxy10(tiny_h5) as data:
        assert len(data) == 40
        assert data.class_counts() == {2: 20, 5: 20}
        sel = data.select([5, 2])  # order given -> labels: 5 -> 0, 2 -> 1
        assert sel.class_names == ["Barred Spiral", "Round Smooth"]
        assert np.all(sel.labels[data.labels[sel.indices] == 5] == 0)
        imgs = data.images([3, 1, 3])  # any order, repeats allowed
        assert imgs.dtype == np.uint8 and imgs.shape == (3, 256, 256, 3)
        assert np.array_equal(imgs[0], imgs[2])
        assert np.array_equal(imgs[1], data.images([1])[0])
        assert data.column("pxscale")[0] == pytest.approx(0.262)
        assert data.column("redshift") is None


def test_sha256_is_of_the_files_bytes(tiny_h5):
    import hashlib

    with open_galaxy10(tiny_h5) as data:
        assert data.sha256 == hashlib.sha256(tiny_h5.read_bytes()).hexdigest()


@pytest.mark.parametrize("classes, message", [
    ([2, 11], "unknown class id 11"),
    ([2], "at least two classes"),
    ([2, 2], "given twice"),
    ([2, "x"], "not an integer"),
])
def test_bad_class_subsets_are_named(classes, message):
    with pytest.raises(DataError, match=message):
        validate_classes(classes)


def test_a_class_with_no_images_is_named(tiny_h5):
    with open_galaxy10(tiny_h5) as data, pytest.raises(DataError, match=r"no images of class 7 \(Unbarred Loose"):
        data.select([2, 7])


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="not found"):
        open_galaxy10(tmp_path / "nope.h5")
    with pytest.raises(DataError, match="folder"):
        open_galaxy10(tmp_path)


def test_not_hdf5(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"this is not HDF5")
    with pytest.raises(DataError, match="not a readable HDF5"):
        open_galaxy10(bad)


def _h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f[k] = v
    return path


@pytest.mark.parametrize("datasets, message", [
    (dict(ans=np.zeros(2, np.uint8)), "no 'images' dataset"),
    (dict(images=np.zeros((2, 256, 256, 3), np.uint8)), "no 'ans' dataset"),
    (dict(images=np.zeros((2, 64, 64, 3), np.uint8), ans=np.zeros(2, np.uint8)), r"expected \(N, 256, 256, 3\)"),
    (dict(images=np.zeros((2, 256, 256, 3), np.float32), ans=np.zeros(2, np.uint8)), "expected uint8"),
    (dict(images=np.zeros((2, 256, 256, 3), np.uint8), ans=np.zeros(3, np.uint8)), "to match 'images'"),
    (dict(images=np.zeros((2, 256, 256, 3), np.uint8), ans=np.array([1, 12], np.uint8)), "outside Galaxy10"),
    (dict(images=np.zeros((2, 256, 256, 3), np.uint8), ans=np.zeros(2), ), "expected integer"),
    (dict(images=np.zeros((2, 256, 256, 3), np.uint8), ans=np.zeros(2, np.uint8), ra=np.zeros(3)), "'ra' has shape"),
])
def test_wrong_layouts_say_what_is_wrong(tmp_path, datasets, message):
    with pytest.raises(DataError, match=message):
        open_galaxy10(_h5(tmp_path / "wrong.h5", **datasets))


def test_writer_is_atomic_and_streams(tmp_path):
    out = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with Galaxy10Writer(out) as w:
            w.append(np.zeros((2, 256, 256, 3), np.uint8), [2, 5])
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind
    with Galaxy10Writer(out) as w:
        for _ in range(3):
            w.append(np.full((2, 256, 256, 3), 7, np.uint8), [2, 5], ra=[1.0, 2.0])
    with open_galaxy10(out) as data:
        assert len(data) == 6 and data.column("ra").tolist() == [1.0, 2.0] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def test_writer_rejects_wrong_images(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_galaxy10(tmp_path / "x.h5", np.zeros((1, 256, 256, 3), np.float32), [2])
    assert not (tmp_path / "x.h5").exists()


def test_reads_the_real_reference_cutouts(reference_h5):
    with open_galaxy10(reference_h5) as data:
        assert len(data) == 110
        assert data.class_counts() == {c: 11 for c in range(10)}
        sel = data.select([2, 5])
        assert len(sel.indices) == 22 and data.images(sel.indices[:2]).shape == (2, 256, 256, 3)


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    from galaxymorph.fileio import write_text

    mask = os.umask(0o022)
    try:
        path = write_text(tmp_path / "x.txt", "hello")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_label_positions_one_lookup_for_every_stage():
    from galaxymorph.data.galaxy10 import label_positions

    assert label_positions(np.array([5, 2, 5, 7]), [2, 5, 7]).tolist() == [1, 0, 1, 2]
    assert label_positions(np.array([], dtype=np.uint8), [2, 5]).tolist() == []
    with pytest.raises(DataError, match=r"\[3\]"):
        label_positions(np.array([2, 3]), [2, 5])


def _corrupt_chunk(path, dataset: str, row: int) -> None:
    """Overwrite the start of the compressed chunk holding ``row`` of ``dataset`` with junk."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info_by_coord((row,) + (0,) * (f[dataset].ndim - 1))
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * (info.size // 2))


def test_a_corrupt_image_chunk_is_a_one_line_error_in_prepare_and_train(tiny_h5, tmp_path, capsys):
    from galaxymorph.cli import main
    from galaxymorph.data.batches import load_split
    from galaxymorph.data.splits import prepare

    _corrupt_chunk(tiny_h5, "images", 7)
    with open_galaxy10(tiny_h5) as data:
        assert data.images([1, 6]).shape == (2, 256, 256, 3)  # the other chunks still read
        with pytest.raises(DataError, match=r"tiny\.h5 \('images'\): cannot read rows 7\.\.7, the file is corrupt"):
            data.images([1, 7])
    assert main(["data", "prepare", str(tiny_h5), "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "tiny.h5" in err and "corrupt" in err and "filter returned failure" in err
    manifest = prepare(tiny_h5, check_duplicates=False)  # no pixels read: the split itself works
    with pytest.raises(DataError, match="corrupt"):
        for split in ("train", "val", "test"):
            load_split(tiny_h5, manifest, split)
    assert main(["train", "--data", str(tiny_h5), "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "tiny.h5" in err and "corrupt" in err


def test_a_corrupt_class_id_chunk_is_a_one_line_error(tmp_path):
    path = tmp_path / "gzip_ans.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", shape=(2, 256, 256, 3), dtype=np.uint8)
        f.create_dataset("ans", data=np.arange(4000) % 10 == 0, dtype=np.uint8, compression="gzip")
    with h5py.File(path, "r+") as f:  # 'ans' must match 'images'; shrink images' partner
        del f["images"]
        f.create_dataset("images", shape=(4000, 256, 256, 3), dtype=np.uint8, chunks=(1, 256, 256, 3))
    _corrupt_chunk(path, "ans", 0)
    with pytest.raises(DataError, match=r"gzip_ans\.h5: cannot read its class ids, the file is corrupt"):
        open_galaxy10(path)


def test_data_info_on_a_file_without_images_is_a_one_line_error(tmp_path, capsys):
    from galaxymorph.cli import main

    empty = write_galaxy10(tmp_path / "empty.h5", np.empty((0, 256, 256, 3), np.uint8), [])
    assert main(["data", "info", str(empty), "--grid", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"galaxymorph: error: {empty} holds no images (its 'images' dataset has 0 rows)"
    assert not (tmp_path / "g.png").exists()


def _unlabelled(path, n=3):
    """Cutouts to classify: ``images`` (and a pxscale column), no ``ans``."""
    return _h5(path, images=np.full((n, 256, 256, 3), 7, np.uint8), pxscale=np.full(n, 0.262))


def test_a_file_without_labels_is_refused_where_labels_are_needed_in_one_line(tmp_path):
    path = _unlabelled(tmp_path / "new.h5")
    with pytest.raises(DataError, match="no 'ans' dataset") as err:
        open_galaxy10(path)
    assert "\n" not in str(err.value) and "predict" in str(err.value)
    with open_galaxy10(path, labelled=False) as data:
        assert len(data) == 3 and data.labels is None and not data.labelled
        assert data.images([2]).shape == (1, 256, 256, 3)
        for needs_labels in (data.class_counts, data.select):
            with pytest.raises(DataError, match="no 'ans' dataset"):
                needs_labels()


def test_labels_when_present_are_checked_even_if_not_needed(tmp_path):
    path = _h5(tmp_path / "bad.h5", images=np.zeros((2, 256, 256, 3), np.uint8), ans=np.array([2, 11], np.uint8))
    with pytest.raises(DataError, match="outside Galaxy10"):
        open_galaxy10(path, labelled=False)


def test_cli_prepare_and_info_on_an_unlabelled_file(tmp_path, capsys):
    from galaxymorph.cli import main

    path = _unlabelled(tmp_path / "new.h5")
    assert main(["data", "prepare", str(path), "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no 'ans' dataset" in err
    assert main(["data", "info", str(path), "--grid", str(tmp_path / "grid.jpg")]) == 0
    out = capsys.readouterr().out
    assert "images    3 x" in out and "no 'ans' dataset" in out
    assert (tmp_path / "grid.jpg").stat().st_size > 0


@pytest.mark.parametrize("how", ["external link", "virtual dataset", "external storage"])
def test_data_kept_in_another_file_is_refused(tmp_path, how):
    """The data file's SHA-256 pins a run's data: images read from another file would escape it."""
    images = np.zeros((2, 256, 256, 3), np.uint8)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g["images"] = images
    path = tmp_path / "linked.h5"
    with h5py.File(path, "w") as f:
        f["ans"] = np.array([2, 5], np.uint8)
        if how == "external link":
            f["images"] = h5py.ExternalLink(str(other), "images")
        elif how == "virtual dataset":
            layout = h5py.VirtualLayout(shape=images.shape, dtype=np.uint8)
            layout[:] = h5py.VirtualSource(str(other), "images", shape=images.shape)
            f.create_virtual_dataset("images", layout)
        else:
            raw = tmp_path / "pixels.bin"
            raw.write_bytes(images.tobytes())
            f.create_dataset("images", shape=images.shape, dtype=np.uint8, external=[(str(raw), 0, images.nbytes)])
    with pytest.raises(DataError, match="'images' is stored in another file"):
        open_galaxy10(path)
