"""``evaluate(run_dir)``: score a run's best checkpoint on a held-out split.

Writes ``RUN_DIR/eval/`` (or another folder): ``metrics.json``, ``predictions.csv`` and five PNG
figures, through :class:`galaxymorph.rundir.RunFolder`, and gives
the terminal table (:func:`format_metrics`). The metrics live in :mod:`.metrics`, the figures in
:mod:`.figures`. For two classes the headline is at the 0.5 threshold; the threshold-dependent
metrics are also reported at a threshold tuned on the validation split.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data.scale import check_file_scale
from ..errors import GalaxymorphError
from ..trained_on import check_test_images
from ..votes import vote_summary
from ..fileio import check_writable_folder
from ..decision import predicted_positions
from ..inference import predict_selection
from ..models import load_model
from ..rundir import Predictions, RunFolder
from ..runs import open_held_out, open_run, run_device
from .figures import write_examples, write_plots
from .metrics import (EVAL_FORMAT, INTERVAL_METHODS, THRESHOLD_METRICS, choose_threshold, confusion, per_class_metrics,
                      point_metrics, stratified_bootstrap_weights, with_intervals)
from .tree import evaluate_tree, format_tree_metrics



def evaluate(run_dir: str | os.PathLike, split: str = "test", tta: bool | None = None, n_boot: int = 1000,
             progress: bool = True, seed: int = 0, batch_size: int | None = None, plots: bool = True,
             device: str | None = None, out: str | os.PathLike | None = None) -> dict:
    """Score a run's best model on a held-out split; write RUN_DIR/eval/ (or ``out``); return the
    metrics dict.

    ``device``: where the model runs (``cpu``, ``cuda``, ``cuda:N``, ``auto``); default: the
    device the run's config names when this machine has it, else ``auto``. ``batch_size``:
    images per forward pass (default: 64 on the CPU, 512 on a GPU).
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    if n_boot < 0:
        raise GalaxymorphError(f"n_boot must be >= 0, got {n_boot}")
    folder = open_run(run_dir)
    files = RunFolder(run_dir).with_eval_dir(out)
    check_writable_folder(files.eval)  # before the work, not after it
    tta = folder.config.tta if tta is None else bool(tta)
    model = load_model(run_dir, device=run_device(run_dir, device))
    if model.tree is not None:  # a decision-tree model: scored question by question
        return evaluate_tree(run_dir, folder, model, split, tta, progress, batch_size, plots, files)
    held_out = open_held_out(folder, split, class_ids=model.class_ids)
    class_ids, names, y = held_out.class_ids, held_out.class_names, held_out.labels

    with held_out.open_data() as data:
        probs = predict_selection(model, data, held_out.indices, batch_size, tta, progress, desc=f"evaluate {split}")
        threshold = None
        if len(class_ids) == 2:
            threshold = _tuned_threshold(model, data, folder, split, class_ids, y, probs, batch_size, tta, progress)
        if plots:
            if not files.examples_figure.is_file():
                write_examples(files.examples_figure, data, folder.manifest)
    probs = probs.astype(np.float64)
    probs /= probs.sum(1, keepdims=True)
    pred = predicted_positions(probs)
    result = _scores(run_dir, folder, model, held_out, split, tta, probs, pred, threshold, n_boot, seed)

    ids = np.asarray(class_ids, dtype=np.int64)
    files.write_predictions(Predictions(np.asarray(held_out.indices), ids[y], ids[pred], probs, class_ids))
    if plots:
        write_plots(files.eval, y, probs, pred, names, threshold["tuned"] if threshold else None)
    result["seconds"] = round(time.perf_counter() - started, 2)
    files.write_metrics(result)
    return result


def _tuned_threshold(model, data, folder, split: str, class_ids: list[int], y: np.ndarray, probs: np.ndarray,
                     batch_size: int | None, tta: bool, progress: bool) -> dict:
    """Two classes: the threshold on p(positive) tuned on the validation split (predicted here
    unless ``split`` is "val" itself, which is then noted as optimistic)."""
    if split == "val":
        y_val, p_val = y, probs
    else:
        val = open_held_out(folder, "val", class_ids=class_ids)
        y_val = val.labels
        p_val = predict_selection(model, data, val.indices, batch_size, tta, progress, desc="evaluate val")
    threshold = choose_threshold(y_val, p_val[:, 1])
    if split == "val":
        threshold["note"] = "chosen and scored on the same split: optimistic"
    return threshold


