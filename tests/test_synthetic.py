"""The synthetic sky: determinism, file layout, physics of the models, argument checks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from galaxymorph.data.galaxy10 import open_galaxy10
from galaxymorph.data.synthetic import (
    DEFAULT_DIFFICULTY, GENERATOR_VERSION, asinh_rgb, draw_params, galaxy_model, image_rng, observe, render_galaxy, synthesize,
)
from galaxymorph.errors import DataError

SIZE = 256
YY, XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) - (SIZE - 1) / 2.0


def face_on(params: dict) -> dict:
    """The same galaxy seen face-on (disk physics without projection effects)."""
    params = dict(params)
    params["components"] = dict(params["components"], incl=0.0)
    return params


def inner_axis_ratio(img: np.ndarray, level: float = 0.1) -> float:
    """Axis ratio from second moments of the pixels above ``level`` x peak."""
    w = img * (img > level * img.max())
    tot = w.sum()
    cy, cx = (w * YY).sum() / tot, (w * XX).sum() / tot
    m = np.array([[(w * (XX - cx) ** 2).sum(), (w * (XX - cx) * (YY - cy)).sum()],
                  [(w * (XX - cx) * (YY - cy)).sum(), (w * (YY - cy) ** 2).sum()]]) / tot
    ev = np.linalg.eigvalsh(m)
    return float(np.sqrt(ev[0] / ev[1]))


def isophote_fourier(img: np.ndarray, params: dict, radius: float) -> np.ndarray:
    """|F_m| / F_0, m = 0..6, of the light along the galaxy's own ellipse at ``radius`` px.

    For a disk the ellipse is the deprojected circle (q = cos i); for a spheroid its isophote
    (q). A smooth galaxy is constant along it; spiral arms put power into m = arm count.
    """
    g = params["components"]
    q = np.cos(g["incl"]) if "incl" in g else g["q"]
    t = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    u, v = radius * np.cos(t), radius * np.sin(t) * q
    c, s = np.cos(g["pa"]), np.sin(g["pa"])
    x = c * u - s * v + params["center"][0] + (SIZE - 1) / 2
    y = s * u + c * v + params["center"][1] + (SIZE - 1) / 2
    from scipy.ndimage import map_coordinates

    prof = map_coordinates(img, [y, x], order=1)
    f = np.abs(np.fft.rfft(prof))
    return f[:7] / f[0]


# -- determinism and the file --------------------------------------------------------------
def test_same_seed_same_bytes_independent_of_order():
    a, _ = render_galaxy(5, image_rng(3, 5, 7), 0.5)
    b, _ = render_galaxy(5, image_rng(3, 5, 7), 0.5)
    c, _ = render_galaxy(5, image_rng(4, 5, 7), 0.5)
    assert a.dtype == np.uint8 and a.shape == (256, 256, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_file_layout_counts_and_determinism(tmp_path):
    p1 = synthesize(tmp_path / "a.h5", classes=(2, 5), n_per_class=3, seed=1, progress=False)
    p2 = synthesize(tmp_path / "b.h5", classes=(2, 5), n_per_class=3, seed=1, progress=False)
    p3 = synthesize(tmp_path / "c.h5", classes=(2, 5), n_per_class=3, seed=2, progress=False)
    with open_galaxy10(p1) as f1, open_galaxy10(p2) as f2, open_galaxy10(p3) as f3:
        assert f1.class_counts() == {2: 3, 5: 3}
        assert np.array_equal(f1.images(), f2.images())
        assert not np.array_equal(f1.images(), f3.images())
        assert np.allclose(f1.column("pxscale"), 0.262)
        attrs = dict(f1._h5.attrs)
        assert attrs["generator"] == GENERATOR_VERSION and attrs["seed"] == 1 and attrs["difficulty"] == DEFAULT_DIFFICULTY
        # image i of class c does not depend on how many images were asked for
        sel = f1.select((2, 5))
        first2 = f1.images(sel.indices[:2])
    synthesize(tmp_path / "d.h5", classes=(2, 5), n_per_class=1, seed=1, progress=False)
    with open_galaxy10(tmp_path / "d.h5") as f4:
        assert np.array_equal(f4.images(), first2)


def test_single_class_and_all_classes_render(tmp_path):
    path = synthesize(tmp_path / "one.h5", classes=[7], n_per_class=1, seed=0, progress=False)
    with open_galaxy10(path) as f:
        assert f.class_counts() == {7: 1}
    for c in range(10):
        img, params = render_galaxy(c, image_rng(0, c, 0), 0.5)
        assert params["class_id"] == c
        centre = img[108:148, 108:148].astype(float).mean()
        border = np.median(img[:20].astype(float))
        assert centre > border + 15, f"class {c}: no galaxy in the centre"


# -- physics -------------------------------------------------------------------------------
def test_bars_elongate_inner_isophotes_round_smooth_do_not():
    """Second moments of the bright inner region (seeing-convolved model, no noise, face-on)."""
    bar, smooth = [], []
    for i in range(6):
        pb = face_on(draw_params(5, image_rng(0, 5, i), 0.0))
        bar.append(inner_axis_ratio(observe(galaxy_model(pb, knots=False), pb, None, noise=False, field=False)[1]))
        ps = draw_params(2, image_rng(0, 2, i), 0.0)
        smooth.append(inner_axis_ratio(observe(galaxy_model(ps), ps, None, noise=False, field=False)[1]))
    assert np.median(bar) < 0.65, bar
    assert np.median(smooth) > 0.8, smooth
    assert np.median(bar) < np.median(smooth) - 0.2


def test_spiral_arms_put_power_at_the_arm_count():
    for cls in (6, 7):
        for i in range(3):
            p = draw_params(cls, image_rng(1, cls, i), 0.0)
            img = galaxy_model(p, knots=False)[1]
            h, m = p["components"]["h"], p["components"]["n_arms"]
            f = isophote_fourier(img, p, 2.0 * h)
            assert f[m] > 0.1, (cls, i, m, f)
            others = [k for k in range(1, 7) if k % m]  # the arm profile also has harmonics 2m, 3m
            assert f[m] > 3 * f[others].max(), (cls, i, m, f)
    for cls in (2, 3):
        p = draw_params(cls, image_rng(1, cls, 0), 0.0)
        f = isophote_fourier(galaxy_model(p)[1], p, 1.5 * p["components"]["re"])
        assert f[1:].max() < 0.02, f


def test_bulge_redder_than_arms():
    for i in range(3):
        p = face_on(draw_params(6, image_rng(2, 6, i), 0.0))
        g, r, z = galaxy_model(p, knots=False)
        h = p["components"]["h"]
        rad = np.hypot(XX - p["center"][0], YY - p["center"][1])
        core = rad < 0.15 * h
        arms = (rad > 1.5 * h) & (rad < 3 * h)
        assert z[core].sum() / g[core].sum() > 1.1 * z[arms].sum() / g[arms].sum()


def test_difficulty_weakens_bars_and_inclines_disks():
    easy = [draw_params(5, image_rng(0, 5, i), 0.0) for i in range(60)]
    hard = [draw_params(5, image_rng(0, 5, i), 1.0) for i in range(60)]
    frac = lambda ps, k: np.mean([p["components"][k] for p in ps])  # noqa: E731
    assert frac(hard, "bar_frac") < 0.7 * frac(easy, "bar_frac")
    assert frac(hard, "bar_q") > frac(easy, "bar_q")
    assert frac(hard, "incl") > frac(easy, "incl")
    rel_len = lambda ps: np.mean([p["components"]["bar_len"] / p["components"]["h"] for p in ps])  # noqa: E731
    assert rel_len(hard) < 0.85 * rel_len(easy)
    assert np.mean([p["flux"] / p["components"]["h"] ** 2 for p in hard]) < \
        np.mean([p["flux"] / p["components"]["h"] ** 2 for p in easy])  # fainter disks
    assert np.mean([p["sky_sigma"] for p in hard]) > np.mean([p["sky_sigma"] for p in easy])


def test_barred_spirals_are_big_disk_dominated_and_mostly_face_on():
    """Galaxy10 barred spirals: the disk carries most light and reaches far; few are inclined."""
    ps = [draw_params(5, image_rng(0, 5, i), 0.5) for i in range(60)]
    g = [p["components"] for p in ps]
    assert np.median([1 - c["bt"] - c["bar_frac"] for c in g]) > 0.65
    assert 15 < np.median([c["h"] for c in g]) < 30  # disk visible out to ~3.5 h = 50-100 px
    assert np.median([np.cos(c["incl"]) for c in g]) > 0.78
    # round-smooth galaxies are smaller but not all tiny: sizes overlap the barred ones' bulge+bar
    re2 = [draw_params(2, image_rng(0, 2, i), 0.5)["components"]["re"] for i in range(60)]
    assert np.percentile(re2, 90) > 1.5 * np.percentile(re2, 10)


def test_edge_on_with_bulge_redder_than_without():
    gz = {}
    for c in (8, 9):
        ratios = []
        for i in range(4):
            g, r, z = galaxy_model(draw_params(c, image_rng(3, c, i), 0.5))
            ratios.append(g.sum() / z.sum())
        gz[c] = np.median(ratios)
    assert gz[9] < 0.85 * gz[8], gz


def test_asinh_stretch_keeps_sky_grey_and_saturates_cores():
    flux = np.zeros((3, 4, 4), dtype=np.float32)
    flux[:, 0, 0] = 1e5
    rgb = asinh_rgb(flux)
    assert 30 <= rgb[1, 1].mean() <= 36
    assert rgb[0, 0].min() >= 250


def test_asinh_stretch_is_astropys_lupton_mapping():
    """The float32 stretch written out in synthetic.py gives astropy's make_lupton_rgb, to one count."""
    from astropy.visualization import make_lupton_rgb
    from galaxymorph.data.synthetic import LUPTON_Q, LUPTON_STRETCH, SKY_OFFSET

    rng = np.random.default_rng(3)
    flux = (rng.normal(0, 1, (3, 32, 32)) + rng.uniform(0, 1, (1, 32, 32)) ** 8 * 3e4).astype(np.float32)
    flux[:, 0, :4] = [[-5, 0, 1e5, 1e5], [-5, 0, 1e5, 1e3], [-5, 0, 1e3, 1e5]]  # dark, sky, saturated cores
    g, r, z = flux
    expected = make_lupton_rgb(z, r, g, minimum=[-o for o in SKY_OFFSET], stretch=LUPTON_STRETCH, Q=LUPTON_Q)
    got = asinh_rgb(flux)
    assert got.shape == expected.shape and got.dtype == np.uint8 and got.flags.c_contiguous
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert np.mean(got != expected) < 0.01
    assert got[0, 0].max() == 0 and got[0, 2].max() == 255 and got[0, 3].max() == 255  # the full range


