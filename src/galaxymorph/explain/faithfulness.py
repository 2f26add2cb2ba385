"""Do the maps tell the truth about the model? Two checks, each with numbers and a verdict.

1. Deletion (Petsiuk et al. 2018, RISE). Remove pixels in the order the map ranks them, most
   important first, in steps of ``1/steps`` of the image, replacing them with the image's own
   sky (per-channel median; or a heavy blur of the image), and record the model's probability
   for the explained class after each step. The area under that curve (fraction removed on x,
   probability on y, both in [0, 1]) is low when the map found what the model relies on.
   The same is done in a seeded random order; a faithful map has a LOWER deletion AUC than
   random. Insertion is the mirror image: start from the sky, put the pixels back in the
   map's order; a faithful map has a HIGHER insertion AUC than random. Each check passes only
   when the paired difference with the random order (per image) has a 95% interval that
   excludes zero: a mean that is merely lower can be noise.
2. Model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps").
   On a deep copy, re-initialise the weights cascading from the top layer (the head) down to
   the first convolution; after each stage compute the maps again (same classes) and their
   Spearman rank correlation with the trained model's maps (per image, then the mean). A map
   that explains the model must change when the model does: the correlation must drop; a map
   that still looks the same for a random network shows the image, not the model.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from scipy.stats import rankdata, ttest_rel
from torch import nn

from ..errors import GalaxymorphError
from ..inference import check_images
from ..progress import progress_bar
from .base import gaussian_blur
from .methods import explain

FILLS = ("median", "blur")
MODES = ("deletion", "insertion")


# -- deletion ---------------------------------------------------------------------------
def fill_image(image: np.ndarray, fill: str = "median", blur_sigma: float = 16.0) -> np.ndarray:
    """What a removed pixel becomes: the image's per-channel median (its sky) or a heavy blur."""
    if fill == "median":
        return np.broadcast_to(np.median(image.reshape(-1, 3), axis=0).round().astype(np.uint8), image.shape)
    if fill == "blur":
        x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
        return gaussian_blur(x, blur_sigma)[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()
    raise GalaxymorphError(f"unknown fill {fill!r}; known fills: {', '.join(FILLS)}")


def deletion_order(saliency: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flat pixel indices, most salient first; ties (e.g. the zero region of a CAM) in random order.

    The order of ``np.lexsort((rng.random(n), -saliency))``, a third faster: the pixels shuffled by
    their random keys, then sorted stably by saliency (ties keep the keys' order).
    """
    shuffled = np.argsort(rng.random(saliency.size))
    return shuffled[np.argsort(-saliency.ravel()[shuffled], kind="stable")]


def deletion_curves(model: nn.Module, images, maps: np.ndarray | None, targets, steps: int = 20,
                    fill: str = "median", seed: int = 0, batch_size: int = 64, progress: bool = False,
                    mode: str = "deletion") -> np.ndarray:
    """Probabilities (N, steps + 1) of the target class as pixels are removed (or inserted).

    ``maps`` (N, H, W) orders the pixels (most important first); ``maps=None`` uses a random
    order drawn from ``seed``. Column j has ``round(j / steps * H * W)`` pixels changed.
    ``mode="deletion"`` starts from the image and replaces pixels with the fill;
    ``mode="insertion"`` starts from the fill (the image's sky) and puts the image's pixels back.
    """
    images = check_images(images)
    n, h, w = images.shape[:3]
    if mode not in MODES:
        raise GalaxymorphError(f"unknown mode {mode!r}; known modes: {', '.join(MODES)}")
    if maps is not None and np.shape(maps) != (n, h, w):
        raise GalaxymorphError(f"maps have shape {np.shape(maps)}, expected {(n, h, w)} to match the images")
    if not isinstance(steps, int) or steps < 1:
        raise GalaxymorphError(f"steps must be a positive integer, got {steps!r}")
    targets = np.broadcast_to(np.asarray(targets, dtype=np.int64), (n,))
    counts = np.round(np.linspace(0, 1, steps + 1) * h * w).astype(int)
    rng = np.random.default_rng(seed)
    curves = np.empty((n, steps + 1), dtype=np.float64)
    desc = f"{mode} (random)" if maps is None else mode
    for i in progress_bar(range(n), desc=desc, unit="image", disable=not progress):
        image = np.asarray(images[i])
        order = rng.permutation(h * w) if maps is None else deletion_order(maps[i], rng)
        filled = fill_image(image, fill).reshape(-1, 3)
        start, source = (image.reshape(-1, 3), filled) if mode == "deletion" else (filled, image.reshape(-1, 3))
        versions = np.empty((steps + 1, h * w, 3), dtype=np.uint8)
        current = start.copy()
        for j, k in enumerate(counts):
            changed = order[counts[j - 1] if j else 0 : k]
            current[changed] = source[changed]
            versions[j] = current
        probs = model.predict_proba(versions.reshape(steps + 1, h, w, 3), batch_size=batch_size)
        curves[i] = probs[:, targets[i]]
    return curves


def curve_auc(curves: np.ndarray) -> np.ndarray:
    """Area under each curve over the changed fraction 0..1 (trapezoid rule), (N,)."""
    x = np.linspace(0, 1, curves.shape[1])
    return np.trapezoid(curves, x, axis=1) if hasattr(np, "trapezoid") else np.trapz(curves, x, axis=1)


def paired_margin(better: np.ndarray, worse: np.ndarray, confidence: float = 0.95) -> dict:
    """Mean of the paired differences ``better - worse`` over images and its t interval.

    The check passes only when the whole interval lies above zero: the method beats the random
    order by a margin larger than the image-to-image noise (scipy's paired t-test interval).
    """
    diff = np.asarray(better, dtype=np.float64) - np.asarray(worse, dtype=np.float64)
    if diff.size < 2 or np.all(diff == diff[0]):
        low = high = float(diff.mean()) if diff.size else float("nan")
    else:
        ci = ttest_rel(better, worse).confidence_interval(confidence)
        low, high = float(ci.low), float(ci.high)
    return {"margin": float(diff.mean()) if diff.size else float("nan"), "interval": [low, high],
            "confidence": confidence, "passed": bool(diff.size >= 2 and low > 0)}


def perturbation_check(model: nn.Module, images, maps: np.ndarray, targets, mode: str = "deletion",
                       steps: int = 20, fill: str = "median", seed: int = 0, batch_size: int = 64,
                       progress: bool = False) -> dict:
    """Deletion (or insertion) AUC of the maps vs a random order, with a paired 95% interval.

    Deletion: a faithful map's AUC is LOWER than random (its first pixels matter most);
    insertion: HIGHER. The margin is oriented so that positive means better than random, and the
    check passes only when its 95% interval over images excludes zero.
    """
    ours = deletion_curves(model, images, maps, targets, steps, fill, seed, batch_size, progress, mode)
    rand = deletion_curves(model, images, None, targets, steps, fill, seed, batch_size, progress, mode)
    auc, auc_rand = curve_auc(ours), curve_auc(rand)
    margin = paired_margin(auc_rand, auc) if mode == "deletion" else paired_margin(auc, auc_rand)
    lo, hi = margin["interval"]
    action = "removing" if mode == "deletion" else "restoring"
    direction = "lowers" if mode == "deletion" else "raises"
    verdict = (f"faithful: {action} the pixels the map ranks first {direction} the explained probability faster "
               f"than {action} random pixels, by more than the noise" if margin["passed"] else
               f"NOT shown faithful: {action} the pixels the map ranks first does not {direction.rstrip('s')} the "
               f"explained probability faster than random by a margin that excludes zero")
    return {
        "mode": mode,
        "steps": steps,
        "fill": fill,
        "n_images": int(len(auc)),
        "auc": float(auc.mean()),
        "auc_random": float(auc_rand.mean()),
        "difference": margin["margin"],
        "interval": margin["interval"],
        "confidence": margin["confidence"],
        "fraction_images_better_than_random": (float(np.mean(auc < auc_rand if mode == "deletion" else auc > auc_rand))
                                               if len(auc) else float("nan")),
        "mean_curve": ours.mean(axis=0).tolist(),
        "mean_curve_random": rand.mean(axis=0).tolist(),
        "passed": margin["passed"],
        "sentence": (f"{mode.capitalize()} AUC {auc.mean():.3f} vs {auc_rand.mean():.3f} for a random order, margin "
                     f"{margin['margin']:+.3f} (95% interval {lo:+.3f} to {hi:+.3f}): {verdict}."),
    }


def deletion_check(model: nn.Module, images, maps: np.ndarray, targets, **kwargs) -> dict:
    """:func:`perturbation_check` in deletion mode."""
    return perturbation_check(model, images, maps, targets, mode="deletion", **kwargs)


def insertion_check(model: nn.Module, images, maps: np.ndarray, targets, **kwargs) -> dict:
    """:func:`perturbation_check` in insertion mode."""
    return perturbation_check(model, images, maps, targets, mode="insertion", **kwargs)


# -- model-parameter randomisation ---------------------------------------------------------
def randomisation_stages(model: nn.Module, max_stages: int = 6) -> list[list[str]]:
    """Cumulative groups of parameterised layers, top (head) first: stage i resets groups 0..i."""
    layers = [name for name, m in model.named_modules()
              if any(True for _ in m.parameters(recurse=False)) and hasattr(m, "reset_parameters")]
    layers.reverse()
    if not layers:
        raise GalaxymorphError("model has no layers with weights to randomise")
    return [list(chunk) for chunk in np.array_split(np.array(layers, dtype=object), min(max_stages, len(layers)))]


def mean_spearman(maps_a: np.ndarray, maps_b: np.ndarray, ranks_a: list | None = None) -> tuple[float, list[float]]:
    """Mean over images of the Spearman rank correlation between two sets of maps (nan -> 0).

    ``ranks_a``: :func:`map_ranks` of ``maps_a``, when the same maps are compared many times.
    """
    ranks_a = map_ranks(maps_a) if ranks_a is None else ranks_a
    rhos = []
    for a, ra, b in zip(maps_a, ranks_a, maps_b):
        b = b.ravel()
        if a.min() == a.max() or b.min() == b.max():
            rhos.append(0.0)  # a flat map carries no ranking
            continue
        rho = np.corrcoef(ra, rankdata(b))[0, 1]  # Spearman's rho: Pearson's r of the ranks (as scipy's spearmanr)
        rhos.append(float(rho) if np.isfinite(rho) else 0.0)
    return float(np.mean(rhos)) if rhos else float("nan"), rhos


def map_ranks(maps: np.ndarray) -> list[np.ndarray]:
    """Each map's pixel ranks (ties averaged), flattened."""
    return [rankdata(np.asarray(m).ravel()) for m in maps]


def randomisation_check(model: nn.Module, images, method: str, targets, maps: np.ndarray | None = None,
                        max_stages: int = 6, threshold: float = 0.5, seed: int = 0, batch_size: int = 32,
                        progress: bool = False, **options) -> dict:
    """Spearman correlation of maps from cascading-randomised copies with the trained maps.

    Passes when the fully randomised model's maps correlate below ``threshold`` (mean rho). ``options`` go to the method (e.g. ``layer`` as a dotted name).
    """
    if maps is None:
        maps = explain(method, model, images, target=targets, batch_size=batch_size, **options)
    stages = randomisation_stages(model, max_stages)
    ranks = map_ranks(maps)  # the trained maps' ranks, once for every stage
    randomised = copy.deepcopy(model)
    modules = dict(randomised.named_modules())
    results, reset = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for group in progress_bar(stages, desc="randomisation", unit="stage", disable=not progress):
            for name in group:
                modules[name].reset_parameters()
                reset.append(name)
            stage_maps = explain(method, randomised, images, target=targets, batch_size=batch_size, **options)
            rho, per_image = mean_spearman(maps, stage_maps, ranks)
            results.append({"reset_down_to": group[-1], "layers_reset": len(reset), "spearman": rho,
                            "spearman_per_image": per_image})
    first, last = results[0]["spearman"], results[-1]["spearman"]
    passed = bool(last < threshold)
    verdict = ("the maps depend on the learned weights" if passed else
               "the maps barely change when the weights are randomised: they show the image more than the model")
    return {
        "method": method,
        "threshold": threshold,
        "stages": results,
        "spearman_first_stage": first,
        "spearman_fully_random": last,
        "passed": passed,
        "sentence": (f"Randomising the weights from the head down moves the Spearman correlation with the trained "
                     f"maps from 1 to {first:.2f} (head only) and {last:.2f} (all layers): {verdict}."),
    }
