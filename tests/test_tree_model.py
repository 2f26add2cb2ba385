"""Decision-tree models (--targets tree): the Dirichlet-multinomial loss, the split, training,
evaluation question by question, and predicted votes. Tiny synthetic data: blobs whose vote
counts depend on their class."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from conftest import make_blobs
from galaxymorph.cli import main
from galaxymorph.data.tree import load_tree
from galaxymorph.evaluation.metrics import wilson_interval
from galaxymorph.evaluation.tree import question_scores
from galaxymorph.models.tree import (concentrations, dirichlet_multinomial_nll, expected_fractions,
                                     tree_loss_and_correct)

TREE = load_tree("gz2")


def fake_votes(positions: np.ndarray, seed: int = 0, volunteers: int = 20) -> np.ndarray:
    """Vote counts (n, 28) from volunteers walking the tree: position 0 leans to each question's
    first answer, 1 to its last; a question is asked of those who gave the answer it follows."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((len(positions), len(TREE.answers)))
    where = {a: i for i, a in enumerate(TREE.answers)}
    for row, pos in zip(counts, positions):
        for q, s in zip(TREE.questions, TREE.slices):
            asked = volunteers if q.asked_after is None else int(row[where[q.asked_after]])
            k = s.stop - s.start
            p = np.full(k, 0.2 / max(k - 1, 1))
            p[0 if pos == 0 else k - 1] = 0.8
            row[s] = rng.multinomial(asked, p / p.sum())
    return counts


def write_tree_data(path: Path, n_per_class: int = 20, no_votes: int = 4, seed: int = 0) -> Path:
    """Blobs of classes 2 (round), 5 (elongated) and 7, with vote counts in catalog/<answer>_count;
    the last ``no_votes`` images have none."""
    from galaxymorph.data.galaxy10 import Galaxy10Writer

    positions = np.tile([0, 1], n_per_class)
    ans = np.where(positions == 0, 2, 5)
    ans[::7] = 7  # a class of its own: tree training does not care
    counts = fake_votes(positions, seed)
    counts[-no_votes:] = 0
    with Galaxy10Writer(path) as w:
        w.append(make_blobs(positions, seed), ans)
        w.write_columns(catalog={c: counts[:, i] for i, c in enumerate(TREE.count_columns())})
    return path


# -- the likelihood --------------------------------------------------------------------------
def test_nll_matches_scipy_dirichlet_multinomial():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 6, size=(5, len(TREE.answers))).astype(np.float64)
    counts[:, TREE.slices[4]] = 0  # a question nobody answered
    conc = rng.uniform(1, 100, size=counts.shape)
    got = dirichlet_multinomial_nll(torch.tensor(counts), torch.tensor(conc), TREE).numpy()
    expected = np.zeros(len(counts))
    for i in range(len(counts)):
        for s in TREE.slices:
            if counts[i, s].sum() > 0:
                expected[i] -= stats.dirichlet_multinomial.logpmf(counts[i, s], conc[i, s], int(counts[i, s].sum()))
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_nll_matches_brute_force_integral_over_the_vote_fraction():
    """A two-answer question: P(k of n) = integral of binomial(k; n, p) x Beta(p; a1, a2) dp."""
    t02 = TREE.slices[1]
    for k, n, a in ((2, 5, (3.0, 1.5)), (0, 3, (1.0, 7.0)), (4, 4, (20.0, 2.0))):
        counts = torch.zeros(1, len(TREE.answers), dtype=torch.float64)
        conc = torch.ones(1, len(TREE.answers), dtype=torch.float64)
        counts[0, t02] = torch.tensor([k, n - k], dtype=torch.float64)
        conc[0, t02] = torch.tensor(a, dtype=torch.float64)
        p, _ = integrate.quad(lambda x: stats.binom.pmf(k, n, x) * stats.beta.pdf(x, *a), 0, 1)
        assert float(dirichlet_multinomial_nll(counts, conc, TREE)) == pytest.approx(-np.log(p), rel=1e-6)


