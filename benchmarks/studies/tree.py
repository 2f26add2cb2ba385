"""Learning from every vote: Galaxy Zoo 2 decision-tree pretraining, then few-label fine-tuning.

On real SDSS galaxies (``../shared/data/gz2_tree`` and ``../shared/data/sdss_gz2``), through the
public API, so the numbers are what users get:

* **pretraining** (per seed): a decision-tree model (``--targets tree``) on every ``gz2_tree``
  galaxy outside a held-out tenth, plus that seed's ``sdss_gz2`` *training* galaxies; never on
  its validation or test galaxies. Scored per question against confident volunteers on the
  held-out ``gz2_tree`` galaxies.
* **fine-tuning** (per seed, Round Smooth vs Barred Spiral on the seed's ``sdss_gz2`` split, the
  same split as ``benchmarks.studies.real``): from scratch, fine-tuned from the pretrained encoder
  (``--init``), and a linear probe (``--init --freeze-encoder``), with 50, 100, 200 and all
  training images per class; every arm tested on the seed's full test split; paired bootstrap
  intervals of the differences.
* **multi-class** (``--multiclass``): Galaxy10 classes 1 2 3 4 5 6 8 9 derived from the votes
  (``data import --classes-from gz2-votes``) on both folders merged; a stratified split per
  seed; a tree model pretrained on every galaxy outside that split's validation and test
  galaxies; a classifier from scratch and from that encoder.

    python -m benchmarks.studies.tree --out /tmp/gm-tree --device cuda          # everything
    python -m benchmarks.studies.tree --out /tmp/gm-tree --quick                # a smoke test (minutes, CPU)

Output: OUT/bench_tree.md (the tables).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from galaxymorph.rundir import RunFolder

from benchmarks.studies.common import (REPO, environment, make_splits, outside_repo, paired_bootstrap,
                                       scored_predictions, subset_manifest)

SHARED = REPO.parent / "shared" / "data"
SIZES = (50, 100, 200, 0)  # training images per class; 0 = all
ARMS = ("scratch", "finetune", "probe")
MULTICLASS = (1, 2, 3, 4, 5, 6, 8, 9)
TREE_HELD_OUT = 0.1  # share of gz2_tree kept out of every pretraining, to score the tree model


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for data, manifests and run folders (outside the repo)")
    p.add_argument("--shared", default=str(SHARED), help="folder holding sdss_gz2/ and gz2_tree/")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--model", default="default")
    p.add_argument("--epochs", type=int, default=30, help="epochs of every classifier")
    p.add_argument("--pretrain-epochs", type=int, default=40)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--multiclass", action="store_true", help="also run the 8-class benchmark")
    p.add_argument("--stage", default="all", choices=["prepare", "finetune", "multiclass", "table", "all"],
                   help="only this part (prepare: import and merge; table: no training, tabulate)")
    p.add_argument("--import-one", help=argparse.SUPPRESS)  # one of IMPORTS, in a child process of prepare
    p.add_argument("--quick", action="store_true", help="a smoke test: 2 epochs, 1 seed, small sizes")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.sizes, args.epochs, args.pretrain_epochs, args.n_boot = [0], [50], 2, 2, 50
    return args


# ---------------------------------------------------------------------------------------- data
def imported(out: Path, source: Path, name: str, *extra: str) -> Path:
    """``data import SOURCE --catalog SOURCE/catalog.csv --pixel-scale 0.2 [extra]`` into OUT/NAME.h5, once."""
    from galaxymorph.cli import main as cli

    path = out / f"{name}.h5"
    if not path.is_file():
        code = cli(["--quiet", "data", "import", str(source), "--catalog", str(source / "catalog.csv"),
                    "--pixel-scale", "0.2", "--out", str(path), *extra])
        if code:
            raise SystemExit(f"tree: importing {source} failed ({code})")
    return path


def merged(out: Path, name: str, parts: list[Path]) -> Path:
    from galaxymorph.cli import main as cli

    path = out / f"{name}.h5"
    if not path.is_file():
        code = cli(["--quiet", "data", "merge", *map(str, parts), "--out", str(path)])
        if code:
            raise SystemExit(f"tree: merging {parts} failed ({code})")
    return path


def positions(path: Path) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as f:
        return np.stack([f["ra"][:], f["dec"][:]], axis=1)


def voted(path: Path) -> np.ndarray:
    """Indices of the images of ``path`` with at least one tree vote."""
    from galaxymorph.data.galaxy10 import open_galaxy10
    from galaxymorph.data.tree import load_tree

    with open_galaxy10(path, labelled=False) as data:
        return load_tree().voted(data)


def tree_manifest(path: Path, pool: Path, train: np.ndarray, val: np.ndarray, test: np.ndarray, seed: int) -> Path:
    """A split manifest of ``pool`` for tree pretraining, with the given index lists."""
    from galaxymorph.data.splits import tree_manifest_from

    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tree_manifest_from(pool, {"train": train, "val": val, "test": test}, seed=seed, out=path,
                           check_duplicates=False)
    return path


# ---------------------------------------------------------------------------------------- runs
def trained(run_dir: Path, **overrides) -> Path:
    """Train (or reuse) one run; score its test split; return the folder."""
    import galaxymorph as gm

    files = RunFolder(run_dir)
    if files.read_run_json().get("status") != "complete":
        config = gm.Config.resolve(overrides=overrides)
        print(f"--- {run_dir.relative_to(run_dir.parents[2])}: {config.targets}, init={config.init or '-'}",
              file=sys.stderr, flush=True)
        gm.train(config, out=run_dir, overwrite=True, progress=False)
    if not files.metrics_path.is_file():
        gm.evaluate(run_dir, split="test", progress=False, plots=False, n_boot=200)
    return run_dir


def train_seconds(run_dir: Path) -> float:
    """The run's training wall seconds, as training recorded them in run.json."""
    return float(RunFolder(run_dir).read_run_json()["train_seconds"])


