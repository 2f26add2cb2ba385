"""Vote fractions: soft targets, vote confidence, accuracy by confidence, calibration, training on votes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

import galaxymorph as gm
from galaxymorph.errors import DataError, GalaxymorphError
from galaxymorph.votes import (
    accuracy_by_confidence,
    calibration_against_votes,
    soft_targets,
    vote_confidence,
)

VOTES = {  # four galaxies: a sure round smooth, a doubtful one, a sure barred spiral, one with no votes
    "smooth": [0.9, 0.55, 0.05, 0.0],
    "completely_round": [1.0, 0.6, 0.0, 0.0],
    "features_or_disk": [0.1, 0.45, 0.9, 0.0],
    "not_edge_on": [1.0, 1.0, 1.0, 0.0],
    "bar": [0.0, 0.5, 0.8, 0.0],
    "spiral": [0.0, 1.0, 1.0, 0.0],
}


def add_catalog(path, columns: dict) -> None:
    with h5py.File(path, "a") as f:
        group = f.require_group("catalog")
        for name, values in columns.items():
            group.create_dataset(name, data=np.asarray(values, dtype=np.float32))


@pytest.fixture
def voted_h5(tmp_path):
    from galaxymorph.data.galaxy10 import write_galaxy10

    path = write_galaxy10(tmp_path / "voted.h5", np.zeros((4, 256, 256, 3), np.uint8), [2, 2, 5, 2])
    add_catalog(path, VOTES)
    return path


def test_soft_target_is_the_share_of_the_positive_class_path(voted_h5):
    t = soft_targets(voted_h5, np.arange(4), [2, 5])
    round_score = np.array([0.9, 0.33, 0.0, 0.0])
    barred_score = np.array([0.0, 0.45 * 0.5, 0.9 * 0.8, 0.0])
    expected = barred_score[:3] / (round_score[:3] + barred_score[:3])
    assert t.dtype == np.float32
    assert np.allclose(t[:3], expected, atol=1e-6)
    assert t[3] == 0.5  # no deciding votes at all: undecided
    assert t[0] == 0 and t[2] == 1 and 0.3 < t[1] < 0.5  # the doubtful round galaxy is a soft target
    assert np.allclose(soft_targets(voted_h5, [2, 0], [2, 5]), t[[2, 0]])  # follows the given indices


def test_vote_confidence_is_the_weakest_deciding_vote_of_the_own_class(voted_h5):
    y = np.array([0, 0, 1, 0])  # positions in [2, 5]
    conf = vote_confidence(voted_h5, np.arange(4), [2, 5], y)
    assert np.allclose(conf, [0.9, 0.55, 0.8, 0.0])


def test_missing_votes_and_unknown_classes_are_clear_errors(tmp_path, voted_h5):
    from galaxymorph.data.galaxy10 import write_galaxy10

    bare = write_galaxy10(tmp_path / "bare.h5", np.zeros((2, 256, 256, 3), np.uint8), [2, 5])
    with pytest.raises(DataError, match="no vote column"):
        soft_targets(bare, np.arange(2), [2, 5])
    with pytest.raises(DataError, match="no Galaxy Zoo vote rule"):
        soft_targets(voted_h5, np.arange(2), [2, 7])
    with pytest.raises(DataError, match="two-class"):
        soft_targets(voted_h5, np.arange(2), [2, 5, 2])


def test_training_targets_refuse_images_without_votes(voted_h5):
    with h5py.File(voted_h5, "a") as f:  # image 1 had no catalogue row: NaN in every vote column
        for name in VOTES:
            f["catalog"][name][1] = np.nan
    assert soft_targets(voted_h5, np.arange(4), [2, 5])[1] == 0.5  # for evaluation: undecided, as before
    with pytest.raises(DataError, match=r"1 of 4 image\(s\) have no vote fractions .*e\.g\. image 1.*--targets labels"):
        soft_targets(voted_h5, np.arange(4), [2, 5], require_votes=True)  # a 0.5 target would overrule class 2
    assert soft_targets(voted_h5, [0, 2, 3], [2, 5], require_votes=True).shape == (3,)


def test_accuracy_by_confidence_counts_each_level():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.9, 0.8, 0.4])  # two right, two wrong
    conf = np.array([0.95, 0.55, 0.85, 0.65])
    rows = accuracy_by_confidence(y, p, conf, levels=(0.0, 0.6, 0.8))
    assert [r["n"] for r in rows] == [4, 3, 2]
    assert [r["accuracy"] for r in rows] == [0.5, 2 / 3, 1.0]


def test_calibration_against_votes():
    t = np.linspace(0, 1, 50)
    same = calibration_against_votes(t, t)
    assert same["mean_abs_difference"] == 0 and same["correlation"] == pytest.approx(1)
    assert all(b["mean_predicted"] == pytest.approx(b["mean_vote_target"]) for b in same["bins"])
    overconfident = calibration_against_votes((t > 0.5).astype(float), t)
    assert overconfident["mean_abs_difference"] > 0.2


def test_loss_counts_soft_targets_right_by_their_side_of_one_half():
    from galaxymorph.training.loop import loss_and_correct

    logits = torch.tensor([[2.0], [-1.0], [0.5]])
    soft = torch.tensor([0.7, 0.2, 0.4])
    losses, correct = loss_and_correct(logits, soft, binary=True)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], soft, reduction="none")
    assert torch.allclose(losses, expected) and int(correct) == 2
    _, hard_correct = loss_and_correct(logits, torch.tensor([1, 0, 1]), binary=True)
    assert int(hard_correct) == 3


@pytest.mark.slow
def test_train_on_votes_uses_the_soft_targets(tiny_h5, tmp_path, monkeypatch):
    """targets='votes' trains on the catalogue's vote shares (not the labels); no votes: a clear error."""
    import galaxymorph.runs as runs
    import galaxymorph.training.loop as loop
    import galaxymorph.votes as votes

    rng = np.random.default_rng(0)
    with h5py.File(tiny_h5, "r") as f:
        barred = f["ans"][:] == 5
    n = len(barred)
    sure, doubt = rng.uniform(0.6, 1, n), rng.uniform(0.0, 0.4, n)
    columns = {"smooth": np.where(barred, doubt, sure), "completely_round": np.where(barred, doubt, sure),
               "features_or_disk": np.where(barred, sure, doubt), "not_edge_on": np.ones(n),
               "bar": np.where(barred, sure, doubt), "spiral": np.where(barred, sure, doubt)}
    fast = dict(epochs=1, batch_size=8, device="cpu", amp=False, threads=1, patience=0)
    with pytest.raises(DataError, match="no vote column"):
        gm.train(gm.Config(data=str(tiny_h5), targets="votes", **fast), out=tmp_path / "none", progress=False)
    add_catalog(tiny_h5, columns)
    seen = []
    real = votes.split_soft_targets
    for module in (runs, loop):  # the two readers: the check before the run folder, and training
        monkeypatch.setattr(module, "split_soft_targets", lambda *a: seen.append(real(*a)) or seen[-1])
    run = gm.train(gm.Config(data=str(tiny_h5), targets="votes", **fast), out=tmp_path / "votes", progress=False)
    # read once to check the votes before the run folder is touched, once to train on them
    assert seen and all(((s > 0) & (s < 1)).all() for s in seen)  # graded votes: every target soft
    n_reads = len(seen)
    labels = gm.train(gm.Config(data=str(tiny_h5), **fast), out=tmp_path / "labels", progress=False)
    assert len(seen) == n_reads  # the labels run does not read votes
    w_votes = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["state_dict"]
    w_labels = torch.load(labels / "checkpoints" / "last.pt", weights_only=False)["state_dict"]
    assert not torch.equal(w_votes["net.head.weight"], w_labels["net.head.weight"])
    assert gm.Config.resolve(run / "config.toml").targets == "votes"


