"""``evaluate(run_dir)``: score a run's best checkpoint on a held-out split.

Writes ``RUN_DIR/eval/``: ``metrics.json``, ``predictions.csv`` and five PNG figures, and gives
the terminal table (:func:`format_metrics`). The metrics live in :mod:`.metrics`, the figures in
:mod:`.figures`. For two classes the headline is at the 0.5 threshold; the threshold-dependent
metrics are also reported at a threshold tuned on the validation split.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data.galaxy10 import CLASS_NAMES, open_galaxy10
from ..data.splits import split_indices
from ..errors import DataError, GalaxymorphError
from ..fileio import atomic_path, write_json
from ..inference import predict_selection, predicted_positions
from .figures import write_plots
from .metrics import (THRESHOLD_METRICS, choose_threshold, confusion, per_class_metrics, point_metrics,
                      stratified_bootstrap_weights, with_intervals)

EVAL_FORMAT = "galaxymorph-eval/1"


def _check_held_out(manifest: dict, split: str) -> np.ndarray:
    """Indices of ``split``; refuse the training split or any split that shares images with it."""
    if split == "train":
        raise GalaxymorphError("refusing to evaluate on the training split: scores on it say nothing "
                               "about new images (use --split test or val)")
    indices = split_indices(manifest, split)
    shared = np.intersect1d(indices, split_indices(manifest, "train"))
    if shared.size:
        raise GalaxymorphError(f"refusing to evaluate: {shared.size} image(s) of the {split} split are also "
                               f"in the training split (e.g. index {int(shared[0])}); make a new split")
    if indices.size == 0:
        raise DataError(f"the {split} split of the manifest is empty")
    return indices


def true_positions(data, indices: np.ndarray, class_ids: list[int]) -> np.ndarray:
    """Label positions 0..k-1 of ``indices``; every class must be present (AUC needs it)."""
    ids = data.labels[indices]
    lookup = {c: i for i, c in enumerate(class_ids)}
    unknown = sorted(set(int(c) for c in np.unique(ids)) - set(lookup))
    if unknown:
        raise DataError(f"the split holds class id(s) {unknown} the model was not trained on ({class_ids})")
    positions = np.array([lookup[int(c)] for c in ids], dtype=np.int64)
    missing = [c for i, c in enumerate(class_ids) if not np.any(positions == i)]
    if missing:
        raise DataError(f"the split has no images of class {missing} ({', '.join(CLASS_NAMES[c] for c in missing)}): "
                        "ROC AUC and per-class figures need every class; make a split with more images")
    return positions


def evaluate(run_dir: str | os.PathLike, split: str = "test", tta: bool | None = None, n_boot: int = 1000,
             progress: bool = True, seed: int = 0, batch_size: int = 64, plots: bool = True) -> dict:
    """Score a run's best model on a held-out split; write RUN_DIR/eval/; return the metrics dict."""
    from ..models import load_model

    started = time.perf_counter()
    run_dir = Path(run_dir)
    if n_boot < 0:
        raise GalaxymorphError(f"n_boot must be >= 0, got {n_boot}")
    from ..runs import open_run

    folder = open_run(run_dir)
    config, data_path, manifest = folder.config, folder.data_path, folder.manifest
    indices = _check_held_out(manifest, split)
    tta = config.tta if tta is None else bool(tta)
    model = load_model(run_dir)
    class_ids = list(model.class_ids)
    if [int(c) for c in manifest["classes"]] != class_ids:
        raise GalaxymorphError(f"the checkpoint's classes {class_ids} differ from the manifest's {manifest['classes']}")
    names = [CLASS_NAMES[c] for c in class_ids]
    binary = len(class_ids) == 2

    with open_galaxy10(data_path) as data:
        y = true_positions(data, indices, class_ids)
        probs = predict_selection(model, data, indices, batch_size, tta, progress, desc=f"evaluate {split}")
        threshold = None
        if binary:
            val_idx = split_indices(manifest, "val")
            if split == "val":
                y_val, p_val = y, probs
            else:
                y_val = true_positions(data, val_idx, class_ids)
                p_val = predict_selection(model, data, val_idx, batch_size, tta, progress, desc="evaluate val")
            threshold = choose_threshold(y_val, p_val[:, 1])
            if split == "val":
                threshold["note"] = "chosen and scored on the same split: optimistic"
    probs = probs.astype(np.float64)
    probs /= probs.sum(1, keepdims=True)
    pred = predicted_positions(probs)

    W = stratified_bootstrap_weights(y, n_boot, seed)
    point = point_metrics(y, probs, pred)
    result: dict[str, Any] = {
        "format": EVAL_FORMAT,
        "split": split,
        "n": int(len(y)),
        "counts": {name: int((y == c).sum()) for c, name in enumerate(names)},
        "class_ids": class_ids,
        "class_names": names,
        "positive_class": class_ids[1] if binary else None,
        "model": model.name,
        "checkpoint": "checkpoints/best.pt",
        "tta": tta,
        "data": {"path": str(data_path), "sha256": manifest["source"]["sha256"]},
        "bootstrap": {"n_boot": int(n_boot), "seed": int(seed), "level": 0.95,
                      "method": "percentile, resampling within each true class"},
        "decision": ("positive class if p >= 0.5" if binary else "argmax of the class probabilities"),
        "metrics": with_intervals(point, W, y, probs, pred),
        "notes": {"auc_from_labels": "roc_auc_score on thresholded 0/1 predictions, as the reference notebook "
                                     "computed 'AUC'; equals balanced accuracy for two classes. Use roc_auc."} if binary else {},
        "per_class": per_class_metrics(y, probs, pred, names),
        "confusion_matrix": confusion(y, pred, names),
    }
    if binary:
        tuned = predicted_positions(probs, threshold["tuned"])
        tuned_point = {k: v for k, v in point_metrics(y, probs, tuned).items() if k in THRESHOLD_METRICS}
        result["threshold"] = threshold
        result["metrics_at_tuned_threshold"] = with_intervals(tuned_point, W, y, probs, tuned)
        result["confusion_matrix_at_tuned_threshold"] = confusion(y, tuned, names)

    out_dir = run_dir / "eval"
    _write_predictions(out_dir / "predictions.csv", indices, y, probs, pred, class_ids)
    if plots:
        write_plots(out_dir, y, probs, pred, names, threshold["tuned"] if threshold else None)
    result["seconds"] = round(time.perf_counter() - started, 2)
    write_json(out_dir / "metrics.json", result)
    return result


