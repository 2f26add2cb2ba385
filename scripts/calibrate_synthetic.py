"""Compare the synthetic sky with real Galaxy10 DECaLS cutouts, class by class.

Renders a synthetic file (or reads one given with --synthetic), measures the same simple
statistics on it and on the real reference cutouts, prints a Markdown table and writes:

    docs/images/synthetic_calibration.png   each statistic per class, real vs synthetic
    docs/images/synthetic_size_2v5.png      half-light radius of classes 2 and 5, real vs synthetic
    docs/images/synthetic_grid.png          example synthetic cutouts of every class

and, OUTSIDE the repository (default: <tmp>/galaxymorph/synthetic_vs_real.png, see
--examples-out), example cutouts real and synthetic side by side. The real cutouts must never
be committed, and a figure of them counts: only statistics of them go into docs/images, and the
script refuses an --examples-out inside the repository.

Statistics (all measured on the uint8 RGB JPEG-like images, grey = mean of R, G, B):
background level (median of a 24-px border), background noise (MAD std of the border),
peak brightness above background (3x3-smoothed, central 48x48 box), the central galaxy's
half-light radius and axis ratio (pixels of the connected region above bg + 3 sigma that
holds the centre), its colours R/G and B/G (background-subtracted sums over that region),
and the number of field sources (other connected regions above bg + 5 sigma, >= 4 px).

Usage (from the repository root; takes about a minute on 2 cores):

    python -m scripts.calibrate_synthetic [--reference ../shared/data/galaxy10_reference.h5]
        [--n-per-class 40] [--difficulty 0.5] [--seed 0] [--out-dir docs/images]
        [--examples-out /tmp/galaxymorph/synthetic_vs_real.png]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = REPO.parent / "shared" / "data" / "galaxy10_reference.h5"
DEFAULT_EXAMPLES = Path(tempfile.gettempdir()) / "galaxymorph" / "synthetic_vs_real.png"
STATS = ("background", "noise", "peak", "r_half", "axis_ratio", "R/G", "B/G", "n_sources")


def measure(image: np.ndarray) -> dict:
    """Simple photometry of one uint8 (256, 256, 3) cutout; see the module docstring."""
    img = image.astype(np.float32)
    border = np.concatenate([img[:24].reshape(-1, 3), img[-24:].reshape(-1, 3),
                             img[24:-24, :24].reshape(-1, 3), img[24:-24, -24:].reshape(-1, 3)])
    bg_rgb = np.median(border, axis=0)
    grey = img.mean(axis=2) - bg_rgb.mean()
    gb = border.mean(axis=1) - bg_rgb.mean()
    noise = float(1.4826 * np.median(np.abs(gb - np.median(gb))))
    noise = max(noise, 0.5)
    smooth = ndimage.uniform_filter(grey, 3)
    c = image.shape[0] // 2
    peak = float(smooth[c - 24:c + 24, c - 24:c + 24].max())
    # the central galaxy: the region above 3 sigma (smoothed) containing the brightest central pixel
    labels, _ = ndimage.label(smooth > 3.0 * noise)
    box = smooth[c - 24:c + 24, c - 24:c + 24]
    py, px = np.unravel_index(np.argmax(box), box.shape)
    lab = labels[py + c - 24, px + c - 24]
    out = {"background": float(bg_rgb.mean()), "noise": noise, "peak": peak}
    if lab == 0:
        out.update({"r_half": np.nan, "axis_ratio": np.nan, "R/G": np.nan, "B/G": np.nan})
        central = np.zeros_like(labels, dtype=bool)
    else:
        central = labels == lab
        w = np.clip(grey, 0, None) * central
        yy, xx = np.nonzero(central)
        ww = w[yy, xx]
        tot = ww.sum()
        cy, cx = (ww * yy).sum() / tot, (ww * xx).sum() / tot
        r = np.hypot(yy - cy, xx - cx)
        order = np.argsort(r)
        cum = np.cumsum(ww[order])
        r_half = float(r[order][np.searchsorted(cum, 0.5 * tot)])
        myy = (ww * (yy - cy) ** 2).sum() / tot
        mxx = (ww * (xx - cx) ** 2).sum() / tot
        mxy = (ww * (yy - cy) * (xx - cx)).sum() / tot
        ev = np.linalg.eigvalsh(np.array([[mxx, mxy], [mxy, myy]]))
        sums = [(np.clip(img[..., k] - bg_rgb[k], 0, None) * central).sum() for k in range(3)]
        out.update({"r_half": r_half, "axis_ratio": float(np.sqrt(max(ev[0], 0) / ev[1])),
                    "R/G": float(sums[0] / max(sums[1], 1e-6)), "B/G": float(sums[2] / max(sums[1], 1e-6))})
    # field sources: other compact regions above 5 sigma, away from the central galaxy
    src, n_src = ndimage.label((smooth > 5.0 * noise) & ~ndimage.binary_dilation(central, iterations=3))
    sizes = ndimage.sum_labels(np.ones_like(smooth), src, index=np.arange(1, n_src + 1)) if n_src else []
    out["n_sources"] = int(np.sum(np.asarray(sizes) >= 4))
    return out


def class_stats(images: np.ndarray, labels: np.ndarray) -> dict[int, dict[str, np.ndarray]]:
    """Per class: each statistic as an array over that class's images."""
    out = {}
    for c in sorted(set(int(x) for x in labels)):
        rows = [measure(im) for im in images[labels == c]]
        out[c] = {k: np.array([r[k] for r in rows], dtype=float) for k in STATS}
    return out


