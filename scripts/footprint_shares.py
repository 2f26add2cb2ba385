"""How much of a cutout does the central galaxy cover, per class, on real and synthetic images?

For classes 2 (Round Smooth) and 5 (Barred Spiral): the median share of the image covered by
the central source as sep finds it (``galaxymorph.data.sources.central_source_masks``, what
the explanations are scored against on real galaxies), on the real Galaxy10 reference cutouts
and on a synthetic sky; for the synthetic sky also the renderer's own masks (galaxy footprint,
disk, bar, arms). It shows that the disk is a real cue that separates the two classes, not a
flaw of the synthetic sky (docs/explanations.md).

    python -m scripts.footprint_shares --synthetic SKY.h5 [--reference ../shared/data/galaxy10_reference.h5] [--n 60]

SKY.h5: e.g. the default sky, ``galaxymorph data synth --out SKY.h5`` (600 per class, seed 0,
difficulty 0.8). ``--n``: images per class of each file (the first ones).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = REPO.parent / "shared" / "data" / "galaxy10_reference.h5"
CLASSES = (2, 5)


def first_of_class(data, class_id: int, n: int) -> np.ndarray:
    return np.flatnonzero(data.labels == class_id)[:n]


def shares(path: Path, n: int) -> dict[int, dict[str, float]]:
    """Per class: median share of the image under sep's central source, and under each
    renderer mask when the file has them."""
    from galaxymorph.data.galaxy10 import mask_of, open_galaxy10
    from galaxymorph.data.sources import central_source_masks

    out = {}
    with open_galaxy10(path) as data:
        for c in CLASSES:
            idx = first_of_class(data, c, n)
            row = {"images": len(idx), "sep": float(np.median(central_source_masks(data.images(idx)).mean((1, 2))))}
            bits = data.masks(idx)
            if bits is not None:
                for part in ("galaxy", "disk", "bar", "arms"):
                    row[f"mask: {part}"] = float(np.median(mask_of(bits, part).mean((1, 2))))
            out[c] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", type=Path, required=True, help="a synthetic sky (data synth)")
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="real Galaxy10-layout cutouts")
    ap.add_argument("--n", type=int, default=60, help="images per class of each file (the first ones)")
    args = ap.parse_args()
    columns = ["sep", "mask: galaxy", "mask: disk", "mask: bar", "mask: arms"]
    print("| file | class | images | " + " | ".join(f"median share, {c}" for c in columns) + " |")
    print("|---|---|---:|" + "---:|" * len(columns))
    for label, path in (("real (reference)", args.reference), ("synthetic", args.synthetic)):
        for c, row in shares(path, args.n).items():
            cells = [f"{row[k]:.3f}" if k in row else "-" for k in columns]
            print(f"| {label} | {c} | {row['images']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
