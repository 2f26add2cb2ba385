"""Explanations: GradCAM and friends, faithfulness checks, figures.

Every method takes uint8 images as stored (N, H, W, 3) and gives maps (N, H, W) at the images'
own resolution. ``explain(method, model, images, target=None, ...)`` picks one by name from
:data:`METHODS`; ``explain_run(run_dir)`` explains a trained run folder.

The package sits above its modules: it gathers their names, and none of them imports it
(methods by name come from :mod:`.methods`).
"""

from __future__ import annotations

import sys
import types

from .methods import DEFAULT_METHOD, explain, load_methods, make_explainer


def _load() -> dict:
    """Import the methods (and with them torch) the first time one is asked for; :data:`METHODS`.

    Importing :mod:`.figures` or :mod:`.localisation` alone stays free of torch: the worker
    processes that draw explain's figures import only matplotlib (a fraction of a second, not the
    seconds torch and its friends take in every worker).
    """
    if "METHODS" in globals():
        return globals()["METHODS"]
    # lazy: torch, on first use; the figure workers import this package and need none
    from .base import Explainer
    from .gradcam import BaseCAM, GradCAM, gradcam
    from .gradcampp import GradCAMPlusPlus, gradcampp
    from .gradcampp_sky import SkyGradCAMPlusPlus
    from .integrated_gradients import IntegratedGradientsExplainer, integrated_gradients

    methods = load_methods()
    # the functions gradcam, gradcampp and integrated_gradients are bound here after their
    # modules, as the eager imports did: ``galaxymorph.explain.gradcam`` is the function
    globals().update(Explainer=Explainer, BaseCAM=BaseCAM, GradCAM=GradCAM, SkyGradCAMPlusPlus=SkyGradCAMPlusPlus,
                     gradcam=gradcam, GradCAMPlusPlus=GradCAMPlusPlus, gradcampp=gradcampp,
                     IntegratedGradientsExplainer=IntegratedGradientsExplainer,
                     integrated_gradients=integrated_gradients, METHODS=methods)
    return methods


_LAZY = ("METHODS", "Explainer", "BaseCAM", "GradCAM", "SkyGradCAMPlusPlus", "gradcam", "GradCAMPlusPlus",
         "gradcampp", "IntegratedGradientsExplainer", "integrated_gradients")


def __getattr__(name: str):
    if name in _LAZY:
        _load()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """Reading ``gradcam``, ``gradcampp`` or ``integrated_gradients`` loads the methods first: the
    import of a submodule of that name sets the package's attribute to the module, and the
    function must win, whichever was imported first."""

    def __getattribute__(self, name: str):
        if name in _SHADOWED and "METHODS" not in types.ModuleType.__getattribute__(self, "__dict__"):
            _load()
        return super().__getattribute__(name)


_SHADOWED = ("gradcam", "gradcampp", "integrated_gradients")
sys.modules[__name__].__class__ = _Package


def explain_run(run_dir, **kwargs):
    """Explain a trained run folder; see :func:`galaxymorph.explain.run.explain_run`."""
    from .run import explain_run as _explain_run  # lazy: `import galaxymorph.explain` stays free of torch

    return _explain_run(run_dir, **kwargs)


__all__ = ["DEFAULT_METHOD", "METHODS", "SkyGradCAMPlusPlus", "BaseCAM", "Explainer", "GradCAM", "GradCAMPlusPlus", "IntegratedGradientsExplainer",
           "explain", "explain_run", "gradcam", "gradcampp", "integrated_gradients", "make_explainer"]