def markdown_table(real: dict, synth: dict) -> str:
    """Median per class, real / synthetic, as a Markdown table."""
    head = "| class | " + " | ".join(STATS) + " |\n|---|" + "---|" * len(STATS) + "\n"
    lines = []
    for c in sorted(synth):
        cells = []
        for k in STATS:
            r = np.nanmedian(real[c][k]) if c in real else np.nan
            s = np.nanmedian(synth[c][k])
            fmt = "{:.0f}" if k in ("background", "peak", "n_sources") else "{:.2f}" if k in ("R/G", "B/G", "axis_ratio") else "{:.1f}"
            cells.append(f"{fmt.format(r)} / {fmt.format(s)}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def size_auc(stats: dict, a: int = 2, b: int = 5) -> float:
    """How well r_half alone separates class b from class a: the ROC AUC (Mann-Whitney U).

    0.5 = sizes identical, 1.0 = every b larger than every a. The real cutouts give ~0.87, so a
    synthetic set far above that would let a classifier call 2 vs 5 by size alone.
    """
    x, y = stats[a]["r_half"], stats[b]["r_half"]
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if not len(x) or not len(y):
        return float("nan")
    greater = (y[:, None] > x[None, :]).sum() + 0.5 * (y[:, None] == x[None, :]).sum()
    return float(greater / (len(x) * len(y)))


def plot_size_overlap(real: dict, synth: dict, path: Path, a: int = 2, b: int = 5) -> None:
    """Histograms of the half-light radius of classes a and b, real (left) and synthetic (right)."""
    from galaxymorph.plotting import closed_after, plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharex=True)
    with closed_after(fig):
        bins = np.linspace(0, 60, 25)
        for ax, data, name in ((axes[0], real, "real"), (axes[1], synth, "synthetic")):
            for c, colour in ((a, "tab:red"), (b, "tab:blue")):
                v = data[c]["r_half"]
                ax.hist(v[np.isfinite(v)], bins=bins, density=True, histtype="step", lw=2, color=colour,
                        label=f"class {c} (n={np.isfinite(v).sum()})")
            ax.set_title(f"{name}: r_half, size-only AUC {size_auc(data, a, b):.2f}", fontsize=10)
            ax.set_xlabel("half-light radius (px)", fontsize=9)
            ax.legend(fontsize=8)
        fig.tight_layout()
        save_figure(fig, path, dpi=80)


def plot_stats(real: dict, synth: dict, path: Path) -> None:
    """One panel per statistic: real (black) and synthetic (orange) medians and quartiles per class."""
    from galaxymorph.plotting import closed_after, plt, save_figure

    fig, axes = plt.subplots(2, 4, figsize=(13, 5.5))
    with closed_after(fig):
        for ax, k in zip(axes.ravel(), STATS):
            for offset, data, colour, name in ((-0.15, real, "k", "real"), (0.15, synth, "tab:orange", "synthetic")):
                cs = sorted(data)
                q = np.array([np.nanpercentile(data[c][k], [25, 50, 75]) if np.isfinite(data[c][k]).any()
                              else [np.nan] * 3 for c in cs])
                x = np.array(cs) + offset
                ax.errorbar(x, q[:, 1], yerr=[q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]], fmt="o", color=colour,
                            ms=4, capsize=2, label=name)
            ax.set_title(k, fontsize=10)
            ax.set_xticks(range(10))
            ax.set_xlabel("class", fontsize=8)
            ax.tick_params(labelsize=8)
        axes[0, 0].legend(fontsize=8)
        fig.suptitle("Real Galaxy10 DECaLS cutouts vs synthetic sky: median and quartiles per class", fontsize=11)
        fig.tight_layout()
        save_figure(fig, path, dpi=80)