def test_questions_without_votes_add_nothing():
    conc = concentrations(torch.randn(3, len(TREE.answers), requires_grad=True))
    none = dirichlet_multinomial_nll(torch.zeros(3, len(TREE.answers)), conc, TREE)
    assert torch.equal(none, torch.zeros(3))
    only_t01 = torch.zeros(3, len(TREE.answers))
    only_t01[:, TREE.slices[0]] = torch.tensor([5.0, 2.0, 1.0])
    first = TREE.slices[0]
    alone = dirichlet_multinomial_nll(only_t01[:, first], conc[:, first],
                                      type(TREE)("t01", TREE.questions[:1]))
    torch.testing.assert_close(dirichlet_multinomial_nll(only_t01, conc, TREE), alone)
    alone.sum().backward()  # and unanswered questions get no gradient


def test_expected_fractions_add_up_to_one_per_question():
    conc = concentrations(torch.randn(4, len(TREE.answers)))
    fractions = expected_fractions(conc, TREE)
    for s in TREE.slices:
        torch.testing.assert_close(fractions[:, s].sum(1), torch.ones(4))
    assert np.allclose(expected_fractions(conc.numpy().astype(np.float64), TREE), fractions.numpy(), atol=1e-6)
    assert float(conc.min()) >= 1 and float(conc.max()) <= 100


def test_loss_and_correct_counts_first_question_agreement():
    counts = torch.zeros(2, len(TREE.answers))
    counts[0, 0], counts[1, 1] = 10, 10  # smooth, features
    logits = torch.full((2, len(TREE.answers)), -5.0)
    logits[0, 0] = logits[1, 0] = 5.0  # the model says smooth for both
    losses, correct = tree_loss_and_correct(logits, counts)
    assert losses.shape == (2,) and int(correct) == 1 and losses[1] > losses[0]


# -- evaluation maths ----------------------------------------------------------------------
def test_question_scores_count_only_confident_volunteers():
    n = len(TREE.answers)
    counts, fractions = np.zeros((4, n)), np.full((4, n), 0.1)
    first = TREE.slices[0]
    counts[0, first] = [9, 1, 0]   # confident smooth, model right
    counts[1, first] = [1, 9, 0]   # confident features, model wrong
    counts[2, first] = [3, 0, 0]   # confident but only 3 votes: not counted
    counts[3, first] = [6, 4, 0]   # 60%: not confident, but has votes (MAE)
    fractions[:, first] = [0.7, 0.2, 0.1]
    train = np.zeros((2, n))
    train[:, first] = [[1, 5, 0], [2, 4, 0]]  # most training votes: features
    scores = question_scores(counts, fractions, TREE, train)
    t01 = scores["questions"]["t01_smooth_or_features"]
    assert t01["baseline"] == {"answer": "t01_smooth_or_features_a02_features_or_disk", "accuracy": 0.5}
    assert scores["mean_baseline_accuracy"] == 0.5
    assert t01["n"] == 2 and t01["correct"] == 1
    assert t01["accuracy"]["value"] == 0.5 and t01["accuracy"]["ci95"] == wilson_interval(1, 2)
    share = counts[:, first] / counts[:, first].sum(1, keepdims=True)
    assert t01["fraction_mae"] == pytest.approx(np.abs(fractions[:, first] - share).mean())
    assert scores["questions"]["t02_edgeon"]["n"] == 0 and scores["questions"]["t02_edgeon"]["fraction_mae"] is None
    assert scores["mean_accuracy"] == 0.5 and scores["n_questions_scored"] == 1


# -- the split -----------------------------------------------------------------------------
def test_tree_split_covers_every_image_with_votes(tmp_path):
    data = write_tree_data(tmp_path / "votes.h5")
    out = tmp_path / "split.json"
    assert main(["data", "prepare", str(data), "--out", str(out), "--targets", "tree", "--seed", "3"]) == 0
    manifest = json.loads(out.read_text())
    assert manifest["targets"] == "tree" and manifest["tree"] == "gz2" and manifest["classes"] == []
    parts = [set(manifest["splits"][s]) for s in ("train", "val", "test")]
    assert set().union(*parts) == set(range(36))  # the 4 images without votes are left out, classes 2, 5, 7 kept
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(sum(c.values()) for c in manifest["counts"].values()) == 36
    from galaxymorph.data.splits import prepare

    again = prepare(data, None, fractions=manifest["fractions"], seed=3, targets="tree")
    assert again["splits"] == manifest["splits"]


