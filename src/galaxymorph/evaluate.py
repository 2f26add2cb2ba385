"""Evaluation of a trained run on a held-out split: metrics, bootstrap intervals, plots.

``evaluate(run_dir)`` scores the run's best checkpoint on the test split named in its manifest
and writes ``RUN_DIR/eval/``: ``metrics.json``, ``predictions.csv`` and five PNG figures.

Choices worth knowing:

* Point estimates come from scikit-learn, computed from the predicted PROBABILITIES where the
  metric is a ranking or probability score (ROC AUC, average precision, log loss, Brier).
  The reference notebook called ``roc_auc_score`` on thresholded 0/1 predictions; for two
  classes that number equals the balanced accuracy. It is reported as ``auc_from_labels``
  for comparison only.
* Every scalar metric has a 95% percentile bootstrap interval. Resampling is stratified (each
  true class resampled within itself, so class counts stay fixed and every resample has both
  classes) and seeded. The resamples are expressed as count weights and every metric is
  computed for all of them at once with numpy (the weighted formulas equal scikit-learn's
  ``sample_weight`` results; a test checks this).
* For two classes the headline is at the 0.5 threshold. A second threshold is chosen on the
  VALIDATION split (maximising balanced accuracy, i.e. Youden's J) and the threshold-dependent
  metrics are reported at it too; the test labels never influence it.
* Expected calibration error: 15 equal-width bins of the top-class confidence.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics as skm

from .data.galaxy10 import CLASS_NAMES, open_galaxy10
from .data.scale import check_file_scale
from .data.splits import split_indices
from .errors import DataError, GalaxymorphError
from .fileio import atomic_path, write_json
from .predict import predict_indices, predicted_positions

EVAL_FORMAT = "galaxymorph-eval/1"
ECE_BINS = 15
THRESHOLD_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "auc_from_labels")
EPS = np.finfo(np.float64).eps


# ================================================================================ the run
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


# ================================================================================ metrics
def expected_calibration_error(y: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE of the top-class confidence in ``n_bins`` equal-width bins: sum_b n_b/n |acc_b - conf_b|."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    gap = np.bincount(bins, weights=correct - conf, minlength=n_bins)
    return float(np.abs(gap).sum() / len(y))


def _binary_pred(probs: np.ndarray, threshold: float) -> np.ndarray:
    return predicted_positions(probs, threshold)


def point_metrics(y: np.ndarray, probs: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Scalar metrics with scikit-learn: labels ``y`` and ``pred`` 0..k-1, ``probs`` (n, k)."""
    k = probs.shape[1]
    labels = list(range(k))
    avg = "binary" if k == 2 else "macro"
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, labels=labels, average=avg, zero_division=0),
        "recall": skm.recall_score(y, pred, labels=labels, average=avg, zero_division=0),
        "f1": skm.f1_score(y, pred, labels=labels, average=avg, zero_division=0),
    }
    if k == 2:
        out["roc_auc"] = skm.roc_auc_score(y, probs[:, 1])
        out["average_precision"] = skm.average_precision_score(y, probs[:, 1])
        out["brier"] = skm.brier_score_loss(y, probs[:, 1])
        out["auc_from_labels"] = skm.roc_auc_score(y, pred)
    else:
        onehot = np.eye(k)[y]
        out["roc_auc"] = skm.roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=labels)
        out["average_precision"] = skm.average_precision_score(onehot, probs, average="macro")
        out["brier"] = skm.brier_score_loss(y, probs, labels=labels)
    out["log_loss"] = skm.log_loss(y, probs, labels=labels)
    out["ece"] = expected_calibration_error(y, probs)
    return {name: float(v) for name, v in out.items()}


def per_class_metrics(y: np.ndarray, probs: np.ndarray, pred: np.ndarray, names: list[str]) -> dict:
    """Precision, recall, F1, support and one-vs-rest ROC AUC / AP for each class."""
    k = probs.shape[1]
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=list(range(k)), zero_division=0)
    out = {}
    for c, name in enumerate(names):
        positive = (y == c).astype(int)
        out[name] = {"precision": float(p[c]), "recall": float(r[c]), "f1": float(f[c]), "support": int(s[c]),
                     "roc_auc": float(skm.roc_auc_score(positive, probs[:, c])),
                     "average_precision": float(skm.average_precision_score(positive, probs[:, c]))}
    return out


