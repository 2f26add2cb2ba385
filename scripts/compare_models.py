"""Compare the seed CNN and GalaxyResNet variants on one synthetic sky and one fixed split.

Every candidate is trained with the project's own ``galaxymorph.training.train`` into a run folder
under ``--out`` and scored on the test split with ``galaxymorph.evaluation.evaluate`` (95%
class-stratified bootstrap intervals). Then, as a sanity check only, each model scores the 22
real class-2/5 cutouts of ``galaxy10_reference.h5`` (skipped when the file is absent).

    python -m scripts.compare_models --out /tmp/gm-compare --markdown

``--bn-probe`` instead runs the BatchNorm experiment of docs/models.md: a small sky (150 images
per class), 6 epochs, and per epoch the validation accuracy in eval mode (running statistics)
next to the same weights with batch statistics, for the old and fixed settings and ablations.

Finished runs (``eval/metrics.json`` present) are reused, so an interrupted comparison picks up
where it stopped; ``--fresh`` retrains. The table goes to stdout and ``OUT/table.md``, every
number to ``OUT/compare.json``. See docs/models.md for the measured table and the choice.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from galaxymorph.config import PRESETS, Config
from galaxymorph.errors import GalaxymorphError
from galaxymorph.fileio import write_json, write_text
from galaxymorph.rundir import RunFolder

REPO = Path(__file__).resolve().parents[1]
REFERENCE_H5 = REPO.parent / "shared" / "data" / "galaxy10_reference.h5"
CANDIDATES = ("galaxy-base", "seed", "galaxy-bn-old", "galaxy-narrow", "galaxy-wide", "galaxy-gn",
              "galaxy-avgmax", "galaxy-96", "galaxy-192")
WHAT = {  # the one factor each candidate changes
    "seed": "reference 5-conv CNN, seed preset (Adam 1e-3, batch 8)",
    "galaxy-bn-old": "base before the BN fix (no input standardisation, BN momentum 0.1)",
    "galaxy-base": "widths 32-64-128-192, BatchNorm, avg pool, 128 px",
    "galaxy-narrow": "widths 16-32-64-128",
    "galaxy-wide": "widths 48-96-192-288",
    "galaxy-gn": "GroupNorm (8 groups) instead of BatchNorm",
    "galaxy-avgmax": "avg + max pooling concatenated",
    "galaxy-96": "96 px input",
    "galaxy-192": "192 px input",
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for the sky, the split and the run folders (outside the repo)")
    p.add_argument("--models", nargs="+", default=list(CANDIDATES), help="registry names to compare")
    p.add_argument("--n-per-class", type=int, default=1000)
    p.add_argument("--difficulty", type=float, default=0.6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fractions", type=float, nargs=3, default=[0.6, 0.1, 0.3])
    p.add_argument("--epochs", type=int, default=12, help="epochs of every GalaxyResNet variant")
    p.add_argument("--seed-epochs", type=int, default=6, help="epochs of the seed CNN (its preset says 30)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per training (1: on a shared 2-core machine two threads spin-wait)")
    p.add_argument("--reference", default=str(REFERENCE_H5), help="real Galaxy10 cutouts for the sanity check")
    p.add_argument("--fresh", action="store_true", help="retrain runs that already finished")
    p.add_argument("--markdown", action="store_true", help="print only the markdown table")
    p.add_argument("--bn-probe", action="store_true", help="run the BatchNorm experiment instead (~3 min)")
    return p.parse_args(argv)


def prepare_data(out: Path, args) -> tuple[Path, Path]:
    """The synthetic sky (rendered once) and ONE fixed split manifest shared by every model."""
    from galaxymorph.data.splits import load_manifest, prepare
    from galaxymorph.data.synthetic import synthesize

    data = out / f"sky-d{args.difficulty:g}-n{args.n_per_class}-s{args.seed}.h5"
    if not data.is_file():
        synthesize(data, classes=(2, 5), n_per_class=args.n_per_class, seed=args.seed, difficulty=args.difficulty)
    split = out / "split.json"
    try:
        manifest = load_manifest(split, data)
        if manifest["fractions"] != list(args.fractions) or manifest["seed"] != args.seed:
            raise GalaxymorphError("different split settings")
    except GalaxymorphError:
        prepare(data, split, classes=(2, 5), fractions=args.fractions, seed=args.seed)
    return data, split


def config_for(name: str, data: Path, split: Path, args) -> Config:
    common = dict(data=str(data), manifest=str(split), classes=[2, 5], fractions=list(args.fractions),
                  seed=args.seed, threads=args.threads, amp=True)
    if name == "seed":
        return Config.from_dict({**PRESETS["seed"], **common, "epochs": args.seed_epochs}).validate()
    return Config.from_dict({**common, "model": name, "epochs": args.epochs}).validate()


def train_and_evaluate(name: str, data: Path, split: Path, args, out: Path) -> dict:
    """Train (or reuse) one candidate's run folder and return its test metrics and costs."""
    from galaxymorph.evaluation import evaluate
    from galaxymorph.training import train

    run_dir = out / "runs" / name
    files = RunFolder(run_dir)
    if args.fresh or not files.metrics_path.is_file():
        config = config_for(name, data, split, args)
        print(f"--- {name}: training {config.epochs} epochs", file=sys.stderr, flush=True)
        train(config, out=run_dir, overwrite=True, progress=False)
        evaluate(run_dir, split="test", progress=False, plots=False)
    return {"run_dir": str(run_dir), "run": files.read_run_json(), "metrics": files.read_metrics()}


