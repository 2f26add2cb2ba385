"""data import with a catalogue CSV, the size refusal, quiet skipping and recorded pixel scales."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from galaxymorph.cli import main
from galaxymorph.data.galaxy10 import open_galaxy10
from galaxymorph.data.importers import import_images, read_image_file
from galaxymorph.errors import DataError

from conftest import make_blobs


def _png(path, side=96, value=None, seed=0):
    """A small lossless image; ``value`` fills it, else a blob that differs with ``seed``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if value is None:
        img = make_blobs(np.array([seed % 2]), seed=seed)[0][80:176, 80:176]
        img = np.asarray(Image.fromarray(img).resize((side, side)))
    else:
        img = np.full((side, side, 3), value, np.uint8)
    Image.fromarray(img).save(path)
    return path


def _csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def folder(tmp_path):
    """round_smooth/{a,b,c}.png and barred_spiral/{d,e}.png, each a different grey level."""
    src = tmp_path / "src"
    for i, rel in enumerate(["round_smooth/a.png", "round_smooth/b.png", "round_smooth/c.png",
                             "barred_spiral/d.png", "barred_spiral/e.png"]):
        _png(src / rel, value=10 * (i + 1))
    return src


def test_catalogue_join_order_missing_and_extra_rows(folder, tmp_path):
    # rows in another order than the images; c.png has no row; two rows match no image;
    # a blank vote; a text column; the catalogue itself sits in the folder (passed over quietly)
    cat = _csv(folder / "catalog.csv",
               ["File", "galaxy10_class", "RA", "dec", "smooth", "bar", "survey", "objid"],
               [["barred_spiral/e.png", "5", "10.5", "-1.5", "0.1", "0.9", "SDSS", "1237648720693755918"],
                ["round_smooth/a.png", "Round Smooth", "10.1", "-1.1", "0.9", "", "SDSS", "1237648720693755919"],
                ["./round_smooth/b.png", "2", "10.2", "-1.2", "0.8", "0.0", "DECaLS", ""],
                ["round_smooth/gone.png", "2", "11", "-2", "0.7", "0.1", "SDSS", "1237648720693755920"],
                ["barred_spiral/d.png", "5.0", "10.4", "-1.4", "0.2", "0.8", "SDSS", "1237648720693755921"],
                ["elsewhere/x.png", "5", "12", "-3", "0.3", "0.7", "SDSS", "1237648720693755922"]])
    out = tmp_path / "out.h5"
    report = import_images(folder, out, catalog=cat, progress=False)
    assert report.n_written == 5 and report.skipped == [] and report.ignored == 1
    assert [str(p) for p in report.not_in_catalog] == ["round_smooth/c.png"]
    assert report.unmatched_rows == 2
    assert report.ignored_columns == ["survey", "objid (integers beyond float32, e.g. ids)"]
    assert report.stored_columns == ["ra", "dec", "catalog/smooth", "catalog/bar"]
    text = str(report)
    assert "4 of 5 image(s) matched" in text and "round_smooth/c.png" in text
    assert "2 row(s) match no image file" in text and "ignored column(s) that are not numbers: survey, objid" in text
    with open_galaxy10(out) as f:
        # images in sorted path order: barred_spiral/d, e, round_smooth/a, b, c
        assert f.labels.tolist() == [5, 5, 2, 2, 2]
        assert f.images()[:, 0, 0, 0].tolist() == [40, 50, 10, 20, 30]
        np.testing.assert_allclose(f.column("ra"), [10.4, 10.5, 10.1, 10.2, np.nan])
        np.testing.assert_allclose(f.column("dec"), [-1.4, -1.5, -1.1, -1.2, np.nan])
        assert f.column("redshift") is None and f.column("pxscale") is None
        assert f.catalog_columns() == ["smooth", "bar"]
        smooth = f.catalog("smooth")
        assert smooth.dtype == np.float32
        np.testing.assert_allclose(smooth, [0.2, 0.1, 0.9, 0.8, np.nan], rtol=1e-6)
        np.testing.assert_allclose(f.catalog("bar", [2, 0]), [np.nan, 0.8], rtol=1e-6)
        with pytest.raises(DataError, match="no catalogue column 'survey'"):
            f.catalog("survey")


