"""Evaluation: metrics equal scikit-learn's, intervals, threshold from validation, refusals, plots."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from sklearn import metrics as skm

from galaxymorph.errors import GalaxymorphError
from galaxymorph.evaluation import evaluate, format_metrics
from galaxymorph.evaluation.metrics import (choose_threshold, expected_calibration_error, mover_interval,
                                           point_metrics, stratified_bootstrap_weights, weighted_metrics,
                                           wilson_interval, with_intervals)
from helpers_runs import make_run, read_json, write_data

PLOTS = ("confusion.png", "roc.png", "pr.png", "reliability.png", "probabilities.png")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("binary")
    return make_run(root / "run", write_data(root / "data.h5", classes=(2, 5), n_per_class=40))


@pytest.fixture(scope="module")
def evaluated(binary_run):
    return evaluate(binary_run, n_boot=300, progress=False)


@pytest.fixture(scope="module")
def three_class_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("three")
    return make_run(root / "run", write_data(root / "data.h5", classes=(2, 5, 7), n_per_class=24),
                    classes=(2, 5, 7), steps=30)


def _copy_run(run, dest):
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("eval"))
    return dest


def _read_predictions(run):
    with open(run / "eval" / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows


def test_metrics_equal_sklearn_recomputed_from_predictions_csv(binary_run, evaluated):
    rows = _read_predictions(binary_run)
    saved = read_json(binary_run / "eval" / "metrics.json")
    manifest = read_json(binary_run / "manifest.json")
    assert [int(r["index"]) for r in rows] == manifest["splits"]["test"]
    assert list(rows[0]) == ["index", "true", "predicted", "prob_2", "prob_5"]
    y = np.array([int(r["true"]) == 5 for r in rows], dtype=int)
    pred = np.array([int(r["predicted"]) == 5 for r in rows], dtype=int)
    p5 = np.array([float(r["prob_5"]) for r in rows])
    assert np.array_equal(pred, (p5 >= 0.5).astype(int))
    m = {k: v["value"] for k, v in saved["metrics"].items()}
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p5))
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, p5))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, np.c_[1 - p5, p5]), rel=1e-6)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p5))
    # the reference notebook's "AUC" from labels is balanced accuracy for two classes
    assert m["auc_from_labels"] == pytest.approx(m["balanced_accuracy"])
    assert saved["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert saved["confusion_matrix"]["labels"] == ["Round Smooth", "Barred Spiral"]
    assert saved["split"] == "test" and saved["n"] == len(rows) and saved["class_ids"] == [2, 5]
    assert saved["tta"] is False and saved["model"] == "default"
    # the tiny model learned something: its predictions are not constant
    assert 0.6 < m["roc_auc"] and len(set(pred)) == 2


def test_intervals_contain_estimate_and_are_seeded(binary_run, evaluated, tmp_path):
    for block in ("metrics", "metrics_at_tuned_threshold"):
        for name, m in evaluated[block].items():
            lo, hi = m["ci95"]
            assert lo <= m["value"] <= hi, name
    assert evaluated["metrics"]["accuracy"]["ci95"][1] > evaluated["metrics"]["accuracy"]["ci95"][0]
    run = _copy_run(binary_run, tmp_path / "run")
    again = evaluate(run, n_boot=300, progress=False, plots=False)
    assert again["metrics"] == evaluated["metrics"]
    other = evaluate(run, n_boot=300, progress=False, plots=False, seed=1)
    assert other["metrics"]["log_loss"]["ci95"] != evaluated["metrics"]["log_loss"]["ci95"]


def test_weighted_metrics_match_sklearn_sample_weights():
    rng = np.random.default_rng(3)
    for k in (2, 3):
        y = np.repeat(np.arange(k), 15)
        logits = rng.normal(size=(len(y), k)) + 1.5 * np.eye(k)[y]
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        probs[:4] = np.round(probs[:4], 1)  # some ties
        probs /= probs.sum(1, keepdims=True)
        pred = probs.argmax(1) if k > 2 else (probs[:, 1] >= 0.5).astype(int)
        W = stratified_bootstrap_weights(y, 5, seed=0)
        assert np.array_equal(W.sum(1), np.full(5, len(y)))
        assert np.array_equal((W * (y == 0)).sum(1), np.full(5, 15))  # stratified: class counts fixed
        boot = weighted_metrics(np.vstack([np.ones(len(y)), W]), y, probs, pred)
        point = point_metrics(y, probs, pred)
        for name, value in point.items():
            assert boot[name][0] == pytest.approx(value, rel=1e-6, abs=1e-9), (k, name)
        w = W[1]
        labels = list(range(k))
        assert boot["accuracy"][2] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=w))
        assert boot["balanced_accuracy"][2] == pytest.approx(skm.balanced_accuracy_score(y, pred, sample_weight=w))
        assert boot["log_loss"][2] == pytest.approx(skm.log_loss(y, probs, sample_weight=w, labels=labels))
        if k == 2:
            assert boot["roc_auc"][2] == pytest.approx(skm.roc_auc_score(y, probs[:, 1], sample_weight=w))
            assert boot["average_precision"][2] == pytest.approx(
                skm.average_precision_score(y, probs[:, 1], sample_weight=w))
            assert boot["f1"][2] == pytest.approx(skm.f1_score(y, pred, sample_weight=w))
        else:
            assert boot["roc_auc"][2] == pytest.approx(np.mean(
                [skm.roc_auc_score(y == c, probs[:, c], sample_weight=w) for c in labels]))
            assert boot["f1"][2] == pytest.approx(skm.f1_score(y, pred, average="macro", sample_weight=w))


def test_threshold_is_chosen_on_validation_not_test(binary_run, evaluated, tmp_path):
    thr = evaluated["threshold"]
    assert thr["chosen_on"] == "val" and thr["default"] == 0.5 and 0 < thr["tuned"] < 1
    # flip every test label in the data file: the threshold, chosen on val, must not move
    run = _copy_run(binary_run, tmp_path / "run")
    data = tmp_path / "flipped.h5"
    shutil.copy(read_json(run / "run.json")["data"], data)
    import h5py

    manifest = read_json(run / "manifest.json")
    test = np.array(manifest["splits"]["test"])
    with h5py.File(data, "r+") as f:
        ans = f["ans"][()]
        ans[test] = np.where(ans[test] == 2, 5, 2)
        f["ans"][...] = ans
    from galaxymorph.fileio import sha256_file, write_json

    manifest["source"]["sha256"] = sha256_file(data)
    write_json(run / "manifest.json", manifest)
    write_json(run / "run.json", {"data": str(data)})
    flipped = evaluate(run, n_boot=50, progress=False, plots=False)
    assert flipped["threshold"] == thr
    assert flipped["metrics"]["accuracy"]["value"] == pytest.approx(1 - evaluated["metrics"]["accuracy"]["value"])


def test_choose_threshold_maximises_balanced_accuracy():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.9])
    thr = choose_threshold(y, p)
    assert 0.3 < thr["tuned"] < 0.35 and thr["val_balanced_accuracy"] == 1.0
    assert thr["val_balanced_accuracy_at_0.5"] == pytest.approx((1 + 1 / 3) / 2)


def test_refuses_split_overlapping_training(binary_run, tmp_path):
    run = _copy_run(binary_run, tmp_path / "run")
    manifest = read_json(run / "manifest.json")
    manifest["splits"]["test"].append(manifest["splits"]["train"][0])
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(GalaxymorphError, match="is in both the train and the test split"):
        evaluate(run, progress=False)
    with pytest.raises(GalaxymorphError, match="training split"):
        evaluate(binary_run, split="train", progress=False)
    assert not (run / "eval").exists()


def test_refuses_manifest_data_hash_mismatch(binary_run, tmp_path):
    run = _copy_run(binary_run, tmp_path / "run")
    manifest = read_json(run / "manifest.json")
    manifest["source"]["sha256"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(GalaxymorphError, match="has changed since the run was trained") as err:
        evaluate(run, progress=False)
    assert "data prepare" not in str(err.value)  # a new split would not help a trained run


def test_missing_data_file_is_named(binary_run, tmp_path):
    run = _copy_run(binary_run, tmp_path / "run")
    (run / "run.json").write_text(json.dumps({"data": str(tmp_path / "gone.h5")}))
    with pytest.raises(GalaxymorphError, match="gone.h5"):
        evaluate(run, progress=False)


def test_plots_written_and_format(binary_run, evaluated):
    for name in PLOTS:
        path = binary_run / "eval" / name
        assert path.is_file() and path.stat().st_size > 5000, name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = format_metrics(evaluated)
    assert "roc_auc" in text and "Barred Spiral" in text and "val-tuned threshold" in text


@pytest.mark.slow
def test_three_classes(three_class_run):
    m = evaluate(three_class_run, n_boot=100, progress=False)
    assert m["class_ids"] == [2, 5, 7] and "threshold" not in m
    assert set(m["per_class"]) == {"Round Smooth", "Barred Spiral", "Unbarred Loose Spiral"}
    rows = _read_predictions(three_class_run)
    y = np.array([int(r["true"]) for r in rows])
    probs = np.array([[float(r[f"prob_{c}"]) for c in (2, 5, 7)] for r in rows])
    assert np.allclose(probs.sum(1), 1)
    assert m["metrics"]["roc_auc"]["value"] == pytest.approx(
        skm.roc_auc_score(y, probs, multi_class="ovr", labels=[2, 5, 7]))
    assert m["metrics"]["f1"]["value"] == pytest.approx(
        skm.f1_score(y, np.array([2, 5, 7])[probs.argmax(1)], average="macro"))
    assert np.array(m["confusion_matrix"]["matrix"]).shape == (3, 3)
    for name in PLOTS:
        assert (three_class_run / "eval" / name).stat().st_size > 5000


def test_tta_from_config_and_override(binary_run, tmp_path):
    from galaxymorph.config import Config

    binary_run = _copy_run(binary_run, tmp_path / "run")
    assert Config.resolve(binary_run / "config.toml").tta is False
    m = evaluate(binary_run, tta=True, n_boot=20, progress=False, plots=False)
    assert m["tta"] is True
    assert evaluate(binary_run, n_boot=20, progress=False, plots=False)["tta"] is False


# -- intervals that stay honest at 0 or n successes (issue 9, bug 7) ------------------------
def test_wilson_interval_at_all_and_none():
    lo, hi = wilson_interval(90, 90)
    assert hi == pytest.approx(1.0, abs=1e-12) and lo < 0.97
    lo, hi = wilson_interval(0, 90)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi > 0.03
    lo, hi = wilson_interval(45, 90)
    assert lo < 0.5 < hi
    assert wilson_interval(0, 0) is None


def test_perfect_and_hopeless_scores_do_not_claim_certainty():
    """90 of 90 right: recall 1.000 used to get the bootstrap's [1.000, 1.000]."""
    y = np.repeat([0, 1], 45)
    probs = np.c_[1 - (0.05 + 0.9 * y), 0.05 + 0.9 * y]
    W = stratified_bootstrap_weights(y, 200)
    for pred, bound in ((y, 1.0), (1 - y, 0.0)):
        m = with_intervals(point_metrics(y, probs, pred), W, y, probs, pred)
        for name in ("accuracy", "balanced_accuracy", "precision", "recall", "auc_from_labels"):
            lo, hi = m[name]["ci95"]
            assert m[name]["value"] == bound, name
            assert lo < hi, name  # an interval of positive width...
            assert (hi if bound else lo) == pytest.approx(bound, abs=1e-12), name  # ...ending at the score
        assert m["accuracy"]["interval"] == "wilson" and m["balanced_accuracy"]["interval"] == "mover-wilson"
        assert m["roc_auc"]["interval"] == "bootstrap"


