"""galaxymorph: train, evaluate and explain CNN classifiers of galaxy morphology.

The Python API mirrors the command line::

    import galaxymorph as gm
    gm.synthesize("sky.h5")                       # galaxymorph data synth --out sky.h5
    gm.prepare("sky.h5", "split.json")            # galaxymorph data prepare sky.h5 --out split.json
    run_dir = gm.train(gm.Config(data="sky.h5", manifest="split.json"))
    gm.evaluate(run_dir)                          # galaxymorph evaluate RUN_DIR
    model = gm.load_model(run_dir)                # torch.nn.Module in eval mode

Importing the package loads nothing but this file and ``_version``: every name below is
imported on first use, so ``galaxymorph --help`` and ``import galaxymorph`` stay instant (no
torch, numpy or h5py until a name that needs them is used).
"""

from __future__ import annotations

import importlib

from ._version import __version__

# name -> (module, attribute). The modules are named for what they hold (training,
# evaluation, prediction), so no module shadows the function of the same name.
_LAZY = {
    "Config": ("galaxymorph.config", "Config"),
    "GalaxymorphError": ("galaxymorph.errors", "GalaxymorphError"),
    "DataError": ("galaxymorph.errors", "DataError"),
    "DownloadError": ("galaxymorph.errors", "DownloadError"),
    "CLASS_NAMES": ("galaxymorph.data.galaxy10", "CLASS_NAMES"),
    "Galaxy10File": ("galaxymorph.data.galaxy10", "Galaxy10File"),
    "open_galaxy10": ("galaxymorph.data.galaxy10", "open_galaxy10"),
    "write_galaxy10": ("galaxymorph.data.galaxy10", "write_galaxy10"),
    "load_manifest": ("galaxymorph.data.splits", "load_manifest"),
    "prepare": ("galaxymorph.data.splits", "prepare"),
    "fetch": ("galaxymorph.data.download", "fetch"),
    "describe": ("galaxymorph.data.info", "describe"),
    "synthesize": ("galaxymorph.data.synthetic", "synthesize"),
    "import_images": ("galaxymorph.data.importers", "import_images"),
    "train": ("galaxymorph.training.loop", "train"),
    "evaluate": ("galaxymorph.evaluation", "evaluate"),
    "predict": ("galaxymorph.prediction", "predict"),
    "load_model": ("galaxymorph.models.checkpoints", "load_model"),
    "explain_run": ("galaxymorph.explain.run", "explain_run"),
    "write_report": ("galaxymorph.report", "write_report"),
    "run": ("galaxymorph.pipeline", "run"),
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value  # next time, a plain attribute
        return value
    raise AttributeError(f"module 'galaxymorph' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