def common(args, seed: int) -> dict:
    return {"model": args.model, "seed": seed, "device": args.device, "threads": args.threads}


def pretrain(out: Path, pool: Path, manifest: Path, args, seed: int, tag: str) -> Path:
    return trained(out / "runs" / f"pretrain-{tag}" / f"seed{seed}", data=str(pool), manifest=str(manifest),
                   targets="tree", epochs=args.pretrain_epochs, patience=10, **common(args, seed))


def classifier(out: Path, name: str, data: Path, manifest: Path, classes, args, seed: int, init: Path | None,
               arm: str) -> Path:
    extra = {} if arm == "scratch" else {"init": str(init), "freeze_encoder": arm == "probe"}
    return trained(out / "runs" / name / f"seed{seed}", data=str(data), manifest=str(manifest), classes=list(classes),
                   epochs=args.epochs, patience=10, **extra, **common(args, seed))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------- data set-up
IMPORTS = {  # name -> (folder under --shared, extra import options)
    "gz2_tree": ("gz2_tree", "--classes-from", "gz2-votes"),  # classes from votes: the 8-class benchmark
    "sdss_gz2": ("sdss_gz2",),  # folder classes: the 2-vs-5 benchmark
    "sdss_gz2-votes": ("sdss_gz2", "--classes-from", "gz2-votes"),  # its part of the 8-class pool
}


def prepare(out: Path, args) -> dict:
    """Import both folders (three imports side by side, once), merge, and fix the held-out part of
    gz2_tree. Returns the paths and index sets every stage uses."""
    import subprocess

    running = [subprocess.Popen([sys.executable, "-m", "benchmarks.studies.tree", "--out", str(out),
                                 "--shared", args.shared, "--import-one", name])
               for name in IMPORTS if not (out / f"{name}.h5").is_file()]
    if any(p.wait() for p in running):
        raise SystemExit("tree: an import failed")
    pool = merged(out, "pool", [out / "gz2_tree.h5", out / "sdss_gz2-votes.h5"])
    n_tree = len(positions(out / "gz2_tree.h5"))
    if not np.allclose(positions(pool)[n_tree:], positions(out / "sdss_gz2.h5"), equal_nan=True):
        raise SystemExit("tree: the pool's sdss part is not in sdss_gz2.h5's order")
    tree_voted = voted(out / "gz2_tree.h5")
    rng = np.random.default_rng(12345)
    held = np.sort(rng.choice(tree_voted, int(round(TREE_HELD_OUT * len(tree_voted))), replace=False))
    rest = rng.permutation(np.setdiff1d(tree_voted, held))
    return {"sdss": out / "sdss_gz2.h5", "pool": pool, "n_tree": n_tree, "held": held,
            "tree_val": np.sort(rest[:len(held)]), "tree_train": np.sort(rest[len(held):]),
            "splits": make_splits(out, out / "sdss_gz2.h5", args.seeds, [0.7, 0.15, 0.15])}


