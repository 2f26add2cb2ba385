"""The faster faithfulness helpers give the numbers of the plain ones, and explain's figure
workers import no torch (the figures and localisation modules load without the methods)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import spearmanr

from galaxymorph.explain.faithfulness import deletion_order, map_ranks, mean_spearman


def maps_with_ties(seed: int, n: int = 3) -> np.ndarray:
    """(n, 64, 64) float32 maps with a flat zero region and repeated values, as a CAM has."""
    rng = np.random.default_rng(seed)
    maps = rng.random((n, 64, 64)).astype(np.float32)
    maps[:, :20] = 0  # the zero region of a CAM: one big tie
    maps[:, 20:30] = np.round(maps[:, 20:30], 1)  # many small ties
    return maps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_deletion_order_is_the_lexsort_order(seed):
    """The same permutation as lexsort by (-saliency, random key), ties included, for the same rng."""
    for saliency in (*maps_with_ties(seed), np.zeros((32, 32), np.float32)):
        expected = np.lexsort((np.random.default_rng(seed).random(saliency.size), -saliency.ravel()))
        np.testing.assert_array_equal(deletion_order(saliency, np.random.default_rng(seed)), expected)


def test_mean_spearman_matches_scipy_with_and_without_precomputed_ranks():
    a, b = maps_with_ties(3), maps_with_ties(4)
    b[1] = 0.5  # a flat map scores 0
    expected = [0.0 if y.min() == y.max() else float(spearmanr(x.ravel(), y.ravel()).statistic)
                for x, y in zip(a, b)]
    for ranks in (None, map_ranks(a)):
        mean, per_image = mean_spearman(a, b, ranks)
        np.testing.assert_allclose(per_image, expected, rtol=0, atol=1e-12)
        assert mean == pytest.approx(np.mean(expected), abs=1e-12)


def test_figure_modules_import_without_torch():
    """What a figure worker imports to draw a gallery: matplotlib, not torch (seconds per worker)."""
    code = ("import sys, galaxymorph.explain.figures, galaxymorph.explain.localisation; "
            "print(' '.join(m for m in ('torch', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("first", ["galaxymorph.explain.gradcam", "galaxymorph.explain.gradcampp",
                                   "galaxymorph.explain.integrated_gradients", "galaxymorph.explain.figures"])
def test_explain_names_are_the_functions_whichever_module_loads_first(first):
    """``galaxymorph.explain.gradcam`` (and gradcampp, integrated_gradients) is the function, as
    with the eager imports, even when a submodule of that name was imported before."""
    code = (f"import importlib; importlib.import_module({first!r}); import galaxymorph.explain as ex; "
            "from galaxymorph.explain import gradcam, METHODS, make_explainer; "
            "import types; "
            "assert all(callable(f) and not isinstance(f, types.ModuleType) "
            "for f in (gradcam, ex.gradcam, ex.gradcampp, ex.integrated_gradients)), "
            "(gradcam, ex.gradcampp, ex.integrated_gradients); "
            "assert set(METHODS) == {'gradcam', 'gradcam++', 'integrated-gradients', 'gradcam++-sky'}; "
            "assert ex.DEFAULT_METHOD in METHODS; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