def confusion(y: np.ndarray, pred: np.ndarray, names: list[str]) -> dict:
    matrix = skm.confusion_matrix(y, pred, labels=list(range(len(names))))
    return {"labels": names, "rows": "true", "columns": "predicted", "matrix": matrix.tolist()}


# -- the same metrics for many count-weight vectors at once (the bootstrap) ------------------
def stratified_bootstrap_weights(y: np.ndarray, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot, n) counts: how often each sample appears in each class-stratified resample."""
    rng = np.random.default_rng(seed)
    n = len(y)
    flat = []
    rows = np.arange(n_boot)[:, None] * n
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        draws = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
        flat.append((rows + draws).ravel())
    counts = np.bincount(np.concatenate(flat), minlength=n_boot * n)
    return counts.reshape(n_boot, n).astype(np.float64)


def _weighted_auc_ap(W: np.ndarray, positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC (ties count half) and average precision (scikit-learn's step sum) per weight row."""
    uniq, group = np.unique(score, return_inverse=True)  # ascending distinct scores
    m = len(uniq)
    gp = np.zeros((W.shape[0], m))
    gn = np.zeros((W.shape[0], m))
    np.add.at(gp.T, group[positive], W[:, positive].T)
    np.add.at(gn.T, group[~positive], W[:, ~positive].T)
    total_p, total_n = gp.sum(1), gn.sum(1)
    neg_below = np.cumsum(gn, axis=1) - gn
    auc = (gp * (neg_below + 0.5 * gn)).sum(1) / (total_p * total_n)
    tp = np.cumsum(gp[:, ::-1], axis=1)  # thresholds from the highest score down
    fp = np.cumsum(gn[:, ::-1], axis=1)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall_step = gp[:, ::-1] / total_p[:, None]
    ap = (recall_step * precision).sum(1)
    return auc, ap


