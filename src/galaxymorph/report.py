"""``galaxymorph report RUN_DIR``: one self-contained ``report.html`` for a run folder.

The page embeds every picture (base64, as the run folder holds it: PNG for plots, JPEG for
photographs and heatmap galleries) and its own CSS, so it opens from disk with no
server and no internet, and can be mailed or archived as one file. It is built only from the
files in the run folder (it opens no data file and loads no model, so it needs no ``--device``);
a stage that has not run yet shows the command that would fill it in.

This module reads the run folder into plain data (:func:`page_data`: strings, numbers, lists,
pictures as data: URIs); the package's Jinja2 template ``templates/report.html.j2`` turns that
into the page, with autoescaping on, so names from the run folder show as text (:func:`render`).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from PIL import Image

from .data.galaxy10 import CLASS_NAMES
from .errors import GalaxymorphError
from .fileio import atomic_path, check_output_file, read_json, write_text
from .rundir import RunFolder
from .runs import not_a_run_folder, outdated_outputs


# -- plain data for the template ------------------------------------------------------------
TEMPLATE = "report.html.j2"  # in galaxymorph/templates/, shipped as package data (pyproject.toml)


MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def _figure(path: Path, alt: str, caption: str | None = None) -> dict | None:
    """An embedded picture (``src`` a data: URI of the file's own bytes, PNG or JPEG; ``width``
    and ``height`` its pixels, so the page keeps its layout while it loads), or None when absent."""
    if not path.is_file():
        return None
    raw = path.read_bytes()
    try:
        with Image.open(path) as image:
            width, height = image.size
    except OSError:  # not a picture PIL knows: embedded all the same, the browser shows what it can
        width = height = None
    media = MEDIA_TYPES.get(path.suffix.lower(), "image/png")
    return {"src": f"data:{media};base64,{base64.b64encode(raw).decode('ascii')}", "alt": alt, "caption": caption,
            "width": width, "height": height}


def _fmt(value, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _metric_cell(entry) -> dict | None:
    """{"value": "0.945", "ci": "[0.921, 0.966]"} from {"value": v, "ci95": [lo, hi]} (or a bare number)."""
    if isinstance(entry, dict) and "value" in entry:
        ci = entry.get("ci95")
        interval = f"[{float(ci[0]):.3f}, {float(ci[1]):.3f}]" if ci and None not in ci else None
        return {"value": _fmt(float(entry["value"])), "ci": interval}
    if isinstance(entry, (int, float)):
        return {"value": _fmt(float(entry)), "ci": None}
    return None


def _count_cell(count) -> dict:
    """A whole number in a metric column (per-class support)."""
    return {"value": str(int(count)), "ci": None}


SAME = {"same": True}  # a tuned-threshold cell that equals the default column

METRIC_NAMES = {
    "accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "precision": "precision",
    "recall": "recall", "f1": "F1", "roc_auc": "ROC AUC (from probabilities)",
    "average_precision": "average precision", "brier": "Brier score", "log_loss": "log loss",
    "ece": "expected calibration error",
    "auc_from_labels": "the reference notebook's \"AUC\" (from thresholded labels = balanced accuracy)",
}


def _scalar_metrics(block: dict) -> list[tuple[str, dict]]:
    return [(k, v) for k, v in block.items()
            if isinstance(v, (int, float)) or (isinstance(v, dict) and "value" in v)]


# -- sections -------------------------------------------------------------------------------
def _data_section(files: RunFolder, run: dict, manifest: dict | None) -> dict | None:
    if manifest is None:
        return None
    classes = manifest["classes"]
    # a tree split counts images by the volunteers' majority answer to the first question
    columns = list(manifest["counts"]["train"]) if manifest.get("targets") == "tree" else [str(c) for c in classes]
    rows = []
    for split in ("train", "val", "test"):
        counts = manifest["counts"][split]
        rows.append([split] + [counts.get(c, 0) for c in columns] + [sum(counts.values())])
    src = manifest["source"]
    examples = files.examples_figure
    return {
        "file": str(run.get("data", src.get("path"))), "n_images": str(src.get("n_images")),
        "sha256_start": src["sha256"][:16], "seed": str(manifest["seed"]),
        "fractions": str(manifest["fractions"]), "n_duplicates": len(manifest.get("duplicates", [])),
        "header": ["split"] + ([f"{c} {CLASS_NAMES[c]}" for c in classes] if classes else columns) + ["total"],
        "rows": rows,
        # written by 'evaluate': the report reads no data file
        "examples": _figure(examples, "example images per class", "Random training images of each class."),
    }


def _config_rows(config: dict | None) -> list[tuple[str, str]] | None:
    return None if config is None else [(k, json.dumps(v)) for k, v in config.items()]


def _training_section(files: RunFolder, run: dict) -> dict | None:
    """The epochs trained and the best one: the epoch run.json names, its row of history.csv."""
    history = files.read_history()
    if not history:
        return None
    best = next((r for r in history if r["epoch"] == run.get("best_epoch")), None)
    return {"epochs": len(history),
            "best_val_loss": f"{best['val_loss']:.4f}" if best else "n/a",
            "best_epoch": str(best["epoch"]) if best else "n/a",
            "best_val_acc": f"{best['val_acc']:.3f}" if best else "n/a",
            "curves": _figure(files.curves_path, "training curves",
                              "Loss and accuracy per epoch, train vs validation.")}


METRIC_FIGURES = [
    ("confusion.png", "Confusion matrix: true class on rows, predicted on columns, counts and row %."),
    ("roc.png", "ROC curve from probabilities."), ("pr.png", "Precision-recall curve."),
    ("reliability.png", "Reliability diagram: predicted probability vs observed frequency."),
    ("probabilities.png", "Predicted probabilities per true class."),
]


def _tree_section(files: RunFolder, metrics: dict) -> dict:
    """A decision-tree model's evaluation: one row per question, and the per-question figure."""
    tree = metrics["tree"]
    rows = [{"name": name, "n": str(q.get("n", 0)),
             "cell": _metric_cell(q["accuracy"]) if q.get("n") else None,
             "mae": _fmt(q["fraction_mae"]) if q.get("fraction_mae") is not None else "",
             "n_with_votes": str(q.get("n_with_votes", "")),
             "baseline": _fmt((q.get("baseline") or {}).get("accuracy")) if q.get("n") and q.get("baseline") else ""}
            for name, q in tree.get("questions", {}).items()]
    return {
        "split": str(metrics.get("split", "test")), "n": str(metrics.get("n", "?")), "tta": bool(metrics.get("tta")),
        "tree": {"name": str(tree.get("tree", "")), "confident_share": f"{float(tree.get('confident_share', 0.8)):.0%}",
                 "min_votes": str(tree.get("min_votes", "")),
                 "mean_accuracy": _fmt(tree["mean_accuracy"]) if tree.get("mean_accuracy") is not None else "n/a",
                 "mean_mae": _fmt(tree["mean_fraction_mae"]) if tree.get("mean_fraction_mae") is not None else "n/a",
                 "rows": rows},
        "figures": [_figure(files.eval / "tree_questions.png", "accuracy per question",
                            "Accuracy against confident volunteers per question, with 95% Wilson intervals.")],
        "leak": _leak(metrics.get("leak")),
    }