def real_sanity(run_dir: Path, reference: Path) -> dict | None:
    """Accuracy and ROC AUC (bootstrap 95% CI) on the real class-2/5 reference cutouts, or None."""
    if not reference.is_file():
        return None
    from scripts.synthetic_to_real import score_reference

    result = score_reference(run_dir, reference)
    return {**result, **result["metrics"]}


def read_predictions(run_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """File indices, true positions (0/1) and p(second class) from the run's test predictions."""
    predictions = RunFolder(run_dir).read_predictions()
    return predictions.index, (predictions.true != predictions.class_ids[0]).astype(int), predictions.probs[:, -1]


def paired_difference(run_dir: Path, baseline_dir: Path, n_boot: int = 1000) -> dict:
    """Accuracy and log-loss differences (model - baseline) on the same test images, with 95%
    intervals from one class-stratified bootstrap applied to both models' predictions (paired)."""
    from galaxymorph.evaluation.metrics import stratified_bootstrap_weights

    idx_a, y, p_a = read_predictions(run_dir)
    idx_b, y_b, p_b = read_predictions(baseline_dir)
    order_a, order_b = np.argsort(idx_a), np.argsort(idx_b)
    if not np.array_equal(idx_a[order_a], idx_b[order_b]):
        raise GalaxymorphError(f"{run_dir} and {baseline_dir} were not scored on the same test images")
    y, p_a, p_b = y[order_a], p_a[order_a], p_b[order_b]
    eps = 1e-15
    correct = lambda p: ((p >= 0.5).astype(int) == y).astype(float)  # noqa: E731
    nll = lambda p: -np.log(np.clip(np.where(y == 1, p, 1 - p), eps, 1))  # noqa: E731
    d_acc, d_nll = correct(p_a) - correct(p_b), nll(p_a) - nll(p_b)
    W = stratified_bootstrap_weights(y, n_boot, 0)
    out = {}
    for name, d in (("accuracy", d_acc), ("log_loss", d_nll)):
        boot = W @ d / W.sum(1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        out[name] = {"value": float(d.mean()), "ci95": [float(min(lo, d.mean())), float(max(hi, d.mean()))]}
    return out


def n_params(run_dir: Path) -> tuple[int, int]:
    from galaxymorph.models import load_model

    model = load_model(run_dir)
    return sum(p.numel() for p in model.parameters()), model.input_size


def _ci(m: dict, digits: int = 3) -> str:
    lo, hi = m["ci95"]
    return f"{m['value']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _signed(m: dict, digits: int = 3) -> str:
    lo, hi = m["ci95"]
    return f"{m['value']:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def table(rows: list[dict], with_real: bool) -> str:
    head = ["model", "what changes", "params", "input px", "epochs (best)", "train s", "test accuracy [95% CI]",
            "test ROC AUC [95% CI]", "test log loss [95% CI]", "vs seed: Δ accuracy [CI]", "vs seed: Δ log loss [CI]"]
    if with_real:
        head += ["real 22: accuracy [CI]", "real 22: ROC AUC [CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m, run = r["metrics"]["metrics"], r["run"]
        cells = [f"`{r['name']}`", WHAT.get(r["name"], ""), f"{r['params']:,}", str(r["input_px"]),
                 f"{run.get('epochs_done')} ({run.get('best_epoch')})", f"{run.get('train_seconds', float('nan')):.0f}",
                 _ci(m["accuracy"]), _ci(m["roc_auc"]), _ci(m["log_loss"])]
        vs = r.get("vs_seed")
        cells += [_signed(vs["accuracy"]), _signed(vs["log_loss"])] if vs else ["-", "-"]
        if with_real:
            real = r.get("real")
            cells += [_ci(real["accuracy"], 2), _ci(real["roc_auc"], 2)] if real else ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


PROBES = {  # the BatchNorm experiment: old settings, the fix, and each half of it
    "galaxy-bn-old": {}, "galaxy-base": {},
    "probe-input-norm-only": dict(bn_momentum=0.1), "probe-momentum-only": dict(input_norm=False),
    "probe-zero-gamma-old": dict(input_norm=False, bn_momentum=0.1, zero_init=True),
    "galaxy-gn": {}, "galaxy-narrow": {},
}


def bn_probe(out: Path, args) -> str:
    """Eval-mode vs batch-statistics validation accuracy per epoch on a small sky (150 per class)."""
    import copy
    from functools import partial

    import torch

    from galaxymorph.data.batches import load_split
    from galaxymorph.data.splits import load_manifest
    from galaxymorph.data.synthetic import synthesize
    from galaxymorph.models import REGISTRY
    from galaxymorph.models.galaxy import GalaxyResNet
    from galaxymorph.training import train

    data = out / "bn-probe-sky-d0.5-n150-s1.h5"
    if not data.is_file():
        synthesize(data, classes=(2, 5), n_per_class=150, seed=1, difficulty=0.5)
    lines = ["| model | epoch | train loss | val acc, eval mode | share predicted barred | val acc, batch stats |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, kwargs in PROBES.items():
        if kwargs:
            REGISTRY[name] = partial(GalaxyResNet, **kwargs)
        run_dir = out / "bn-probe" / name
        seen: dict = {}

        def check(epoch, record, model, name=name, run_dir=run_dir, seen=seen):
            if "val" not in seen:
                seen["val"] = load_split(data, load_manifest(RunFolder(run_dir).manifest_path), "val")
            x, y = seen["val"]
            with torch.no_grad():
                xt = model.preprocess(x)
                p_eval = model.eval().probabilities(model(xt))[:, 1].numpy()
                batch_stats = copy.deepcopy(model).train()
                for m in batch_stats.modules():
                    if isinstance(m, torch.nn.Dropout):
                        m.eval()
                p_batch = batch_stats.probabilities(batch_stats(xt))[:, 1].numpy()
            model.train()
            lines.append(f"| `{name}` | {epoch} | {record['train_loss']:.3f} | {((p_eval >= 0.5) == y).mean():.3f} | "
                         f"{(p_eval >= 0.5).mean():.2f} | {((p_batch >= 0.5) == y).mean():.3f} |")

        config = Config(data=str(data), model=name, epochs=6, patience=0, threads=args.threads)
        train(config, out=run_dir, overwrite=True, progress=False, on_epoch_end=check)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    if out == REPO or REPO in out.parents:
        raise SystemExit("compare_models: --out must be outside the repository (run folders are big)")
    out.mkdir(parents=True, exist_ok=True)
    if args.bn_probe:
        text = bn_probe(out, args)
        write_text(out / "bn_probe.md", text)
        print(text)
        return 0
    data, split = prepare_data(out, args)
    reference = Path(args.reference)
    started = time.time()
    rows = []
    for name in args.models:
        row = {"name": name, **train_and_evaluate(name, data, split, args, out)}
        row["params"], row["input_px"] = n_params(Path(row["run_dir"]))
        row["real"] = real_sanity(Path(row["run_dir"]), reference)
        rows.append(row)
        write_json(out / "compare.json", {"args": vars(args), "data": str(data), "split": str(split), "rows": rows})
    seed_dir = out / "runs" / "seed"
    for row in rows:  # paired differences against the reference CNN on the same test images
        if row["name"] != "seed" and RunFolder(seed_dir).predictions_path.is_file():
            row["vs_seed"] = paired_difference(Path(row["run_dir"]), seed_dir)
    write_json(out / "compare.json", {"args": vars(args), "data": str(data), "split": str(split), "rows": rows})
    text = table(rows, reference.is_file())
    write_text(out / "table.md", text)
    if not args.markdown:
        counts = json.loads(split.read_text())["counts"]
        print(f"data: {data} (difficulty {args.difficulty:g}, {args.n_per_class} per class); split counts {counts}; "
              f"{time.time() - started:.0f} s")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
