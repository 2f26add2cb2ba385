"""Fake run folders for the evaluate/predict tests: a tiny model trained for a few SGD steps.

A run folder here follows docs/architecture.md (config.toml, manifest.json, run.json,
checkpoints/best.pt) without going through training, so these tests do not depend on it; its
files are written by the same writers training uses (galaxymorph.rundir.RunFolder).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

# A small, fast variant of the default model: 64 px input, narrow stages.
SMALL = dict(input_size=64, widths=(8, 16, 24, 32), dropout=0.0)


def make_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Cutouts whose shape depends on the class position, not too easy (round, elongated, ring)."""
    from conftest import make_blobs

    return make_blobs(labels, seed, overlapping=True)


def write_data(path: Path, classes=(2, 5), n_per_class: int = 30, seed: int = 0) -> Path:
    from galaxymorph.data.galaxy10 import write_galaxy10

    positions = np.tile(np.arange(len(classes)), n_per_class)
    ans = np.asarray(classes, dtype=np.uint8)[positions]
    return write_galaxy10(path, make_images(positions, seed), ans)


def make_run(run: Path, data: Path, classes=(2, 5), steps: int = 25, seed: int = 0, model: str = "default",
             fractions=(0.5, 0.25, 0.25), **net_kwargs) -> Path:
    """A run folder whose checkpoint is a small model trained for ``steps`` SGD steps."""
    from galaxymorph.config import Config
    from galaxymorph.data.galaxy10 import open_galaxy10
    from galaxymorph.data.splits import prepare
    from galaxymorph.models import build_model, save_checkpoint
    from galaxymorph.rundir import RunFolder

    files = RunFolder(run)
    torch.manual_seed(seed)
    manifest = prepare(data, files.manifest_path, classes=list(classes), fractions=fractions,
                       check_duplicates=False)
    kwargs = dict(SMALL) if model == "default" and not net_kwargs else net_kwargs
    net = build_model(model, list(classes), **kwargs)
    with open_galaxy10(data) as f:
        train = np.asarray(manifest["splits"]["train"])
        images = f.images(train)
        lookup = {c: i for i, c in enumerate(classes)}
        y = torch.tensor([lookup[int(c)] for c in f.labels[train]])
    x = net.preprocess(images)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    net.train()
    for _ in range(steps):
        b = torch.from_numpy(rng.choice(len(y), size=min(16, len(y)), replace=False))
        logits = net(x[b])
        if net.n_outputs == 1:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], y[b].float())
        else:
            loss = torch.nn.functional.cross_entropy(logits, y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    _recalibrate_batchnorm(net, x)
    save_checkpoint(files.best_checkpoint, net.eval())
    files.write_config(Config(classes=list(classes), model=model, data=str(data)))
    # as training writes it: the data file's path and its SHA-256
    files.update_run_json(data=str(data), data_sha256=manifest["source"]["sha256"], status="complete")
    return run


@torch.no_grad()
def _recalibrate_batchnorm(net, x) -> None:
    """Exact BatchNorm statistics of the training images (a few steps leave them lagging)."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    net(x)
    for m in bns:
        m.momentum = 0.1


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
