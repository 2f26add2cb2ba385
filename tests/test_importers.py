"""galaxymorph.data.importers: JPG/PNG folders and FITS cutouts to the Galaxy10 layout."""

from __future__ import annotations

import os

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from galaxymorph.cli import main
from galaxymorph.data.galaxy10 import open_galaxy10
from galaxymorph.data.importers import class_from_path, fits_to_rgb, import_images, read_image_file
from galaxymorph.errors import DataError

from conftest import make_blobs


def _save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _galaxy_bands(peak=2.0, size=128, seed=0, noise=0.005):
    """A synthetic g, r, z exponential disc in nanomaggy-like units (FITS row order)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size / 2
    r = np.hypot(xx, yy / 0.7)
    return {b: (peak * f * np.exp(-r / 12) + rng.normal(0, noise, r.shape)).astype(np.float32)
            for b, f in zip("grz", (0.5, 1.0, 1.6))}


def test_class_from_path_rules():
    assert class_from_path("2/a.jpg") == 2
    assert class_from_path("Barred Spiral/a.jpg") == 5
    assert class_from_path("round_smooth/a.png") == 2
    assert class_from_path("class5/x/a.png") == 5  # nearest class-like folder wins
    assert class_from_path("train/5/a.png") == 5
    assert class_from_path("2_xxx.jpg") == 2
    assert class_from_path("class5_xxx.png") == 5
    assert class_from_path("edge_on_without_bulge_01.fits") == 8
    assert class_from_path("edge-on-with-bulge-01.fits.gz") == 9
    assert class_from_path("galaxy_0001.png") is None
    assert class_from_path("5.png") is None  # a bare number is a file number, not a class
    assert class_from_path("0001_a.png") is None


def test_import_folders_and_prefixes(tmp_path):
    images = make_blobs(np.array([0, 1, 0, 1, 0, 1]))
    src = tmp_path / "src"
    _save(src / "2" / "a.png", images[0])
    _save(src / "Barred Spiral" / "b.png", images[1])
    _save(src / "round_smooth" / "c.png", images[2])
    _save(src / "class5_d.png", images[3])
    _save(src / "2_e.png", images[4])
    _save(src / "loose" / "mystery.png", images[5])  # no class anywhere
    out = tmp_path / "out.h5"
    report = import_images(src, out, progress=False)
    assert report.n_written == 5 and report.counts == {2: 3, 5: 2}
    assert [str(p) for p, _ in report.skipped] == ["loose/mystery.png"]
    assert "1 file(s) with no class" in str(report)
    with open_galaxy10(out) as f:
        # sorted paths: 2/a, 2_e, Barred Spiral/b, class5_d, round_smooth/c
        assert f.labels.tolist() == [2, 2, 5, 5, 2]
        np.testing.assert_array_equal(f.images([0, 1, 2]), images[[0, 4, 1]])  # PNG: lossless


def test_modes_resize_and_corrupt_file(tmp_path):
    src = tmp_path / "src"
    rgba = np.zeros((256, 256, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128  # half-transparent red on black -> ~100
    _save(src / "2" / "rgba.png", rgba)
    grey = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    _save(src / "2" / "grey.png", grey)
    big = np.zeros((300, 400, 3), np.uint8)
    big[:, 50:350] = 180  # the centre 300x300 square is uniform grey
    Image.fromarray(big).save(src / "5_big.jpg", quality=95)
    (src / "5").mkdir()
    (src / "5" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (src / "data.xyz").write_text("hello")  # unknown suffix: listed, not passed over

    out = tmp_path / "out.h5"
    report = import_images(src, out, progress=False)
    assert report.n_written == 3
    skipped = {str(p): reason for p, reason in report.skipped}
    assert set(skipped) == {"5/broken.png", "data.xyz"}
    assert "unreadable image" in skipped["5/broken.png"] and "not an image" in skipped["data.xyz"]
    text = str(report)
    assert "skipped 2 file(s) that could not be read or used:" in text and "5/broken.png" in text
    with open_galaxy10(out) as f:
        grey_img, rgba_img, big_img = f.images([0, 1, 2])  # 2/grey, 2/rgba, 5_big
        assert f.labels.tolist() == [2, 2, 5]
    assert np.array_equal(grey_img[..., 0], grey_img[..., 2]) and grey_img[0, 200, 1] == 200
    assert abs(int(rgba_img[128, 128, 0]) - 100) <= 2 and rgba_img[128, 128, 1] == 0
    assert big_img.shape == (256, 256, 3)
    assert np.abs(big_img[5:-5, 5:-5].astype(int) - 180).max() <= 4  # the black bars were cropped


def test_a_huge_image_and_a_non_utf8_name_are_listed_and_skipped(tmp_path, capsys):
    src = tmp_path / "src"
    images = make_blobs(np.array([0, 1]))
    _save(src / "2" / "good.png", images[0])
    Image.new("1", (20000, 20000), 1).save(_dir(src / "5") / "huge.png", optimize=True)  # a few KB
    (_dir(src / "loose") / os.fsdecode(b"odd\xff.png")).write_bytes(b"not a png")
    out = tmp_path / "out.h5"
    assert main(["data", "import", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 1 image(s)" in printed
    assert "5/huge.png: image too large" in printed and "loose/odd\\xff.png: unreadable image" in printed


def test_read_image_file_sizes(tmp_path):
    img = _save(tmp_path / "x.png", np.full((64, 80, 3), 77, np.uint8))
    small = read_image_file(img, size=32)
    assert small.shape == (32, 32, 3) and small.dtype == np.uint8 and (small == 77).all()
    with pytest.raises(DataError, match="not found"):
        read_image_file(tmp_path / "missing.png")


def test_fits_cube_with_nans(tmp_path):
    bands = _galaxy_bands()
    cube = np.stack([bands["g"], bands["r"], bands["z"]])
    cube[0, 5:15, 5:60] = np.nan
    cube[2, 100:, 100:] = np.nan
    src = tmp_path / "src"
    (src / "5").mkdir(parents=True)
    fits.PrimaryHDU(cube).writeto(src / "5" / "cube.fits")
    # per-band HDUs named by EXTNAME, class from a header keyword
    hdus = [fits.PrimaryHDU(header=fits.Header([("GZCLASS", "Round Smooth")]))]
    hdus += [fits.ImageHDU(bands[b], name=b.upper()) for b in "zgr"]  # any order
    fits.HDUList(hdus).writeto(src / "perband.fits")
    fits.PrimaryHDU(bands["r"]).writeto(src / "2_single.fits")  # one band -> grey

    out = tmp_path / "fits.h5"
    report = import_images(src, out, progress=False)
    assert report.skipped == [] and report.counts == {2: 2, 5: 1}
    with open_galaxy10(out) as f:
        single, cube_img, perband = f.images([0, 1, 2])  # 2_single, 5/cube, perband
        assert f.labels.tolist() == [2, 5, 2]
    for img in (single, perband, cube_img):
        assert img.shape == (256, 256, 3) and img.dtype == np.uint8
        assert img[118:138, 118:138].mean() > 100 > np.median(img[:30])  # bright centre, dark sky
    assert np.array_equal(single[..., 0], single[..., 1])  # grey
    red, blue = perband[118:138, 118:138, 0].mean(), perband[118:138, 118:138, 2].mean()
    assert red > blue  # z -> R is the brightest band of this red galaxy
    # the cube and the per-band file hold the same galaxy: same colours away from the NaNs
    assert np.abs(cube_img[100:156, 100:156].astype(int) - perband[100:156, 100:156]).mean() < 3


def test_fits_stretch_resembles_real_galaxy10(reference_h5):
    with open_galaxy10(reference_h5) as f:
        real = f.images(np.arange(len(f))).astype(float)
    real_sky = np.median(np.concatenate([real[:, :20], real[:, -20:]], axis=1))
    ours = fits_to_rgb(_galaxy_bands(size=256)).astype(float)
    our_sky = np.median(np.concatenate([ours[:20], ours[-20:]]))
    assert abs(our_sky - real_sky) < 12
    assert ours[118:138, 118:138].mean() > 120


def test_corrupt_fits_and_no_class_only(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "2_bad.fits").write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    _save(src / "unlabelled.png", np.zeros((8, 8, 3), np.uint8))
    out = tmp_path / "out.h5"
    with pytest.raises(DataError, match="nothing imported"):
        import_images(src, out, progress=False)
    assert not out.exists() and list(tmp_path.glob(".out.h5*")) == []


def test_classes_filter(tmp_path):
    src = tmp_path / "src"
    for c in (1, 2, 5):
        _save(src / str(c) / "a.png", np.zeros((64, 64, 3), np.uint8))
    report = import_images(src, tmp_path / "o.h5", classes=[2, 5], progress=False)
    assert report.counts == {2: 1, 5: 1} and report.excluded == 1
    with pytest.raises(DataError, match="unknown class"):
        import_images(src, tmp_path / "o.h5", classes=[12], progress=False)


def test_cli_import(tmp_path, capsys):
    src = tmp_path / "src"
    images = make_blobs(np.array([0, 1, 0, 1]))
    for i, img in enumerate(images):
        Image.fromarray(img).save(_dir(src / ("2" if i % 2 == 0 else "5")) / f"g{i}.jpg")
    out = tmp_path / "imported.h5"
    assert main(["data", "import", str(src), "--out", str(out)]) == 0
    assert "wrote 4 image(s)" in capsys.readouterr().out
    with open_galaxy10(out) as f:
        assert f.class_counts() == {2: 2, 5: 2}
        assert f.select([2, 5]).labels.tolist() == [0, 0, 1, 1]

    assert main(["data", "import", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err and "nowhere" in err
    assert not (tmp_path / "x.h5").exists()


def _dir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path
