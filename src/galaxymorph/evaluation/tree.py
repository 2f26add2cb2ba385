"""Scoring a decision-tree model (``--targets tree``) against the volunteers, question by question.

Per question of the tree:

- **accuracy against confident volunteers**: an image counts for a question when the question
  has at least ``MIN_VOTES`` votes and one answer holds at least ``CONFIDENT_SHARE`` of them;
  the model is right when its highest expected vote fraction is that answer. With a Wilson
  95% interval and ``n``, the number of such images.
- **mean absolute error** of the expected vote fractions against the observed ones, over the
  images where the question has votes (averaged over the question's answers).

The overall figure is the mean of the per-question accuracies. For scale, each question also
gets a baseline: the accuracy of always giving the answer with the most votes in the training
split. :func:`evaluate_tree` writes them to ``eval/metrics.json`` (section ``tree``) and
``eval/tree_questions.png``.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from ..data.galaxy10 import open_galaxy10
from ..data.scale import check_file_scale
from ..data.splits import split_indices
from ..data.tree import DecisionTree, load_tree
from ..fileio import atomic_path
from ..inference import predict_selection
from ..models.tree import expected_fractions, vote_cells, vote_columns
from ..plotting import closed_after, plt, save_figure
from ..rundir import RunFolder
from ..runs import held_out_indices
from ..trained_on import check_test_images
from .metrics import EVAL_FORMAT, WILSON, wilson_interval

CONFIDENT_SHARE = 0.8  # an answer with at least this share of a question's votes is the volunteers' verdict
MIN_VOTES = 5  # ... when the question has at least this many votes
TREE_FIGURE = "tree_questions.png"


def question_scores(counts: np.ndarray, fractions: np.ndarray, tree: DecisionTree,
                    train_counts: np.ndarray | None = None) -> dict:
    """Per-question accuracy against confident volunteers (Wilson interval) and vote-fraction MAE,
    plus their means; ``counts`` observed votes and ``fractions`` expected fractions, (n, answers).
    With ``train_counts`` (the training split's votes) also a baseline per question: the accuracy
    of always giving the answer with the most training votes."""
    counts, fractions = np.asarray(counts, dtype=np.float64), np.asarray(fractions, dtype=np.float64)
    questions = {}
    for q, s in zip(tree.questions, tree.slices):
        c, f = counts[:, s], fractions[:, s]
        total = c.sum(1)
        voted = total > 0
        share = np.divide(c, total[:, None], out=np.zeros_like(c), where=voted[:, None])
        confident = (total >= MIN_VOTES) & (share.max(1) >= CONFIDENT_SHARE)
        right = int((f[confident].argmax(1) == share[confident].argmax(1)).sum())
        n = int(confident.sum())
        mae = float(np.abs(f[voted] - share[voted]).mean()) if voted.any() else None
        questions[q.name] = {
            "answers": list(q.answers),
            "accuracy": {"value": right / n if n else None, "ci95": wilson_interval(right, n), "method": WILSON},
            "n": n,
            "correct": right,
            "fraction_mae": mae,
            "n_with_votes": int(voted.sum()),
        }
        if train_counts is not None:
            constant = int(np.asarray(train_counts)[:, s].sum(0).argmax())
            questions[q.name]["baseline"] = {
                "answer": q.answers[constant],
                "accuracy": float((share[confident].argmax(1) == constant).mean()) if n else None}
    scored = [v["accuracy"]["value"] for v in questions.values() if v["n"]]
    maes = [v["fraction_mae"] for v in questions.values() if v["fraction_mae"] is not None]
    baseline = [v["baseline"]["accuracy"] for v in questions.values() if v["n"] and "baseline" in v]
    return {
        "tree": tree.name,
        "confident_share": CONFIDENT_SHARE,
        "min_votes": MIN_VOTES,
        "mean_accuracy": float(np.mean(scored)) if scored else None,
        "mean_fraction_mae": float(np.mean(maes)) if maes else None,
        **({"mean_baseline_accuracy": float(np.mean(baseline)) if baseline else None}
           if train_counts is not None else {}),
        "n_questions_scored": len(scored),
        "questions": questions,
    }


def evaluate_tree(run_dir: Path, folder, model, split: str, tta: bool, progress: bool,
                  batch_size: int | None, plots: bool, files: RunFolder | None = None) -> dict:
    """Score a tree model on a held-out split of its run; write eval/metrics.json, the
    per-question figure and eval/tree_predictions.csv (into ``files.eval``: RUN_DIR/eval unless
    evaluate was given another folder); return the metrics."""
    started = time.perf_counter()
    manifest = folder.manifest
    indices = held_out_indices(folder, split)
    tree = load_tree(model.tree)
    with open_galaxy10(folder.data_path, labelled=False) as data:
        every = tree.read_counts(data)  # each count column read once, for both splits
        counts, train_counts = every[indices], every[split_indices(manifest, "train")]
        conc = predict_selection(model, data, indices, batch_size, tta, progress, desc=f"evaluate {split}")
    fractions = expected_fractions(conc.astype(np.float64), tree)
    result = {
        "format": EVAL_FORMAT,
        "split": split,
        "n": int(len(indices)),
        "targets": "tree",
        "model": model.name,
        "checkpoint": "checkpoints/best.pt",
        "best_epoch": folder.run.get("best_epoch"),
        "tta": bool(tta),
        "device": str(model.device),
        "data": {"path": str(folder.data_path), "sha256": manifest["source"]["sha256"]},
        "tree": question_scores(counts, fractions, tree, train_counts),
        "scale_warnings": check_file_scale(run_dir, folder.run, folder.data_path, indices),  # one line on stderr
        "leak": check_test_images(run_dir, folder.data_path, indices, split),  # trained on by it or its init run
    }
    files = files or RunFolder(run_dir)
    out_dir = files.eval
    write_tree_predictions(files.tree_predictions_path, indices, fractions, conc, tree)
    if plots:
        plot_questions(out_dir / TREE_FIGURE, result["tree"], split)
    result["seconds"] = round(time.perf_counter() - started, 2)
    files.write_metrics(result)
    return result


def write_tree_predictions(path: Path, indices, fractions: np.ndarray, conc: np.ndarray,
                           tree: DecisionTree) -> None:
    """One row per scored image: its file index, expected fractions and concentrations."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["index"] + vote_columns(tree))
        for i, cells in zip(indices, vote_cells(fractions, conc)):
            writer.writerow([int(i)] + cells)


def plot_questions(path: Path, scores: dict, split: str = "test") -> Path:
    """Horizontal bars: accuracy against confident volunteers per question, with Wilson intervals."""
    names = list(scores["questions"])
    rows = [scores["questions"][q] for q in names]
    values = [r["accuracy"]["value"] if r["n"] else 0.0 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.4))
    with closed_after(fig):
        y = np.arange(len(names))[::-1]
        ax.barh(y, values, color="#4c72b0", height=0.6)
        for yi, r in zip(y, rows):
            if r["accuracy"]["ci95"]:
                lo, hi = r["accuracy"]["ci95"]
                ax.plot([lo, hi], [yi, yi], color="black", lw=1.2)
            ax.text(1.01, yi, f"n={r['n']}", va="center", fontsize=8, transform=ax.get_yaxis_transform())
        base = [(yi, r["baseline"]["accuracy"]) for yi, r in zip(y, rows)
                if r["n"] and (r.get("baseline") or {}).get("accuracy") is not None]
        if base:
            ax.plot([b for _, b in base], [yi for yi, _ in base], "d", color="#dd8452", ms=7,
                    label="baseline: the answer with the most training votes")
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.06), fontsize=8, frameon=False)
        ax.set_yticks(y, names, fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"accuracy against confident volunteers (>= {scores['confident_share']:.0%} of >= "
                      f"{scores['min_votes']} votes), 95% Wilson interval")
        mean = scores["mean_accuracy"]
        ax.set_title(f"{split} split: mean over questions " + (f"{mean:.3f}" if mean is not None else "n/a"))
        ax.grid(axis="x", alpha=0.3)
        return save_figure(fig, path)


