"""Run folders and the data behind them: shared by ``train`` and ``galaxymorph run``.

- :func:`resolve_data` turns ``config.data`` into a Galaxy10-layout file on disk. The synthetic
  sky is rendered once and cached in ``<data dir>/synthetic/`` under a name made of everything
  that decides its pixels (classes, images per class, seed, difficulty), so a second run with
  the same settings reuses it; ``<data dir>`` is ``$GALAXYMORPH_DATA`` or the user cache
  (``galaxymorph.data.download.default_data_dir``).
- :func:`resolve_manifest` gives the split manifest: the one named in the config (checked
  against the data file's SHA-256) or a fresh stratified split.
- :func:`create_run_dir`, :func:`update_run_json`, :func:`environment_info`: the run folder's
  bookkeeping files (see docs/architecture.md for the layout).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .errors import DataError, GalaxymorphError
from .fileio import atomic_path, sha256_file, write_json


# -- data -------------------------------------------------------------------------------------
def synthetic_path(config: Config) -> Path:
    """The cache file of the synthetic sky for this config's classes, size, seed and difficulty.

    The generator's version is part of the name, so a changed renderer never serves old pixels.
    """
    from .data.download import default_data_dir
    from .data.synthetic import GENERATOR_VERSION

    version = GENERATOR_VERSION.rsplit("/", 1)[-1]
    classes = "-".join(str(c) for c in config.classes)
    name = f"sky-v{version}-c{classes}-n{config.n_per_class}-s{config.seed}-d{config.difficulty:g}.h5"
    return Path(default_data_dir()) / "synthetic" / name


def resolve_data(config: Config, progress: bool = True) -> Path:
    """The Galaxy10-layout file that ``config.data`` names, rendering or downloading it if needed."""
    if config.data == "synthetic":
        path = synthetic_path(config)
        if not path.is_file():
            from .data.synthetic import synthesize

            synthesize(path, classes=config.classes, n_per_class=config.n_per_class, seed=config.seed,
                       difficulty=config.difficulty, progress=progress)
        return path
    if config.data == "galaxy10":
        from .data.download import fetch

        return Path(fetch(progress=progress))
    path = Path(config.data).expanduser()
    if not path.is_file():
        raise DataError(f"data file not found: {path} (give a Galaxy10-layout HDF5 file, 'synthetic' or 'galaxy10')")
    return path


def resolve_manifest(config: Config, data_path: Path) -> tuple[dict, Path | None]:
    """The split manifest for this run and the file it came from (None for a fresh split).

    A given manifest must have been made from ``data_path`` (SHA-256) and hold exactly
    ``config.classes`` in the same order, since the label order decides the model's outputs.
    """
    from .data.splits import load_manifest, prepare

    if config.manifest:
        source = Path(config.manifest)
        manifest = load_manifest(source, data_path)
    else:
        source = None
        manifest = prepare(data_path, None, classes=config.classes, fractions=config.fractions, seed=config.seed)
    if [int(c) for c in manifest["classes"]] != list(config.classes):
        raise GalaxymorphError(
            f"the split manifest is for classes {manifest['classes']} but the config asks for {config.classes}; "
            f"pass --classes {' '.join(str(c) for c in manifest['classes'])} or make a new split")
    return manifest, source


def portable_config(config: Config, run_dir: Path) -> Config:
    """The config as a run folder keeps it: file paths absolute, and the split pointing at the
    run's own manifest copy, so ``train --config RUN_DIR/config.toml`` repeats the run from any
    working folder, on the same split."""
    def absolute(p: str) -> str:
        return str(Path(p).expanduser().resolve()) if p else p

    data = config.data if config.data in ("synthetic", "galaxy10") else absolute(config.data)
    return config.replace(data=data, weights=absolute(config.weights),
                          manifest=str((Path(run_dir) / "manifest.json").resolve()))


def write_manifest(run_dir: Path, manifest: dict, source: Path | None) -> Path:
    """RUN_DIR/manifest.json: a byte copy of a given manifest, or the fresh one as JSON."""
    dest = run_dir / "manifest.json"
    if source is None:
        return write_json(dest, manifest)
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
    return dest


# -- the run folder ---------------------------------------------------------------------------
def default_run_dir(config: Config) -> Path:
    """``runs/<date>-<time>-<model>-<classes>``: a new folder for every run."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config.model}-{'v'.join(str(c) for c in config.classes)}"