def test_catalogue_matches_file_names_and_gives_the_class(tmp_path):
    src = tmp_path / "flat"
    _png(src / "g1.png", value=10)
    _png(src / "g2.png", value=20)
    _png(src / "g3.png", value=30)  # no row, no class anywhere: skipped as before
    cat = _csv(tmp_path / "cat.csv", ["filename", "label", "redshift"],
               [["/somewhere/else/g2.png", "Barred Spiral", "0.05"], ["g1.png", "2", ""]])
    report = import_images(src, tmp_path / "o.h5", catalog=cat, progress=False)
    assert report.counts == {2: 1, 5: 1}
    assert [str(p) for p, _ in report.unlabelled] == ["g3.png"]
    assert "or give it in the catalogue" in report.unlabelled[0][1]
    with open_galaxy10(tmp_path / "o.h5") as f:
        assert f.labels.tolist() == [2, 5]
        np.testing.assert_allclose(f.column("redshift"), [np.nan, 0.05])
        assert f.catalog_columns() == []


def test_catalogue_class_disagreement_names_the_file(folder, tmp_path):
    cat = _csv(tmp_path / "cat.csv", ["path", "class"],
               [["round_smooth/a.png", "2"], ["round_smooth/b.png", "5"]])
    out = tmp_path / "o.h5"
    with pytest.raises(DataError, match=r"round_smooth/b\.png: .*class 2 \(Round Smooth\).*says 5"):
        import_images(folder, out, catalog=cat, progress=False)
    assert not out.exists()


@pytest.mark.parametrize("header, rows, message", [
    (["name", "ra"], [["a.png", "1"]], "no file column"),
    (["file", "ra"], [["a.png", "1"], ["a.png", "2"]], "lists a.png twice"),
    (["file", "ra"], [["a.png", "north"]], "column 'ra' must hold numbers; found 'north'"),
    (["file", "class"], [["round_smooth/a.png", "spiral-ish"]], "'spiral-ish' is not a Galaxy10 class"),
    (["file", "ra"], [["a.png", "1", "2"]], "row 2 has 3 fields"),
    (["file", "pxscale"], [["a.png", ""], ["b.png", "-0.2"]],  # was stored as a scale of -0.2"/px
     r"row 3: the pixel scale must be a positive number of arcsec per pixel, got -0\.2"),
    (["file", "pxscale"], [["a.png", "0"]], "row 2: the pixel scale must be a positive number"),
    (["file", "pxscale"], [["a.png", "inf"]], "row 2: the pixel scale must be a positive number"),
])
def test_catalogue_errors(folder, tmp_path, header, rows, message):
    cat = _csv(tmp_path / "cat.csv", header, rows)
    with pytest.raises(DataError, match=message):
        import_images(folder, tmp_path / "o.h5", catalog=cat, progress=False)
    assert not (tmp_path / "o.h5").exists()


def test_a_name_shared_by_two_rows_or_two_images_is_an_error(tmp_path):
    src = tmp_path / "src"
    _png(src / "2" / "x.png", value=10)
    _png(src / "5" / "x.png", value=20)
    by_name = _csv(tmp_path / "by_name.csv", ["file"], [["x.png"]])
    with pytest.raises(DataError, match=r"2/x\.png and 5/x\.png both match row 2"):
        import_images(src, tmp_path / "o.h5", catalog=by_name, progress=False)
    two_rows = _csv(tmp_path / "two.csv", ["file"], [["a/x.png"], ["b/x.png"]])
    with pytest.raises(DataError, match="matches 2 rows"):
        import_images(src, tmp_path / "o.h5", catalog=two_rows, progress=False)
    with pytest.raises(DataError, match="catalogue not found"):
        import_images(src, tmp_path / "o.h5", catalog=tmp_path / "none.csv", progress=False)