def weighted_metrics(W: np.ndarray, y: np.ndarray, probs: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Every scalar metric of :func:`point_metrics` for each row of count weights ``W`` (b, n)."""
    k = probs.shape[1]
    total = W.sum(1)
    # confusion counts per resample: (b, k, k), true on axis 1
    cm = (W @ np.eye(k * k)[y * k + pred]).reshape(-1, k, k)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    support, predicted = cm.sum(2), cm.sum(1)
    recall_c = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision_c = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    f1_c = np.divide(2 * tp, support + predicted, out=np.zeros_like(tp), where=(support + predicted) > 0)
    out = {"accuracy": tp.sum(1) / total,
           "balanced_accuracy": recall_c[:, support.min(0) > 0].mean(1)}
    p_true = np.clip(probs[np.arange(len(y)), y], EPS, 1 - EPS)
    if k == 2:
        out.update(precision=precision_c[:, 1], recall=recall_c[:, 1], f1=f1_c[:, 1])
        out["roc_auc"], out["average_precision"] = _weighted_auc_ap(W, y == 1, probs[:, 1])
        out["brier"] = W @ (probs[:, 1] - y) ** 2 / total
        out["auc_from_labels"], _ = _weighted_auc_ap(W, y == 1, pred.astype(float))
    else:
        out.update(precision=precision_c.mean(1), recall=recall_c.mean(1), f1=f1_c.mean(1))
        aucs, aps = zip(*(_weighted_auc_ap(W, y == c, probs[:, c]) for c in range(k)))
        out["roc_auc"], out["average_precision"] = np.mean(aucs, 0), np.mean(aps, 0)
        out["brier"] = W @ ((probs - np.eye(k)[y]) ** 2).sum(1) / total
    out["log_loss"] = W @ -np.log(p_true) / total
    conf = probs.max(1)
    bins = np.minimum((conf * ECE_BINS).astype(int), ECE_BINS - 1)
    gap = (probs.argmax(1) == y) - conf
    out["ece"] = np.abs(W @ (np.eye(ECE_BINS)[bins] * gap[:, None])).sum(1) / total
    return out


def with_intervals(point: dict[str, float], W: np.ndarray, y, probs, pred, level: float = 0.95) -> dict:
    """``{"value": v, "ci95": [lo, hi]}`` for each metric: percentile bootstrap over ``W``'s rows."""
    boot = weighted_metrics(W, y, probs, pred) if len(W) else {}
    alpha = (1 - level) / 2 * 100
    out = {}
    for name, value in point.items():
        if name in boot:
            lo, hi = np.nanpercentile(boot[name], [alpha, 100 - alpha])
            # the percentile interval can miss the point estimate by a hair on tiny sets
            lo, hi = min(lo, value), max(hi, value)
            out[name] = {"value": value, "ci95": [float(lo), float(hi)]}
        else:
            out[name] = {"value": value, "ci95": None}
    return out


def choose_threshold(y_val: np.ndarray, p_val: np.ndarray) -> dict:
    """Threshold on the positive-class probability maximising balanced accuracy on validation.

    Candidates are midpoints between consecutive distinct validation probabilities (plus 0.5);
    among equally good ones the one closest to 0.5 wins, so a perfect separation keeps 0.5.
    """
    uniq = np.unique(p_val)
    candidates = np.unique(np.concatenate([[0.5], (uniq[:-1] + uniq[1:]) / 2]))
    pos, neg = y_val == 1, y_val == 0
    predicted = p_val[None, :] >= candidates[:, None]
    tpr = predicted[:, pos].mean(1) if pos.any() else np.zeros(len(candidates))
    tnr = (~predicted[:, neg]).mean(1) if neg.any() else np.zeros(len(candidates))
    bal = (tpr + tnr) / 2
    best = np.flatnonzero(bal >= bal.max() - 1e-12)
    pick = best[np.argmin(np.abs(candidates[best] - 0.5))]
    at_half = bal[np.flatnonzero(candidates == 0.5)[0]]
    return {"default": 0.5, "tuned": float(candidates[pick]), "chosen_on": "val",
            "criterion": "max balanced accuracy on the validation split (= Youden's J)",
            "val_n": int(len(y_val)), "val_balanced_accuracy": float(bal[pick]),
            "val_balanced_accuracy_at_0.5": float(at_half)}


# ================================================================================ evaluate
def evaluate(run_dir: str | os.PathLike, split: str = "test", tta: bool | None = None, n_boot: int = 1000,
             progress: bool = True, seed: int = 0, batch_size: int = 64, plots: bool = True) -> dict:
    """Score a run's best model on a held-out split; write RUN_DIR/eval/; return the metrics dict."""
    from .models import load_model

    started = time.perf_counter()
    run_dir = Path(run_dir)
    if n_boot < 0:
        raise GalaxymorphError(f"n_boot must be >= 0, got {n_boot}")
    from .runs import open_run

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
        probs = predict_indices(model, data, indices, batch_size, tta, progress, desc=f"evaluate {split}")
        threshold = None
        if binary:
            val_idx = split_indices(manifest, "val")
            if split == "val":
                y_val, p_val = y, probs
            else:
                y_val = true_positions(data, val_idx, class_ids)
                p_val = predict_indices(model, data, val_idx, batch_size, tta, progress, desc="evaluate val")
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
        "scale_warnings": check_file_scale(run_dir, data_path, indices),  # one line on stderr
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


# ================================================================================ figures
def write_plots(out_dir: Path, y: np.ndarray, probs: np.ndarray, pred: np.ndarray, names: list[str],
                threshold: float | None = None) -> list[Path]:
    """confusion.png, roc.png, pr.png, reliability.png and probabilities.png in ``out_dir``."""
    return [plot_confusion(out_dir / "confusion.png", y, pred, names),
            plot_roc(out_dir / "roc.png", y, probs, names, threshold),
            plot_pr(out_dir / "pr.png", y, probs, names),
            plot_reliability(out_dir / "reliability.png", y, probs),
            plot_probabilities(out_dir / "probabilities.png", y, probs, names, threshold)]


def _short(name: str, width: int = 14) -> str:
    """Break long class names over two lines for tick labels."""
    if len(name) <= width or " " not in name:
        return name
    words, lines = name.split(), [""]
    for w in words:
        if lines[-1] and len(lines[-1]) + 1 + len(w) > width:
            lines.append(w)
        else:
            lines[-1] = f"{lines[-1]} {w}".strip()
    return "\n".join(lines)


def plot_confusion(path: Path, y, pred, names) -> Path:
    """Counts and row percentages; true class on rows, predicted on columns."""
    import matplotlib.pyplot as plt

    from .plotting import save_figure

    k = len(names)
    matrix = skm.confusion_matrix(y, pred, labels=list(range(k)))
    rows = matrix.sum(1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    size = 2.2 + 1.1 * k
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{matrix[i, j]}\n{100 * share[i, j]:.1f}%", ha="center", va="center",
                    fontsize=11 if k <= 4 else 8, color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), [_short(n) for n in names], fontsize=9)
    ax.set_yticks(range(k), [_short(n) for n in names], fontsize=9)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix (n={len(y)}; % of each true class)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    return save_figure(fig, path)


