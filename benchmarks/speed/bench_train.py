"""Training and inference speed of the seed and default models, fp32 vs mixed precision.

    python benchmarks/speed/bench_train.py                 # about 2-3 minutes on 2 cores
    python benchmarks/speed/bench_train.py --seconds 2 --batch-sizes 8 32 --threads 2 --markdown

Training time covers the whole per-batch pipeline of ``galaxymorph train``: uint8 images cut
from an in-memory array, moved to the device, turned into floats, resized to the model's input,
augmented (the seed preset's flip/rotate/zoom for the seed model, D4 + affine for the default
model), forward, loss, backward and the optimiser step. Inference covers ``preprocess`` +
forward in eval mode. Input is random uint8 pixels: speed does not depend on what they show.
Mixed precision is bf16 autocast (CPU with AVX512-BF16/AMX, or CUDA).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

from galaxymorph.data.batches import Augmenter, make_batch, to_device
from galaxymorph.models import build_model
from galaxymorph.runs import cpu_name
from galaxymorph.device import cpu_has_bf16, tuned_backends
from galaxymorph.training.loop import compiled, loss_and_correct

RECIPES = {  # model -> (augmentation, optimizer) as the seed preset and the defaults use them
    "seed": (Augmenter("seed", rotation=0.1, zoom=0.2, shift=0.0), torch.optim.Adam),
    "default": (Augmenter("d4", rotation=0.5, zoom=0.1, shift=0.05), torch.optim.AdamW),
}
# benchmark-only names: the seed CNN with each ReLU after its max-pool (the same values, less work)
VARIANTS = {"seed-pool-first": "seed"}


def timed(step, batch_size: int, seconds: float, device: torch.device, warmup: int = 3, min_steps: int = 3) -> float:
    """Images per second of ``step`` after ``warmup`` calls, over at least ``seconds``.

    On a GPU the host only queues work, so the clock stops after the device has finished it
    (one synchronisation per timed window, not per step, as in training).
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    n, start = 0, time.perf_counter()
    while n < min_steps or time.perf_counter() - start < seconds:
        for _ in range(5 if device.type == "cuda" else 1):
            step()
            n += 1
        sync()
    return n * batch_size / (time.perf_counter() - start)


def bench(name: str, batch_size: int, amp: bool, device: torch.device, seconds: float,
          compile_mode: str = "off", augment: bool = True, channels_last: bool = True,
          profile: int = 0) -> tuple[float, float]:
    """(train img/s, predict img/s) of one model, batch size, precision and compile mode.

    ``augment=False`` and ``channels_last=False`` take those parts out, to see what they cost;
    ``profile=N`` prints the N costliest operators of a few training steps (torch.profiler).
    """
    torch.manual_seed(0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(VARIANTS.get(name, name), [2, 5]).to(device, memory_format=memory_format)
    if name == "seed-pool-first":
        model.net.pool_first = True
    net = compiled(model, compile_mode)
    recipe_augment, Optimizer = RECIPES[VARIANTS.get(name, name)]
    augment = recipe_augment if augment else None
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = Optimizer(model.parameters(), lr=1e-4, **fused)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(max(64, 4 * batch_size), 256, 256, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, size=len(images))
    images, labels = to_device(images, labels, device)  # on a GPU: held there, as training does
    generator = torch.Generator(device=device).manual_seed(0)
    dtype = torch.bfloat16 if amp else torch.float32

    def train_step():
        positions = torch.randperm(len(labels), generator=generator, device=device)[:batch_size]
        x, y = make_batch(images, labels, positions, device, model.resize, augment, generator,
                          channels_last=channels_last)
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            logits = net(x)
        losses, _ = loss_and_correct(logits, y, binary=True)
        optimizer.zero_grad(set_to_none=True)
        losses.mean().backward()
        optimizer.step()

    def predict_step():
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=amp):
            x = model.preprocess(images[:batch_size]).contiguous(memory_format=memory_format)
            model.probabilities(model(x))

    model.train()
    train_rate = timed(train_step, batch_size, seconds, device)
    if profile:
        from torch.profiler import ProfilerActivity, profile as profiler

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profiler(activities=activities) as prof:
            for _ in range(5):
                train_step()
            if device.type == "cuda":
                torch.cuda.synchronize()
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=profile, max_name_column_width=60), flush=True)
    model.eval()
    predict_rate = timed(predict_step, batch_size, seconds, device)
    return train_rate, predict_rate


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["seed", "default"],
                   help="registry names, or seed-pool-first (the seed CNN with each ReLU after its max-pool)")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[8, 32])
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement (after warm-up)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--compile", nargs="+", default=["off"], choices=["off", "default", "reduce-overhead"],
                   help="torch.compile modes to compare (GPU; 'reduce-overhead' adds CUDA graphs)")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--no-augment", action="store_true", help="train steps without augmentation (its cost)")
    p.add_argument("--contiguous", action="store_true", help="NCHW tensors instead of channels-last")
    p.add_argument("--no-cudnn-benchmark", action="store_true", help="leave cuDNN's algorithm search off")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also print the N costliest operators of 5 training steps")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (for docs/performance.md)")
    args = p.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    has_bf16 = cpu_has_bf16() if device.type == "cpu" else torch.cuda.is_bf16_supported()
    precisions = [(label, amp) for label, amp in (("fp32", False), ("bf16 autocast", True))
                  if label.split()[0] in args.precisions and (has_bf16 or not amp)]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# galaxymorph training/inference speed, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"# {cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), python {platform.python_version()}, device {device}, "
          f"bf16 native: {has_bf16}, 1-min load average at start: {load:.2f}")
    rows = []
    with tuned_backends(device):  # the GPU settings training runs under
        if args.no_cudnn_benchmark:
            torch.backends.cudnn.benchmark = False
        for name in args.models:
            for batch_size in args.batch_sizes:
                for label, amp in precisions:
                    for mode in args.compile:
                        train_rate, predict_rate = bench(name, batch_size, amp, device, args.seconds, mode,
                                                         not args.no_augment, not args.contiguous, args.profile)
                        rows.append((name, batch_size, label, mode, train_rate, predict_rate))
                        if not args.markdown:
                            print(f"{name:>8}  batch {batch_size:4d}  {label:>14}  compile {mode:>15}  "
                                  f"train {train_rate:8.1f} img/s  predict {predict_rate:8.1f} img/s", flush=True)
    if args.markdown:
        print("\n| model | batch | precision | compile | train img/s | predict img/s |")
        print("|---|---:|---|---|---:|---:|")
        for name, batch_size, label, mode, train_rate, predict_rate in rows:
            print(f"| {name} | {batch_size} | {label} | {mode} | {train_rate:.1f} | {predict_rate:.1f} |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# 1-min load average at end: {load:.2f} (above the core count = other work was competing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
