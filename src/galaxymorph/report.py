"""``galaxymorph report RUN_DIR``: one self-contained ``report.html`` for a run folder.

The page embeds every picture (base64 PNG) and its own CSS, so it opens from disk with no
server and no internet, and can be mailed or archived as one file. It is built only from the
files in the run folder (it opens no data file and loads no model, so it needs no ``--device``);
a stage that has not run yet shows the command that would fill it in.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .data.galaxy10 import CLASS_NAMES
from .errors import GalaxymorphError
from .fileio import write_text

EXAMPLES_PNG = "data_examples.png"  # training images per class, written by evaluate


# -- reading the run folder ---------------------------------------------------------------
def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except json.JSONDecodeError:
        return None


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _read_toml(path: Path) -> dict | None:
    if not path.is_file():
        return None
    from .config import load_mapping

    return load_mapping(path)


# -- HTML pieces ----------------------------------------------------------------------------
def _esc(value) -> str:
    return html.escape(str(value))


def _img(path: Path, alt: str, caption: str | None = None) -> str:
    """An embedded PNG figure, or nothing when the file is absent."""
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(alt)}">{cap}</figure>'


def _table(header: list[str], rows: list[list], cls: str = "") -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _missing(what: str, command: str) -> str:
    return f'<p class="missing">{_esc(what)} not produced yet: run <code>{_esc(command)}</code>.</p>'


def _fmt(value, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return _esc(value)


def _metric_cell(entry) -> str:
    """'0.945 [0.921, 0.966]' from {"value": v, "ci95": [lo, hi]} (or a bare number)."""
    if isinstance(entry, dict) and "value" in entry:
        ci = entry.get("ci95")
        text = _fmt(float(entry["value"]))
        if ci and None not in ci:
            text += f' <span class="ci">[{float(ci[0]):.3f}, {float(ci[1]):.3f}]</span>'
        return text
    if isinstance(entry, (int, float)):
        return _fmt(float(entry))
    return ""


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
def _section_data(run_dir: Path, run: dict, manifest: dict | None) -> str:
    if manifest is None:
        return _missing("The split manifest", f"galaxymorph train --out {run_dir}")
    classes = manifest["classes"]
    rows = []
    for split in ("train", "val", "test"):
        counts = manifest["counts"][split]
        rows.append([split] + [counts.get(str(c), 0) for c in classes] + [sum(counts.values())])
    header = ["split"] + [f"{c} {CLASS_NAMES[c]}" for c in classes] + ["total"]
    src = manifest["source"]
    dups = manifest.get("duplicates", [])
    parts = [
        f"<p>Data file <code>{_esc(run.get('data', src.get('path')))}</code> "
        f"({_esc(src.get('n_images'))} images, SHA-256 <code>{_esc(src['sha256'][:16])}…</code>). "
        f"Stratified split, seed {_esc(manifest['seed'])}, fractions {_esc(manifest['fractions'])}; "
        f"exact duplicates across splits: {len(dups)}.</p>",
        _table(header, rows),
    ]
    examples = run_dir / EXAMPLES_PNG  # written by 'evaluate': the report reads no data file
    if examples.is_file():
        parts.append(_img(examples, "example images per class", "Random training images of each class."))
    else:
        parts.append(_missing("The grid of example images", f"galaxymorph evaluate {run_dir}"))
    return "".join(parts)


def _section_config(config: dict | None) -> str:
    if config is None:
        return "<p>No config.toml in this run folder.</p>"
    rows = [[f"<code>{_esc(k)}</code>", f"<code>{_esc(json.dumps(v))}</code>"] for k, v in config.items()]
    return _table(["key", "value"], rows, cls="config")


def _section_training(run_dir: Path, run: dict) -> str:
    history = _read_csv(run_dir / "history.csv")
    if not history:
        return _missing("Training history", f"galaxymorph train --resume {run_dir}")
    best = min(history, key=lambda r: float(r.get("val_loss", "inf") or "inf"))
    text = (f"<p>{len(history)} epoch(s); best validation loss {float(best['val_loss']):.4f} at epoch "
            f"{_esc(best['epoch'])} (validation accuracy {float(best.get('val_acc', 'nan')):.3f}). "
            "The checkpoint kept is the one with the lowest validation loss; the test split played no part.</p>")
    return text + _img(run_dir / "curves.png", "training curves", "Loss and accuracy per epoch, train vs validation.")


def _interval_sentence(metrics: dict) -> str:
    """What the brackets are: the interval methods metrics.json names (older files: bootstrap)."""
    if "intervals" not in metrics:
        return "Brackets give 95% bootstrap intervals."
    return ("Brackets give 95% intervals: Wilson score intervals for proportions (accuracy, precision, "
            "recall), MOVER intervals from the per-class Wilson intervals for balanced accuracy, and a "
            "class-stratified percentile bootstrap for the other metrics.")


def _section_metrics(run_dir: Path, metrics: dict | None) -> str:
    if metrics is None:
        return _missing("Test metrics", f"galaxymorph evaluate {run_dir}")
    parts = [f"<p>Split <b>{_esc(metrics.get('split', 'test'))}</b>: {_esc(metrics.get('n', '?'))} images never "
             "seen in training or model selection"
             + (", with test-time averaging over the 8 rotations and flips" if metrics.get("tta") else "")
             + ". " + _interval_sentence(metrics) + "</p>"]
    headline = metrics.get("metrics", {})
    tuned = metrics.get("metrics_at_tuned_threshold") or {}
    thr = metrics.get("threshold") or {}
    header = ["metric", f"at p ≥ {thr.get('default', 0.5)}" if thr else "value"]
    if tuned:
        header.append(f"at the validation-tuned threshold {float(thr.get('tuned', 0.5)):.3f}")
    rows = []
    for key, entry in _scalar_metrics(headline):
        row = [_esc(METRIC_NAMES.get(key, key.replace("_", " "))), _metric_cell(entry)]
        if tuned:
            row.append(_metric_cell(tuned[key]) if key in tuned else '<span class="ci">same</span>')
        rows.append(row)
    parts.append(_table(header, rows, cls="metrics"))
    if thr:
        parts.append(
            f"<p>The headline uses the default threshold {float(thr.get('default', 0.5)):.2f}. A second threshold, "
            f"{float(thr.get('tuned', 0.5)):.3f}, was chosen on the <b>validation</b> split "
            f"({_esc(thr.get('criterion', ''))}; {_esc(thr.get('val_n', '?'))} images), never on test.</p>")
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict) and len(per_class) > 2:
        keys = [k for k, _ in _scalar_metrics(next(iter(per_class.values())))]
        rows = [[_esc(name)] + [str(int(v[k])) if k == "support" else _metric_cell(v.get(k)) for k in keys]
                for name, v in per_class.items()]
        parts.append("<h3>Per class</h3>" + _table(["class"] + [_esc(METRIC_NAMES.get(k, k)) for k in keys], rows))
    figs = [("confusion.png", "Confusion matrix: true class on rows, predicted on columns, counts and row %."),
            ("roc.png", "ROC curve from probabilities."), ("pr.png", "Precision-recall curve."),
            ("reliability.png", "Reliability diagram: predicted probability vs observed frequency."),
            ("probabilities.png", "Predicted probabilities per true class.")]
    parts.append('<div class="grid">' + "".join(_img(run_dir / "eval" / f, f, c) for f, c in figs) + "</div>")
    return "".join(parts)


def _section_explain(run_dir: Path, explain: dict | None) -> str:
    methods = (explain or {}).get("methods") or {}
    if not methods:
        return _missing("Explanations", f"galaxymorph explain {run_dir}")
    folder = run_dir / "explain"
    parts = ["<p>Heatmaps over the input show where the evidence for the predicted class lies; each image "
             "is explained for its predicted class, from the held-out split. Each map is scaled to its own "
             "maximum (colour bar); the cyan contour marks half that maximum. The localisation table says how "
             "much of each map falls on the galaxy, against the share of the image the galaxy covers (what a "
             "uniform map scores). See docs/explanations.md for what the maps can and cannot show.</p>"]
    for name, entry in methods.items():
        files = entry.get("files", {})
        layer = f" on layer <code>{_esc(entry['layer'])}</code>" if entry.get("layer") not in (None, "input") else ""
        parts.append(f"<h3>{_esc(name)}{layer}</h3>")
        captions = {"confident": "Most confident correct predictions of each class.",
                    "misclassified": "Misclassified, most confident first.",
                    "random": "A random sample."}
        counts = entry.get("counts", {})
        for gallery, caption in captions.items():
            if counts.get(gallery, 1) == 0:
                parts.append(f"<p>{_esc(gallery.capitalize())}: none in this split.</p>")
            elif files.get(gallery):
                parts.append(_img(folder / files[gallery], f"{name} {gallery}", caption))
        parts.append(_localisation_table(entry.get("localisation")))
        if files.get("localisation"):
            parts.append(_img(folder / files["localisation"], f"{name} localisation",
                              "Each image's share of the map on the galaxy against the galaxy's share of the image."))
        overlays = files.get("overlays", [])[:2]
        if overlays:
            parts.append('<div class="grid">' + "".join(
                _img(folder / f, f, "original | overlay") for f in overlays) + "</div>")
        rows = []
        for check in ("deletion", "insertion", "randomisation"):
            result = entry.get(check)
            if not isinstance(result, dict):
                continue
            badge = '<span class="pass">pass</span>' if result.get("passed") else '<span class="fail">FAIL</span>'
            detail = result.get("sentence") or ", ".join(
                f"{k} = {_fmt(v)}" for k, v in result.items() if isinstance(v, float))
            rows.append([_esc(check), badge, _esc(detail)])
        if rows:
            parts.append(_table(["check", "result", "what it means"], rows))
    return "".join(parts)


def _localisation_table(localisation: dict | None) -> str:
    """Per class: median share of the map on the galaxy, the galaxy's area share, their ratio."""
    if not isinstance(localisation, dict) or not localisation.get("classes"):
        return ""
    rows = []
    for name, s in localisation["classes"].items():
        bar = s.get("share_on_bar_and_arms")
        rows.append([_esc(name), _fmt(s.get("share_on_galaxy")), _fmt(s.get("galaxy_area_share")),
                     _fmt(s.get("lift"), 2), "" if bar is None else _fmt(bar), _esc(s.get("n_images"))])
    badge = '<span class="pass">meets the aim</span>' if localisation.get("meets_aim") else \
        '<span class="fail">below the aim</span>'
    note = (f"<p>Localisation ({_esc(localisation.get('footprint', ''))}; aim: "
            f"{_esc(localisation.get('aim', ''))}): {badge}</p>")
    return note + _table(["class", "share on galaxy (median)", "galaxy area share", "ratio", "share on bar + arms",
                          "images"], rows)