@pytest.mark.parametrize("fwhm, beta", [(4.0, 2.8), (5.7, 4.5)])
def test_psf_transfer_function_is_the_fft_of_the_moffat_kernel(fwhm, beta):
    """moffat_otf's DCT shortcut gives the rfft2 of the whole, directly evaluated kernel."""
    from galaxymorph.data.synthetic import SIZE, moffat_otf

    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    offset = np.fft.ifftshift(np.arange(SIZE) - (SIZE - 1) / 2.0)  # PSF centre half a pixel before pixel 0
    kernel = (1.0 + (offset[:, None] ** 2 + offset[None, :] ** 2) / alpha ** 2) ** -beta
    expected = np.fft.rfft2(kernel / kernel.sum())
    got = moffat_otf([fwhm], beta)
    assert got.shape == (1, SIZE, SIZE // 2 + 1)
    assert np.abs(got[0] - expected).max() < 1e-5


def test_sky_noise_has_unit_variance_pixel_correlation_and_shared_bands():
    """The noise drawn in the Fourier domain: unit variance, neighbours correlated ~0.75 like the
    real JPEGs', bands sharing BAND_NOISE_CORR of it, Gaussian tails."""
    from galaxymorph.data.synthetic import BAND_NOISE_CORR, _sky_noise

    noise = np.stack([_sky_noise(np.random.default_rng(k)) for k in range(4)]).astype(np.float64)
    assert noise.shape == (4, 3, 256, 256) and abs(noise.var() - 1.0) < 0.02 and abs(noise.mean()) < 0.02
    for axis in (-1, -2):
        lag1 = np.mean(noise * np.roll(noise, 1, axis=axis))
        assert 0.72 < lag1 < 0.80
    assert abs(np.mean(noise[:, 0] * noise[:, 2]) - BAND_NOISE_CORR) < 0.03
    assert 0.002 < np.mean(np.abs(noise) > 3.0) < 0.0035  # Gaussian: 0.27% beyond 3 sigma


# -- arguments and CLI -----------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"classes": (2, 11)}, "unknown class id 11"),
    ({"classes": ()}, "no classes"),
    ({"classes": (2, 2)}, "twice"),
    ({"n_per_class": 0}, "--n-per-class"),
    ({"difficulty": 1.5}, "difficulty"),
    ({"difficulty": "hard"}, "difficulty"),
])
def test_bad_arguments_raise(tmp_path, kwargs, match):
    with pytest.raises(DataError, match=match):
        synthesize(tmp_path / "x.h5", progress=False, **kwargs)
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("option, value", [("--n-per-class", "0"), ("--workers", "0"), ("--difficulty", "1.5")])
def test_cli_synth_errors_name_the_option(tmp_path, capsys, option, value):
    """They named the Python parameters (n_per_class, workers, difficulty), not the flags."""
    from galaxymorph.cli import main

    assert main(["data", "synth", "--out", str(tmp_path / "x.h5"), option, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{option} must be" in err
    assert not (tmp_path / "x.h5").exists()


def test_cli_synth_then_info(tmp_path, capsys, monkeypatch):
    from galaxymorph.cli import main

    data_dir, work_dir = tmp_path / "data", tmp_path / "work"
    work_dir.mkdir()
    monkeypatch.chdir(work_dir)
    out = data_dir / "sky.h5"
    main(["data", "synth", "--out", str(out), "--n-per-class", "3"])
    main(["data", "info", str(out)])
    text = capsys.readouterr().out
    assert "sky.h5" in text and "6" in text
    assert (work_dir / "sky_grid.png").is_file()  # the default grid: working folder, not beside the data
    assert sorted(p.name for p in data_dir.iterdir()) == ["sky.h5"]
    with open_galaxy10(out) as f:
        assert f.class_counts() == {2: 3, 5: 3}
    assert main(["data", "synth", "--out", str(tmp_path / "bad.h5"), "--classes", "2", "12"]) != 0
    assert "unknown class id 12" in capsys.readouterr().err
    assert not (tmp_path / "bad.h5").exists()


# -- calibration against the real cutouts ----------------------------------------------------
def _calibration_module():
    path = Path(__file__).resolve().parents[1] / "scripts" / "calibrate_synthetic.py"
    spec = importlib.util.spec_from_file_location("calibrate_synthetic", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_statistics_roughly_match_real_cutouts(reference_h5):
    cal = _calibration_module()
    with open_galaxy10(reference_h5) as f:
        sel = f.select((2, 5))
        real = cal.class_stats(f.images(sel.indices), f.labels[sel.indices])
    labels = np.array([2, 5] * 8)
    images = np.stack([render_galaxy(c, image_rng(0, c, i), 0.5)[0] for i, c in enumerate(labels)])
    synth = cal.class_stats(images, labels)
    for c in (2, 5):
        for key, tol in (("background", 3.0), ("noise", 3.0), ("peak", 30.0), ("axis_ratio", 0.12)):
            assert abs(np.nanmedian(synth[c][key]) - np.nanmedian(real[c][key])) < tol, (c, key)
        ratio = np.nanmedian(synth[c]["r_half"]) / np.nanmedian(real[c]["r_half"])
        assert 0.7 < ratio < 1.4, (c, ratio)
        for key in ("R/G", "B/G"):
            assert abs(np.nanmedian(synth[c][key]) - np.nanmedian(real[c][key])) < 0.1, (c, key)
    # size alone separates 5 from 2 about as well as in the real data (AUC ~0.87), not perfectly
    assert 0.6 < cal.size_auc(synth) < 0.99, cal.size_auc(synth)


def test_config_and_synthesize_share_the_default_difficulty():
    from galaxymorph.config import Config

    assert Config().difficulty == DEFAULT_DIFFICULTY


# -- workers, masks, disk full --------------------------------------------------------------
@pytest.mark.slow
def test_same_images_and_masks_whatever_the_number_of_workers(tmp_path, monkeypatch):
    from galaxymorph.data import synthetic

    monkeypatch.setattr(synthetic, "CHUNK", 2)  # several chunks, so the workers share them
    one = synthesize(tmp_path / "one.h5", classes=(2, 5), n_per_class=3, seed=4, progress=False, workers=1)
    two = synthesize(tmp_path / "two.h5", classes=(2, 5), n_per_class=3, seed=4, progress=False, workers=2)
    with open_galaxy10(one) as a, open_galaxy10(two) as b:
        assert np.array_equal(a.images(), b.images())
        assert np.array_equal(a.masks(), b.masks())
        assert np.array_equal(a.labels, b.labels)


def test_bad_workers_raise(tmp_path):
    with pytest.raises(DataError, match="workers"):
        synthesize(tmp_path / "x.h5", n_per_class=1, progress=False, workers=0)


def test_masks_mark_the_components_drawn():
    from galaxymorph.data.galaxy10 import MASK_BITS, mask_of
    from galaxymorph.data.synthetic import render

    centre = slice(120, 136)
    for c in range(10):
        for i in range(2):
            image, mask, params = render(c, image_rng(5, c, i), 0.5)
            assert mask.dtype == np.uint8 and mask.shape == (256, 256)
            galaxy = mask_of(mask, "galaxy")
            assert galaxy[centre, centre].all(), f"class {c}: footprint misses the centre"
            assert 0.005 < galaxy.mean() < 0.6, (c, galaxy.mean())
            assert mask_of(mask, "bar").any() == (c == 5), f"class {c}: bar bit"
            for part in ("bulge", "disk", "bar", "arms"):  # the galaxy's parts lie inside its footprint
                assert not (mask_of(mask, part) & ~galaxy).any(), (c, part)
            assert mask_of(mask, "stars").any() == (params["n_stars"] > 0)
            assert not (mask & ~np.uint8(sum(MASK_BITS.values()))).any()
        if c in (5, 6, 7):
            assert mask_of(mask, "arms").any() and mask_of(mask, "disk").any()
    _, quiet, _ = render(5, image_rng(5, 5, 0), 0.5, field=False)
    assert not mask_of(quiet, "stars").any() and not mask_of(quiet, "companions").any()


def test_masks_in_the_file_follow_the_images(tmp_path, tiny_h5):
    path = synthesize(tmp_path / "m.h5", classes=(2, 5), n_per_class=2, seed=2, progress=False, workers=1)
    with open_galaxy10(path) as f:
        all_masks = f.masks()
        assert all_masks.shape == (4, 256, 256) and all_masks.dtype == np.uint8
        assert np.array_equal(f.masks([3, 0, 3]), all_masks[[3, 0, 3]])  # any order, repeats
    with open_galaxy10(tiny_h5) as f:  # files without ground truth work as before
        assert f.masks() is None and f.images([0]).shape == (1, 256, 256, 3)


@pytest.mark.parametrize("how", ["write fails", "no free space"])
def test_disk_full_is_a_one_line_error_and_leaves_no_file(tmp_path, monkeypatch, how):
    import errno
    import shutil

    from galaxymorph.data.galaxy10 import Galaxy10Writer

    if how == "write fails":
        def append(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(Galaxy10Writer, "append", append)
    else:
        usage = shutil.disk_usage(tmp_path)
        monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    with pytest.raises(DataError, match="disk full"):
        synthesize(tmp_path / "sky.h5", classes=(2,), n_per_class=1, progress=False, workers=1)
    assert list(tmp_path.iterdir()) == []


# -- what a person would call wrong ------------------------------------------------------------
def test_edge_ons_are_lens_shaped_inside_the_frame_and_bulges_show():
    from galaxymorph.data.galaxy10 import mask_of
    from galaxymorph.data.synthetic import render

    bulge_area = {8: [], 9: []}
    for c in (8, 9):
        for i in range(6):
            _, mask, params = render(c, image_rng(0, c, i), 0.5, noise=False, field=False)
            galaxy = mask_of(mask, "galaxy")
            edge = np.concatenate([galaxy[:2].ravel(), galaxy[-2:].ravel(), galaxy[:, :2].ravel(), galaxy[:, -2:].ravel()])
            assert not edge.any(), f"class {c} image {i}: cut off by the frame"
            g = params["components"]
            light = galaxy_model(params, knots=False).mean(axis=0)
            u = np.linspace(-1, 1, 9) * g["length"]
            xs = np.cos(g["pa"]) * u + params["center"][0] + 127.5
            ys = np.sin(g["pa"]) * u + params["center"][1] + 127.5
            along = light[np.round(ys).astype(int), np.round(xs).astype(int)]
            # brightest in the middle, fading toward the ends (not a flat box)
            assert along[4] > 1.25 * max(along[2], along[6]), f"class {c} image {i}: flat, not bright in the middle"
            assert along[4] > 3 * max(along[1], along[7]), f"class {c} image {i}: ends do not fade"
            bulge_area[c].append(mask_of(mask, "bulge").sum())
    assert min(bulge_area[9]) > 3 * max(bulge_area[8]), bulge_area  # a bulge that stands out, or a faint nucleus


def test_colour_jitter_makes_no_green_galaxies():
    from galaxymorph.data.synthetic import BLUE, DISK, RED, _jitter

    rng = np.random.default_rng(0)
    for base in (RED, DISK, BLUE, 0.5 * (DISK + BLUE)):
        colours = np.stack([_jitter(base, rng) for _ in range(500)])  # (g, r, z)
        green = colours[:, 1] / np.maximum(colours[:, 0], colours[:, 2])
        assert np.mean(green > 1.08) < 0.01, base  # r 8 % above both g and z shows as green (was 3-12 %)


def test_config_checks_difficulty_with_the_renderers_rule():
    from galaxymorph.config import Config
    from galaxymorph.errors import GalaxymorphError

    with pytest.raises(GalaxymorphError, match="difficulty must be between 0 and 1"):
        Config(difficulty=1.5).validate()


def test_default_workers_every_core_but_not_for_a_few_images(tmp_path, monkeypatch):
    from galaxymorph.data import synthetic

    used = []
    real = synthetic._rendered_chunks
    monkeypatch.setattr(synthetic, "usable_cores", lambda: 8)
    monkeypatch.setattr(synthetic, "_rendered_chunks", lambda chunks, seed, d, workers: used.append(workers) or
                        real(chunks, seed, d, 1))
    synthesize(tmp_path / "small.h5", classes=(2, 5), n_per_class=1, progress=False)
    assert used == [1]  # two images: starting workers would cost more than rendering them
    monkeypatch.setattr(synthetic, "IMAGES_PER_WORKER", 1)
    synthesize(tmp_path / "big.h5", classes=(2, 5), n_per_class=6, progress=False)
    assert used[-1] == 8  # enough images: every core
