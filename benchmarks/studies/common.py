"""What the real-galaxy studies share: the candidates, the data import and splits, the run
folders, scoring (metrics and paired bootstraps) and the tables.

Every study (``real``, ``pretrain``, ``curve``, ``committee``, ``tree``) is a module of this
package run from the repository root, e.g. ``python -m benchmarks.studies.real --out OUT``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO.parent / "shared" / "data" / "sdss_gz2"
LONG = dict(epochs=30, patience=10)

# name -> (what it changes, Config overrides, evaluate with TTA). "seed" and "default" are the
# two references every other candidate is paired against.
CANDIDATES: dict[str, tuple[str, dict, bool]] = {
    "seed": ("reference 5-conv CNN, its own recipe (--preset seed)", dict(preset="seed"), False),
    "default": ("the default before this benchmark (galaxy-narrow, 12 epochs, patience 6)",
                dict(model="galaxy-narrow", epochs=12, patience=6), False),
    "narrow-30": ("default model, --epochs 30 --patience 10 (baseline to beat)", dict(model="galaxy-narrow", **LONG), False),
    "narrow-30-tta": ("narrow-30 scored with D4 test-time averaging", dict(model="galaxy-narrow", **LONG), True),
    "narrow-reflect-30": ("narrow, reflect padding (heatmaps: no zero border)",
                          dict(model="galaxy-narrow-reflect", **LONG), False),
    "narrow-fine-30": ("narrow, last stage stride 1: 16x16 last grid (heatmaps)",
                       dict(model="galaxy-narrow-fine", **LONG), False),
    "base-30": ("widths 32-64-128-192", dict(model="galaxy-base", **LONG), False),
    "narrow-192-30": ("narrow at 192 px input instead of 128 (2.25x the pixels; over the 3-minute budget)",
                      dict(model="galaxy-narrow-192", **LONG), False),
    "reflect-30": ("widths 32-64-128-192, reflect padding", dict(model="galaxy-reflect", **LONG), False),
    "narrow-votes-30": ("narrow, soft targets from the vote fractions (--targets votes)",
                        dict(model="galaxy-narrow", targets="votes", **LONG), False),
    "narrow-balanced-30": ("narrow, class-balanced loss for the 3:1 split (--class-weight balanced)",
                           dict(model="galaxy-narrow", class_weight="balanced", **LONG), False),
    "narrow-ema99-30": ("narrow, weights averaged with decay 0.99 (--ema 0.99)",
                        dict(model="galaxy-narrow", ema=0.99, **LONG), False),
    "narrow-ema998-30": ("narrow, weights averaged with decay 0.998 (--ema 0.998)",
                         dict(model="galaxy-narrow", ema=0.998, **LONG), False),
    "narrow-lr1e-3-30": ("narrow, half the peak learning rate (--lr 1e-3)", dict(model="galaxy-narrow", lr=1e-3, **LONG),
                         False),
    "narrow-lr4e-3-30": ("narrow, twice the peak learning rate (--lr 4e-3)", dict(model="galaxy-narrow", lr=4e-3, **LONG),
                         False),
    "narrow-wd0.01-30": ("narrow, weaker weight decay (--weight-decay 0.01)",
                         dict(model="galaxy-narrow", weight_decay=0.01, **LONG), False),
    "narrow-wd0.2-30": ("narrow, stronger weight decay (--weight-decay 0.2)",
                        dict(model="galaxy-narrow", weight_decay=0.2, **LONG), False),
    "narrow-strongaug-30": ("narrow, stronger zoom and shift augmentation (--zoom 0.25 --shift 0.1)",
                            dict(model="galaxy-narrow", zoom=0.25, shift=0.1, **LONG), False),
    "narrow-noaug-30": ("narrow, no augmentation (--augment none): what augmentation is worth",
                        dict(model="galaxy-narrow", augment="none", **LONG), False),
    "narrow-45": ("narrow, --epochs 45 --patience 15 (over the 3-minute budget)",
                  dict(model="galaxy-narrow", epochs=45, patience=15), False),
    "narrow-ema99-45": ("narrow, --ema 0.99 --epochs 45 --patience 15 (over the 3-minute budget)",
                        dict(model="galaxy-narrow", ema=0.99, epochs=45, patience=15), False),
}
REFERENCES = ("seed", "default")


# ---------------------------------------------------------------------------------------- command line
def study_parser(doc: str) -> argparse.ArgumentParser:
    """The options every study on the sdss_gz2 splits shares; a study adds its own."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for the data, splits and run folders (outside the repo)")
    p.add_argument("--source", default=str(SOURCE), help="the sdss_gz2 folder (JPEGs per class + catalog.csv)")
    p.add_argument("--data", default="", help="an already imported HDF5 file with catalog/ votes (skips the import)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--fractions", type=float, nargs=3, default=[0.7, 0.15, 0.15])
    p.add_argument("--threads", type=int, default=1, help="torch threads per training (1 on a shared machine)")
    p.add_argument("--device", default="cpu", help="where to train (the table's CPU seconds assume cpu)")
    p.add_argument("--n-boot", type=int, default=2000)
    return p