def _section_environment(run_dir: Path, run: dict) -> str:
    env = _read_json(run_dir / "environment.json") or {}
    rows = [[_esc(k), f"<code>{_esc(v)}</code>"] for k, v in env.items()]
    timings = run.get("timings") or {}
    rows += [[_esc(f"time: {k}"), _esc(f"{float(v):.1f} s" if isinstance(v, (int, float)) else v)]
             for k, v in timings.items()]
    return _table(["item", "value"], rows) if rows else "<p>No environment record.</p>"


def _headline(metrics: dict | None) -> str:
    if metrics is None:
        return ""
    blocks = metrics.get("metrics", {})
    cards = []
    for key in ("accuracy", "balanced_accuracy", "roc_auc", "f1", "log_loss"):
        if key in blocks:
            cards.append(f'<div class="card"><div class="k">{_esc(key.replace("_", " "))}</div>'
                         f'<div class="v">{_metric_cell(blocks[key])}</div></div>')
    return f'<div class="cards">{"".join(cards)}</div>'


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
main{max-width:1100px;margin:0 auto;padding:1.5rem}
header{background:#0f1b33;color:#fff;padding:1.5rem}header h1{margin:0 0 .3rem;font-size:1.6rem}
header p{margin:0;color:#c8d2e8}
section{background:#fff;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0;box-shadow:0 1px 3px #0002}
h2{margin-top:0;font-size:1.25rem;border-bottom:1px solid #e3e6ec;padding-bottom:.3rem}
figure{margin:.5rem 0;max-width:100%}img{max-width:100%;height:auto;display:block}
figcaption{font-size:.85rem;color:#5a6270}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:.75rem}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}th,td{padding:.3rem .6rem;border-bottom:1px solid #e3e6ec;text-align:left}
th{background:#f0f2f6}.ci{color:#5a6270;font-size:.8rem}
.metrics td:not(:first-child){white-space:nowrap}
code{font-size:.85em;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1rem}
.card{background:#1d2c4d;border-radius:6px;padding:.5rem .9rem}.card .k{font-size:.75rem;color:#c8d2e8;text-transform:uppercase}
.card .v{font-size:1.2rem;color:#fff}.card .ci{color:#c8d2e8}
.missing{color:#8a5a00;background:#fff6e0;padding:.5rem;border-radius:4px}
.pass{color:#fff;background:#2e7d32;padding:0 .4rem;border-radius:3px}.fail{color:#fff;background:#c62828;padding:0 .4rem;border-radius:3px}
"""


def build_html(run_dir: str | os.PathLike) -> str:
    """The report page for a run folder, as one HTML string."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GalaxymorphError(f"run folder not found: {run_dir}")
    run = _read_json(run_dir / "run.json") or {}
    manifest = _read_json(run_dir / "manifest.json")
    config = _read_toml(run_dir / "config.toml")
    if manifest is None and config is None:
        raise GalaxymorphError(f"{run_dir} is not a galaxymorph run folder (no config.toml or manifest.json)")
    metrics = _read_json(run_dir / "eval" / "metrics.json")
    explain = _read_json(run_dir / "explain" / "explain.json")
    classes = (manifest or {}).get("classes") or (config or {}).get("classes") or []
    title = " vs ".join(f"{CLASS_NAMES[int(c)]}" for c in classes) or "galaxymorph run"
    model = (config or {}).get("model", "?")
    sections = [
        ("Data", _section_data(run_dir, run, manifest)),
        ("Training", _section_training(run_dir, run)),
        ("Test metrics", _section_metrics(run_dir, metrics)),
        ("What the network looks at", _section_explain(run_dir, explain)),
        ("Configuration", _section_config(config)),
        ("Environment and timings", _section_environment(run_dir, run)),
    ]
    body = "".join(f'<section id="{_esc(t.lower().replace(" ", "-"))}"><h2>{_esc(t)}</h2>{s}</section>'
                   for t, s in sections)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>galaxymorph: {_esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{_esc(title)}</h1><p>galaxymorph report · model <b>{_esc(model)}</b> · "
        f"run folder <code>{_esc(run_dir.resolve().name)}</code> · written {when}</p>{_headline(metrics)}</header>"
        f"<main>{body}</main></body></html>\n"
    )


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write ``RUN_DIR/report.html`` (atomically) and return its path."""
    out = Path(run_dir) / "report.html"
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
    from .fileio import atomic_path

    with tempfile.TemporaryDirectory() as profile, atomic_path(out) as tmp:
        done = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                               f"--screenshot={tmp}", page.as_uri()], capture_output=True, text=True, timeout=180)
        if done.returncode != 0 or tmp.stat().st_size == 0:
            raise GalaxymorphError(f"Chromium could not render {page}: {done.stderr.strip()[-300:]}")
    return out
