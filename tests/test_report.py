"""report.html: self-contained, every image loads, nothing overflows (checked in headless Chromium)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from galaxymorph.config import Config
from galaxymorph.data.splits import prepare
from galaxymorph.errors import GalaxymorphError
from galaxymorph.report import CHROMIUM_FLAGS, TEMPLATE, build_html, find_chromium, screenshot, write_report

CHROMIUM = find_chromium()

# Appended to a copy of the page: records what a person would notice, into the DOM.
CHECK_SCRIPT = """
<script>
window.addEventListener('load', () => {
  const vw = document.documentElement.clientWidth;
  const imgs = [...document.images];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  const wide = [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.right > vw + 1 && !e.closest('.scroll');
  }).map(e => e.tagName + '.' + e.className);
  const out = document.createElement('pre');
  out.id = 'gm-check';
  out.textContent = JSON.stringify({images: imgs.length, broken, wide,
    scrollWidth: document.documentElement.scrollWidth, viewport: vw});
  document.body.appendChild(out);
});
</script>
"""


def _png(path: Path, seed: int = 0) -> None:
    """A small plot, saved as PNG or JPEG by ``path``'s ending (as the run's own figures are)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.random.default_rng(seed).normal(size=20))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


@pytest.fixture
def run_folder(tiny_h5, tmp_path) -> Path:
    """A run folder with every file the report reads (contents made up, shapes real)."""
    run = tmp_path / "run"
    run.mkdir()
    Config(data=str(tiny_h5)).save(run / "config.toml")
    prepare(tiny_h5, run / "manifest.json")
    (run / "run.json").write_text(json.dumps({"data": str(tiny_h5), "status": "complete", "best_epoch": 2,
                                              "timings": {"train": 12.5}}))
    (run / "environment.json").write_text(json.dumps({"torch": "2.13.0", "device": "cpu"}))
    (run / "history.csv").write_text("epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n"
                                     "1,0.69,0.5,0.6,0.7,0.001,3\n2,0.5,0.8,0.45,0.85,0.001,3\n")
    _png(run / "curves.png")
    _png(run / "data_examples.jpg")  # evaluate writes it: the report reads no data file
    for name in ("confusion", "roc", "pr", "reliability", "probabilities"):
        _png(run / "eval" / f"{name}.png")
    (run / "eval" / "metrics.json").write_text(json.dumps({
        "split": "test", "n": 8,
        "metrics": {"accuracy": {"value": 0.875, "ci95": [0.6, 1.0]}, "roc_auc": {"value": 0.93, "ci95": [0.7, 1.0]}}}))
    for name in ("confident", "misclassified"):
        _png(run / "explain" / f"gradcam_{name}.jpg")
    (run / "explain" / "explain.json").write_text(json.dumps({
        "format": "galaxymorph-explain/1", "latest": "gradcam",
        "methods": {"gradcam": {
            "method": "gradcam", "layer": "net.features.12",
            "files": {"confident": "gradcam_confident.jpg", "misclassified": "gradcam_misclassified.jpg",
                      "overlays": []},
            "localisation": {"footprint": "sep central source", "aim": "median share >= 0.6", "meets_aim": False,
                             "classes": {"Round Smooth": {"share_on_galaxy": 0.283, "galaxy_area_share": 0.301,
                                                          "lift": 0.94, "n_images": 4}}},
            "deletion": {"passed": True, "auc": 0.2, "auc_random": 0.5, "sentence": "Deletion AUC 0.2 vs 0.5"},
            "insertion": {"passed": False, "sentence": "Insertion margin within noise"},
            "randomisation": {"passed": False, "sentence": "correlation did not drop"}}}}))
    return run


def test_report_is_self_contained(run_folder):
    page = write_report(run_folder).read_text()
    assert page.startswith("<!DOCTYPE html>")
    srcs = re.findall(r'src="([^"]+)"', page)
    assert len(srcs) == 9 and all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for s in srcs)
    assert not re.search(r'(href|src)="(https?:)?//', page)  # nothing fetched from a network
    for text in ("Round Smooth vs Barred Spiral", "0.875", "[0.600, 1.000]", "FAIL", "net.features.12"):
        assert text in page
    assert 'alt="example images per class"' in page
    # localisation scores and the insertion check are in the explain section
    for text in ("share on galaxy", "0.283", "0.301", "below the aim", "Insertion margin within noise"):
        assert text in page