def _scores(run_dir: Path, folder, model, held_out, split: str, tta: bool, probs: np.ndarray, pred: np.ndarray,
            threshold: dict | None, n_boot: int, seed: int) -> dict[str, Any]:
    """metrics.json's content (but its ``seconds``): metrics with bootstrap intervals, per class,
    confusion matrix, checks of the data; for two classes also at the tuned threshold, and votes."""
    class_ids, names, y = held_out.class_ids, held_out.class_names, held_out.labels
    binary = len(class_ids) == 2
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
        "best_epoch": folder.run.get("best_epoch"),  # which best.pt: runs.outdated_outputs
        "tta": tta,
        "device": str(model.device),
        "data": {"path": str(folder.data_path), "sha256": folder.manifest["source"]["sha256"]},
        "intervals": {"level": 0.95, "methods": INTERVAL_METHODS,
                      "note": "each metric names its interval; a bootstrap interval cannot reach beyond the "
                              "sample, so at a perfect score it is [1, 1]"},
        "bootstrap": {"n_boot": int(n_boot), "seed": int(seed), "level": 0.95,
                      "method": "percentile, resampling within each true class"},
        "decision": ("positive class if p >= 0.5" if binary else "argmax of the class probabilities"),
        "metrics": with_intervals(point, W, y, probs, pred),
        "notes": {"auc_from_labels": "roc_auc_score on thresholded 0/1 predictions, as the reference notebook "
                                     "computed 'AUC'; equals balanced accuracy for two classes. Use roc_auc."} if binary else {},
        "per_class": per_class_metrics(y, probs, pred, names),
        "confusion_matrix": confusion(y, pred, names),
        "scale_warnings": check_file_scale(run_dir, folder.run, folder.data_path, held_out.indices),  # one line on stderr
        # test images the model or its init model trained on (one line on stderr when any)
        "leak": check_test_images(run_dir, folder.data_path, held_out.indices, split),
        "warnings": model_warnings(pred, names),
    }
    if binary:
        tuned = predicted_positions(probs, threshold["tuned"])
        tuned_point = {k: v for k, v in point_metrics(y, probs, tuned).items() if k in THRESHOLD_METRICS}
        result["threshold"] = threshold
        result["metrics_at_tuned_threshold"] = with_intervals(tuned_point, W, y, probs, tuned)
        result["confusion_matrix_at_tuned_threshold"] = confusion(y, tuned, names)
        votes = vote_summary(folder.data_path, held_out.indices, class_ids, y, probs[:, 1])
        if votes is not None:
            result["votes"] = votes
    return result


def model_warnings(pred: np.ndarray, names: list[str]) -> list[str]:
    """What makes the headline metrics misleading, for the terminal and the report's header:
    a model that predicts one class for every image has learnt nothing about the others."""
    predicted = np.unique(pred)
    if len(pred) and len(predicted) == 1:
        return [f"the model predicts {names[int(predicted[0])]} for every image: it does not tell the classes "
                "apart (train longer or with other settings, and check the data)"]
    return []


def format_metrics(metrics: dict) -> str:
    """A compact terminal table: metric, value, 95% interval (and at the tuned threshold)."""
    if "tree" in metrics:
        return format_tree_metrics(metrics)
    names = ", ".join(f"{n} {metrics['counts'][n]}" for n in metrics["class_names"])
    lines = [f"{metrics['model']} on {metrics['split']} (n={metrics['n']}: {names})"
             f"{', D4 TTA' if metrics.get('tta') else ''}"]
    lines += [f"  WARNING: {w}" for w in metrics.get("warnings", [])]
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
    if "auc_from_labels" in metrics["metrics"]:
        lines.append("  auc_from_labels: the reference notebook's AUC, from thresholded labels; for comparison only")
    for row in metrics.get("votes", {}).get("accuracy_by_confidence", []):
        lines.append(f"  accuracy on labels with deciding votes >= {row['min_vote']:.1f}: {row['accuracy']:.4f} "
                     f"(n={row['n']})")
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