def create_run_dir(out: str | os.PathLike | None, config: Config, overwrite: bool = False) -> tuple[Path, bool]:
    """Make the run folder; refuse one that already holds files unless ``overwrite``.

    Returns the folder and whether this call created it (so a failure before the first epoch
    can remove exactly what it made, and never a folder the user had).
    """
    run_dir = Path(out) if out is not None else default_run_dir(config)
    if run_dir.exists() and not run_dir.is_dir():
        raise GalaxymorphError(f"{run_dir} exists and is not a folder")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise GalaxymorphError(
                f"run folder {run_dir} already holds files; use --resume {run_dir} to continue it, "
                "--overwrite to replace it, or another --out")
        shutil.rmtree(run_dir)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, created


def read_run_json(run_dir: Path) -> dict:
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GalaxymorphError(f"{path} is damaged ({exc})") from None


def update_run_json(run_dir: Path, **fields) -> dict:
    """Merge ``fields`` into RUN_DIR/run.json (keeping keys other stages wrote), atomically."""
    run = read_run_json(run_dir)
    run.update(fields)
    write_json(Path(run_dir) / "run.json", run)
    return run


@dataclass(frozen=True)
class RunFolder:
    """What the stages after training read from a run folder, checked once."""

    path: Path
    run: dict  # run.json
    config: Config
    data_path: Path
    manifest: dict  # verified against the data file's SHA-256


def open_run(run_dir: str | os.PathLike) -> RunFolder:
    """Read a trained run folder: run.json, config, data file and verified split manifest.

    Errors name what is missing: the folder, run.json, the data file the run was trained on
    (moved or deleted), or a manifest that no longer matches that file.
    """
    from .data.splits import load_manifest

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GalaxymorphError(f"run folder not found: {run_dir}")
    if not (run_dir / "run.json").is_file():
        raise GalaxymorphError(f"{run_dir} is not a run folder: no run.json (train a model first)")
    run = read_run_json(run_dir)
    data = run.get("data")
    if isinstance(data, dict):  # early run folders wrote {"path": ..., "sha256": ...}
        data = data.get("path")
    if not data:
        raise GalaxymorphError(f"{run_dir / 'run.json'} does not name the run's data file ('data')")
    data_path = Path(data)
    if not data_path.is_absolute() and not data_path.exists():
        data_path = run_dir / data_path
    if not data_path.is_file():
        raise DataError(f"the run's data file is missing: {data_path} (named in {run_dir / 'run.json'}); "
                        "put it back or fix 'data' there")
    cfg_path = run_dir / "config.toml"
    config = Config.resolve(cfg_path) if cfg_path.is_file() else Config()
    manifest = load_manifest(run_dir / "manifest.json", data_path)
    return RunFolder(run_dir, run, config, data_path, manifest)


def environment_info(device, threads: int, amp_dtype: str | None, world_size: int = 1) -> dict:
    """Versions and hardware, so a run's numbers can be traced to what produced them."""
    import h5py
    import numpy as np
    import torch

    from . import __version__

    info = {
        "galaxymorph": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "device": str(device),
        "threads": threads,
        "mixed_precision": amp_dtype or "off",
        "world_size": world_size,
    }
    if str(device).startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def data_sha256(manifest: dict, data_path: Path) -> str:
    """The data file's SHA-256: the manifest's (already checked against the file) or computed."""
    return manifest.get("source", {}).get("sha256") or sha256_file(data_path)
