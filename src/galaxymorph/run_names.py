"""What a name given as a run means: a shipped model's folder (``gz2``) or a path.

The lowest place that knows about run folders: the config (``--init``'s model), the models
(``load_model("gz2")``) and every stage above them resolve names here, so none of them needs
:mod:`galaxymorph.runs`, which creates and reads whole run folders.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import GalaxymorphError

# -- shipped models ---------------------------------------------------------------------------
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"  # run folders shipped in the package
SHIPPED_RUNS = ("gz2",)  # names that mean a shipped run folder (a local folder of that name: ./gz2)


def resolve_run(name_or_path: str | os.PathLike) -> Path:
    """The run folder a name stands for: a shipped model's (``gz2`` -> the package's
    ``pretrained/gz2/``), or any other string as a path. The one place that knows the names;
    ``predict``, ``explain``, ``load_model`` and ``train --init`` go through it. A shipped model
    that is not installed is a one-line error."""
    if isinstance(name_or_path, str) and name_or_path in SHIPPED_RUNS:
        folder = PRETRAINED_DIR / name_or_path
        if not (folder / "checkpoints" / "best.pt").is_file():
            raise GalaxymorphError(f"the shipped model {name_or_path!r} is not installed (no checkpoints/best.pt in "
                                   f"{folder}); name a run folder instead (./{name_or_path} for a local one)")
        return folder
    return Path(name_or_path)


def init_run_dir(init: str | os.PathLike) -> Path:
    """The folder of ``--init RUN``, checked: it exists and holds ``checkpoints/best.pt``."""
    run_dir = resolve_run(init)
    if not run_dir.is_dir():
        raise GalaxymorphError(f"--init {init}: run folder not found")
    if not (run_dir / "checkpoints" / "best.pt").is_file():
        raise GalaxymorphError(f"--init {init}: no checkpoints/best.pt in {run_dir} (name a folder that "
                               "'galaxymorph train' finished at least one epoch in)")
    return run_dir


def not_a_run_folder(run_dir: str | os.PathLike, missing: str = "run.json") -> GalaxymorphError:
    """The one error for a folder named as a run that is not one (``missing``: the file that
    shows it), so that evaluate, explain, predict, resume and report say it alike."""
    return GalaxymorphError(f"{run_dir} is not a galaxymorph run folder (no {missing}): name a folder that "
                            "'galaxymorph train' wrote")
