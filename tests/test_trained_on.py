"""evaluate flags test images that the model or its init model trained on (position or pixels)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from helpers_runs import make_images, make_run

from galaxymorph.config import Config
from galaxymorph.data.galaxy10 import open_galaxy10, write_galaxy10
from galaxymorph.evaluation import evaluate
from galaxymorph.report import build_html
from galaxymorph.trained_on import match_galaxies, write_training_galaxies

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_sky(path, order, images, ans, ra, dec):
    return write_galaxy10(path, images[order], ans[order], ra=ra[order], dec=dec[order])


def recorded_run(run_dir, data, init: str = ""):
    """A fake run (helpers_runs.make_run) with its train_galaxies.npz, started from ``init``."""
    make_run(run_dir, data, steps=5)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    with open_galaxy10(data) as f:
        images = {name: f.images(manifest["splits"][name]) for name in ("train", "val")}
    write_training_galaxies(run_dir, data, manifest, images)
    if init:
        config = Config.resolve(run_dir / "config.toml").replace(init=init)
        config.save(run_dir / "config.toml")
    return run_dir


@pytest.fixture(scope="module")
def skies(tmp_path_factory):
    """The same 48 galaxies in two files, in another order, so that the second file's test split
    holds galaxies of the first file's training split."""
    root = tmp_path_factory.mktemp("skies")
    positions = np.tile([0, 1], 24)
    images, ans = make_images(positions, seed=5), np.array([2, 5], dtype=np.uint8)[positions]
    ra, dec = np.linspace(10, 11, 48), np.linspace(-5, -4, 48)
    first = write_sky(root / "first.h5", np.arange(48), images, ans, ra, dec)
    order = np.random.default_rng(1).permutation(48)
    second = write_sky(root / "second.h5", order, images, ans, ra, dec)
    return root, first, second


def sha(image) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def test_a_run_started_from_a_run_that_trained_on_its_test_images_flags_them(skies, capsys):
    root, first, second = skies
    pre = recorded_run(root / "pre", first)
    tuned = recorded_run(root / "tuned", second, init=str(pre))
    metrics = evaluate(tuned, n_boot=50, progress=False, plots=False)
    # what the init run trained on, worked out here from the files themselves
    pre_manifest = json.loads((pre / "manifest.json").read_text())
    with open_galaxy10(first) as f:
        seen = {sha(im) for im in f.images(pre_manifest["splits"]["train"] + pre_manifest["splits"]["val"])}
    test = json.loads((tuned / "manifest.json").read_text())["splits"]["test"]
    with open_galaxy10(second) as f:
        expected = [i for i, im in zip(test, f.images(test)) if sha(im) in seen]
    assert expected  # the construction works: some test images were the init run's
    leak = metrics["leak"]
    assert leak["n_flagged"] == len(expected) and leak["indices"] == expected
    init_source = [s for s in leak["sources"] if s["role"] == "init model"]
    assert init_source == [{"run": str(pre), "role": "init model", "n_flagged": len(expected),
                            "by_position": len(expected), "by_pixels": len(expected)}]
    assert json.loads((tuned / "eval" / "metrics.json").read_text())["leak"]["n_flagged"] == len(expected)
    err = capsys.readouterr().err
    assert f"warning: {len(expected)} of the {len(test)} test image(s) were trained on by {pre}" in err
    assert "Warning: " + str(len(expected)) + " of these images" in build_html(tuned)


def test_a_run_from_scratch_flags_none(skies, capsys):
    root, _, second = skies
    clean = recorded_run(root / "clean", second)
    leak = evaluate(clean, n_boot=50, progress=False, plots=False)["leak"]
    assert leak["n_flagged"] == 0 and leak["indices"] == [] and leak["unchecked"] == []
    assert [s["role"] for s in leak["sources"]] == ["this run"]
    assert "trained on" not in capsys.readouterr().err
    assert "of these images were in the training data" not in build_html(clean)
    # its own validation images are in its record, but scoring them is not a leak
    assert evaluate(clean, split="val", n_boot=50, progress=False, plots=False)["leak"]["n_flagged"] == 0


def test_an_init_run_that_is_gone_is_said_to_be_unchecked(skies, tmp_path, capsys):
    _, _, second = skies
    orphan = recorded_run(tmp_path / "orphan", second, init=str(tmp_path / "deleted"))
    leak = evaluate(orphan, n_boot=50, progress=False, plots=False)["leak"]
    assert leak["unchecked"] == [{"run": str(tmp_path / "deleted"), "role": "init model",
                                  "why": "run folder not found"}]
    assert "cannot be checked" in capsys.readouterr().err


def test_positions_match_within_one_arcsec_and_pixels_exactly():
    arcsec = 1 / 3600
    record = {"ra": np.array([10.0, 20.0, np.nan]), "dec": np.array([0.0, 30.0, np.nan]),
              "sha256": np.array(["a" * 64, "b" * 64, "c" * 64])}
    ra = np.array([10 + 0.5 * arcsec, 20 + 3 * arcsec, np.nan, 50.0])
    dec = np.array([0.0, 30.0, np.nan, 0.0])
    by_position, by_pixels = match_galaxies(ra, dec, np.array(["x" * 64, "y" * 64, "c" * 64, "z" * 64]), record)
    # 0.5" away: the same galaxy; 3" (x cos 30 deg = 2.6") away: another one; no position: by pixels only
    assert by_position.tolist() == [True, False, False, False]
    assert by_pixels.tolist() == [False, False, True, False]