# ---------------------------------------------------------------------------------------- studies
def finetune_seed(out: Path, d: dict, args, seed: int, train: bool = True) -> dict:
    """One seed: the pretrained tree model and every (arm, size) classifier; their scores."""
    split = json.loads(d["splits"][seed].read_text())
    sdss_train = np.intersect1d(np.asarray(split["splits"]["train"]), voted(d["sdss"])) + d["n_tree"]
    manifest = tree_manifest(out / "splits" / f"pretrain-seed{seed}.json", d["pool"],
                             np.concatenate([d["tree_train"], sdss_train]), d["tree_val"], d["held"], seed)
    runs = {}
    init = pretrain(out, d["pool"], manifest, args, seed, "2v5") if train else out / "runs" / "pretrain-2v5" / f"seed{seed}"
    for size in args.sizes:
        sub = subset_manifest(d["splits"][seed], size, out / "splits", seed)
        for arm in args.arms:
            name = f"{arm}-n{size or 'all'}"
            runs[(arm, size)] = (classifier(out, name, d["sdss"], sub, (2, 5), args, seed, init, arm) if train
                                 else out / "runs" / name / f"seed{seed}")
    scores = {key: {**scored_predictions(RunFolder(run), d["sdss"]),
                    "seconds": train_seconds(run)} for key, run in runs.items()}
    scores[("pretrain", 0)] = {"tree": RunFolder(init).read_metrics().get("tree"),
                               "seconds": train_seconds(init)}
    return scores


def finetune_table(out: Path, d: dict, args) -> str:
    results: dict = {}
    for seed in args.seeds:
        for key, value in finetune_seed(out, d, args, seed, train=False).items():
            results.setdefault(key, {})[seed] = value
    seeds = args.seeds
    keys = ("accuracy", "balanced_accuracy", "roc_auc", "confident_accuracy")
    lines = ["| training images per class | arm | " + " | ".join(keys) + " | Δ accuracy vs scratch [95% CI] | train s |",
             "|---|---|" + "---:|" * (len(keys) + 2)]
    for size in args.sizes:
        for arm in args.arms:
            per_seed = results[(arm, size)]
            cells = [f"{np.mean([per_seed[s]['metrics'][k] for s in seeds]):.4f}" for k in keys]
            diff = "-"
            if arm != "scratch" and ("scratch", size) in results:
                d_acc = paired_bootstrap(per_seed, results[("scratch", size)], seeds, args.n_boot)["accuracy"]
                diff = f"{d_acc[0]:+.3f} [{d_acc[1]:+.3f}, {d_acc[2]:+.3f}]"
            secs = np.mean([per_seed[s]["seconds"] for s in seeds])
            lines.append(f"| {size or 'all'} | {arm} | " + " | ".join(cells) + f" | {diff} | {secs:.1f} |")
    pre = results[("pretrain", 0)]
    secs = ", ".join(f"{pre[s]['seconds']:.0f}" for s in seeds)
    lines += ["", "Pretrained tree models on the held-out gz2_tree galaxies (mean over seeds):", "",
              tree_table({s: pre[s]["tree"] for s in seeds}), "", f"pretraining wall seconds per seed: {secs}"]
    return "\n".join(lines) + "\n"


def tree_table(per_seed: dict) -> str:
    """Per question: accuracy against confident volunteers (mean over seeds) and n."""
    seeds = [s for s, t in per_seed.items() if t]
    if not seeds:
        return "(no tree metrics)"
    first = per_seed[seeds[0]]["questions"]
    lines = ["| question | accuracy vs confident volunteers | n (first seed) | mean abs. error of vote fractions |",
             "|---|---:|---:|---:|"]
    for q in first:
        accs = [per_seed[s]["questions"][q]["accuracy"]["value"] for s in seeds]
        acc = np.mean([a for a in accs if a is not None]) if any(a is not None for a in accs) else float("nan")
        mae = np.mean([per_seed[s]["questions"][q]["fraction_mae"] or np.nan for s in seeds])
        lines.append(f"| {q} | {acc:.4f} | {first[q]['n']} | {mae:.4f} |")
    mean = np.mean([per_seed[s]["mean_accuracy"] for s in seeds])
    lines.append(f"| **mean of questions** | **{mean:.4f}** | | |")
    return "\n".join(lines)


