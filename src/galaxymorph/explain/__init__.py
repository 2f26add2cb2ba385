"""Explanations: GradCAM and friends, faithfulness checks, figures.

Every method takes uint8 images as stored (N, H, W, 3) and gives maps (N, H, W) at the images'
own resolution. ``explain(method, model, images, target=None, ...)`` picks one by name from
:data:`METHODS`; ``explain_run(run_dir)`` explains a trained run folder.
"""

from __future__ import annotations

from ..errors import GalaxymorphError
from .base import Explainer
from .gradcam import BaseCAM, GradCAM, SkyGradCAMPlusPlus, gradcam
from .gradcampp import GradCAMPlusPlus, gradcampp
from .integrated_gradients import IntegratedGradientsExplainer, integrated_gradients

METHODS: dict[str, type[Explainer]] = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "integrated-gradients": IntegratedGradientsExplainer,
    "gradcam++-sky": SkyGradCAMPlusPlus,
}
DEFAULT_METHOD = "gradcam++-sky"  # the one whose maps land on the galaxy for both classes (docs/explanations.md)


def make_explainer(method: str, model, **options) -> Explainer:
    """An explainer object by name; ``options`` go to its constructor (``layer``, ``baseline``...)."""
    if method not in METHODS:
        raise GalaxymorphError(f"unknown explanation method {method!r}; known methods: {', '.join(METHODS)}")
    return METHODS[method](model, **options)


def explain(method: str, model, images, target=None, normalize: bool = True, batch_size: int = 32,
            progress: bool = False, return_targets: bool = False, **options):
    """Maps (N, H, W) from the named method; ``options`` are the method's own (e.g. ``layer``)."""
    explainer = make_explainer(method, model, **options)
    return explainer(images, target=target, normalize=normalize, batch_size=batch_size, progress=progress,
                     return_targets=return_targets)


def explain_run(run_dir, **kwargs):
    """Explain a trained run folder; see :func:`galaxymorph.explain.run.explain_run`."""
    from .run import explain_run as _explain_run

    return _explain_run(run_dir, **kwargs)


__all__ = ["DEFAULT_METHOD", "METHODS", "SkyGradCAMPlusPlus", "BaseCAM", "Explainer", "GradCAM", "GradCAMPlusPlus", "IntegratedGradientsExplainer",
           "explain", "explain_run", "gradcam", "gradcampp", "integrated_gradients", "make_explainer"]
