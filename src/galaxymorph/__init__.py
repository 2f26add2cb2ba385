"""galaxymorph: train, evaluate and explain CNN classifiers of galaxy morphology.

The Python API mirrors the command line::

    import galaxymorph as gm
    gm.synthesize("sky.h5")                       # galaxymorph data synth --out sky.h5
    gm.prepare("sky.h5", "split.json")            # galaxymorph data prepare sky.h5 --out split.json
    run_dir = gm.train(gm.Config(data="sky.h5", manifest="split.json"))
    gm.evaluate(run_dir)                          # galaxymorph evaluate RUN_DIR
    model = gm.load_model(run_dir)                # torch.nn.Module in eval mode
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Config  # noqa: E402
from .data.galaxy10 import CLASS_NAMES, Galaxy10File, open_galaxy10, write_galaxy10  # noqa: E402
from .data.splits import load_manifest, prepare  # noqa: E402
from .errors import DataError, DownloadError, GalaxymorphError  # noqa: E402

__all__ = [
    "CLASS_NAMES", "Config", "DataError", "DownloadError", "Galaxy10File", "GalaxymorphError",
    "describe", "evaluate", "explain_run", "fetch", "import_images", "load_manifest", "load_model",
    "open_galaxy10", "predict", "prepare", "run", "synthesize", "train", "write_galaxy10", "write_report",
]

# ``train``, ``evaluate`` and ``predict`` share their names with their modules: imported here,
# so that ``galaxymorph.train`` is always the function. Other stages load on first use.
from .evaluation import evaluate  # noqa: E402
from .prediction import predict  # noqa: E402
from .train import train  # noqa: E402

_LAZY = {
    "fetch": ("galaxymorph.data.download", "fetch"),
    "describe": ("galaxymorph.data.info", "describe"),
    "synthesize": ("galaxymorph.data.synthetic", "synthesize"),
    "import_images": ("galaxymorph.data.importers", "import_images"),
    "load_model": ("galaxymorph.models", "load_model"),
    "explain_run": ("galaxymorph.explain.run", "explain_run"),
    "write_report": ("galaxymorph.report", "write_report"),
    "run": ("galaxymorph.pipeline", "run"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'galaxymorph' has no attribute {name!r}")
