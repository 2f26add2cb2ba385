"""GradCAM throughput: maps per second batched vs one image at a time, seed and default models.

Untrained models (speed does not depend on the weights), synthetic uint8 256x256 cutouts.
Each setting is timed ``--repeats`` times after one warm-up call; the best time is reported
(the least disturbed by other work on a shared machine). Prints a Markdown table.

    python benchmarks/speed/bench_explain.py [--n 64] [--batch-size 32] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from galaxymorph.explain import gradcam
from galaxymorph.models import build_model


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN picks its kernels on the first call
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="images per timing")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["GALAXYMORPH_NO_PROGRESS"] = "1"
    images = np.random.default_rng(0).integers(0, 255, size=(args.n, 256, 256, 3), dtype=np.uint8)
    print(f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}, "
          f"{args.n} images of 256x256, best of {args.repeats}")
    print(f"\n| model | input px | batched ({args.batch_size}) maps/s | one at a time maps/s | speed-up |")
    print("|---|---|---|---|---|")
    for name in ("seed", "default"):
        torch.manual_seed(0)
        model = build_model(name, [2, 5]).to(memory_format=torch.channels_last).eval()  # as load_model gives it
        batched = best_time(lambda: gradcam(model, images, batch_size=args.batch_size), args.repeats)
        single = best_time(lambda: [gradcam(model, images[i : i + 1]) for i in range(args.n)], args.repeats)
        print(f"| {name} | {model.input_size} | {args.n / batched:.1f} | {args.n / single:.1f} | "
              f"{single / batched:.2f}x |")


if __name__ == "__main__":
    main()