def _metrics_section(files: RunFolder, metrics: dict | None) -> dict | None:
    if metrics is None:
        return None
    if "tree" in metrics:
        return _tree_section(files, metrics)
    headline = metrics.get("metrics", {})
    tuned = metrics.get("metrics_at_tuned_threshold") or {}
    thr = metrics.get("threshold") or {}
    header = ["metric", f"at p ≥ {thr.get('default', 0.5)}" if thr else "value"]
    if tuned:
        header.append(f"at the validation-tuned threshold {float(thr.get('tuned', 0.5)):.3f}")
    rows = [{"name": METRIC_NAMES.get(key, key.replace("_", " ")), "cell": _metric_cell(entry),
             "tuned": (_metric_cell(tuned[key]) if key in tuned else SAME)}
            for key, entry in _scalar_metrics(headline)]
    per_class = metrics.get("per_class")
    per_class_table = None
    if isinstance(per_class, dict) and len(per_class) > 2:
        keys = [k for k, _ in _scalar_metrics(next(iter(per_class.values())))]
        per_class_table = {
            "header": ["class"] + [METRIC_NAMES.get(k, k) for k in keys],
            "rows": [{"name": name, "cells": [_count_cell(v[k]) if k == "support" else _metric_cell(v.get(k))
                                              for k in keys]}
                     for name, v in per_class.items()]}
    return {
        "split": str(metrics.get("split", "test")), "n": str(metrics.get("n", "?")),
        "tta": bool(metrics.get("tta")),
        # the interval methods metrics.json names (older files: bootstrap only)
        "named_intervals": "intervals" in metrics,
        "header": header, "rows": rows, "has_tuned": bool(tuned),
        "threshold": _threshold(thr) if thr else None,
        "per_class": per_class_table,
        "figures": [_figure(files.eval / f, f, c) for f, c in METRIC_FIGURES],
        "leak": _leak(metrics.get("leak")),
    }


