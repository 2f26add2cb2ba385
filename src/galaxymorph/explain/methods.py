"""The explanation methods by name: :data:`METHODS`, :func:`make_explainer` and :func:`explain`.

The methods (and with them torch) are imported the first time one is asked for: importing
:mod:`.figures` or :mod:`.localisation` alone stays free of torch, so the worker processes that
draw explain's figures import only matplotlib. The modules of this package that run a method by
name (faithfulness, localisation, run, tree) import it from here, never from the package, which
sits above them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import GalaxymorphError

if TYPE_CHECKING:
    from .base import Explainer

DEFAULT_METHOD = "gradcam++-sky"  # the one whose maps land on the galaxy for both classes (docs/explanations.md)
_METHODS: dict[str, type[Explainer]] = {}


def load_methods() -> dict[str, type[Explainer]]:
    """The explainer class of each method name (imported on first use: torch)."""
    if not _METHODS:
        # lazy: torch, on first use; the figure workers import this package and need none
        from .gradcam import GradCAM
        from .gradcampp import GradCAMPlusPlus
        from .gradcampp_sky import SkyGradCAMPlusPlus
        from .integrated_gradients import IntegratedGradientsExplainer

        _METHODS.update({
            "gradcam": GradCAM,
            "gradcam++": GradCAMPlusPlus,
            "integrated-gradients": IntegratedGradientsExplainer,
            "gradcam++-sky": SkyGradCAMPlusPlus,
        })
    return _METHODS


def __getattr__(name: str):
    if name == "METHODS":
        return load_methods()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_explainer(method: str, model, **options) -> Explainer:
    """An explainer object by name; ``options`` go to its constructor (``layer``, ``baseline``...)."""
    methods = load_methods()
    if method not in methods:
        raise GalaxymorphError(f"unknown explanation method {method!r}; known methods: {', '.join(methods)}")
    return methods[method](model, **options)


def explain(method: str, model, images, target=None, normalize: bool = True, batch_size: int = 32,
            progress: bool = False, return_targets: bool = False, **options):
    """Maps (N, H, W) from the named method; ``options`` are the method's own (e.g. ``layer``)."""
    explainer = make_explainer(method, model, **options)
    return explainer(images, target=target, normalize=normalize, batch_size=batch_size, progress=progress,
                     return_targets=return_targets)
