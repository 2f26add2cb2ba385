"""curves.png: the training curves of a run (loss and accuracy per epoch, train vs validation)."""

from __future__ import annotations

from pathlib import Path

from ..plotting import closed_after, plt, save_figure


def plot_curves(history: list[dict], path: Path, model, best_epoch: int) -> Path:
    """Plot ``history`` (rows of history.csv) to ``path``, the best epoch marked; title from ``model``."""
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    with closed_after(fig):
        for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.plot(epochs, [r[f"train_{key}"] for r in history], "o-", ms=3, label="train")
            ax.plot(epochs, [r[f"val_{key}"] for r in history], "o-", ms=3, label="validation")
            if best_epoch:
                ax.axvline(best_epoch, color="0.6", ls="--", lw=1, label=f"best (epoch {best_epoch})")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[1].legend(fontsize=8)
        classes = " vs ".join(model.class_names) if len(model.class_names) <= 3 else f"{len(model.class_names)} classes"
        fig.suptitle(f"{model.name} model: {classes}", fontsize=11)
        fig.tight_layout()
        return save_figure(fig, path)