def test_small_images_are_refused_not_blown_up(tmp_path):
    src = tmp_path / "src"
    _png(src / "2" / "dot.png", side=1, value=200)
    _png(src / "2" / "icon.png", side=32, value=200)
    Image.fromarray(np.full((40, 300, 3), 90, np.uint8)).save(src / "2" / "strip.png")  # 40 px high
    _png(src / "2" / "ok.png", side=64, value=120)
    report = import_images(src, tmp_path / "o.h5", progress=False)
    assert report.n_written == 1
    reasons = {str(p): r for p, r in report.unreadable}
    assert set(reasons) == {"2/dot.png", "2/icon.png", "2/strip.png"}
    assert "too small" in reasons["2/dot.png"] and "1x1 px" in reasons["2/dot.png"]
    assert "300x40 px" in reasons["2/strip.png"]
    assert "skipped 3 file(s) that could not be read or used" in str(report)
    with pytest.raises(DataError, match="too small"):
        read_image_file(src / "2" / "icon.png")  # predict refuses them too
    with pytest.raises(DataError, match="nothing imported.*too small"):
        import_images(src / "2" / "dot.png", tmp_path / "x.h5", progress=False)


def test_files_that_are_plainly_not_images_are_passed_over_quietly(tmp_path):
    src = tmp_path / "src"
    _png(src / "2" / "a.png", value=50)
    for rel in ("README.md", "README", "LICENSE", "catalog.csv", "notes.txt", "meta.json", "2/votes.tsv",
                ".DS_Store", ".ipynb_checkpoints/a-checkpoint.png", "2/.hidden.png"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("not a picture")
    report = import_images(src, tmp_path / "o.h5", progress=False)
    assert report.n_written == 1 and report.skipped == [] and report.ignored == 7
    assert "skipped" not in str(report)
    # but a broken image is still listed, and an empty import still says what it passed over
    (src / "2" / "a.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="7 non-image file.* ignored; first: 2/a.png: unreadable"):
        import_images(src, tmp_path / "o.h5", progress=False)


def test_pixel_scale_is_recorded_for_the_stored_image(tmp_path):
    src = tmp_path / "src"
    _png(src / "2" / "small.png", side=128, seed=0)  # 128 px at 0.2"/px -> 0.1"/px stored
    Image.fromarray(np.full((424, 500, 3), 60, np.uint8)).save(src / "2" / "wide.png")  # 424 px square
    _png(src / "5" / "listed.png", side=256, seed=1)  # the catalogue's own scale wins
    cat = _csv(tmp_path / "cat.csv", ["file", "pxscale"], [["5/listed.png", "0.262"], ["2/small.png", ""]])
    out = tmp_path / "o.h5"
    import_images(src, out, pixel_scale=0.2, catalog=cat, progress=False)
    with open_galaxy10(out) as f:
        np.testing.assert_allclose(f.column("pxscale"), [0.1, 0.2 * 424 / 256, 0.262])
    report = import_images(src, out, progress=False)  # nothing known: no column at all
    with open_galaxy10(out) as f:
        assert f.column("pxscale") is None
    assert "pixel scale unknown: --pixel-scale ARCSEC" in str(report)
    with pytest.raises(DataError, match="positive number of arcsec"):
        import_images(src, out, pixel_scale=-1, progress=False)


def test_pixel_scale_from_a_fits_wcs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:100, :100] - 50
    image = (np.exp(-np.hypot(xx, yy) / 8) + rng.normal(0, 0.01, (100, 100))).astype(np.float32)
    header = fits.Header()
    header.update(CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CRVAL1=150.0, CRVAL2=2.0, CRPIX1=50, CRPIX2=50,
                  CDELT1=-0.262 / 3600, CDELT2=0.262 / 3600, CUNIT1="deg", CUNIT2="deg")
    fits.PrimaryHDU(image, header=header).writeto(src / "2_wcs.fits")
    fits.PrimaryHDU(image).writeto(src / "2_plain.fits")
    out = tmp_path / "o.h5"
    import_images(src, out, progress=False)
    with open_galaxy10(out) as f:  # sorted: 2_plain, 2_wcs
        np.testing.assert_allclose(f.column("pxscale"), [np.nan, 0.262 * 100 / 256], rtol=1e-6)
    import_images(src, out, pixel_scale=0.5, progress=False)  # the option fills in where the WCS is silent
    with open_galaxy10(out) as f:
        np.testing.assert_allclose(f.column("pxscale"), [0.5 * 100 / 256, 0.262 * 100 / 256], rtol=1e-6)


def test_cli_catalogue_and_pixel_scale(folder, tmp_path, capsys):
    cat = _csv(tmp_path / "cat.csv", ["file", "smooth"], [["round_smooth/a.png", "0.9"]])
    out = tmp_path / "o.h5"
    code = main(["data", "import", str(folder), "--out", str(out), "--catalog", str(cat), "--pixel-scale", "0.2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "columns: pxscale, catalog/smooth" in printed and "1 of 5 image(s) matched" in printed
    with open_galaxy10(out) as f:
        np.testing.assert_allclose(f.column("pxscale"), 0.2 * 96 / 256)
        assert np.isnan(f.catalog("smooth")).sum() == 4


def test_real_sdss_catalogue(sdss_gz2, tmp_path):
    """A few real SDSS JPEGs with the full catalog.csv: votes and positions land beside the
    right images, and the 1,700-odd rows without a copied image are counted, not fatal."""
    rows = list(csv.DictReader(open(sdss_gz2 / "catalog.csv", encoding="utf-8")))
    picked = [r for r in rows if r["galaxy10_class"] == "2"][:6] + [r for r in rows if r["galaxy10_class"] == "5"][:6]
    src = tmp_path / "sdss"
    for r in picked:
        (src / r["file"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sdss_gz2 / r["file"], src / r["file"])
    shutil.copy(sdss_gz2 / "README.md", src / "README.md")
    out = tmp_path / "sdss.h5"
    report = import_images(src, out, catalog=sdss_gz2 / "catalog.csv", pixel_scale=0.2, progress=False)
    assert report.n_written == 12 and report.skipped == [] and report.not_in_catalog == []
    assert report.unmatched_rows == len(rows) - 12
    picked.sort(key=lambda r: r["file"])  # the import's order
    with open_galaxy10(out) as f:
        assert f.labels.tolist() == [int(r["galaxy10_class"]) for r in picked]
        np.testing.assert_allclose(f.column("ra"), [float(r["ra"]) for r in picked])
        votes = [c for c in rows[0] if c not in ("file", "galaxy10_class", "ra", "dec")]
        assert f.catalog_columns() == votes
        for name in votes:
            np.testing.assert_allclose(f.catalog(name), [float(r[name]) for r in picked], atol=1e-6)
        side = Image.open(sdss_gz2 / picked[0]["file"]).size[0]
        np.testing.assert_allclose(f.column("pxscale"), 0.2 * side / 256)


def test_writer_columns_are_checked_before_anything_is_kept(tmp_path):
    from galaxymorph.data.galaxy10 import Galaxy10Writer

    images = np.zeros((3, 256, 256, 3), np.uint8)
    for bad, message in ((dict(catalog={"smooth": [0.1, 0.2]}), r"'catalog/smooth' has shape \(2,\)"),
                         (dict(pxscale=[0.1, 0.1, 0.1], sky=[1, 2, 3]), "unknown columns"),
                         (dict(ra=[1, 2]), "expected \\(3,\\)")):
        with pytest.raises(ValueError, match=message):
            with Galaxy10Writer(tmp_path / "w.h5") as w:
                w.append(images, [2, 5, 2])
                w.write_columns(**bad)
        assert not (tmp_path / "w.h5").exists()