def test_mover_interval_of_a_mean_lies_inside_the_mean_of_the_bounds():
    successes, totals = np.array([40, 9, 30]), np.array([45, 10, 60])
    lo, hi = mover_interval(successes, totals)
    bounds = np.array([wilson_interval(s, n) for s, n in zip(successes, totals)])
    mean = (successes / totals).mean()
    assert bounds[:, 0].mean() <= lo < mean < hi <= bounds[:, 1].mean()


def test_metrics_json_names_interval_methods_and_per_class_intervals(evaluated):
    assert set(evaluated["intervals"]["methods"]) == {"wilson", "mover-wilson", "bootstrap"}
    assert evaluated["metrics"]["recall"]["interval"] == "wilson"
    assert evaluated["metrics"]["f1"]["interval"] == "bootstrap"
    for entry in evaluated["per_class"].values():
        for name in ("precision", "recall"):
            lo, hi = entry[name]["ci95"]
            assert lo <= entry[name]["value"] <= hi and entry[name]["interval"] == "wilson"


def test_ece_with_weights_equals_ece_of_the_repeated_sample():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    p = rng.random(40)
    probs = np.c_[1 - p, p]
    counts = rng.integers(0, 3, 40)
    repeated = np.repeat(np.arange(40), counts)
    weighted = expected_calibration_error(y, probs, weights=counts[None, :].astype(float))
    assert weighted[0] == pytest.approx(expected_calibration_error(y[repeated], probs[repeated]))


