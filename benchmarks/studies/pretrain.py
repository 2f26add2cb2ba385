"""Does the synthetic sky help real galaxies? The synthetic-pretraining study.

One model is trained on the default synthetic sky (``Config(data="synthetic")``, classes 2 and
5). Then, on each seed's real split, the same architecture and recipe is trained on 50, 100,
200 and all real training images per class twice: from those synthetic weights
(``--weights``) and from scratch. Validation and test images are the seed's full ones, so the
two arms are paired on every test image. Output: OUT/pretrain/pretrain.md (accuracy per arm and
size, mean over seeds with a 95% paired bootstrap interval of the difference) and
a plot, OUT/pretrain/pretrain.png. Its "all, from scratch" arm is the main benchmark's run of
the same recipe when that benchmark shares ``--out``.

    python -m benchmarks.studies.pretrain --out /tmp/gm-bench-real --seeds 0 1

(the same as ``python -m benchmarks.studies.real --out ... --pretrain``)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from galaxymorph.rundir import RunFolder

from benchmarks.studies.common import (CANDIDATES, LONG, paired_bootstrap, run_folder, scored_predictions,
                                       seed_pooled_interval, study_main, subset_manifest)

ARMS = ("scratch", "pretrained")
SIZES = (50, 100, 200, 0)  # real training images per class; 0 = all


def add_options(p) -> None:
    """This study's options (also accepted by ``real --pretrain``)."""
    p.add_argument("--pretrain-model", default="galaxy-narrow")
    p.add_argument("--pretrain-sizes", nargs="+", type=int, default=list(SIZES),
                   help="real training images per class for the pretraining study (0 = all)")


def pretrain_synthetic(out: Path, model: str, threads: int) -> Path:
    """The synthetic-sky model whose weights start the 'pretrained' arm (default sky, seed 0)."""
    import galaxymorph as gm

    run_dir = out / "pretrain" / f"synthetic-{model}"
    if not RunFolder(run_dir).best_checkpoint.is_file():
        print(f"--- synthetic pretraining ({model})", file=sys.stderr, flush=True)
        gm.train(gm.Config.resolve(overrides=dict(model=model, seed=0, threads=threads, **LONG)), out=run_dir,
                 overwrite=True, progress=False)
        gm.evaluate(run_dir, split="test", progress=False, plots=False, n_boot=200)
    return RunFolder(run_dir).best_checkpoint


def pretrain_study(out: Path, data: Path, splits: dict[int, Path], args) -> int:
    import galaxymorph as gm
    from galaxymorph.fileio import write_json, write_text

    weights = pretrain_synthetic(out, args.pretrain_model, args.threads)
    base = out / "pretrain"
    results: dict[tuple[str, int], dict] = {}
    sizes = [int(n) for n in args.pretrain_sizes]
    for seed, split in splits.items():
        for n in sizes:
            manifest = subset_manifest(split, n, base / "splits", seed)
            for arm in ARMS:
                run_dir = base / "runs" / f"{arm}-n{n or 'all'}" / f"seed{seed}"
                if arm == "scratch" and not n:  # all images from scratch: the main benchmark's run, when it has one
                    same = [c for c, (_, o, tta) in CANDIDATES.items() if o == dict(model=args.pretrain_model, **LONG)
                            and not tta]
                    if same:  # scored by the main benchmark (maybe in another process): never trained here
                        run_dir = run_folder(out, same[0], seed)
                        if not RunFolder(run_dir).predictions_path.is_file():
                            print(f"({same[0]} seed {seed} not finished yet: 'all' left out for now)", file=sys.stderr)
                            continue
                if not RunFolder(run_dir).predictions_path.is_file():
                    overrides = dict(model=args.pretrain_model, data=str(data), manifest=str(manifest),
                                     classes=[2, 5], seed=seed, threads=args.threads, **LONG)
                    if arm == "pretrained":
                        overrides["weights"] = str(weights)
                    print(f"--- pretrain study: {arm}, {n or 'all'} per class, seed {seed}", file=sys.stderr, flush=True)
                    gm.train(gm.Config.resolve(overrides=overrides), out=run_dir, overwrite=True, progress=False)
                    gm.evaluate(run_dir, split="test", progress=False, plots=False, n_boot=200)
                run = RunFolder(run_dir).read_run_json()
                results.setdefault((arm, n), {})[seed] = {
                    **scored_predictions(RunFolder(run_dir), data),
                    "train_seconds": run.get("train_seconds")}
    seeds = list(splits)
    lines = ["| real train images per class | scratch: accuracy (per seed) | pretrained: accuracy (per seed) | "
             "pretrained - scratch: Δ accuracy [95% CI] | Δ ROC AUC [95% CI] |", "|---|---|---|---|---|"]
    summary = []
    complete = [n for n in sizes if all(len(results.get((arm, n), {})) == len(seeds) for arm in ARMS)]
    for n in complete:
        s, pt = results[("scratch", n)], results[("pretrained", n)]
        d = paired_bootstrap(pt, s, seeds, args.n_boot)
        accs = {arm: [results[(arm, n)][k]["metrics"]["accuracy"] for k in seeds] for arm in ARMS}
        label = str(n) if n else "all"
        lines.append(f"| {label} | {np.mean(accs['scratch']):.4f} ({', '.join(f'{a:.3f}' for a in accs['scratch'])}) | "
                     f"{np.mean(accs['pretrained']):.4f} ({', '.join(f'{a:.3f}' for a in accs['pretrained'])}) | "
                     f"{d['accuracy'][0]:+.4f} [{d['accuracy'][1]:+.4f}, {d['accuracy'][2]:+.4f}] | "
                     f"{d['roc_auc'][0]:+.4f} [{d['roc_auc'][1]:+.4f}, {d['roc_auc'][2]:+.4f}] |")
        summary.append({"n_per_class": n, "accuracy": accs, "difference": d,
                        "intervals": {arm: seed_pooled_interval(results[(arm, n)], seeds, args.n_boot) for arm in ARMS}})
    text = "\n".join(lines) + "\n"
    write_text(base / "pretrain.md", text)
    write_json(base / "pretrain.json", {"weights": str(weights), "seeds": seeds, "rows": summary})
    plot(summary, base / "pretrain.png", len(seeds))
    print(text)
    return 0


def plot(summary: list[dict], path: Path, n_seeds: int) -> Path:
    from galaxymorph.plotting import plt, save_figure

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    full = max(n for n in (r["n_per_class"] for r in summary) if n) * 2
    xs = [r["n_per_class"] or full for r in summary]
    for k, arm in enumerate(ARMS):
        iv = np.array([r["intervals"][arm] for r in summary])
        offset = 1 + (k - 0.5) * 0.04
        ax.errorbar(np.array(xs) * offset, iv[:, 0], yerr=[iv[:, 0] - iv[:, 1], iv[:, 2] - iv[:, 0]], fmt="o-",
                    capsize=3, label="from synthetic-sky weights" if arm == "pretrained" else "from scratch")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(xs)
    ax.set_xticklabels([str(r["n_per_class"]) if r["n_per_class"] else "all\n(~945 / 305)" for r in summary])
    ax.set_xlabel("real training images per class")
    ax.set_ylabel(f"test accuracy ({'mean of %d seeds' % n_seeds if n_seeds > 1 else 'one seed'}, 95% CI)")
    ax.set_title("Real SDSS galaxies: does synthetic pretraining help?", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    return study_main(argv, __doc__, "pretrain", add_options, pretrain_study)


if __name__ == "__main__":
    sys.exit(main())
