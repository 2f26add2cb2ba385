"""Does the synthetic sky help real galaxies? (``bench_real.py --pretrain``)

One model is trained on the default synthetic sky (``Config(data="synthetic")``, classes 2 and
5). Then, on each seed's real split, the same architecture and recipe is trained on 50, 100,
200 and all real training images per class twice: from those synthetic weights
(``--weights``) and from scratch. Validation and test images are the seed's full ones, so the
two arms are paired on every test image. Output: OUT/pretrain/pretrain.md (accuracy per arm and
size, mean over seeds with a 95% paired bootstrap interval of the difference) and
a plot, OUT/pretrain/pretrain.png.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from galaxymorph.rundir import RunFolder

from bench_real import CANDIDATES, LONG, run_folder, scored_predictions

ARMS = ("scratch", "pretrained")


def subset_manifest(split: Path, n_per_class: int, out: Path, seed: int, fraction: float | None = None) -> Path:
    """The split with its train part cut (seeded): to ``n_per_class`` images per class (0 = all),
    or, with ``fraction``, to that share of each class (the classes keep their proportions)."""
    from galaxymorph.fileio import write_json

    tag = f"f{fraction:g}" if fraction is not None else f"n{n_per_class or 'all'}"
    path = out / f"{split.stem}-{tag}.json"
    if path.is_file():
        return path
    manifest = json.loads(split.read_text())
    if n_per_class or fraction is not None:
        import h5py

        train = np.asarray(manifest["splits"]["train"])
        with h5py.File(manifest["source"]["path"], "r") as f:
            labels = f["ans"][:][train]
        rng = np.random.default_rng(1000 + seed)
        counts = {c: int((labels == c).sum()) for c in manifest["classes"]}
        wanted = {c: (max(1, round(fraction * k)) if fraction is not None else min(n_per_class, k))
                  for c, k in counts.items()}
        keep = np.concatenate([rng.choice(train[labels == c], wanted[c], replace=False) for c in manifest["classes"]])
        manifest["splits"]["train"] = sorted(int(i) for i in keep)
        manifest["counts"]["train"] = {str(c): wanted[c] for c in manifest["classes"]}
        manifest["note"] = f"train cut to {tag[1:]} {'of each class' if fraction is not None else 'images per class'} " \
                           f"(seed {1000 + seed})"
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, manifest)
    return path


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

    from bench_real import paired_bootstrap

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


def seed_pooled_interval(per_seed: dict, seeds, n_boot: int, rng_seed: int = 0) -> list[float]:
    """Mean test accuracy over seeds and its 95% bootstrap interval (images resampled per seed and class)."""
    rng = np.random.default_rng(rng_seed)
    draws = np.empty(n_boot)
    for i in range(n_boot):
        total = 0.0
        for s in seeds:
            y, p = per_seed[s]["y"], per_seed[s]["p"]
            idx = np.concatenate([rng.choice(np.flatnonzero(y == c), (y == c).sum()) for c in (0, 1)])
            total += (((p[idx] >= 0.5).astype(int)) == y[idx]).mean() / len(seeds)
        draws[i] = total
    mean = float(np.mean([per_seed[s]["metrics"]["accuracy"] for s in seeds]))
    return [mean, *map(float, np.percentile(draws, [2.5, 97.5]))]


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