def _write_predictions(path: Path, indices, y, probs, pred, class_ids) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index", "true", "predicted"] + [f"prob_{c}" for c in class_ids])
        for i, t, p, row in zip(indices, y, pred, probs):
            writer.writerow([int(i), class_ids[t], class_ids[p]] + [repr(float(v)) for v in row])


def format_metrics(metrics: dict) -> str:
    """A compact terminal table: metric, value, 95% interval (and at the tuned threshold)."""
    names = ", ".join(f"{n} {metrics['counts'][n]}" for n in metrics["class_names"])
    lines = [f"{metrics['model']} on {metrics['split']} (n={metrics['n']}: {names})"
             f"{', D4 TTA' if metrics.get('tta') else ''}"]
    tuned = metrics.get("metrics_at_tuned_threshold")
    head = f"  {'metric':<19}{'value':>7}  {'95% CI':<15}"
    if tuned:
        thr = metrics["threshold"]["tuned"]
        head += f"  at val-tuned threshold {thr:.3f}"
    lines.append(head)
    for name, m in metrics["metrics"].items():
        ci = m["ci95"]
        row = f"  {name:<19}{m['value']:>7.4f}  " + (f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else " " * 15)
        if tuned and name in tuned:
            t = tuned[name]
            row += f"  {t['value']:.4f}" + (f" [{t['ci95'][0]:.4f}, {t['ci95'][1]:.4f}]" if t["ci95"] else "")
        lines.append(row)
    # Columns are headed by the Galaxy10 class id, so ten classes still fit a terminal.
    cm = metrics["confusion_matrix"]
    ids = metrics.get("class_ids") or list(range(len(cm["labels"])))
    rows = [f"{c} {name}" for c, name in zip(ids, cm["labels"])]
    first = max(len(r) for r in rows) + 2
    cell = max(5, max(len(str(v)) for row in cm["matrix"] for v in row) + 2)
    lines.append("  confusion (rows true, columns predicted, by class id):")
    lines.append("  " + " " * first + "".join(f"{c:>{cell}}" for c in ids))
    for label, row in zip(rows, cm["matrix"]):
        lines.append(f"  {label:<{first}}" + "".join(f"{v:>{cell}d}" for v in row))
    return "\n".join(lines)