def outside_repo(out: str, study: str, option: str = "--out") -> Path:
    """``--out`` (or ``option``) resolved and created; run folders are big, so never inside the repository."""
    path = Path(out).resolve()
    if path == REPO or REPO in path.parents:
        raise SystemExit(f"{study}: {option} must be outside the repository (run folders are big)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_up(args, study: str) -> tuple[Path, Path, dict[int, Path]]:
    """The study's folder, the imported data (``--data`` or an import of ``--source``) and one
    split manifest per seed; torch set to ``--threads``."""
    out = outside_repo(args.out, study)
    import torch

    torch.set_num_threads(args.threads)
    data = Path(args.data).resolve() if args.data else import_data(out, Path(args.source))
    return out, data, make_splits(out, data, args.seeds, args.fractions)


def study_main(argv, doc: str, study: str, add_options, run) -> int:
    """A study script's main: the shared options plus the study's own (``add_options(parser)``),
    then ``run(out, data, splits, args)`` on the prepared folder, data and splits."""
    p = study_parser(doc)
    add_options(p)
    args = p.parse_args(argv)
    out, data, splits = set_up(args, study)
    return run(out, data, splits, args)


# ---------------------------------------------------------------------------------------- data
def import_data(out: Path, source: Path) -> Path:
    """``data import SOURCE --catalog SOURCE/catalog.csv`` into OUT/sdss_gz2.h5 (once)."""
    data = out / "sdss_gz2.h5"
    if not data.is_file():
        cmd = [sys.executable, "-m", "galaxymorph", "data", "import", str(source), "--out", str(data),
               "--catalog", str(source / "catalog.csv"), "--pixel-scale", "0.2"]  # SDSS cutouts: 0.2"/px
        print("$", " ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True)
    return data


def make_splits(out: Path, data: Path, seeds, fractions) -> dict[int, Path]:
    """One stratified split manifest per seed, made once and reused."""
    import galaxymorph as gm

    paths = {}
    for seed in seeds:
        path = out / "splits" / f"seed{seed}.json"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            gm.prepare(data, path, classes=(2, 5), fractions=fractions, seed=seed)
        paths[seed] = path
    return paths


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


# ---------------------------------------------------------------------------------------- runs
def run_folder(out: Path, name: str, seed: int) -> Path:
    """Where a candidate's run for one seed lives; TTA candidates score another one's run."""
    overrides = CANDIDATES[name][1]
    trained = next((n for n, (_, o, tta) in CANDIDATES.items() if o == overrides and not tta), name)
    return out / "runs" / trained / f"seed{seed}"


def eval_name(name: str) -> str:
    return "eval_tta" if CANDIDATES[name][2] else "eval"


def run_files(run_dir: Path, name: str):
    """The candidate's run folder, with its test scores in RUN/eval or RUN/eval_tta."""
    from galaxymorph.rundir import RunFolder

    return RunFolder(run_dir, eval_dir=run_dir / eval_name(name))


def config_for(name: str, data: Path, split: Path, seed: int, args):
    import galaxymorph as gm

    overrides = dict(CANDIDATES[name][1])
    if name == "seed" and args.seed_epochs:
        overrides["epochs"] = args.seed_epochs
    return gm.Config.resolve(overrides={**overrides, "data": str(data), "manifest": str(split), "classes": [2, 5],
                                        "fractions": list(args.fractions), "seed": seed, "threads": args.threads,
                                        "device": args.device})


def train_and_score(name: str, data: Path, split: Path, seed: int, args, out: Path) -> Path:
    """Train (or reuse) one candidate on one seed's split; score its test split into RUN/eval[_tta]."""
    import galaxymorph as gm
    from galaxymorph.fileio import write_json

    run_dir = run_folder(out, name, seed)
    files = run_files(run_dir, name)
    if files.read_run_json().get("status") != "complete":
        config = config_for(name, data, split, seed, args)
        print(f"--- {name} seed {seed}: training ({config.model}, {config.epochs} epochs)", file=sys.stderr, flush=True)
        cpu = time.process_time()
        gm.train(config, out=run_dir, overwrite=True, progress=False)
        write_json(run_dir / "bench_cpu.json", {"train_cpu_seconds": round(time.process_time() - cpu, 1)})
    if not files.metrics_path.is_file():
        gm.evaluate(run_dir, split="test", tta=CANDIDATES[name][2], progress=False, plots=False, n_boot=200,
                    out=files.eval)
    return run_dir


# ---------------------------------------------------------------------------------------- scores
def read_predictions(files) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test-image indices, true positions (0/1) and p(second class) from a run's scored
    predictions (a galaxymorph.rundir.RunFolder), ordered by index."""
    predictions = files.read_predictions().sorted_by_index()
    y = (predictions.true != predictions.class_ids[0]).astype(int)
    return predictions.index, y, predictions.probs[:, -1]


BENCH_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "confident_accuracy", "log_loss")


def metrics(y: np.ndarray, p: np.ndarray, confident: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, ROC AUC, accuracy on confident votes and log loss of labels
    ``y`` (0/1) and p(second class), by galaxymorph.evaluation.metrics (the rules of ``evaluate``)."""
    from galaxymorph.evaluation.metrics import weighted_scores

    scores = weighted_scores(np.ones((1, len(y))), y, np.c_[1 - p, p], {"confident_accuracy": confident})
    return {k: float(scores[k][0]) for k in BENCH_METRICS}


def scored_predictions(files, data: Path) -> dict:
    """One run's test predictions (a galaxymorph.rundir.RunFolder, or a run folder's path) scored:
    test indices, labels (0/1), p(second class), each image's vote confidence, and the metrics
    (confident = every deciding vote >= 0.8)."""
    from galaxymorph.rundir import RunFolder
    from galaxymorph.votes import vote_confidence

    index, y, p = read_predictions(RunFolder.of(files))
    confidence = vote_confidence(data, index, [2, 5], y)
    return {"index": index, "y": y, "p": p, "confidence": confidence, "metrics": metrics(y, p, confidence >= 0.8)}


def collect(name: str, out: Path, data: Path, seeds) -> dict | None:
    """Per seed: predictions, vote confidence, metrics and training seconds (None if unfinished)."""
    from galaxymorph.votes import soft_targets

    per_seed = {}
    for seed in seeds:
        run_dir = run_folder(out, name, seed)
        files = run_files(run_dir, name)
        if not files.predictions_path.is_file():
            return None
        scored = scored_predictions(files, data)
        run = files.read_run_json()
        cpu = run_dir / "bench_cpu.json"
        run["train_cpu_seconds"] = json.loads(cpu.read_text())["train_cpu_seconds"] if cpu.is_file() else None
        per_seed[seed] = {**scored, "vote_target": soft_targets(data, scored["index"], [2, 5]),
                          "train_seconds": run.get("train_seconds"), "train_cpu_seconds": run["train_cpu_seconds"],
                          "epochs": run.get("epochs_done"), "best_epoch": run.get("best_epoch")}
    return per_seed


def paired_bootstrap(a: dict, b: dict, seeds, n_boot: int, rng_seed: int = 0) -> dict[str, list[float]]:
    """Model a minus model b on the same test images pooled over seeds: point and 95% interval
    (galaxymorph.evaluation.metrics.paired_bootstrap with one group per seed: resampled within each
    seed and class, each seed's metric averaged over seeds, as the table's means are)."""
    from galaxymorph.evaluation.metrics import paired_bootstrap as bootstrap

    for s in seeds:
        if not np.array_equal(a[s]["index"], b[s]["index"]):
            raise SystemExit(f"seed {s}: the two candidates were not scored on the same test images")
    pool = lambda d, key: np.concatenate([d[s][key] for s in seeds])  # noqa: E731
    p_a, p_b = pool(a, "p"), pool(b, "p")
    groups = np.concatenate([np.full(len(a[s]["y"]), i) for i, s in enumerate(seeds)])
    return bootstrap(pool(a, "y"), np.c_[1 - p_a, p_a], np.c_[1 - p_b, p_b], groups,
                     {"confident_accuracy": pool(a, "confidence") >= 0.8},
                     ("accuracy", "balanced_accuracy", "roc_auc", "confident_accuracy"), n_boot, rng_seed)


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


def summarise(results: dict, seeds, n_boot: int, references=REFERENCES) -> list[dict]:
    rows = []
    for name, per_seed in results.items():
        keys = per_seed[seeds[0]]["metrics"].keys()
        what = CANDIDATES[name][0]
        if name == "seed" and per_seed[seeds[0]]["epochs"] != 30:
            what += f", {per_seed[seeds[0]]['epochs']} epochs instead of 30 (CPU budget)"
        row = {"name": name, "what": what,
               "mean": {k: float(np.mean([per_seed[s]["metrics"][k] for s in seeds])) for k in keys},
               "sd": {k: float(np.std([per_seed[s]["metrics"][k] for s in seeds], ddof=1)) for k in keys},
               "per_seed": {s: {k: float(v) for k, v in per_seed[s]["metrics"].items()} for s in seeds},
               "train_seconds": [per_seed[s]["train_seconds"] for s in seeds],
               "train_cpu_seconds": [per_seed[s]["train_cpu_seconds"] for s in seeds],
               "epochs": [f"{per_seed[s]['epochs']}({per_seed[s]['best_epoch']})" for s in seeds],
               "n_test": [int(len(per_seed[s]["y"])) for s in seeds],
               "n_confident": [int((per_seed[s]["confidence"] >= 0.8).sum()) for s in seeds]}
        for ref, ref_name in zip(("seed", "default"), references):
            if ref_name in results and ref_name != name:
                row[f"vs_{ref}"] = paired_bootstrap(per_seed, results[ref_name], seeds, n_boot)
        rows.append(row)
    return rows


def _diff(d: list[float] | None) -> str:
    return "-" if d is None else f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]"


def table(rows: list[dict], baseline: str = "default") -> str:
    head = ["candidate", "what changes", "train CPU s (mean; per seed)", "epochs (best)", "accuracy", "balanced acc.", "ROC AUC",
            "acc. on confident votes", "log loss", "vs seed: Δ acc. [95% CI]", f"vs {baseline}: Δ acc. [95% CI]",
            f"vs {baseline}: Δ bal. acc. [95% CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m, sd = r["mean"], r["sd"]
        secs = [t for t in r["train_cpu_seconds"] if t is not None] or [float("nan")]
        cell = lambda k: f"{m[k]:.4f} ± {sd[k]:.4f}"  # noqa: E731
        lines.append("| " + " | ".join([
            f"`{r['name']}`", r["what"], f"{np.mean(secs):.0f} ({', '.join(f'{t:.0f}' for t in secs)})",
            ", ".join(r["epochs"]),
            cell("accuracy"), cell("balanced_accuracy"), cell("roc_auc"), cell("confident_accuracy"),
            cell("log_loss"), _diff(r.get("vs_seed", {}).get("accuracy")),
            _diff(r.get("vs_default", {}).get("accuracy")),
            _diff(r.get("vs_default", {}).get("balanced_accuracy"))]) + " |")
    return "\n".join(lines) + "\n"


def vote_table(results: dict, seeds) -> str:
    """Accuracy by vote confidence (all, >= 0.6, >= 0.8) and calibration against the votes."""
    from galaxymorph.votes import CONFIDENCE_LEVELS, accuracy_by_confidence, calibration_against_votes

    head = ["candidate"] + [f"acc., votes >= {v:g}" if v else "acc., all" for v in CONFIDENCE_LEVELS] + [
        "mean abs(p - vote target)", "corr(p, vote target)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, per_seed in results.items():
        y = np.concatenate([per_seed[s]["y"] for s in seeds])
        p = np.concatenate([per_seed[s]["p"] for s in seeds])
        conf = np.concatenate([per_seed[s]["confidence"] for s in seeds])
        target = np.concatenate([per_seed[s]["vote_target"] for s in seeds])
        acc = accuracy_by_confidence(y, p, conf)
        cal = calibration_against_votes(p, target)
        lines.append("| " + " | ".join([f"`{name}`"] + [f"{a['accuracy']:.4f} (n={a['n']})" for a in acc] + [
            f"{cal['mean_abs_difference']:.3f}", f"{cal['correlation']:.3f}"]) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- main
def environment() -> dict:
    import torch

    from galaxymorph.runs import cpu_name

    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_name(), "cores": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads()}
