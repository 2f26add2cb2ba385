"""inference.py: one preprocess, one D4, prediction on the model's device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galaxymorph.errors import GalaxymorphError
from galaxymorph.decision import predicted_positions
from galaxymorph.inference import (d4, d4_transform, d4_views, default_batch_size, predict_proba,
                                   predict_selection, to_float_nchw)
from galaxymorph.models import build_model
from helpers_runs import SMALL, write_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_to_float_nchw_scales_and_checks():
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    x = to_float_nchw(images)
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32
    assert torch.allclose(x, torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255)
    assert torch.equal(to_float_nchw(torch.from_numpy(images)), x)  # torch input, same result
    with pytest.raises(GalaxymorphError, match="uint8"):
        to_float_nchw(images.astype(np.float32))
    with pytest.raises(GalaxymorphError, match="uint8"):
        to_float_nchw(torch.zeros(1, 8, 8, 3))
    with pytest.raises(GalaxymorphError, match="shape"):
        to_float_nchw(images[0])


def test_d4_views_are_the_per_image_transforms():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    views = d4_views(x)
    assert len(views) == 8 and len({v.numpy().tobytes() for v in views}) == 8
    for i, (flip, k) in enumerate((f, k) for f in (False, True) for k in range(4)):
        same = d4_transform(x, torch.full((2,), k), torch.full((2,), flip))
        assert torch.equal(views[i], same) and torch.equal(views[i], d4(x, k, flip))


def test_predict_on_the_models_device_with_default_batches(tmp_path):
    from galaxymorph.data.galaxy10 import open_galaxy10

    model = build_model("default", [2, 5], **SMALL).to("cpu").eval()
    assert default_batch_size("cpu") < default_batch_size("cuda")
    data = write_data(tmp_path / "d.h5", n_per_class=5)
    with open_galaxy10(data) as f:
        images = f.images()
        direct = predict_proba(model, images, batch_size=3)
        assert direct.shape == (10, 2) and np.allclose(direct.sum(1), 1, atol=1e-6)
        assert np.allclose(predict_proba(model, images), direct, atol=1e-6)  # default batch size
        streamed = predict_selection(model, f, np.arange(10)[::-1], batch_size=4, progress=False)
    assert np.allclose(streamed, direct[::-1], atol=1e-6)
    assert predict_proba(model, images[:0]).shape == (0, 2)


def test_a_model_with_broken_weights_is_refused_not_scored():
    """A diverged model labelled every image with probability nan and predict exited 0."""
    from galaxymorph.models import build_model

    model = build_model("seed", [2, 5])
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    images = np.zeros((3, 256, 256, 3), np.uint8)
    with pytest.raises(GalaxymorphError, match="NaN or infinite outputs for 3 of 3 image") as err:
        model.predict_proba(images)
    assert "\n" not in str(err.value)


def test_full_float32_turns_tf32_off_on_cuda_only_and_puts_it_back():
    import torch

    from galaxymorph.inference import full_float32

    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    with full_float32(torch.device("cuda")):
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before
    with full_float32(torch.device("cpu")), full_float32(torch.device("cuda"), enabled=False):
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before


def test_every_stage_decides_a_tie_the_same_way():
    """p = 0.5 (logit 0) is the positive class in every stage: predict/evaluate, train's running
    accuracy, explain's target and galleries, the vote tables, calibration and the benchmarks."""
    from galaxymorph.evaluation.metrics import calibration_bins, choose_threshold
    from galaxymorph.explain.base import pick_targets
    from galaxymorph.explain.run import pick_galleries
    from galaxymorph.training.loop import loss_and_correct
    from galaxymorph.votes import accuracy_by_confidence

    tie = np.array([[0.5, 0.5]])
    assert predicted_positions(tie).tolist() == [1]
    assert predicted_positions(torch.from_numpy(tie)).tolist() == [1]
    zero_logit = torch.zeros(2, 1)
    assert loss_and_correct(zero_logit, torch.tensor([1, 1]), binary=True)[1].item() == 2
    assert loss_and_correct(zero_logit, torch.tensor([0, 0]), binary=True)[1].item() == 0
    assert pick_targets(torch.cat([-zero_logit, zero_logit], dim=1), None).tolist() == [1, 1]
    assert accuracy_by_confidence(np.array([1]), np.array([0.5]), np.array([1.0]), levels=(0.0,))[0]["accuracy"] == 1
    assert calibration_bins(np.array([1]), tie)[1].tolist() == [True]
    assert pick_galleries(np.array([1]), tie, n=1)["misclassified"].size == 0
    assert choose_threshold(np.array([0, 1]), np.array([0.2, 0.5]))["val_balanced_accuracy_at_0.5"] == 1.0


def test_the_decision_rule_is_argmax_for_more_classes():
    from galaxymorph.training.loop import loss_and_correct

    probs = np.array([[0.2, 0.5, 0.3], [0.4, 0.4, 0.2]])
    assert predicted_positions(probs).tolist() == [1, 0]  # the first of equal maxima
    assert predicted_positions(torch.from_numpy(probs)).tolist() == [1, 0]
    logits = torch.log(torch.from_numpy(probs)).float()
    assert loss_and_correct(logits, torch.tensor([1, 0]), binary=False)[1].item() == 2


@pytest.mark.parametrize("bad, message", [(np.zeros((1, 8, 8, 3), np.float32), "uint8"),
                                          (np.zeros((8, 8, 3), np.uint8), "shape")])
def test_one_image_check_for_preprocessing_and_explainers(bad, message):
    from galaxymorph.explain import gradcam
    from galaxymorph.explain.faithfulness import deletion_check

    model = build_model("default", [2, 5], **SMALL).to("cpu").eval()
    errors = []
    for call in (lambda: to_float_nchw(bad), lambda: model.preprocess(bad), lambda: gradcam(model, bad),
                 lambda: deletion_check(model, bad, None, [0])):
        with pytest.raises(GalaxymorphError, match=message) as caught:
            call()
        errors.append(str(caught.value))
    assert len(set(errors)) == 1  # the same one-line error, from inference.check_images
