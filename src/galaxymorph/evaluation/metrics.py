"""Metrics of a scored split: point estimates, intervals, the validation-tuned threshold, calibration.

* Point estimates come from scikit-learn, computed from the predicted PROBABILITIES where the
  metric is a ranking or probability score (ROC AUC, average precision, log loss, Brier).
  The reference notebook called ``roc_auc_score`` on thresholded 0/1 predictions; for two
  classes that number equals the balanced accuracy. It is reported as ``auc_from_labels``
  for comparison only.
* Intervals (95%), by kind of metric (``INTERVAL_METHODS``; each metric says which it got):

  - a PROPORTION (accuracy; precision and recall of a class) gets the Wilson score interval
    (scipy's ``binomtest(...).proportion_ci(method="wilson")``). Unlike a bootstrap it stays
    honest at 0 or n successes: 90 of 90 correct gives [0.959, 1], not [1, 1].
  - a MEAN OF PROPORTIONS (balanced accuracy = mean recall over classes; macro precision and
    recall; ``auc_from_labels``, which equals balanced accuracy) gets the MOVER interval (Zou &
    Donner 2008) built from each class's Wilson interval: lower = mean - sqrt(sum (p_c -
    l_c)^2) / k, upper = mean + sqrt(sum (u_c - p_c)^2) / k. It lies inside the mean of the
    Wilson bounds, so it too ends at 1 (or 0) only when every class does.
  - everything else (F1, ROC AUC, average precision, Brier, log loss, ECE) gets a percentile
    bootstrap. Resampling is stratified (each true class resampled within itself, so class
    counts stay fixed and every resample has every class) and seeded. The resamples are
    expressed as count weights and every metric is computed for all of them at once with numpy
    (the weighted formulas equal scikit-learn's ``sample_weight`` results; a test checks this).
* For two classes a second threshold is chosen on the VALIDATION split (maximising balanced
  accuracy, i.e. Youden's J, from scikit-learn's ``roc_curve``); the test labels never
  influence it.
* Expected calibration error: 15 equal-width bins of the top-class confidence
  (:func:`calibration_bins`, shared by the metric, its bootstrap and the reliability figure).
* Log loss clips p(true class) at ``LOG_LOSS_EPS`` (1e-7), the same for the point estimate, its
  bootstrap and the benchmarks (:func:`log_losses`).
* Two models on the same images: :func:`paired_bootstrap` gives the difference of each metric
  with a percentile interval (resampled within each group and true class; the benchmarks use it).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest
from sklearn import metrics as skm

from ..decision import predicted_positions

EVAL_FORMAT = "galaxymorph-eval/1"  # eval/metrics.json of a class model or a decision-tree model

ECE_BINS = 15
THRESHOLD_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "auc_from_labels")
LOG_LOSS_EPS = 1e-7  # p(true class) is clipped to [LOG_LOSS_EPS, 1] before the log (0 would be infinite)
WILSON, MOVER, BOOTSTRAP = "wilson", "mover-wilson", "bootstrap"
INTERVAL_METHODS = {
    WILSON: "Wilson score interval of a proportion (scipy.stats.binomtest(...).proportion_ci)",
    MOVER: "MOVER (Zou & Donner 2008) from the per-class Wilson intervals, for a mean of class proportions",
    BOOTSTRAP: "percentile bootstrap, resampling within each true class",
}


def calibration_bins(y: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin (0..n_bins-1, equal width), correctness and confidence of each image's top class."""
    conf = probs.max(axis=1)
    correct = predicted_positions(probs) == y
    return np.minimum((conf * n_bins).astype(int), n_bins - 1), correct, conf


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS,
                               weights: np.ndarray | None = None):
    """ECE of the top-class confidence in ``n_bins`` equal-width bins: sum_b n_b/n |acc_b - conf_b|.

    With ``weights`` (b, n) count weights (bootstrap resamples) it returns one ECE per row.
    """
    bins, correct, conf = calibration_bins(y, probs, n_bins)
    W = np.ones((1, len(y))) if weights is None else weights
    gap = W @ (np.eye(n_bins)[bins] * (correct - conf)[:, None])  # (b, n_bins) summed gaps
    ece = np.abs(gap).sum(1) / W.sum(1)
    return float(ece[0]) if weights is None else ece


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
    out["log_loss"] = log_losses(y, probs).mean()
    out["ece"] = expected_calibration_error(y, probs)
    return {name: float(v) for name, v in out.items()}