def test_missing_stages_say_which_command_fills_them_in(run_folder):
    shutil.rmtree(run_folder / "eval")
    shutil.rmtree(run_folder / "explain")
    page = build_html(run_folder)
    assert f"galaxymorph evaluate {run_folder}" in page and f"galaxymorph explain {run_folder}" in page


def test_report_without_example_grid_says_evaluate_makes_it(run_folder):
    (run_folder / "data_examples.jpg").unlink()
    page = build_html(run_folder)
    assert "grid of example images not produced yet" in page.lower() and "example images per class" not in page
    assert not list(run_folder.glob("data_examples.*"))  # the report made nothing from the data


def test_pictures_are_embedded_as_written_with_their_type_and_size(run_folder):
    """JPEG galleries stay JPEG (a PNG of the same picture is several times larger), byte for
    byte, with the pixel size the page lays them out at; plots stay PNG."""
    from PIL import Image

    page = build_html(run_folder)
    embedded = {alt: (media, base64.b64decode(data), int(w), int(h)) for media, data, alt, w, h in re.findall(
        r'<img src="data:(image/[a-z]+);base64,([^"]+)" alt="([^"]+)" width="(\d+)" height="(\d+)">', page)}
    for path, alt, media in [(run_folder / "explain" / "gradcam_confident.jpg", "gradcam confident", "image/jpeg"),
                             (run_folder / "data_examples.jpg", "example images per class", "image/jpeg"),
                             (run_folder / "eval" / "roc.png", "roc.png", "image/png")]:
        with Image.open(path) as image:
            assert embedded[alt] == (media, path.read_bytes(), *image.size), alt


def test_metrics_and_maps_of_an_earlier_model_are_flagged(run_folder):
    """After 'train --resume' found a better best.pt, eval/ and explain/ describe the old model."""
    def stamp(path, best_epoch, inside=lambda d: [d]):
        data = json.loads(path.read_text())
        for record in inside(data):
            record["best_epoch"] = best_epoch
        path.write_text(json.dumps(data))

    stamp(run_folder / "run.json", 7)
    page = build_html(run_folder)
    assert "describe an earlier model" not in page  # files without a stamp (older versions): shown as they are
    stamp(run_folder / "eval" / "metrics.json", 3)
    stamp(run_folder / "explain" / "explain.json", 3, lambda d: list(d["methods"].values()))
    page = build_html(run_folder)  # showed the old metrics as the model's, without a word
    assert page.count("describe an earlier model") == 2
    assert f"Run <code>galaxymorph evaluate {run_folder}</code> again" in page
    stamp(run_folder / "run.json", 3)  # the checkpoint they were made from
    assert "describe an earlier model" not in build_html(run_folder)


def test_best_epoch_is_the_one_run_json_names(run_folder):
    """The training section shows the epoch whose checkpoint was kept (run.json), not its own pick."""
    from galaxymorph.report import page_data
    from galaxymorph.rundir import RunFolder

    files = RunFolder(run_folder)
    assert page_data(run_folder)["training"]["best_epoch"] == "2"
    files.update_run_json(best_epoch=1)  # e.g. a later epoch's loss was lower but not by min_delta
    training = page_data(run_folder)["training"]
    assert (training["best_epoch"], training["best_val_loss"], training["best_val_acc"]) == ("1", "0.6000", "0.700")
    files.update_run_json(best_epoch=None)  # no epoch kept yet
    assert page_data(run_folder)["training"]["best_epoch"] == "n/a"


def test_not_a_run_folder(tmp_path):
    with pytest.raises(GalaxymorphError, match="not found"):
        build_html(tmp_path / "nope")
    with pytest.raises(GalaxymorphError, match="not a galaxymorph run folder"):
        build_html(tmp_path)


