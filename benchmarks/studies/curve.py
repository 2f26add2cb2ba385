"""Would more galaxies like these help? The learning-curve study.

The default recipe (``narrow-30``) is trained on each seed's split with its training part cut
to a share of each class (25%, 50%, 75%; the classes keep their 3:1 proportions, the same
validation and test images), and scored on the full test split. The full share is the main
benchmark's ``narrow-30`` run. If accuracy still climbs from 75% to 100% of the training
images, more labelled galaxies of this kind would raise it; if it is flat, the errors left are
not for want of examples.

Outputs in OUT/curve/: curve.md (accuracy, balanced accuracy and ROC AUC per share, mean over
seeds, with a 95% interval; the paired difference of each share against the full set) and
curve.png. Train the main benchmark's ``narrow-30`` on every seed first, with the same ``--out``:

    python -m benchmarks.studies.real --out /tmp/gm-bench-real --candidates narrow-30
    python -m benchmarks.studies.curve --out /tmp/gm-bench-real

(the same as ``python -m benchmarks.studies.real --out ... --learning-curve``)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from galaxymorph.rundir import RunFolder

from benchmarks.studies.common import (LONG, collect, paired_bootstrap, scored_predictions, seed_pooled_interval,
                                       study_main, subset_manifest)

FULL = "narrow-30"  # the default recipe on all training images: the main benchmark's run
SHARES = (0.25, 0.5, 0.75)


def add_options(p) -> None:
    """This study's options (also accepted by ``real --learning-curve``)."""
    p.add_argument("--curve-shares", nargs="+", type=float, default=list(SHARES))


def train_share(out: Path, data: Path, split: Path, seed: int, share: float, args) -> Path:
    """The default recipe on ``share`` of each class's training images of ``split``: its run folder."""
    import galaxymorph as gm

    run_dir = out / "curve" / "runs" / f"share{share:g}" / f"seed{seed}"
    if not RunFolder(run_dir).predictions_path.is_file():
        manifest = subset_manifest(split, 0, out / "curve" / "splits", seed, fraction=share)
        overrides = dict(model="galaxy-narrow", data=str(data), manifest=str(manifest), classes=[2, 5], seed=seed,
                         threads=args.threads, device=args.device, **LONG)
        print(f"--- learning curve: {share:.0%} of the training images, seed {seed}", file=sys.stderr, flush=True)
        gm.train(gm.Config.resolve(overrides=overrides), out=run_dir, overwrite=True, progress=False)
        gm.evaluate(run_dir, split="test", progress=False, plots=False, n_boot=200)
    return run_dir


def scored(run_dir: Path, data: Path) -> dict:
    """The run's test predictions scored, and how many images it trained on."""
    manifest = json.loads(RunFolder(run_dir).manifest_path.read_text())
    return {**scored_predictions(RunFolder(run_dir), data),
            "n_train": len(manifest["splits"]["train"])}


def curve_study(out: Path, data: Path, splits: dict[int, Path], args) -> int:
    from galaxymorph.fileio import write_json, write_text

    seeds = list(splits)
    full = collect(FULL, out, data, seeds)
    if full is None:
        print(f"learning curve: train the main benchmark's {FULL} on every seed first "
              f"(python -m benchmarks.studies.real --candidates {FULL})", file=sys.stderr)
        return 1
    for s in seeds:
        full[s]["n_train"] = len(json.loads(splits[s].read_text())["splits"]["train"])
    results = {}
    for share in args.curve_shares:
        results[share] = {s: scored(train_share(out, data, splits[s], s, share, args), data) for s in seeds}
    results[1.0] = full
    lines = ["| share of the training images | images (mean) | accuracy (per seed) [95% CI] | balanced acc. | "
             "ROC AUC | vs all: Δ accuracy [95% CI] |", "|---|---|---|---|---|---|"]
    rows = []
    for share in sorted(results):
        per_seed = results[share]
        acc = seed_pooled_interval(per_seed, seeds, args.n_boot)
        mean = {k: float(np.mean([per_seed[s]["metrics"][k] for s in seeds])) for k in ("balanced_accuracy", "roc_auc")}
        diff = paired_bootstrap(per_seed, full, seeds, args.n_boot)["accuracy"] if share < 1 else None
        n = float(np.mean([per_seed[s]["n_train"] for s in seeds]))
        rows.append({"share": share, "n_train": n, "accuracy": acc, **mean, "vs_all": diff,
                     "per_seed": [per_seed[s]["metrics"]["accuracy"] for s in seeds]})
        vs = f"{diff[0]:+.4f} [{diff[1]:+.4f}, {diff[2]:+.4f}]" if diff else "-"
        lines.append(f"| {share:.0%} | {n:.0f} | {acc[0]:.4f} ({', '.join(f'{a:.3f}' for a in rows[-1]['per_seed'])}) "
                     f"[{acc[1]:.4f}, {acc[2]:.4f}] | {mean['balanced_accuracy']:.4f} | {mean['roc_auc']:.4f} | {vs} |")
    text = "\n".join(lines) + "\n"
    folder = out / "curve"
    write_text(folder / "curve.md", text)
    write_json(folder / "curve.json", {"seeds": seeds, "rows": rows})
    plot(rows, folder / "curve.png", len(seeds))
    print(text)
    return 0


def plot(rows: list[dict], path: Path, n_seeds: int) -> Path:
    from galaxymorph.plotting import closed_after, plt, save_figure

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    with closed_after(fig):
        x = np.array([r["n_train"] for r in rows])
        iv = np.array([r["accuracy"] for r in rows])
        ax.errorbar(x, iv[:, 0], yerr=[iv[:, 0] - iv[:, 1], iv[:, 2] - iv[:, 0]], fmt="o-", capsize=3,
                    label=f"default recipe (mean of {n_seeds} seeds, 95% CI)")
        ax.axhline(0.985, color="grey", ls="--", lw=1, label="target accuracy (0.985)")
        ax.set_xlabel("real training images (Round Smooth : Barred Spiral about 3:1)")
        ax.set_ylabel("test accuracy")
        ax.set_title("Real SDSS galaxies: accuracy against the number of training images", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        return save_figure(fig, path)


def main(argv=None) -> int:
    return study_main(argv, __doc__, "curve", add_options, curve_study)


if __name__ == "__main__":
    sys.exit(main())
