"""The evaluation figures: confusion matrix, ROC, precision-recall, reliability, probabilities,
and the grid of training examples per class that the report shows (it reads no data file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator
from sklearn import metrics as skm

from ..data.galaxy10 import CLASS_NAMES
from ..plotting import closed_after, image_grid, plt, save_figure
from .metrics import ECE_BINS, calibration_bins, expected_calibration_error


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
    k = len(names)
    matrix = skm.confusion_matrix(y, pred, labels=list(range(k)))
    rows = matrix.sum(1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    size = 2.2 + 1.1 * k
    fig, ax = plt.subplots(figsize=(size + 1, size))
    with closed_after(fig):
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
    fig, ax = plt.subplots(figsize=(5.2, 5))
    with closed_after(fig):
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
    fig, ax = plt.subplots(figsize=(5.2, 5))
    with closed_after(fig):
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
    bins, correct, _ = calibration_bins(y, probs, n_bins)
    counts = np.bincount(bins, minlength=n_bins)
    acc = np.divide(np.bincount(bins, weights=correct, minlength=n_bins), counts,
                    out=np.full(n_bins, np.nan), where=counts > 0)
    edges = np.linspace(0, 1, n_bins + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, 1 / n_bins
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.2, 6), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    with closed_after(fig):
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
    binary = probs.shape[1] == 2
    fig, ax = plt.subplots(figsize=(6, 4))
    with closed_after(fig):
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


def write_examples(path: Path, data, manifest: dict, per_class: int = 6, seed: int = 0) -> Path:
    """A grid of ``per_class`` random training images of each class of ``manifest`` (seeded)."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    train = np.asarray(manifest["splits"]["train"])
    for c in manifest["classes"]:
        members = train[data.labels[train] == c]
        pick = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
        rows.append(list(data.images(pick)))
        labels.append(f"{c} {CLASS_NAMES[c]}")
    return image_grid(rows, labels, path, title="Training examples per class")