def test_names_from_the_run_folder_are_escaped(run_folder):
    """Class names, file names and paths come from files anyone may have edited: the template
    autoescapes them, so a name holding markup shows as text and runs nothing."""
    evil = "<script>alert(1)</script>"
    run = json.loads((run_folder / "run.json").read_text())
    (run_folder / "run.json").write_text(json.dumps({**run, "data": f"/data/{evil}.h5"}))
    explain = json.loads((run_folder / "explain" / "explain.json").read_text())
    gradcam = explain["methods"]["gradcam"]
    gradcam["localisation"]["classes"] = {evil: gradcam["localisation"]["classes"]["Round Smooth"]}
    overlay = "a<script>b.png"  # a legal file name on Linux
    _png(run_folder / "explain" / overlay)
    gradcam["files"]["overlays"] = [overlay]
    (run_folder / "explain" / "explain.json").write_text(json.dumps(explain))
    page = build_html(run_folder)
    assert "<script" not in page.lower()
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # the data path and the class name
    assert 'alt="a&lt;script&gt;b.png"' in page and len(re.findall(r'src="data:image/', page)) == 10


def test_the_template_ships_as_package_data():
    """pyproject's package-data globs match the template, so wheels and editable installs carry it."""
    import tomllib

    import galaxymorph

    root = Path(__file__).resolve().parents[1]
    package = Path(galaxymorph.__file__).parent
    if package.resolve() != (root / "src" / "galaxymorph").resolve():
        pytest.skip("galaxymorph is imported from an install, not from this checkout")
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["galaxymorph"]
    shipped = {f.relative_to(package).as_posix() for pattern in patterns for f in package.glob(pattern)}
    assert f"templates/{TEMPLATE}" in shipped


def test_importing_the_report_module_loads_no_template_engine():
    """jinja2 loads only when a page is written: `import galaxymorph`, the CLI parser and the
    modules that import report.py (evaluate) stay light."""
    code = ("import sys, galaxymorph, galaxymorph.cli, galaxymorph.report; galaxymorph.cli.build_parser(); "
            "print('jinja2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def check_in_browser(page: Path, width: int = 1280) -> dict:
    """Open a copy of ``page`` in headless Chromium; return what the check script saw."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    probe = page.with_name("report_check.html")
    probe.write_text(page.read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    profile = page.parent / "chromium-profile"
    common = CHROMIUM_FLAGS + [f"--user-data-dir={profile}", f"--window-size={width},1600"]
    dom = subprocess.run([CHROMIUM, *common, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="gm-check">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"the check script did not run; chromium said: {dom.stderr[-2000:]}"
    import html

    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("width", [1280, 420])
def test_report_in_headless_chromium(run_folder, width):
    page = write_report(run_folder)
    shot = run_folder / f"report_screenshot_{width}.png"
    seen = check_in_browser(page, width)
    screenshot(page, shot, width=width, height=1600)
    assert seen["images"] == 9
    assert seen["broken"] == []
    assert seen["wide"] == [] and seen["scrollWidth"] <= seen["viewport"] + 1
    assert shot.is_file() and shot.read_bytes()[:4] == b"\x89PNG"


def test_cli_report_with_screenshot(run_folder, tmp_path, capsys):
    from galaxymorph.cli import main

    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    shot = tmp_path / "page.png"
    assert main(["report", str(run_folder), "--screenshot", str(shot)]) == 0
    assert shot.read_bytes()[:4] == b"\x89PNG" and str(shot) in capsys.readouterr().out


def test_a_tuned_threshold_equal_to_the_default_is_said_to_be_the_default(run_folder):
    from galaxymorph.report import build_html

    metrics_path = run_folder / "eval" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics.setdefault("threshold", {}).update({"default": 0.5, "tuned": 0.5})
    metrics_path.write_text(json.dumps(metrics))
    assert "here it is the default itself" in build_html(run_folder)
    metrics["threshold"]["tuned"] = 0.62
    metrics_path.write_text(json.dumps(metrics))
    assert "here it is the default itself" not in build_html(run_folder)
