"""Metrics of a scored split: point estimates, intervals, the validation-tuned threshold, calibration.

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
* For two classes a second threshold is chosen on the VALIDATION split (maximising balanced
  accuracy, i.e. Youden's J); the test labels never influence it.
* Expected calibration error: 15 equal-width bins of the top-class confidence.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

ECE_BINS = 15
THRESHOLD_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "auc_from_labels")
EPS = np.finfo(np.float64).eps


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE of the top-class confidence in ``n_bins`` equal-width bins: sum_b n_b/n |acc_b - conf_b|."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    gap = np.bincount(bins, weights=correct - conf, minlength=n_bins)
    return float(np.abs(gap).sum() / len(y))


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

