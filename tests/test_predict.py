"""Prediction on new images: PNG folders, JPG, FITS, HDF5, corrupt files, TTA."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from PIL import Image

from galaxymorph.cli import main
from galaxymorph.data.galaxy10 import open_galaxy10
from galaxymorph.errors import GalaxymorphError
from galaxymorph.models import load_model
from galaxymorph.prediction import predict
from helpers_runs import make_images, make_run, write_data


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    return make_run(root / "run", write_data(root / "data.h5", n_per_class=24), steps=20)


@pytest.fixture(scope="module")
def images():
    return make_images(np.array([0, 1, 0, 1]), seed=7)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _probs(rows):
    return np.array([[float(r["prob_2"]), float(r["prob_5"])] for r in rows])


def test_png_folder_recursive_sorted_and_jpg(run, images, tmp_path):
    folder = tmp_path / "pngs"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(["b.png", "a.png", "sub/c.png"]):
        Image.fromarray(images[i]).save(folder / name)
    (folder / "notes.txt").write_text("not an image")  # ignored inside folders
    jpg = tmp_path / "one.jpg"
    Image.fromarray(images[3]).resize((300, 300)).save(jpg, quality=95)  # other size: resized
    out = tmp_path / "pred.csv"
    report = predict(run, [folder, jpg], out, progress=False)
    rows = _rows(out)
    assert [os.path.relpath(r["file"], tmp_path) for r in rows] == ["pngs/a.png", "pngs/b.png", "pngs/sub/c.png",
                                                                     "one.jpg"]
    assert list(rows[0]) == ["file", "index", "predicted", "predicted_name", "prob_2", "prob_5"]
    probs = _probs(rows)
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    for r, p in zip(rows, probs):
        assert int(r["predicted"]) == (5 if p[1] >= 0.5 else 2)
        assert r["predicted_name"] == {2: "Round Smooth", 5: "Barred Spiral"}[int(r["predicted"])]
    # PNG is lossless: the same probabilities as the model on the arrays themselves
    model = load_model(run)
    direct = model.predict_proba(images[[1, 0, 2]])
    assert np.allclose(probs[:3], direct, atol=1e-5)
    assert report.n_predicted == 4 and not report.skipped
    assert "classified 4 image(s)" in str(report)


def test_fits_file(run, tmp_path):
    from astropy.io import fits

    yy, xx = np.mgrid[-32:32, -32:32]
    band = (np.exp(-np.hypot(xx, yy / 0.5) / 5) + np.random.default_rng(0).normal(0, 0.01, xx.shape))
    path = tmp_path / "cutout.fits"
    fits.PrimaryHDU(np.stack([band, band * 1.2, band * 1.5]).astype(np.float32)).writeto(path)
    out = tmp_path / "pred.csv"
    predict(run, [path], out, progress=False)
    rows = _rows(out)
    assert len(rows) == 1 and rows[0]["file"] == str(path)
    assert np.isclose(_probs(rows).sum(), 1, atol=1e-5)


def test_hdf5_input_has_index_column(run, tmp_path):
    data = write_data(tmp_path / "new.h5", n_per_class=3, seed=5)
    out = tmp_path / "pred.csv"
    predict(run, [data], out, batch_size=4, progress=False)
    rows = _rows(out)
    assert [int(r["index"]) for r in rows] == list(range(6))
    with open_galaxy10(data) as f:
        direct = load_model(run).predict_proba(f.images())
    assert np.allclose(_probs(rows), direct, atol=1e-5)


def test_corrupt_files_are_skipped_and_counted(run, images, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(images[0]).save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (folder / "broken.fits").write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "classified 1 image(s)" in printed and "skipped 2 unreadable" in printed
    assert "broken.png" in printed and "broken.fits" in printed
    assert len(_rows(out)) == 1


def _huge_png(path):
    """A 20000x20000 PNG, past Pillow's decompression-bomb limit, in a few KB (one bit a pixel)."""
    Image.new("1", (20000, 20000), 1).save(path, optimize=True)
    return path