# -- predictions.csv holds no text a spreadsheet could run (issue 9, bug 8) ----------------
def test_evaluate_predictions_csv_is_numbers_only(binary_run, evaluated):
    for row in _read_predictions(binary_run):
        for cell in row.values():
            float(cell)  # every cell is a number: nothing for a spreadsheet to take as a formula


# -- the device (issue 10, item 3) ----------------------------------------------------------
def test_evaluate_on_a_named_device(binary_run, tmp_path):
    import torch

    run = _copy_run(binary_run, tmp_path / "run")
    m = evaluate(run, n_boot=20, progress=False, plots=False, device="cpu")
    assert m["device"] == "cpu"
    with pytest.raises(GalaxymorphError, match="unknown device"):
        evaluate(run, n_boot=20, progress=False, plots=False, device="abacus")
    if not torch.cuda.is_available():
        with pytest.raises(GalaxymorphError, match="cuda"):
            evaluate(run, n_boot=20, progress=False, plots=False, device="cuda")


def test_run_device_defaults_to_the_runs_device_else_auto(binary_run, tmp_path):
    import torch

    from galaxymorph.config import Config
    from galaxymorph.runs import run_device

    run = _copy_run(binary_run, tmp_path / "run")
    Config.resolve(run / "config.toml").replace(device="cpu").save(run / "config.toml")
    assert run_device(run) == torch.device("cpu")
    assert run_device(run, "cpu") == torch.device("cpu")
    Config.resolve(run / "config.toml").replace(device="cuda").save(run / "config.toml")
    expected = "cuda" if torch.cuda.is_available() else "cpu"  # a GPU-trained run still scores here
    assert run_device(run).type == expected