def _leak(leak) -> dict | None:
    """The test images the model or its init model trained on (evaluate's ``leak``), when any."""
    if not isinstance(leak, dict) or not leak.get("n_flagged"):
        return None
    runs = ", ".join(str(s.get("run")) for s in leak.get("sources", []) if s.get("n_flagged"))
    return {"n": str(leak["n_flagged"]), "runs": runs or "?", "match": str(leak.get("match", ""))}


def _threshold(thr: dict) -> dict:
    """The default and the validation-tuned decision thresholds, as shown."""
    return {"default": f"{float(thr.get('default', 0.5)):.2f}", "tuned": f"{float(thr.get('tuned', 0.5)):.3f}",
            "criterion": str(thr.get("criterion", "")), "val_n": str(thr.get("val_n", "?")),
            "same": round(float(thr.get("tuned", 0.5)), 3) == round(float(thr.get("default", 0.5)), 3)}


GALLERY_CAPTIONS = {"confident": "Most confident correct predictions of each class.",
                    "misclassified": "Misclassified, most confident first.",
                    "random": "A random sample."}


def _explain_section(run: RunFolder, explain: dict | None) -> list[dict] | None:
    """One entry per explanation method, or None when explain has not run."""
    methods = (explain or {}).get("methods") or {}
    if not methods:
        return None
    folder = run.explain_dir
    out = []
    for name, entry in methods.items():
        files = entry.get("files", {})
        counts = entry.get("counts", {})
        galleries = []
        own = entry.get("captions") or {}  # a tree model's answer galleries name their own
        for gallery, caption in (own or GALLERY_CAPTIONS).items():
            if counts.get(gallery, 1) == 0:
                galleries.append({"empty": True, "label": gallery.capitalize()})
            elif files.get(gallery):
                figure = _figure(folder / files[gallery], f"{name} {gallery}", caption)
                galleries.append({"empty": False, "figure": figure})
        checks = []
        for check in ("deletion", "insertion", "randomisation"):
            result = entry.get(check)
            if isinstance(result, dict):
                detail = result.get("sentence") or ", ".join(
                    f"{k} = {_fmt(v)}" for k, v in result.items() if isinstance(v, float))
                checks.append({"name": check, "passed": bool(result.get("passed")), "detail": detail})
        out.append({
            "name": name,
            "layer": None if entry.get("layer") in (None, "input") else str(entry["layer"]),
            "galleries": galleries,
            "localisation": _localisation(entry.get("localisation"), "answer" if entry.get("answer") else "class"),
            "localisation_figure": _figure(
                folder / files["localisation"], f"{name} localisation",
                "Each image's share of the map on the galaxy against the galaxy's share of the image.")
            if files.get("localisation") else None,
            "overlays": [_figure(folder / f, f, "original | overlay") for f in files.get("overlays", [])[:2]],
            "checks": checks,
        })
    return out


def _localisation(localisation: dict | None, kind: str = "class") -> dict | None:
    """Per class (``kind``; a tree model's rows: the answer, then each gallery): median share of the
    map on the galaxy, the galaxy's area share, their ratio."""
    if not isinstance(localisation, dict) or not localisation.get("classes"):
        return None
    rows = []
    for name, s in localisation["classes"].items():
        bar = s.get("share_on_bar_and_arms")
        rows.append([name, _fmt(s.get("share_on_galaxy")), _fmt(s.get("galaxy_area_share")),
                     _fmt(s.get("lift"), 2), "" if bar is None else _fmt(bar), str(s.get("n_images"))])
    return {"footprint": str(localisation.get("footprint", "")), "aim": str(localisation.get("aim", "")),
            "meets_aim": bool(localisation.get("meets_aim")), "rows": rows, "kind": kind}