def test_a_huge_image_and_a_non_utf8_name_do_not_stop_predict(run, images, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(images[0]).save(folder / "good.png")
    Image.fromarray(images[1]).save(os.fsencode(folder) + b"/odd\xff.png")  # a name from another system
    _huge_png(folder / "huge.png")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "classified 2 image(s)" in printed and "skipped 1 unreadable" in printed
    assert "huge.png: image too large" in printed
    rows = _rows(out)  # the CSV is valid UTF-8, the odd byte shown as an escape
    assert [os.path.basename(r["file"]) for r in rows] == ["good.png", "odd\\xff.png"]


def test_nothing_readable_is_an_error_and_leaves_no_file(run, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    out = tmp_path / "pred.csv"
    with pytest.raises(GalaxymorphError, match="no readable image"):
        predict(run, [bad], out, progress=False)
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]
    with pytest.raises(GalaxymorphError, match="input not found"):
        predict(run, [tmp_path / "missing.png"], out, progress=False)


def test_tta_is_d4_invariant(run, images, tmp_path):
    folder = tmp_path / "views"
    folder.mkdir()
    base = images[1]
    views = [np.rot90(base, k) for k in range(4)] + [np.fliplr(np.rot90(base, k)) for k in range(4)]
    for i, v in enumerate(views):
        Image.fromarray(np.ascontiguousarray(v)).save(folder / f"{i}.png")
    out = tmp_path / "pred.csv"
    predict(run, [folder], out, tta=True, progress=False)
    probs = _probs(_rows(out))
    assert len(probs) == 8 and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.allclose(probs, probs[0], atol=1e-4)  # every symmetry of the image: the same answer
    predict(run, [folder], out, tta=False, progress=False)
    plain = _probs(_rows(out))
    assert plain[:, 1].std() > probs[:, 1].std()  # without TTA the views do disagree a little


def test_bf16_autocast_option(run, images):
    model = load_model(run)
    fp32 = model.predict_proba(images)
    bf16 = model.predict_proba(images, amp=True)
    assert bf16.dtype == np.float32 and np.allclose(bf16.sum(1), 1, atol=1e-5)
    assert np.abs(bf16 - fp32).max() < 0.05


def test_an_out_folder_is_refused_before_any_work(run, tmp_path, monkeypatch):
    from galaxymorph.models import Classifier

    def must_not_run(*args, **kwargs):
        raise AssertionError("predicted before checking --out")

    monkeypatch.setattr(Classifier, "predict_proba", must_not_run)
    with pytest.raises(GalaxymorphError, match="is a folder"):
        predict(run, [tmp_path], tmp_path)


def test_folders_are_walked_like_data_import_does(tmp_path):
    from PIL import Image

    from galaxymorph.prediction import collect_inputs

    for rel in ("b.png", "a/c.png", ".ipynb_checkpoints/b-checkpoint.png", ".hidden.png", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / rel, format="PNG") if rel.endswith(".png") else \
            (tmp_path / rel).write_text("x")
    files, h5 = collect_inputs([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["a/c.png", "b.png"] and h5 == []


def test_text_cells_are_safe_from_spreadsheet_formulas(run, images, tmp_path, monkeypatch):
    """A file named like a formula is written as text (leading '), numbers stay numbers."""
    monkeypatch.chdir(tmp_path)
    for name in ("=HYPERLINK(1).png", "+1.png", "-2.png", "@x.png", "plain.png"):
        Image.fromarray(images[0]).save(tmp_path / name)
    out = tmp_path / "pred.csv"
    predict(run, ["=HYPERLINK(1).png", "+1.png", "-2.png", "@x.png", "plain.png"], out, progress=False)
    rows = _rows(out)
    assert [r["file"] for r in rows] == ["'=HYPERLINK(1).png", "'+1.png", "'-2.png", "'@x.png", "plain.png"]
    for r in rows:
        assert float(r["prob_2"]) + float(r["prob_5"]) == pytest.approx(1, abs=1e-5)


def test_spreadsheet_safe():
    from galaxymorph.fileio import spreadsheet_safe

    assert spreadsheet_safe("=1+1") == "'=1+1" and spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("\t=x") == "'\t=x" and spreadsheet_safe("Round Smooth") == "Round Smooth"


def test_predict_on_a_named_device(run, tmp_path):
    data = write_data(tmp_path / "new.h5", n_per_class=2, seed=5)
    out = tmp_path / "pred.csv"
    predict(run, [data], out, device="cpu", progress=False)
    assert len(_rows(out)) == 4
    with pytest.raises(GalaxymorphError, match="unknown device"):
        predict(run, [data], tmp_path / "other.csv", device="abacus", progress=False)


def test_hdf5_without_labels_is_classified(run, tmp_path, capsys):
    """New cutouts to classify come without 'ans': predict reads 'images' only."""
    import h5py

    labelled = write_data(tmp_path / "new.h5", n_per_class=2, seed=5)
    unlabelled = tmp_path / "unlabelled.h5"
    with open_galaxy10(labelled) as f, h5py.File(unlabelled, "w") as out:
        out["images"] = f.images()
    assert main(["predict", str(run), str(unlabelled), "--out", str(tmp_path / "u.csv")]) == 0
    predict(run, [labelled], tmp_path / "l.csv", progress=False)
    rows = _rows(tmp_path / "u.csv")
    assert [int(r["index"]) for r in rows] == [0, 1, 2, 3]
    assert np.allclose(_probs(rows), _probs(_rows(tmp_path / "l.csv")), atol=1e-6)


def test_cli_threads_for_the_scoring_commands(run, tmp_path, capsys):
    """evaluate, explain and predict take --threads (0 = torch's default); a negative count is one line."""
    import torch

    from galaxymorph.cli import main

    data = write_data(tmp_path / "new.h5", n_per_class=2, seed=5)
    torch.set_num_threads(2)
    assert main(["predict", str(run), str(data), "--out", str(tmp_path / "p.csv"), "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    assert main(["predict", str(run), str(data), "--out", str(tmp_path / "q.csv")]) == 0
    assert torch.get_num_threads() == 2  # the default leaves torch's own choice
    capsys.readouterr()
    for command in (["evaluate", str(run)], ["explain", str(run)],
                    ["predict", str(run), str(data), "--out", str(tmp_path / "r.csv")]):
        assert main([*command, "--threads", "-1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--threads must be >= 0" in err
    assert not (tmp_path / "r.csv").exists()


def test_an_existing_out_file_needs_overwrite_and_an_input_is_never_replaced(run, images, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    victim = folder / "victim.png"
    Image.fromarray(images[0]).save(victim)
    original = victim.read_bytes()
    for inputs in ([victim], [folder]):
        for overwrite in ([], ["--overwrite"]):
            assert main(["predict", str(run), *map(str, inputs), "--out", str(victim), *overwrite]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"--out {victim} is one of the inputs" in err
    with pytest.raises(GalaxymorphError, match="one of the inputs"):
        predict(run, [folder], victim, progress=False)
    assert victim.read_bytes() == original

    mine = tmp_path / "mine.csv"
    mine.write_text("my notes")
    assert main(["predict", str(run), str(victim), "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists; add --overwrite" in err and mine.read_text() == "my notes"
    assert main(["predict", str(run), str(victim), "--out", str(mine), "--overwrite"]) == 0
    assert [r["file"] for r in _rows(mine)] == [str(victim)]


def test_a_run_with_nan_weights_is_refused_by_evaluate_and_predict(run, tmp_path, capsys):
    """A diverged run's model labelled every image with probability nan (predict exited 0) and
    crashed evaluate inside scikit-learn."""
    import shutil

    import torch

    from galaxymorph.models import read_checkpoint

    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    path = broken / "checkpoints" / "best.pt"
    state = read_checkpoint(path)
    state["state_dict"] = {k: v.float().fill_(float("nan")) if v.is_floating_point() else v
                           for k, v in state["state_dict"].items()}
    torch.save(state, path)
    data = write_data(tmp_path / "new.h5", n_per_class=2, seed=5)
    out = tmp_path / "p.csv"
    for command in (["evaluate", str(broken)], ["predict", str(broken), str(data), "--out", str(out)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "NaN or infinite outputs" in err
    assert not out.exists() and not (broken / "eval" / "metrics.json").exists()