def test_report_needs_no_data_file(binary_run, evaluated, tmp_path, monkeypatch):
    """The report is built from the run folder alone: evaluate wrote the example grid into it."""
    import h5py

    from galaxymorph.report import build_html
    from galaxymorph.rundir import RunFolder

    assert RunFolder(binary_run).examples_figure.is_file()
    run = shutil.copytree(binary_run, tmp_path / "run")

    def no_data(*args, **kwargs):
        raise AssertionError("the report opened an HDF5 file")

    monkeypatch.setattr(h5py, "File", no_data)
    page = build_html(run)
    assert 'alt="example images per class"' in page and "Wilson" in page



# -- one scored split ------------------------------------------------------------------------
def test_open_held_out_checks_once_for_every_caller(binary_run, tmp_path):
    from galaxymorph.runs import open_held_out

    split = open_held_out(binary_run, "test", class_ids=[2, 5])
    manifest = read_json(binary_run / "manifest.json")
    assert split.indices.tolist() == manifest["splits"]["test"]
    assert set(split.labels.tolist()) == {0, 1} and split.class_names == ["Round Smooth", "Barred Spiral"]
    assert split.images([0]).shape == (1, 256, 256, 3)
    with pytest.raises(GalaxymorphError, match="training split"):
        open_held_out(binary_run, "train")
    with pytest.raises(GalaxymorphError, match="differ from the manifest"):
        open_held_out(binary_run, "test", class_ids=[2, 7])


def test_a_model_that_predicts_one_class_for_everything_is_flagged(binary_run, tmp_path, monkeypatch):
    """A degenerate model's headline (F1 0 [0, 0]) comes with a warning in metrics.json, on the
    terminal and in the report's header."""
    import galaxymorph.evaluation.run as run_module
    from galaxymorph.report import write_report

    run = _copy_run(binary_run, tmp_path / "run")
    monkeypatch.setattr(run_module, "predict_selection",
                        lambda model, data, indices, *args, **kwargs: np.tile([0.8, 0.2], (len(indices), 1)))
    metrics = evaluate(run, n_boot=20, progress=False, plots=False)
    assert len(metrics["warnings"]) == 1 and "predicts Round Smooth for every image" in metrics["warnings"][0]
    assert read_json(run / "eval" / "metrics.json")["warnings"] == metrics["warnings"]
    text = format_metrics(metrics)
    assert text.splitlines()[1].startswith("  WARNING: the model predicts Round Smooth for every image")
    page = write_report(run).read_text()
    header = page[page.index("<header>"):page.index("</header>")]
    assert 'class="warning"' in header and "predicts Round Smooth for every image" in header


def test_a_model_that_tells_classes_apart_has_no_warning_and_auc_from_labels_is_explained(evaluated):
    assert evaluated["warnings"] == []
    text = format_metrics(evaluated)
    assert "WARNING" not in text
    assert "auc_from_labels: the reference notebook's AUC, from thresholded labels; for comparison only" in text


# -- evaluate --out: the eval files in another folder --------------------------------------------
def test_evaluate_out_writes_elsewhere_and_leaves_run_eval_alone(binary_run, evaluated, tmp_path):
    from galaxymorph.cli import main
    from galaxymorph.rundir import RunFolder

    before = {p.name: p.read_bytes() for p in (binary_run / "eval").iterdir()}
    main(["evaluate", str(binary_run), "--tta", "--out", str(tmp_path / "tta"), "--device", "cpu"])
    tta = RunFolder(binary_run, eval_dir=tmp_path / "tta")
    assert tta.read_metrics()["tta"] is True and evaluated["tta"] is False
    assert {p.name: p.read_bytes() for p in (binary_run / "eval").iterdir()} == before  # untouched
    plain = RunFolder(binary_run).read_predictions()
    assert np.array_equal(tta.read_predictions().index, plain.index)
    assert not np.array_equal(tta.read_predictions().probs, plain.probs)  # D4 averaging changed them