def shrink_png(path: Path, colours: int = 256) -> None:
    """Re-save a PNG with an adaptive palette: noisy sky compresses badly as true colour."""
    from PIL import Image

    from galaxymorph.fileio import atomic_path

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=colours, method=Image.Quantize.FASTOCTREE)
    with atomic_path(path) as tmp:
        small.save(tmp, format="PNG", optimize=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="real Galaxy10-layout file")
    ap.add_argument("--synthetic", type=Path, help="existing synthetic file (default: render one)")
    ap.add_argument("--n-per-class", type=int, default=40)
    ap.add_argument("--difficulty", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", type=Path, default=REPO / "docs" / "images",
                    help="where the statistics plots and the synthetic grid go")
    ap.add_argument("--examples-out", type=Path, default=DEFAULT_EXAMPLES,
                    help="real-vs-synthetic example grid; must be outside the repository")
    args = ap.parse_args(argv)
    examples = args.examples_out.resolve()
    if examples == REPO or REPO in examples.parents:
        ap.error(f"--examples-out {args.examples_out} is inside the repository: the real cutouts "
                 f"must never be committed, write them elsewhere (default {DEFAULT_EXAMPLES})")

    from galaxymorph.data.galaxy10 import CLASS_NAMES, open_galaxy10
    from galaxymorph.data.synthetic import synthesize
    from galaxymorph.plotting import image_grid

    with tempfile.TemporaryDirectory() as tmp:
        path = args.synthetic
        if path is None:
            path = Path(tmp) / "synthetic.h5"
            t0 = time.perf_counter()
            synthesize(path, classes=range(10), n_per_class=args.n_per_class, seed=args.seed,
                       difficulty=args.difficulty)
            dt = time.perf_counter() - t0
            print(f"rendered {10 * args.n_per_class} images in {dt:.1f} s "
                  f"({1000 * dt / (10 * args.n_per_class):.1f} ms/image, incl. writing)")
        with open_galaxy10(path) as f:
            s_images, s_labels = f.images(), f.labels
    with open_galaxy10(args.reference) as f:
        r_images, r_labels = f.images(), f.labels

    real, synth = class_stats(r_images, r_labels), class_stats(s_images, s_labels)
    print("median per class, real / synthetic\n")
    print(markdown_table(real, synth))
    if 2 in real and 5 in real and 2 in synth and 5 in synth:
        print(f"size-only AUC, class 5 vs 2 (r_half): real {size_auc(real):.2f}, "
              f"synthetic {size_auc(synth):.2f}\n")

    out = args.out_dir
    plot_stats(real, synth, out / "synthetic_calibration.png")
    docs_figures = ["synthetic_calibration.png", "synthetic_grid.png"]
    if 2 in synth and 5 in synth:
        plot_size_overlap(real, synth, out / "synthetic_size_2v5.png")
        docs_figures.append("synthetic_size_2v5.png")
    rows, names = [], []
    for c in sorted(synth):
        rr = list(r_images[r_labels == c][:3])
        ss = list(s_images[s_labels == c][:3])
        rows.append(rr + ss)
        names.append(f"{c} {CLASS_NAMES[c]}")
    examples.parent.mkdir(parents=True, exist_ok=True)
    image_grid(rows, names, examples, tile_inches=1.1,
               titles=[["real"] * 3 + ["synthetic"] * 3 for _ in rows],
               title="left 3: real Galaxy10 DECaLS, right 3: synthetic (same class)")
    image_grid([list(s_images[s_labels == c][:5]) for c in sorted(synth)],
               [f"{c} {CLASS_NAMES[c]}" for c in sorted(synth)], out / "synthetic_grid.png", tile_inches=1.1,
               title=f"synthetic sky, difficulty {args.difficulty}, seed {args.seed}")
    for path in [out / name for name in docs_figures] + [examples]:
        shrink_png(path)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    print(f"(the real-vs-synthetic examples in {examples} show real cutouts: do not commit them)")


if __name__ == "__main__":
    main()
