"""Prediction speed: images per second for the seed and default models.

Measures ``Classifier.predict_proba`` on random uint8 cutouts (N, 256, 256, 3) with random
weights (speed does not depend on what the weights are), for each model, batch size, with and
without D4 test-time augmentation (8 forward passes per image), in float32 and under bf16
autocast. Each setting runs one warm-up batch, then whole passes over the images until at least
``--seconds`` have gone by; the figure is images / wall-clock second. One end-to-end line times
``galaxymorph.prediction.predict`` on a Galaxy10-layout HDF5 file (read, classify, write CSV).

    python benchmarks/speed/bench_predict.py                 # the table in docs/performance.md
    python benchmarks/speed/bench_predict.py --quick         # a fast smoke run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from galaxymorph.models import build_model, save_checkpoint
from galaxymorph.runs import cpu_name
from galaxymorph.device import cpu_has_bf16


def images_per_second(model, images, batch_size: int, tta: bool, amp: bool, seconds: float) -> float:
    """Batches (cycling through ``images``) until ``seconds`` have passed, at least one batch."""
    model.predict_proba(images[:2], batch_size=2, tta=tta, amp=amp)  # warm-up (one-off kernel choices)
    done, start = 0, time.perf_counter()
    while True:
        first = done % len(images)
        batch = images[first : first + batch_size]
        model.predict_proba(batch, batch_size=batch_size, tta=tta, amp=amp)
        done += len(batch)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def bf16_difference(model, images) -> float:
    """Largest |p_bf16 - p_fp32| over the images (no TTA): what bf16 costs in accuracy."""
    fp32 = model.predict_proba(images, amp=False)
    bf16 = model.predict_proba(images, amp=True)
    return float(np.abs(fp32 - bf16).max())


def end_to_end(n: int, batch_size: int) -> float:
    """images/s of ``predict()`` on an n-image HDF5 file with the default model (fp32, no TTA)."""
    from galaxymorph.config import Config
    from galaxymorph.data.galaxy10 import write_galaxy10
    from galaxymorph.prediction import predict

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_galaxy10(tmp / "data.h5", rng.integers(0, 256, (n, 256, 256, 3), dtype=np.uint8),
                              np.full(n, 2))
        save_checkpoint(tmp / "run" / "checkpoints" / "best.pt", build_model("default", [2, 5]))
        Config().save(tmp / "run" / "config.toml")
        start = time.perf_counter()
        predict(tmp / "run", [data], tmp / "pred.csv", batch_size=batch_size, progress=False)
        return n / (time.perf_counter() - start)


def evaluation_overhead() -> None:
    """Seconds for the metrics with 1000 bootstrap resamples, and for the five figures."""
    from galaxymorph.evaluation.figures import write_plots
    from galaxymorph.evaluation.metrics import point_metrics, stratified_bootstrap_weights, with_intervals
    from galaxymorph.decision import predicted_positions

    rng = np.random.default_rng(0)
    for k, n in ((2, 600), (10, 2660)):
        y = np.repeat(np.arange(k), n // k)
        logits = rng.normal(size=(len(y), k)) + 2 * np.eye(k)[y]
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        pred = predicted_positions(probs)
        start = time.perf_counter()
        with_intervals(point_metrics(y, probs, pred), stratified_bootstrap_weights(y, 1000), y, probs, pred)
        middle = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            write_plots(Path(tmp), y, probs, pred, [f"class {i}" for i in range(k)], 0.5 if k == 2 else None)
        print(f"evaluation overhead, {k} classes, {len(y)} images: metrics + 1000 bootstrap resamples "
              f"{middle - start:.2f} s, five figures {time.perf_counter() - middle:.2f} s")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=128, help="images per pass")
    p.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per setting")
    p.add_argument("--models", nargs="+", default=["seed", "default"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[32, 64])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--quick", action="store_true", help="a fast smoke run (few images, short timings)")
    p.add_argument("--eval-only", action="store_true", help="only the evaluation overhead (metrics, figures)")
    args = p.parse_args(argv)
    if args.eval_only:
        evaluation_overhead()
        return 0
    if args.quick:
        args.n, args.seconds, args.batch_sizes = 16, 0.2, [16]
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = np.random.default_rng(0).integers(0, 256, (args.n, 256, 256, 3), dtype=np.uint8)
    precisions = [False, True] if cpu_has_bf16() else [False]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {load:.1f} at start")
    print(f"# {args.n} random 256x256 images per pass, >= {args.seconds:g} s per setting; images/s\n")
    print("| model | input | batch | TTA | fp32 | bf16 autocast |")
    print("|---|---|---|---|---:|---:|")
    diffs: dict[str, float] = {}
    for name in args.models:
        model = build_model(name, [2, 5]).to(memory_format=torch.channels_last).eval()  # as load_model gives it
        for batch_size in args.batch_sizes:
            for tta in (False, True):
                speeds = [images_per_second(model, images, batch_size, tta, amp, args.seconds)
                          for amp in precisions]
                cells = [f"{s:.1f}" for s in speeds] + ["n/a"] * (2 - len(speeds))
                print(f"| {name} | {model.input_size} px | {batch_size} | {'D4 x8' if tta else 'no'} | "
                      f"{cells[0]} | {cells[1]} |", flush=True)
        if len(precisions) == 2:
            diffs[name] = bf16_difference(model, images[:32])
    for name, d in diffs.items():
        print(f"\n{name}: largest |p(bf16) - p(fp32)| over 32 images (random weights): {d:.2e}", end="")
    print()
    e2e = end_to_end(args.n, args.batch_sizes[-1])
    print(f"\nend to end, `predict()` on a {args.n}-image HDF5 file (default model, fp32, no TTA, "
          f"batch {args.batch_sizes[-1]}, reading and CSV included): {e2e:.1f} images/s")
    evaluation_overhead()
    if hasattr(os, "getloadavg"):
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