def test_tree_split_needs_vote_columns(tiny_h5, tmp_path):
    assert main(["data", "prepare", str(tiny_h5), "--out", str(tmp_path / "m.json"), "--targets", "tree"]) == 2


# -- train, evaluate, predict, report ------------------------------------------------------
@pytest.fixture(scope="module")
def tree_run(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("tree")
    data = write_tree_data(root / "votes.h5")
    run = root / "run"
    assert main(["train", "--data", str(data), "--targets", "tree", "--out", str(run), "--epochs", "2",
                 "--batch-size", "8", "--device", "cpu", "--no-amp", "--patience", "0",
                 "--fractions", "0.5", "0.25", "0.25"]) == 0
    return run, data


def test_train_tree_writes_a_tree_model(tree_run):
    from galaxymorph import load_model
    from galaxymorph.models import read_checkpoint
    from galaxymorph.rundir import RunFolder

    run, _ = tree_run
    state = read_checkpoint(run / "checkpoints" / "best.pt")
    assert state["tree"] == "gz2" and state["targets"] == "tree" and state["config"]["targets"] == "tree"
    model = load_model(run)
    assert model.tree == "gz2" and model.n_outputs == 28 and model.class_ids == []
    assert json.loads((run / "manifest.json").read_text())["targets"] == "tree"
    history = RunFolder(run).read_history()
    assert len(history) == 2 and all(np.isfinite(float(r["val_loss"])) for r in history)
    assert all(0 <= float(r["train_acc"]) <= 1 for r in history)


def test_evaluate_tree_scores_each_question(tree_run, capsys):
    run, _ = tree_run
    assert main(["evaluate", str(run)]) == 0
    assert "t01_smooth_or_features" in capsys.readouterr().out
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    tree = metrics["tree"]
    assert metrics["targets"] == "tree" and set(tree["questions"]) == {q.name for q in TREE.questions}
    t01 = tree["questions"]["t01_smooth_or_features"]
    assert t01["n"] > 0 and 0 <= t01["accuracy"]["value"] <= 1 and t01["fraction_mae"] is not None
    scored = [q["accuracy"]["value"] for q in tree["questions"].values() if q["n"]]
    assert tree["mean_accuracy"] == pytest.approx(np.mean(scored))
    assert (run / "eval" / "tree_questions.png").stat().st_size > 1000


def test_report_shows_the_tree_table(tree_run):
    from galaxymorph.report import write_report

    run, _ = tree_run
    if not (run / "eval" / "metrics.json").is_file():
        assert main(["evaluate", str(run)]) == 0
    html = write_report(run).read_text()
    assert "t03_bar" in html and "mean accuracy over questions" in html and 'alt="accuracy per question"' in html


def test_predict_writes_vote_fractions_in_input_order(tree_run, tmp_path):
    import galaxymorph as gm
    from PIL import Image

    run, data = tree_run
    from galaxymorph.data.galaxy10 import open_galaxy10

    with open_galaxy10(data) as f:
        images = f.images([3, 0, 1])
    files = []
    for name, img in zip(("c.png", "a.png", "b.png"), images):
        Image.fromarray(img).save(tmp_path / name)
        files.append(str(tmp_path / name))
    out = tmp_path / "votes.csv"
    assert main(["predict", str(run), *files, "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [Path(r["file"]).name for r in rows] == ["c.png", "a.png", "b.png"]
    assert "t03_bar_a06_bar_fraction" in rows[0] and "t03_bar_a06_bar_concentration" in rows[0]
    first = [a + "_fraction" for a in TREE.questions[0].answers]
    assert sum(float(rows[0][c]) for c in first) == pytest.approx(1, abs=1e-4)
    api = gm.predict(run, [data], tmp_path / "api.csv", progress=False)
    assert api.n_predicted == 40 and "votes" in str(api)
    api_rows = list(csv.DictReader((tmp_path / "api.csv").open()))
    assert [r["index"] for r in api_rows] == [str(i) for i in range(40)]
    assert float(api_rows[3]["t03_bar_a06_bar_fraction"]) == pytest.approx(
        float(rows[0]["t03_bar_a06_bar_fraction"]), abs=2e-3)  # the same image from a PNG


def test_tree_config_refuses_balanced_class_weights(tiny_h5):
    from galaxymorph import Config, GalaxymorphError

    with pytest.raises(GalaxymorphError, match="class-weight"):
        Config(data=str(tiny_h5), targets="tree", class_weight="balanced").validate()


def test_class_split_refused_for_tree_training(tmp_path, capsys):
    data = write_tree_data(tmp_path / "votes.h5")
    assert main(["data", "prepare", str(data), "--out", str(tmp_path / "m.json"), "--classes", "2", "5"]) == 0
    capsys.readouterr()
    assert main(["train", "--data", str(data), "--manifest", str(tmp_path / "m.json"), "--targets", "tree",
                 "--out", str(tmp_path / "run"), "--epochs", "1", "--device", "cpu"]) == 2
    assert "the split manifest is for classes [2, 5] but the config asks for --targets tree" in capsys.readouterr().err


def test_explain_maps_one_answer_of_a_tree_model(tree_run, capsys):
    run, _ = tree_run
    assert main(["explain", str(run), "--answer", "t03_bar_a06_bar", "--n", "3", "--method", "gradcam"]) == 0
    summary = json.loads((run / "explain" / "explain.json").read_text())
    entry = summary["methods"]["gradcam t03_bar_a06_bar"]
    assert entry["answer"] == "t03_bar_a06_bar" and entry["counts"]["most"] == 3
    assert (run / "explain" / entry["files"]["most"]).stat().st_size > 1000
    with np.load(run / "explain" / entry["files"]["maps"], allow_pickle=False) as maps:
        assert maps["maps"].shape[0] == entry["counts"]["explained"]
        most = maps["expected_fraction"][maps["in_most"]]
        assert most.min() >= maps["expected_fraction"][~maps["in_most"]].max(initial=0)
    loc = entry["localisation"]
    assert loc["footprint"] == "sep central source" and loc["n_images"] == entry["counts"]["explained"]
    assert list(loc["classes"]) == ["t03_bar_a06_bar", "t03_bar_a06_bar, highest fraction",
                                    "t03_bar_a06_bar, random sample"]
    for row in loc["classes"].values():
        assert 0 <= row["share_on_galaxy"] <= 1 and 0 < row["galaxy_area_share"] <= 1
        assert row["lift"] > 0 and 0 < row["n_images"] <= loc["n_images"]  # lift: median of share / area
    assert isinstance(loc["meets_aim"], bool)
    assert (run / "explain" / entry["files"]["localisation"]).stat().st_size > 1000
    assert "of the map on the galaxy" in capsys.readouterr().out
    assert main(["explain", str(run)]) == 2  # a tree model needs --answer
    assert main(["explain", str(run), "--answer", "t03_bar_a99_nope"]) == 2
    err = capsys.readouterr().err
    assert "--answer" in err and "t03_bar_a99_nope" in err and len(err.strip().splitlines()) == 2


def test_report_shows_the_answers_localisation(tree_run):
    from galaxymorph.report import write_report

    run, _ = tree_run
    if not (run / "explain" / "explain.json").is_file():
        assert main(["explain", str(run), "--answer", "t03_bar_a06_bar", "--n", "3", "--method", "gradcam"]) == 0
    entry = json.loads((run / "explain" / "explain.json").read_text())["methods"]["gradcam t03_bar_a06_bar"]
    share = entry["localisation"]["classes"]["t03_bar_a06_bar"]["share_on_galaxy"]
    html = write_report(run).read_text()
    assert "Localisation (sep central source" in html and "<th>answer</th>" in html
    assert "<td>t03_bar_a06_bar, highest fraction</td>" in html and f"<td>{share:.3f}</td>" in html
    assert 'alt="gradcam t03_bar_a06_bar localisation"' in html


def test_explain_refuses_an_answer_for_a_class_model(tiny_h5, tmp_path, capsys):
    from helpers_runs import make_run

    run = make_run(tmp_path / "run", tiny_h5, steps=1)
    assert main(["explain", str(run), "--answer", "t03_bar_a06_bar"]) == 2
    assert "classifies" in capsys.readouterr().err


def test_run_with_tree_targets_trains_evaluates_and_reports(tmp_path, one_torch_thread):
    import galaxymorph as gm

    data = write_tree_data(tmp_path / "votes.h5", n_per_class=10, no_votes=2)
    run = gm.run(gm.Config(data=str(data), targets="tree", epochs=1, batch_size=8, device="cpu", amp=False,
                           fractions=[0.5, 0.25, 0.25]), out=tmp_path / "run", progress=False)
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["tree"]["tree"] == "gz2" and (run / "report.html").is_file()
    assert not (run / "explain").exists()  # explained one answer at a time, on request


def test_tree_split_takes_images_without_a_class(tmp_path):
    from galaxymorph.data import galaxy10

    if not hasattr(galaxy10, "NO_CLASS"):
        pytest.skip("images without a class (ans 255) are not accepted on this branch yet")
    data = write_tree_data(tmp_path / "votes.h5")
    import h5py

    with h5py.File(data, "r+") as f:
        ans = f["ans"][()]
        ans[:10] = galaxy10.NO_CLASS
        f["ans"][...] = ans
    from galaxymorph.data.splits import prepare

    manifest = prepare(data, None, targets="tree", check_duplicates=False)
    taken = set().union(*map(set, manifest["splits"].values()))
    assert set(range(10)) <= taken


def test_resume_continues_a_tree_run(tmp_path, one_torch_thread):
    from galaxymorph import Config, train
    from galaxymorph.rundir import RunFolder

    data = write_tree_data(tmp_path / "votes.h5", n_per_class=10, no_votes=2)
    config = Config(data=str(data), targets="tree", epochs=1, batch_size=8, device="cpu", amp=False,
                    fractions=[0.5, 0.25, 0.25])
    run = train(config, out=tmp_path / "run", progress=False)
    train({"epochs": 2}, resume=run, progress=False)
    assert [int(r["epoch"]) for r in RunFolder(run).read_history()] == [1, 2]


def test_tree_manifest_from_given_lists_is_checked_like_any_manifest(tmp_path):
    from galaxymorph.data.splits import load_manifest, tree_manifest_from
    from galaxymorph.errors import DataError

    data = write_tree_data(tmp_path / "votes.h5")
    out = tmp_path / "m.json"
    tree_manifest_from(data, {"train": [0, 1, 2, 3], "val": [4, 5], "test": [6]}, seed=3, out=out)
    manifest = load_manifest(out, data)
    assert manifest["targets"] == "tree" and manifest["splits"]["val"] == [4, 5] and manifest["seed"] == 3
    with pytest.raises(DataError, match="in both the train and the val split"):
        tree_manifest_from(data, {"train": [0, 1], "val": [1], "test": [6]})


def test_a_tree_run_may_start_from_a_tree_checkpoints_weights(tree_run, tmp_path, capsys):
    """--weights is checked against the model training builds: for --targets tree, a tree model
    (the check used to build a class model, and refused every tree checkpoint)."""
    run, data = tree_run
    out = tmp_path / "again"
    assert main(["train", "--data", str(data), "--targets", "tree", "--out", str(out), "--epochs", "1",
                 "--batch-size", "8", "--device", "cpu", "--no-amp", "--patience", "0",
                 "--fractions", "0.5", "0.25", "0.25",
                 "--weights", str(run / "checkpoints" / "best.pt")]) == 0, capsys.readouterr().err
