"""Where do the maps land? Localisation of explanation methods and layers on trained runs.

For each run folder given, explains a seeded sample of its test split (every class explained
for its own class, as ``galaxymorph explain`` does) with each ``--method`` at each ``--layer``
and prints the median share of the map's energy on the central galaxy (the renderer's masks on
the synthetic sky, sep's central source on real images) beside the galaxy's area share; on the
synthetic sky also the share on the barred spirals' bar and arms. It then prints the ceiling
the grid sets on that last score: the share on bar and arms of a *perfect* map (the bar-and-arms
mask itself) averaged onto a G x G grid and upsampled as the maps are.

    python benchmarks/speed/bench_localisation.py RUN [RUN ...] --layers net.stages.2 net.stages.1
    python benchmarks/speed/bench_localisation.py RUN --methods gradcam++-sky gradcam --n 256

Layers are dotted module names (``net.stages.2`` is the default model's 16x16 block on a
128 px input, ``net.stages.1`` its 32x32 block); ``default`` is the method's own choice.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def explain_sample(run_dir: str, n: int, seed: int):
    """The model, and a seeded test sample's images, labels and renderer masks (None if real)."""
    import galaxymorph as gm
    from galaxymorph.runs import open_held_out

    model = gm.load_model(run_dir, device="cpu")
    held_out = open_held_out(run_dir, "test", class_ids=model.class_ids)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(held_out.indices), size=min(n, len(held_out.indices)), replace=False))
    with held_out.open_data() as data:
        images = data.images(held_out.indices[pick])
        bits = data.masks(held_out.indices[pick])
    return model, images, held_out.labels[pick], bits


def ceiling(parts: np.ndarray, grid: int) -> float:
    """Median share on bar and arms of their own mask, averaged onto grid x grid and upsampled back."""
    import torch
    import torch.nn.functional as F

    from galaxymorph.explain.localisation import energy_share

    masks = torch.from_numpy(parts.astype(np.float32))[:, None]
    pooled = F.adaptive_avg_pool2d(masks, grid)
    up = F.interpolate(pooled, size=parts.shape[-1], mode="bilinear", align_corners=False)[:, 0].numpy()
    return float(np.nanmedian(energy_share(up, parts)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="trained run folders")
    p.add_argument("--methods", nargs="+", default=["gradcam++-sky"])
    p.add_argument("--layers", nargs="+", default=["default"])
    p.add_argument("--n", type=int, default=256, help="test images per run (all classes)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import torch

    from galaxymorph.explain.localisation import BARRED_SPIRAL, bar_and_arm_masks, galaxy_masks, localisation_scores

    torch.set_num_threads(1)
    print("| run | method | layer | class | share on galaxy | galaxy's area share | lift | share on bar+arms "
          "(their area) | seconds |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    ceilings = []
    for run in args.runs:
        model, images, labels, bits = explain_sample(run, args.n, args.seed)
        galaxy = galaxy_masks(images, bits)  # once per run: sep's segmentation is the slow part
        for method in args.methods:
            for layer in args.layers:
                options = {} if layer == "default" else {"layer": layer}
                start = time.perf_counter()
                scores = localisation_scores(model, images, labels, method, bits, galaxy=galaxy, **options)
                seconds = time.perf_counter() - start
                for c, s in scores.items():
                    on_parts = "-" if s.get("share_on_bar_and_arms") is None else \
                        f"{s['share_on_bar_and_arms']:.3f} ({s['bar_and_arms_area_share']:.3f})"
                    print(f"| {run} | {method} | {layer} | {model.class_names[c]} | {s['share_on_galaxy']:.3f} | "
                          f"{s['galaxy_area_share']:.3f} | {s['lift']:.2f}x | {on_parts} | {seconds:.0f} |",
                          flush=True)
        if bits is not None and BARRED_SPIRAL in model.class_ids:
            parts = bar_and_arm_masks(bits[labels == model.class_ids.index(BARRED_SPIRAL)])
            ceilings.append((run, {g: ceiling(parts, g) for g in (8, 16, 32, 64)}))
    for run, by_grid in ceilings:
        print(f"\n{run}: share on bar and arms of a perfect map on a G x G grid: "
              + ", ".join(f"G={g}: {v:.3f}" for g, v in by_grid.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