def _timings(run: dict) -> list[tuple[str, str]]:
    return [(k, f"{float(v):.1f} s" if isinstance(v, (int, float)) else str(v))
            for k, v in (run.get("timings") or {}).items()]


def _headline(metrics: dict | None) -> list[dict] | None:
    """The cards in the page header: the main test metrics."""
    if metrics is None:
        return None
    if "tree" in metrics:
        tree = metrics["tree"]
        return [{"label": "mean accuracy over questions", "cell": _metric_cell(tree.get("mean_accuracy"))},
                {"label": "mean vote-fraction error", "cell": _metric_cell(tree.get("mean_fraction_mae"))}]
    blocks = metrics.get("metrics", {})
    return [{"label": key.replace("_", " "), "cell": _metric_cell(blocks[key])}
            for key in ("accuracy", "balanced_accuracy", "roc_auc", "f1", "log_loss") if key in blocks]


def page_data(run_dir: str | os.PathLike) -> dict:
    """Everything the report shows, as plain data read from the run folder (no HTML)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GalaxymorphError(f"run folder not found: {run_dir}")
    files = RunFolder(run_dir)
    run = files.read_run_json()
    manifest = read_json(files.manifest_path)
    saved = files.read_config()
    config = saved.to_dict() if saved is not None else None
    if manifest is None and config is None:
        raise not_a_run_folder(run_dir, f"{RunFolder.CONFIG} or {RunFolder.MANIFEST}")
    metrics = files.read_metrics()
    classes = (manifest or {}).get("classes") or (config or {}).get("classes") or []
    environment = files.read_environment()
    return {
        "title": " vs ".join(f"{CLASS_NAMES[int(c)]}" for c in classes) or (
            "Galaxy Zoo decision tree" if (manifest or {}).get("targets") == "tree" else "galaxymorph run"),
        "model": str((config or {}).get("model", "?")),
        "tree_model": (manifest or {}).get("targets") == "tree",
        "run_dir": str(run_dir), "run_name": run_dir.resolve().name,
        "written": time.strftime("%Y-%m-%d %H:%M", time.localtime()),
        "headline": _headline(metrics),
        "warnings": [str(w) for w in (metrics or {}).get("warnings", [])],
        "data": _data_section(files, run, manifest),
        "training": _training_section(files, run),
        "metrics": _metrics_section(files, metrics),
        "explain": _explain_section(files, files.read_explain()),
        "outdated": outdated_outputs(run_dir),
        "config": _config_rows(config),
        "environment": [(k, str(v)) for k, v in environment.items()],
        "timings": _timings(run),
    }


def render(data: dict) -> str:
    """The page from :func:`page_data`'s dict, through the packaged Jinja2 template (autoescaped)."""
    import jinja2  # lazy: Jinja2 loads only when a page is written, not with the modules that import report

    env = jinja2.Environment(loader=jinja2.PackageLoader("galaxymorph", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    return env.get_template(TEMPLATE).render(data)


def build_html(run_dir: str | os.PathLike) -> str:
    """The report page for a run folder, as one HTML string."""
    return render(page_data(run_dir))


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write ``RUN_DIR/report.html`` (atomically) and return its path."""
    out = check_output_file(RunFolder(run_dir).report_path)  # before the page is built
    write_text(out, build_html(run_dir))
    return out


# -- a picture of the page ----------------------------------------------------------------------
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Headless, and no background traffic: the page is self-contained and needs no network.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable, or None."""
    return next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)


def screenshot(page: str | os.PathLike, out: str | os.PathLike, width: int = 1280, height: int = 2000) -> Path:
    """A PNG of the top ``height`` pixels of an HTML page, rendered by headless Chromium."""
    browser = find_chromium()
    if browser is None:
        raise GalaxymorphError("a screenshot needs Chromium (e.g. 'apt-get install chromium'); none was found")
    page, out = Path(page).resolve(), Path(out)
    with tempfile.TemporaryDirectory() as profile, atomic_path(out) as tmp:
        done = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                               f"--screenshot={tmp}", page.as_uri()], capture_output=True, text=True, timeout=180)
        if done.returncode != 0 or tmp.stat().st_size == 0:
            raise GalaxymorphError(f"Chromium could not render {page}: {done.stderr.strip()[-300:]}")
    return out
