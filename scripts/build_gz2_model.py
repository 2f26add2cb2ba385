"""Rebuild the shipped ``gz2`` decision-tree model from the real galaxies it is trained on.

From the repository root:

    python -m scripts.build_gz2_model --work /tmp/gm-gz2 --device cuda     # ~1 minute on an H200
    python -m scripts.build_gz2_model --work /tmp/gm-gz2 --install         # also copy it into the package

Imports ``../shared/data/gz2_tree`` (5,213 galaxies) and ``../shared/data/sdss_gz2`` (1,785) with
their Galaxy Zoo 2 vote counts, merges them, and trains ``--targets tree`` on every galaxy with
votes: 95% to train, 4% to choose the epoch (both recorded in ``train_galaxies.npz``, since the
model has seen the votes of both) and 1% kept out, scored as a check. ``--install`` copies the run
folder's model files into ``src/galaxymorph/pretrained/gz2/`` and writes its README (SHA-256,
provenance, the command, the machine, the training time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
PACKAGE = REPO / "src" / "galaxymorph" / "pretrained" / "gz2"
SHIPPED = ("config.toml", "run.json", "history.csv", "train_galaxies.npz", "checkpoints/best.pt", "eval/metrics.json")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True, help="folder for the imported data and the run (outside the repo; "
                   "benchmarks.studies.tree's --out reuses its imports)")
    p.add_argument("--shared", default=str(SHARED), help="folder holding sdss_gz2/ and gz2_tree/")
    p.add_argument("--model", default="default")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--install", action="store_true", help="copy the model into src/galaxymorph/pretrained/gz2/")
    return p.parse_args(argv)


def build(args) -> Path:
    from benchmarks.studies.common import outside_repo
    from benchmarks.studies.tree import IMPORTS, imported, merged, tree_manifest, voted

    import galaxymorph as gm

    work = outside_repo(args.work, "build_gz2_model", "--work")  # its data files are hundreds of MB
    shared = Path(args.shared)
    parts = [imported(work, shared / IMPORTS[name][0], name, *IMPORTS[name][1:]) for name in ("gz2_tree", "sdss_gz2-votes")]
    pool = merged(work, "pool", parts)  # the same files as benchmarks.studies.tree's, when --work is its --out
    every = voted(pool)
    rng = np.random.default_rng(args.seed)
    shuffled = rng.permutation(every)
    n_test, n_val = max(1, len(every) // 100), max(1, len(every) // 25)  # 1% kept out as a check, 4% choose the epoch
    test, val, train = (np.sort(part) for part in np.split(shuffled, [n_test, n_test + n_val]))
    manifest = tree_manifest(work / "splits" / "gz2-shipped.json", pool, train, val, test, args.seed)
    run_dir = work / "gz2"
    config = gm.Config.resolve(overrides={"data": str(pool), "manifest": str(manifest), "targets": "tree",
                                          "model": args.model, "epochs": args.epochs,
                                          "patience": 10, "device": args.device, "threads": args.threads,
                                          "seed": args.seed})
    start = time.perf_counter()
    gm.train(config, out=run_dir, overwrite=True)
    seconds = time.perf_counter() - start
    gm.evaluate(run_dir, split="test", plots=False)
    (run_dir / "build.json").write_text(json.dumps({
        "train_wall_seconds": round(seconds, 1), "n_train": int(len(train)), "n_val": int(len(val)),
        "n_test": int(len(test)),
        "machine": machine(config.device), "date": time.strftime("%Y-%m-%d", time.gmtime())}, indent=1))
    print(f"trained on {len(train)} + {len(val)} galaxies in {seconds:.0f} s: {run_dir}")
    return run_dir


def machine(device: str) -> str:
    import torch

    if torch.cuda.is_available() and device != "cpu":
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}"


def install(run_dir: Path) -> None:
    if PACKAGE.exists():
        shutil.rmtree(PACKAGE)
    for name in SHIPPED:
        (PACKAGE / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run_dir / name, PACKAGE / name)
    build_info = json.loads((run_dir / "build.json").read_text())
    digest = hashlib.sha256((PACKAGE / "checkpoints" / "best.pt").read_bytes()).hexdigest()
    (PACKAGE / "README.md").write_text(README.format(sha256=digest, **build_info), encoding="utf-8")
    print(f"installed into {PACKAGE.relative_to(REPO)}; best.pt SHA-256 {digest}")


README = """# The shipped `gz2` model

A Galaxy Zoo 2 decision-tree model (`--targets tree`, questions t01-t09): for any 256x256 RGB
cutout it predicts the share of volunteers who would give each answer (Dirichlet concentrations
per question). Use it by name: `galaxymorph predict gz2 images/ --out votes.csv`, or start a
classifier from its encoder: `galaxymorph train --data FILE --init gz2`.

- **Trained on** {n_train} real SDSS galaxies, with {n_val} more to choose the epoch and {n_test} kept
  out as a check (`eval/`): every galaxy of `gz2_tree` and `sdss_gz2` with votes (SDSS DR16 gri cutouts, 25.6" at 0.2"/px imported at 256 px;
  votes from Galaxy Zoo 2, Willett et al. 2013, Hart et al. 2016). Their positions and pixel hashes
  are in `train_galaxies.npz`: `evaluate` flags any test galaxy among them, so no figure is taken from
  galaxies whose votes this model saw.
- **checkpoints/best.pt SHA-256:** `{sha256}`
- **Rebuilt by** `python -m scripts.build_gz2_model --work DIR --device cuda --install` on
  {machine}, {date}: {train_wall_seconds} s of training.
- Scale: trained on 25.6" SDSS fields. On Galaxy10 DECaLS cutouts (67") galaxies look 2.6x smaller;
  `predict` warns when the inputs' scale differs.
"""


def main(argv=None) -> int:
    args = parse_args(argv)
    run_dir = build(args)
    if args.install:
        install(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