def log_losses(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per image: -log p(true class), p clipped to [LOG_LOSS_EPS, 1] (the one log-loss rule)."""
    p_true = np.asarray(probs, dtype=np.float64)[np.arange(len(y)), np.asarray(y)]
    return -np.log(np.clip(p_true, LOG_LOSS_EPS, 1.0))


def per_class_metrics(y: np.ndarray, probs: np.ndarray, pred: np.ndarray, names: list[str]) -> dict:
    """Precision and recall (with Wilson intervals), F1, support and one-vs-rest ROC AUC / AP per class."""
    k = probs.shape[1]
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=list(range(k)), zero_division=0)
    counts = class_counts(y, pred, k)
    out = {}
    for c, name in enumerate(names):
        positive = (y == c).astype(int)
        out[name] = {"precision": _interval_entry(float(p[c]), wilson_interval(*counts["precision"][c]), WILSON),
                     "recall": _interval_entry(float(r[c]), wilson_interval(*counts["recall"][c]), WILSON),
                     "f1": float(f[c]), "support": int(s[c]),
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
    out["log_loss"] = W @ log_losses(y, probs) / total
    out["ece"] = expected_calibration_error(y, probs, weights=W)
    return out


def weighted_scores(W: np.ndarray, y: np.ndarray, probs: np.ndarray,
                    subsets: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """:func:`weighted_metrics` at the decision rule (:func:`decision.predicted_positions`) for each
    row of count weights ``W`` (b, n), plus the accuracy on each named subset of the images
    (``subsets``: name -> boolean (n,); NaN for a row that holds none of the subset)."""
    pred = predicted_positions(probs)
    out = weighted_metrics(W, y, probs, pred)
    for name, keep in (subsets or {}).items():
        Wk = W * np.asarray(keep, dtype=bool)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = Wk @ (pred == y) / Wk.sum(1)
    return out


def paired_bootstrap(y: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, groups: np.ndarray | None = None,
                     subsets: dict[str, np.ndarray] | None = None, names=None, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95) -> dict[str, list[float]]:
    """Model a minus model b on the same images: ``{metric: [difference, low, high]}``.

    ``y`` (n,) true classes; ``probs_a`` and ``probs_b`` (n, k) the two models' probabilities of
    the same images; ``groups`` (n,) optional labels of image sets scored separately (e.g. one test
    split per seed): each metric is computed within each group and averaged over the groups;
    ``subsets`` adds the accuracy on named subsets (:func:`weighted_scores`); ``names`` picks the
    metrics (default: all). Each resample draws, within every (group, true class) stratum, as many
    images as it holds, with replacement, and applies the same draw to both models; the interval
    is the percentile interval of the differences (``level``).
    """
    y = np.asarray(y)
    groups = np.zeros(len(y), dtype=np.int64) if groups is None else np.asarray(groups)
    _, first = np.unique(groups, return_index=True)
    members = [np.flatnonzero(groups == g) for g in groups[np.sort(first)]]  # in order of appearance
    rng = np.random.default_rng(seed)
    W = [np.zeros((n_boot, len(m))) for m in members]
    for i in range(n_boot):
        for w, m in zip(W, members):
            yg = y[m]
            draw = np.concatenate([rng.choice(np.flatnonzero(yg == c), (yg == c).sum()) for c in np.unique(yg)])
            w[i] = np.bincount(draw, minlength=len(m))
    point, draws = {}, {}
    for w, m in zip(W, members):
        part = {key: np.asarray(v)[m] for key, v in (subsets or {}).items()}
        for probs, sign in ((probs_a, 1.0), (probs_b, -1.0)):
            probs = np.asarray(probs)[m]
            at_all = weighted_scores(np.ones((1, len(m))), y[m], probs, part)
            resampled = weighted_scores(w, y[m], probs, part)
            for key in names or at_all:
                point[key] = point.get(key, 0.0) + sign * at_all[key][0] / len(members)
                draws[key] = draws.get(key, 0.0) + sign * resampled[key] / len(members)
    alpha = (1 - level) / 2 * 100
    return {key: [float(point[key]), *map(float, np.percentile(draws[key], [alpha, 100 - alpha]))] for key in point}


def wilson_interval(successes: int, n: int, level: float = 0.95) -> list[float] | None:
    """Wilson score interval of a proportion ``successes / n``; None when ``n`` is 0."""
    if n <= 0:
        return None
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return [float(ci.low), float(ci.high)]


def mover_interval(successes: np.ndarray, totals: np.ndarray, level: float = 0.95) -> list[float] | None:
    """Interval of the mean of k independent proportions (MOVER from each one's Wilson interval).

    A proportion with no trials counts as 0 with no uncertainty (scikit-learn's
    ``zero_division=0``), so the mean matches its macro average.
    """
    totals = np.asarray(totals)
    if not (totals > 0).any():
        return None
    p = np.divide(successes, totals, out=np.zeros(len(totals)), where=totals > 0)
    bounds = np.array([wilson_interval(s, n, level) or [0.0, 0.0] for s, n in zip(successes, totals)])
    mean, k = p.mean(), len(p)
    lower = mean - np.sqrt(((p - bounds[:, 0]) ** 2).sum()) / k
    upper = mean + np.sqrt(((bounds[:, 1] - p) ** 2).sum()) / k
    return [float(max(lower, 0.0)), float(min(upper, 1.0))]


def class_counts(y: np.ndarray, pred: np.ndarray, k: int) -> dict[str, list[tuple[int, int]]]:
    """(successes, trials) per class: recall = correct of the true class, precision = correct of
    the predicted class; and accuracy as one pair."""
    cm = skm.confusion_matrix(y, pred, labels=list(range(k)))
    tp = np.diag(cm)
    return {"recall": list(zip(tp.tolist(), cm.sum(1).tolist())),
            "precision": list(zip(tp.tolist(), cm.sum(0).tolist())),
            "accuracy": [(int(tp.sum()), int(cm.sum()))]}


def proportion_intervals(y: np.ndarray, pred: np.ndarray, k: int, level: float = 0.95
                         ) -> dict[str, tuple[list[float] | None, str]]:
    """(interval, method) of each metric that is a proportion or a mean of class proportions."""
    counts = class_counts(y, pred, k)
    recall = np.array(counts["recall"]).T
    precision = np.array(counts["precision"]).T
    balanced = (mover_interval(recall[0][recall[1] > 0], recall[1][recall[1] > 0], level), MOVER)
    out = {"accuracy": (wilson_interval(*counts["accuracy"][0], level), WILSON), "balanced_accuracy": balanced}
    if k == 2:  # the positive class's precision and recall
        out["precision"] = (wilson_interval(*counts["precision"][1], level), WILSON)
        out["recall"] = (wilson_interval(*counts["recall"][1], level), WILSON)
        out["auc_from_labels"] = balanced  # the same number as balanced accuracy
    else:
        out["precision"] = (mover_interval(*precision, level), MOVER)
        out["recall"] = (mover_interval(*recall, level), MOVER)
    return out


def _interval_entry(value: float, ci: list[float] | None, method: str) -> dict:
    return {"value": value, "ci95": ci, "interval": method if ci is not None else None}


def with_intervals(point: dict[str, float], W: np.ndarray, y, probs, pred, level: float = 0.95) -> dict:
    """``{"value": v, "ci95": [lo, hi], "interval": method}`` for each metric of ``point``.

    Proportions get Wilson (or MOVER) intervals from the counts; the other metrics a percentile
    bootstrap over ``W``'s rows (no interval when ``W`` is empty).
    """
    exact = proportion_intervals(np.asarray(y), np.asarray(pred), probs.shape[1], level)
    boot = weighted_metrics(W, y, probs, pred) if len(W) else {}
    alpha = (1 - level) / 2 * 100
    out = {}
    for name, value in point.items():
        if name in exact:
            out[name] = _interval_entry(value, *exact[name])
        elif name in boot:
            lo, hi = np.nanpercentile(boot[name], [alpha, 100 - alpha])
            # the percentile interval can miss the point estimate by a hair on tiny sets
            lo, hi = min(lo, value), max(hi, value)
            out[name] = _interval_entry(value, [float(lo), float(hi)], BOOTSTRAP)
        else:
            out[name] = _interval_entry(value, None, BOOTSTRAP)
    return out


def choose_threshold(y_val: np.ndarray, p_val: np.ndarray) -> dict:
    """Threshold on the positive-class probability maximising balanced accuracy on validation.

    scikit-learn's ``roc_curve`` gives every operating point; point i (positive iff p >=
    score_i) is reached by any threshold between the next lower distinct score and score_i.
    Each best point is represented by 0.5 if its range holds 0.5, else by the middle of its
    range; among equally good points the threshold closest to 0.5 wins, so a perfect
    separation keeps 0.5.
    """
    fpr, tpr, scores = skm.roc_curve(y_val, p_val, drop_intermediate=False)
    upper = np.minimum(scores, 1.0)                      # scores[0] is +inf: nothing positive
    lower = np.maximum(np.append(scores[1:], -np.inf), 0.0)
    candidates = np.where((lower < 0.5) & (0.5 <= upper), 0.5, (lower + upper) / 2)
    balanced = (tpr + 1 - fpr) / 2
    best = np.flatnonzero(balanced >= balanced.max() - 1e-12)
    pick = best[np.argmin(np.abs(candidates[best] - 0.5))]
    return {"default": 0.5, "tuned": float(candidates[pick]), "chosen_on": "val",
            "criterion": "max balanced accuracy on the validation split (= Youden's J)",
            "val_n": int(len(y_val)), "val_balanced_accuracy": float(balanced[pick]),
            "val_balanced_accuracy_at_0.5": float(skm.balanced_accuracy_score(y_val, predicted_positions(np.stack([1 - p_val, p_val], axis=1))))}