def multiclass_seed(out: Path, d: dict, args, seed: int, train: bool = True) -> list[str]:
    """8 classes from the votes; the tree model pretrained on everything outside val and test."""
    import galaxymorph as gm

    pool = d["pool"]
    split_path = out / "splits" / f"multiclass-seed{seed}.json"
    if not split_path.is_file():
        gm.prepare(pool, split_path, classes=MULTICLASS, seed=seed)
    split = json.loads(split_path.read_text())
    val, test = (np.asarray(split["splits"][k]) for k in ("val", "test"))
    manifest = tree_manifest(out / "splits" / f"pretrain-multiclass-seed{seed}.json", pool,
                             np.setdiff1d(voted(pool), np.concatenate([val, test])), val, test, seed)
    init = pretrain(out, pool, manifest, args, seed, "multiclass") if train else None
    rows = []
    for arm in ("scratch", "finetune"):
        run = (classifier(out, f"multiclass-{arm}", pool, split_path, MULTICLASS, args, seed, init, arm) if train
               else out / "runs" / f"multiclass-{arm}" / f"seed{seed}")
        rows.append(multiclass_row(seed, arm, RunFolder(run).read_metrics()))
    return rows


def multiclass_table(out: Path, d: dict, args) -> str:
    seeds = [s for s in args.seeds if (out / "runs" / "multiclass-finetune" / f"seed{s}" / "eval").is_dir()]
    rows = [r for seed in seeds for r in multiclass_seed(out, d, args, seed, train=False)]
    head = ["seed", "arm", "accuracy [95% CI]", "balanced accuracy [95% CI]"] + [f"recall {c}" for c in MULTICLASS]
    table = "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows])
    return table + "\n\n" + "\n\n".join(confusion(out, s) for s in seeds) + "\n"


def multiclass_row(seed: int, arm: str, m: dict) -> str:
    """Accuracy and balanced accuracy with intervals, and each class's recall, from metrics.json."""
    recalls = [f"{v['recall']['value']:.3f} (n={v['support']})" for v in m["per_class"].values()]
    return (f"| {seed} | {arm} | {fmt(m['metrics']['accuracy'])} | {fmt(m['metrics']['balanced_accuracy'])} | "
            + " | ".join(recalls) + " |")


def fmt(metric: dict) -> str:
    lo, hi = metric.get("ci95") or (float("nan"), float("nan"))
    return f"{metric['value']:.4f} [{lo:.3f}, {hi:.3f}]"


def confusion(out: Path, seed: int) -> str:
    """The confusion matrices of the 8-class runs of one seed (rows true, columns predicted)."""
    parts = []
    for arm in ("scratch", "finetune"):
        cm = RunFolder(out / "runs" / f"multiclass-{arm}" / f"seed{seed}").read_metrics()["confusion_matrix"]
        head = "| true \\ predicted | " + " | ".join(cm["labels"]) + " |"
        rows = [f"| {label} | " + " | ".join(map(str, row)) + " |" for label, row in zip(cm["labels"], cm["matrix"])]
        parts.append("\n".join([f"{arm}, seed {seed}:", "", head, "|---|" + "---:|" * len(cm["labels"]), *rows]))
    return "\n\n".join(parts)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = outside_repo(args.out, "tree")
    if args.import_one:
        folder, *extra = IMPORTS[args.import_one]
        imported(out, Path(args.shared) / folder, args.import_one, *extra)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    d = prepare(out, args)
    if args.stage in ("finetune", "all"):
        for seed in args.seeds:
            finetune_seed(out, d, args, seed)
    if args.stage in ("multiclass", "all") and args.multiclass:
        for seed in args.seeds:
            multiclass_seed(out, d, args, seed)
    if args.stage not in ("table", "all"):
        return 0
    text = f"environment: {environment()}\n\n"
    text += "## Fine-tuning (Round Smooth vs Barred Spiral, sdss_gz2 test splits)\n\n" + finetune_table(out, d, args)
    if args.multiclass:
        text += "\n## Eight classes from the votes\n\n" + multiclass_table(out, d, args)
    from galaxymorph.fileio import write_text

    write_text(out / "bench_tree.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