def format_tree_metrics(metrics: dict) -> str:
    """The terminal table of a tree model's evaluation: one line per question."""
    t = metrics["tree"]
    def number(value) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    lines = [f"{metrics['model']} ({t['tree']} tree) on {metrics['split']} (n={metrics['n']})"
             f"{', D4 TTA' if metrics.get('tta') else ''}: mean accuracy over questions "
             f"{number(t['mean_accuracy'])}, mean vote-fraction MAE {number(t['mean_fraction_mae'])}",
             f"  {'question':<24}{'n':>6}{'accuracy':>10}  {'95% CI':<17}{'MAE':>7}{'baseline':>10}"]
    for name, q in t["questions"].items():
        acc, ci = q["accuracy"]["value"], q["accuracy"]["ci95"]
        base = (q.get("baseline") or {}).get("accuracy")
        lines.append(f"  {name:<24}{q['n']:>6}" + (f"{acc:>10.4f}" if acc is not None else f"{'-':>10}")
                     + "  " + (f"[{ci[0]:.3f}, {ci[1]:.3f}]  " if ci else " " * 17)
                     + (f"{q['fraction_mae']:>7.4f}" if q["fraction_mae"] is not None else f"{'-':>7}")
                     + (f"{base:>10.4f}" if base is not None else f"{'-':>10}"))
    if t.get("mean_baseline_accuracy") is not None:
        lines.append(f"  baseline: always the answer with the most training votes; its mean over questions "
                     f"{t['mean_baseline_accuracy']:.4f}")
    return "\n".join(lines)
