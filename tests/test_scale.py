"""galaxymorph.data.scale: pixel scale and apparent galaxy size, and the warnings of predict/evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from galaxymorph.data.galaxy10 import write_galaxy10
from galaxymorph.data.info import describe, format_summary
from galaxymorph.data.scale import compare_scales, file_scale, scale_summary, training_scale
from galaxymorph.data.splits import prepare, split_indices
from galaxymorph.prediction import predict
from galaxymorph.runs import read_run_json, update_run_json
from helpers_runs import make_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def discs(n: int, scale_length: float, seed: int = 0) -> np.ndarray:
    """uint8 (n, 256, 256, 3) exponential discs of one size, random axis ratio, on a noisy sky."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-128:128, -128:128].astype(np.float64)
    out = np.empty((n, 256, 256, 3), np.uint8)
    for i in range(n):
        q, theta = rng.uniform(0.5, 1.0), rng.uniform(0, np.pi)
        u, v = np.cos(theta) * xx + np.sin(theta) * yy, -np.sin(theta) * xx + np.cos(theta) * yy
        img = 30 + 200 * np.exp(-np.hypot(u, v / q) / scale_length) + rng.normal(0, 6, xx.shape)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)[..., None]
    return out


def test_compare_scales_flags_clear_differences_only():
    train = {"pxscale": 0.262, "galaxy_size_px": 20.0}
    assert compare_scales(train, {"pxscale": 0.3, "galaxy_size_px": 26.0}) == []  # within 1.5x
    messages = compare_scales(train, {"pxscale": 0.1, "galaxy_size_px": 45.0})
    assert len(messages) == 2
    assert messages[0].startswith("pixel scale 0.1") and "0.262" in messages[0] and "(0.38x)" in messages[0]
    assert messages[1].startswith("galaxy size") and "(2.2x)" in messages[1]
    assert compare_scales(train, {"pxscale": None, "galaxy_size_px": 9.0}) == [
        "galaxy size (median half-light radius) 9 px vs 20 px in training (0.45x)"]
    assert compare_scales({}, {"pxscale": 0.1}) == []  # unknown on one side: nothing to say


def test_scale_summary_measures_the_pixel_scale_and_galaxy_size():
    small, large = scale_summary(discs(6, 6.0)), scale_summary(discs(6, 6.0 * 2.6, seed=1))
    assert small["n_size"] == large["n_size"] == 6 and small["pxscale"] is None
    # an exponential disc's half-light radius is 1.68 scale lengths (round; less when inclined)
    assert 0.8 * 6.0 < small["galaxy_size_px"] < 1.8 * 6.0
    assert 2.2 < large["galaxy_size_px"] / small["galaxy_size_px"] < 3.0
    px = scale_summary(pxscale=np.array([0.1, np.nan, 0.1, 0.3, -1.0]))
    assert px == {"pxscale": 0.1, "n_pxscale": 3, "galaxy_size_px": None, "n_size": 0}


def test_training_scale_from_run_json_or_measured(tmp_path):
    data = write_galaxy10(tmp_path / "d.h5", discs(20, 6.0), [2, 5] * 10, pxscale=np.full(20, 0.262))
    run = tmp_path / "run"
    run.mkdir()
    manifest = prepare(data, run / "manifest.json", classes=[2, 5], fractions=(0.5, 0.25, 0.25),
                       check_duplicates=False)
    assert training_scale(run, read_run_json(run)) == {}  # no run.json: unknown
    update_run_json(run, data=str(data))
    measured = training_scale(run, read_run_json(run))
    assert measured == file_scale(data, split_indices(manifest, "train"))
    assert measured["pxscale"] == 0.262 and measured["n_size"] == 10
    update_run_json(run, data_scale={"pxscale": 0.5, "galaxy_size_px": 3.0})  # what training recorded
    assert training_scale(run, read_run_json(run)) == {"pxscale": 0.5, "galaxy_size_px": 3.0}


@pytest.fixture(scope="module")
def small_galaxy_run(tmp_path_factory):
    """A run trained on small discs at 0.262"/px, its scale recorded as training would."""
    root = tmp_path_factory.mktemp("scale")
    data = write_galaxy10(root / "d.h5", discs(24, 6.0), [2, 5] * 12, pxscale=np.full(24, 0.262))
    run = make_run(root / "run", data, steps=2)
    manifest = json.loads((run / "manifest.json").read_text())
    update_run_json(run, data_scale=file_scale(data, split_indices(manifest, "train")))
    return run


def test_predict_warns_once_when_the_inputs_are_at_another_scale(small_galaxy_run, tmp_path, capsys):
    folder = tmp_path / "large"
    folder.mkdir()
    for i, img in enumerate(discs(4, 6.0 * 2.6, seed=3)):  # the same galaxies seen 2.6x larger
        Image.fromarray(img).save(folder / f"{i}.png")
    report = predict(small_galaxy_run, [folder], tmp_path / "p.csv", progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: the inputs are at another scale") and "galaxy size" in err[0]
    assert len(report.scale_warnings) == 1 and "galaxy size" in report.scale_warnings[0]

    same = tmp_path / "same.h5"  # same galaxy size, but the file says 0.1"/px
    write_galaxy10(same, discs(4, 6.0, seed=4), [2, 5, 2, 5], pxscale=np.full(4, 0.1))
    report = predict(small_galaxy_run, [same], tmp_path / "q.csv", progress=False)
    assert len(report.scale_warnings) == 1 and report.scale_warnings[0].startswith("pixel scale 0.1")
    capsys.readouterr()

    folder = tmp_path / "alike"
    folder.mkdir()
    for i, img in enumerate(discs(4, 6.0, seed=5)):
        Image.fromarray(img).save(folder / f"{i}.png")
    report = predict(small_galaxy_run, [folder], tmp_path / "r.csv", progress=False)
    assert report.scale_warnings == [] and capsys.readouterr().err == ""


def test_evaluate_records_scale_warnings(small_galaxy_run):
    from galaxymorph.evaluation import evaluate

    metrics = evaluate(small_galaxy_run, n_boot=0, progress=False, plots=False)
    assert metrics["scale_warnings"] == []  # the run's own data file: the training scale
    saved = json.loads((small_galaxy_run / "eval" / "metrics.json").read_text())
    assert saved["scale_warnings"] == []


def test_data_info_shows_the_scale_and_catalogue_columns(tmp_path):
    path = tmp_path / "d.h5"
    from galaxymorph.data.galaxy10 import Galaxy10Writer

    with Galaxy10Writer(path) as w:
        w.append(discs(3, 6.0), [2, 5, 2])
        w.write_columns(catalog={"smooth": [0.9, 0.1, np.nan]}, pxscale=[0.1, 0.1, np.nan])
    summary = describe(path)
    assert summary["catalog_columns"] == ["smooth"]
    assert summary["scale"]["pxscale"] == 0.1 and summary["scale"]["n_pxscale"] == 2
    text = format_summary(summary)
    assert 'pxscale   0.1"/px (median of 2 images)' in text and "catalog   smooth" in text
    assert "px median half-light radius (of 3 sampled images)" in text