def test_targets_must_be_labels_or_votes():
    with pytest.raises(GalaxymorphError, match="--targets"):
        gm.Config(targets="counts").validate()


def test_vote_summary_is_none_without_votes_and_a_table_with_them(tmp_path):
    from galaxymorph.data.galaxy10 import Galaxy10Writer
    from galaxymorph.votes import vote_summary

    images = np.zeros((4, 256, 256, 3), np.uint8)
    plain = tmp_path / "plain.h5"
    with Galaxy10Writer(plain) as w:
        w.append(images, [2, 2, 5, 5])
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.7, 0.9, 0.8])
    assert vote_summary(plain, np.arange(4), [2, 5], y, p) is None
    voted = tmp_path / "voted.h5"
    fractions = {"smooth": [0.9, 0.55, 0.1, 0.1], "completely_round": [0.9, 0.6, 0.1, 0.1],
                 "features_or_disk": [0.1, 0.4, 0.9, 0.9], "not_edge_on": [1, 1, 1, 1],
                 "bar": [0, 0, 0.9, 0.85], "spiral": [0, 0, 0.9, 0.95]}
    with Galaxy10Writer(voted) as w:
        w.append(images, [2, 2, 5, 5])
        w.write_columns(catalog=fractions)
    summary = vote_summary(voted, np.arange(4), [2, 5], y, p)
    rows = {r["min_vote"]: r for r in summary["accuracy_by_confidence"]}
    assert rows[0.0]["n"] == 4 and rows[0.0]["accuracy"] == 0.75  # the undecided smooth galaxy is wrong
    assert rows[0.8]["n"] == 3 and rows[0.8]["accuracy"] == 1.0
    assert 0 < summary["calibration_against_votes"]["mean_abs_difference"] < 1


def test_training_on_votes_with_an_image_without_votes_is_refused(tiny_h5, tmp_path):
    with h5py.File(tiny_h5, "r") as f:
        n = len(f["ans"])
    columns = {name: np.full(n, 0.5) for name in VOTES}
    columns["smooth"][::2] = np.nan  # every other image without a catalogue row
    add_catalog(tiny_h5, columns)
    fast = dict(epochs=1, batch_size=8, device="cpu", amp=False, threads=1, patience=0, targets="votes")
    with pytest.raises(DataError, match="have no vote fractions"):  # trained on 0.5 targets before
        gm.train(gm.Config(data=str(tiny_h5), **fast), out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
