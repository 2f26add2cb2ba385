"""Every function that draws a figure closes it when it fails, so pyplot does not keep it open
(with its memory) for the rest of the process: a long run that draws hundreds of figures and
catches an error would otherwise pile them up."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import galaxymorph.explain.figures as explain_figures
import galaxymorph.plotting as plotting
import galaxymorph.training.curves as curves
from galaxymorph.evaluation import figures as eval_figures
from galaxymorph.training.curves import plot_curves

CALIBRATION = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "calibrate_synthetic.py"))

RNG = np.random.default_rng(0)
Y = np.array([0, 0, 1, 1, 0, 1])
PROBS = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55], [0.3, 0.7], [0.1, 0.9]])
NAMES = ["Round Smooth", "Barred Spiral"]
IMAGES = RNG.integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
MAPS = RNG.random((2, 16, 16))
STATS = {c: {k: RNG.random(5) for k in CALIBRATION["STATS"]} for c in (2, 5)}
SHARES = {"share_on_galaxy_per_image": [0.5, None], "galaxy_area_share_per_image": [0.2, 0.3],
          "share_on_galaxy": 0.5, "galaxy_area_share": 0.25}

# each figure-writing function, called with small inputs, the output path last
FIGURES = {
    "curves": lambda p: plot_curves([{"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "train_acc": 0.5,
                                      "val_acc": 0.6}], p, SimpleNamespace(name="small", class_names=NAMES), 1),
    "confusion": lambda p: eval_figures.plot_confusion(p, Y, PROBS.argmax(1), NAMES),
    "roc": lambda p: eval_figures.plot_roc(p, Y, PROBS, NAMES, 0.5),
    "pr": lambda p: eval_figures.plot_pr(p, Y, PROBS, NAMES),
    "reliability": lambda p: eval_figures.plot_reliability(p, Y, PROBS),
    "probabilities": lambda p: eval_figures.plot_probabilities(p, Y, PROBS, NAMES, 0.5),
    "image_grid": lambda p: plotting.image_grid([list(IMAGES)], ["row"], p, title="grid"),
    "pair": lambda p: explain_figures.save_pair(p, IMAGES[0], MAPS[0], "gradcam", "A", "B", 0.9),
    "gallery": lambda p: explain_figures.save_gallery(p, IMAGES, MAPS, ["a", "b"], "gallery"),
    "localisation": lambda p: explain_figures.save_localisation(p, {"A": SHARES}, "localisation"),
    "calibration sizes": lambda p: CALIBRATION["plot_size_overlap"](STATS, STATS, p),
    "calibration stats": lambda p: CALIBRATION["plot_stats"](STATS, STATS, p),
}


class Failed(Exception):
    pass


def _fail_in_saving(fig, path, **kwargs):
    raise Failed("savefig")


def _fail_before_saving(monkeypatch):
    """The figure exists and is drawn on, then fails before save_figure (which closes it) takes it."""
    def fail(fig, path, **kwargs):
        raise Failed("before saving")

    for module in (plotting, explain_figures, eval_figures, curves):  # each module that draws figures
        monkeypatch.setattr(module, "save_figure", fail)


@pytest.mark.parametrize("where", ["saving", "before saving"])
@pytest.mark.parametrize("name", list(FIGURES))
def test_a_figure_that_fails_is_closed(tmp_path, monkeypatch, name, where):
    if where == "saving":
        monkeypatch.setattr(plotting.plt.Figure, "savefig", _fail_in_saving)
    else:
        _fail_before_saving(monkeypatch)
    before = set(plotting.plt.get_fignums())
    with pytest.raises(Failed):
        FIGURES[name](tmp_path / "figure.png")
    assert set(plotting.plt.get_fignums()) == before
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", list(FIGURES))
def test_each_figure_is_written_and_closed(tmp_path, name):
    before = set(plotting.plt.get_fignums())
    path = FIGURES[name](tmp_path / "figure.png")
    assert (path or tmp_path / "figure.png").stat().st_size > 0
    assert set(plotting.plt.get_fignums()) == before
