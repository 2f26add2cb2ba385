"""Synthetic to real: how a model trained only on the synthetic sky scores on real cutouts.

Takes a run folder of a model trained on synthetic classes 2 (Round Smooth) and 5 (Barred
Spiral) -- or trains one -- and scores it on the 22 real class-2/5 cutouts of
``../shared/data/galaxy10_reference.h5`` (11 per class, JPEG artefacts): accuracy and ROC AUC
with 95% class-stratified bootstrap intervals, log loss, and every image's probability. Prints
a markdown snippet. Twenty-two images give wide intervals: this is a report, not a benchmark.

    python -m scripts.synthetic_to_real --run /tmp/gm-compare/runs/galaxy-base
    python -m scripts.synthetic_to_real --train --model default --out /tmp/gm-s2r/default
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REFERENCE_H5 = REPO.parent / "shared" / "data" / "galaxy10_reference.h5"
CLASSES = [2, 5]


def score_reference(run_dir: str | Path, reference: str | Path = REFERENCE_H5, n_boot: int = 1000) -> dict:
    """Metrics (with 95% bootstrap CIs) and per-image probabilities of a run on the real 2/5 cutouts."""
    from galaxymorph.data.galaxy10 import open_galaxy10
    from galaxymorph.errors import GalaxymorphError
    from galaxymorph.evaluation.metrics import point_metrics, stratified_bootstrap_weights, with_intervals
    from galaxymorph.models import load_model

    model = load_model(run_dir)
    if model.class_ids != CLASSES:
        raise GalaxymorphError(f"{run_dir} was trained on classes {model.class_ids}; this check needs {CLASSES}")
    with open_galaxy10(reference) as ref:
        sel = ref.select(CLASSES)
        images = ref.images(sel.indices)
    probs = model.predict_proba(images).astype(np.float64)
    probs /= probs.sum(1, keepdims=True)  # as evaluate() does: float32 rounding
    y = np.asarray(sel.labels)
    pred = (probs[:, 1] >= 0.5).astype(int)
    m = with_intervals(point_metrics(y, probs, pred), stratified_bootstrap_weights(y, n_boot, 0), y, probs, pred)
    return {"n": int(len(y)), "model": model.name, "metrics": {k: m[k] for k in ("accuracy", "roc_auc", "log_loss")},
            "indices": [int(i) for i in sel.indices], "labels": y.tolist(), "p_barred": probs[:, 1].round(4).tolist()}


def _ci(m: dict) -> str:
    lo, hi = m["ci95"]
    return f"{m['value']:.2f} [{lo:.2f}, {hi:.2f}]"


def markdown(run_dir: Path, result: dict) -> str:
    """A markdown snippet: what was trained, the real-image scores, the per-image table."""
    from galaxymorph.rundir import RunFolder

    files = RunFolder(run_dir)
    run = files.read_run_json()
    config = files.read_config()
    cfg = config.to_dict() if config is not None else {}
    synth = ""
    metrics = files.read_metrics()
    if metrics is not None:
        sm = metrics["metrics"]
        synth = (f"; on its synthetic test split: accuracy {_ci(sm['accuracy'])}, "
                 f"ROC AUC {_ci(sm['roc_auc'])}")
    m = result["metrics"]
    lines = [
        f"**`{result['model']}`** (trained on synthetic classes 2 and 5 only, "
        f"{run.get('epochs_done', '?')} epochs, best epoch {run.get('best_epoch', '?')}{synth}).",
        f"On the {result['n']} real cutouts: accuracy {_ci(m['accuracy'])}, ROC AUC {_ci(m['roc_auc'])}, "
        f"log loss {m['log_loss']['value']:.2f} (95% bootstrap intervals, resampled within each class).",
        "",
        "| file index | true class | p(barred spiral) | predicted | correct |",
        "|---:|---|---:|---|---|",
    ]
    names = {0: "2 round smooth", 1: "5 barred spiral"}
    for i, y, p in zip(result["indices"], result["labels"], result["p_barred"]):
        guess = int(p >= 0.5)
        lines.append(f"| {i} | {names[y]} | {p:.3f} | {names[guess]} | {'yes' if guess == y else '**no**'} |")
    if cfg:
        lines.append("")
        lines.append(f"Training data: {cfg.get('data')} (manifest {cfg.get('manifest') or 'fresh split'}).")
    return "\n".join(lines) + "\n"


def train_run(args) -> Path:
    """Train ``args.model`` on a synthetic 2/5 sky into ``args.out`` with the project's train()."""
    from galaxymorph.config import PRESETS, Config
    from galaxymorph.training import train

    values = dict(data="synthetic", classes=CLASSES, n_per_class=args.n_per_class, difficulty=args.difficulty,
                  seed=args.seed, threads=args.threads)
    if args.model == "seed":
        values = {**PRESETS["seed"], **values}
    else:
        values["model"] = args.model
    if args.epochs:
        values["epochs"] = args.epochs
    return train(Config.from_dict(values).validate(), out=args.out, progress=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", help="a run folder trained on synthetic classes 2 and 5")
    p.add_argument("--train", action="store_true", help="train a model first (into --out)")
    p.add_argument("--out", help="run folder to create with --train (outside the repo)")
    p.add_argument("--model", default="default")
    p.add_argument("--n-per-class", type=int, default=600)
    p.add_argument("--difficulty", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=0, help="0 = the model's recipe")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reference", default=str(REFERENCE_H5))
    args = p.parse_args(argv)
    if not Path(args.reference).is_file():
        print(f"synthetic_to_real: real reference cutouts not found at {args.reference}", file=sys.stderr)
        return 2
    if args.train:
        if not args.out:
            p.error("--train needs --out")
        run_dir = train_run(args)
    elif args.run:
        run_dir = Path(args.run)
    else:
        p.error("give --run RUN_DIR or --train --out DIR")
    print(markdown(Path(run_dir), score_reference(run_dir, args.reference)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
