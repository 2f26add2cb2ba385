"""Models: registry, shapes, parameter counts, every variant runs, the BatchNorm fix, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from galaxymorph.errors import GalaxymorphError
from galaxymorph.models import REGISTRY, build_model, load_model, save_checkpoint
from galaxymorph.models.galaxy import DEFAULT_VARIANT, VARIANTS, GalaxyResNet

torch.set_num_threads(1)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def dark_images(n: int, seed: int = 0) -> np.ndarray:
    """uint8 cutouts that look like sky: dark (mean ~40/255), noisy, a bright blob in the middle."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-128:128, -128:128]
    blob = 180 * np.exp(-(xx**2 + yy**2) / (2 * 15.0**2))
    img = 34 + blob[None, :, :, None] + rng.normal(0, 10, size=(n, 256, 256, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_registry_has_seed_default_and_every_variant():
    assert {"seed", "default", *VARIANTS} <= set(REGISTRY)
    default = build_model("default", [2, 5]).net
    chosen = build_model(DEFAULT_VARIANT, [2, 5]).net
    assert n_params(default) == n_params(chosen)
    with pytest.raises(GalaxymorphError, match="unknown model"):
        build_model("resnet-9000", [2, 5])


def test_parameter_counts():
    assert n_params(build_model("seed", [2, 5])) == 1_015_361  # the reference notebook's CNN
    base = n_params(build_model("galaxy-base", [2, 5]))
    assert base == 886_241
    assert n_params(build_model("galaxy-narrow", [2, 5])) < base < n_params(build_model("galaxy-wide", [2, 5]))
    assert n_params(build_model("galaxy-avgmax", [2, 5])) == base + 192  # head sees 2x192 features
    assert n_params(build_model("galaxy-96", [2, 5])) == base  # input size changes no weights


@pytest.mark.parametrize("name", sorted(VARIANTS) + ["default"])
def test_every_variant_runs_forward_and_backward(name):
    model = build_model(name, [2, 5])
    x = model.preprocess(dark_images(2))
    assert x.shape == (2, 3, model.input_size, model.input_size)
    logits = model(x)
    assert logits.shape == (2, 1) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    probs = model.predict_proba(dark_images(2))
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1, atol=1e-6)


def test_input_sizes_and_multiclass_head():
    assert build_model("galaxy-96", [2, 5]).input_size == 96
    assert build_model("galaxy-192", [2, 5]).input_size == 192
    assert build_model("default", [2, 5]).input_size == 128
    three = build_model("default", [0, 2, 5])
    assert three(three.preprocess(dark_images(2))).shape == (2, 3)


def test_group_norm_variant_has_no_batch_statistics():
    net = build_model("galaxy-gn", [2, 5]).net
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in net.modules())


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="norm"):
        GalaxyResNet(norm="layer")
    with pytest.raises(ValueError, match="pool"):
        GalaxyResNet(pool="median")


def _stem_variance_ratio(name: str, steps: int) -> float:
    """Running / actual variance of the stem BatchNorm after ``steps`` training-mode batches."""
    torch.manual_seed(0)
    model = build_model(name, [2, 5]).train()
    bn = model.net.stem[1]
    seen = []
    bn.register_forward_hook(lambda m, inp, out: seen.append(inp[0].var((0, 2, 3)).detach()))
    with torch.no_grad():
        for step in range(steps):
            model(model.preprocess(dark_images(4, seed=step)))
    return float((bn.running_var / seen[-1]).median())


@pytest.mark.slow
def test_batchnorm_running_statistics_catch_up_on_dark_cutouts():
    """The fix of the eval-mode collapse (docs/models.md): after 15 steps the stem's running
    variance is close to the real one; the old settings left it many times too large."""
    assert _stem_variance_ratio("galaxy-bn-old", 15) > 5
    assert 0.5 < _stem_variance_ratio("galaxy-base", 15) < 2


def test_gradcam_layer_is_last_block():
    model = build_model("default", [2, 5])
    assert model.gradcam_layer() is model.net.stages[-1]


def test_variant_checkpoint_round_trip(tmp_path):
    model = build_model("galaxy-avgmax", [2, 5]).eval()
    path = save_checkpoint(tmp_path / "m.pt", model)
    back = load_model(path)
    assert back.name == "galaxy-avgmax"
    x = model.preprocess(dark_images(2))
    with torch.no_grad():
        assert torch.allclose(model(x), back(x))


def test_checkpoint_rebuilds_the_trained_network_after_default_changes(tmp_path, monkeypatch):
    """A run keeps loading when the registry name it was trained under comes to mean another net."""
    from functools import partial

    import galaxymorph.models as models
    from galaxymorph.models import galaxy

    model = models.build_model("default", [2, 5])
    n_params = sum(p.numel() for p in model.parameters())
    models.save_checkpoint(tmp_path / "best.pt", model)
    monkeypatch.setitem(models.REGISTRY, "default", partial(galaxy.GalaxyResNet, **galaxy.VARIANTS["galaxy-wide"]))
    loaded = models.load_model(tmp_path / "best.pt")
    assert loaded.name == "default"
    assert sum(p.numel() for p in loaded.parameters()) == n_params
    assert loaded.architecture == model.architecture


def test_padding_mode_and_last_stride_variants():
    """Heat-map candidates: reflect padding everywhere a 3x3 conv pads; a 16x16 last grid at 128 px."""
    reflect = build_model("galaxy-narrow-reflect", [2, 5]).net
    padded = [m for m in reflect.modules() if isinstance(m, nn.Conv2d) and m.padding != (0, 0)]
    assert padded and all(m.padding_mode == "reflect" for m in padded)
    x = torch.rand(1, 3, 128, 128)
    for name, grid in (("galaxy-narrow", 8), ("galaxy-narrow-fine", 16)):
        net = build_model(name, [2, 5]).net.eval()
        with torch.no_grad():
            assert net.stages(net.stem(x)).shape[-2:] == (grid, grid)
    # reflect padding makes the response to a uniform image uniform up to the border
    with torch.no_grad():
        edge = reflect.eval().stem(torch.full((1, 3, 32, 32), 0.3))
    assert torch.allclose(edge, edge[..., 5:6, 5:6].expand_as(edge), atol=1e-5)


def test_seed_cnn_pool_first_gives_the_reference_values_and_gradients():
    import torch

    from galaxymorph.models.seed import SeedCNN

    torch.manual_seed(0)
    net = SeedCNN(n_outputs=1, input_size=96).eval()
    x = torch.randn(2, 3, 96, 96, requires_grad=True)
    ref = net(x)
    (g_ref,) = torch.autograd.grad(ref.sum(), x)
    net.pool_first = True
    fast = net(x)
    (g_fast,) = torch.autograd.grad(fast.sum(), x)
    assert torch.equal(fast, ref)
    assert torch.allclose(g_fast, g_ref, atol=1e-6)