def _one_vs_rest(y, probs, names):
    """(label, positives, scores) for each curve: the positive class for two classes, else each class."""
    if probs.shape[1] == 2:
        return [(f"{names[1]} vs {names[0]}", y == 1, probs[:, 1])]
    return [(f"{name} vs rest", y == c, probs[:, c]) for c, name in enumerate(names)]


def plot_roc(path: Path, y, probs, names, threshold: float | None = None) -> Path:
    import matplotlib.pyplot as plt

    from .plotting import save_figure

    fig, ax = plt.subplots(figsize=(5.2, 5))
    for label, positive, score in _one_vs_rest(y, probs, names):
        fpr, tpr, _ = skm.roc_curve(positive, score)
        ax.plot(fpr, tpr, lw=2, label=f"{label} (AUC {skm.roc_auc_score(positive, score):.3f})")
    if probs.shape[1] == 2:
        marks = [(0.5, "o", "p = 0.5")]
        if threshold is not None:
            marks.append((threshold, "s", f"p = {threshold:.3f} (val-tuned)"))
        for t, marker, text in marks:
            hit = probs[:, 1] >= t
            ax.plot(hit[y == 0].mean(), hit[y == 1].mean(), marker, ms=8, mfc="none", mew=2, label=text)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="false positive rate", ylabel="true positive rate",
           title="ROC curve" + ("s (one vs rest)" if probs.shape[1] > 2 else ""))
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_pr(path: Path, y, probs, names) -> Path:
    import matplotlib.pyplot as plt

    from .plotting import save_figure

    fig, ax = plt.subplots(figsize=(5.2, 5))
    for label, positive, score in _one_vs_rest(y, probs, names):
        precision, recall, _ = skm.precision_recall_curve(positive, score)
        ap = skm.average_precision_score(positive, score)
        line, = ax.step(recall, precision, where="post", lw=2, label=f"{label} (AP {ap:.3f})")
        ax.axhline(positive.mean(), ls=":", lw=1, color=line.get_color())
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.03), xlabel="recall", ylabel="precision",
           title="Precision-recall curve" + ("s (one vs rest)" if probs.shape[1] > 2 else "")
           + "\n(dotted: share of positives = chance level)")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_reliability(path: Path, y, probs, n_bins: int = ECE_BINS) -> Path:
    """Accuracy against top-class confidence per bin, with the bin counts underneath."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from .plotting import save_figure

    conf = probs.max(1)
    correct = probs.argmax(1) == y
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    acc = np.divide(np.bincount(bins, weights=correct, minlength=n_bins), counts,
                    out=np.full(n_bins, np.nan), where=counts > 0)
    edges = np.linspace(0, 1, n_bins + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, 1 / n_bins
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.2, 6), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    top.bar(centers, np.nan_to_num(acc), width=width * 0.95, color="tab:blue", alpha=0.8, label="accuracy in bin")
    top.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    top.set(ylim=(0, 1.02), ylabel="accuracy",
            title=f"Reliability (ECE {expected_calibration_error(y, probs, n_bins):.3f}, {n_bins} bins)")
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.bar(centers, counts, width=width * 0.95, color="tab:grey")
    bottom.set(xlim=(0, 1), xlabel="confidence (probability of the predicted class)", ylabel="images")
    low = 1 / probs.shape[1]  # confidence is never below 1/k
    bottom.axvspan(0, low, color="lightgrey", alpha=0.4, lw=0)
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    return save_figure(fig, path)


def plot_probabilities(path: Path, y, probs, names, threshold: float | None = None) -> Path:
    """Binary: p(positive class) per true class. More classes: p(true class) per true class."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from .plotting import save_figure

    binary = probs.shape[1] == 2
    fig, ax = plt.subplots(figsize=(6, 4))
    edges = np.linspace(0, 1, 26)
    for c, name in enumerate(names):
        score = probs[y == c, 1] if binary else probs[y == c, c]
        ax.hist(score, bins=edges, alpha=0.55, label=f"true {name} (n={len(score)})")
    if binary:
        ax.axvline(0.5, color="black", ls="--", lw=1, label="threshold 0.5")
        if threshold is not None:
            ax.axvline(threshold, color="tab:red", ls=":", lw=1.5, label=f"val-tuned threshold {threshold:.3f}")
        ax.set_xlabel(f"predicted probability of {names[1]}")
    else:
        ax.set_xlabel("predicted probability of the true class")
    ax.set_ylabel("images")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Predicted probabilities by true class", fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
