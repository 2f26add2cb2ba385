"""Training speed with 1 and 2 torch threads, with and without another busy process.

    python benchmarks/speed/bench_threads.py               # about 1-2 minutes on 2 cores
    python benchmarks/speed/bench_threads.py --steps 20 --batch-size 32

Why: OpenMP threads wait for each other at the end of every parallel region. When another
process holds one of the cores, a thread that is descheduled holds up all the others, and on a
2-core machine two threads ran many times slower than one (issue 9, item 6). This script shows
it side by side, in one run: each setting trains the default model for ``--steps`` steps (batch
of random uint8 cutouts, the ``galaxymorph train`` batch path) in a fresh process, once on an
otherwise idle machine and once while this script keeps one core busy with a spinning process.
It prints seconds per step and the ratio to one thread in the same condition.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
import numpy as np, torch
from galaxymorph.data.batches import Augmenter, make_batch
from galaxymorph.models import build_model
from galaxymorph.training.loop import loss_and_correct
threads, steps, batch = (int(a) for a in sys.argv[1:4])
torch.set_num_threads(threads)
torch.manual_seed(0)
rng = np.random.default_rng(0)
images = rng.integers(0, 256, size=(batch, 256, 256, 3), dtype=np.uint8)
labels = rng.integers(0, 2, size=batch)
model = build_model("default", [2, 5]).to(memory_format=torch.channels_last)
augment = Augmenter("d4", rotation=0.5, zoom=0.1, shift=0.05)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
gen = torch.Generator().manual_seed(0)
def step():
    x, y = make_batch(images, labels, np.arange(batch), torch.device("cpu"), model.resize, augment, gen, True)
    losses, _ = loss_and_correct(model(x), y, True)
    opt.zero_grad(); losses.mean().backward(); opt.step()
for _ in range(2):
    step()
times = []
for _ in range(steps):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
print(json.dumps(times))
"""


def run_child(threads: int, steps: int, batch: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(steps), str(batch)], env=env,
                         capture_output=True, text=True, check=True)
    return statistics.median(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()

    from galaxymorph.runs import cpu_name

    print(f"# {cpu_name()}, {os.cpu_count()} logical CPUs; default model, batch {args.batch_size}, "
          f"median of {args.steps} steps")
    print("| condition | threads | s/step | vs 1 thread |")
    print("|---|---|---|---|")
    for condition in ("idle", "one core busy"):
        spinner = None
        if condition == "one core busy":
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.5)
        try:
            results = {n: run_child(n, args.steps, args.batch_size) for n in args.threads}
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
        for n, sec in results.items():
            print(f"| {condition} | {n} | {sec:.3f} | {sec / results[args.threads[0]]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
