"""RunFolder: each shared file of a run folder reads back what its writer wrote."""

from __future__ import annotations

import math

import numpy as np
import pytest

from galaxymorph.config import Config
from galaxymorph.errors import GalaxymorphError
from galaxymorph.rundir import Predictions, RunFolder


def _predictions(rng, n: int = 7, class_ids=(2, 5, 7)) -> Predictions:
    probs = rng.dirichlet(np.ones(len(class_ids)), size=n)
    ids = np.asarray(class_ids)
    return Predictions(index=rng.permutation(100)[:n].astype(np.int64), true=ids[rng.integers(len(ids), size=n)],
                       predicted=ids[probs.argmax(1)], probs=probs, class_ids=list(class_ids))


def test_predictions_round_trip_exactly(tmp_path):
    files = RunFolder(tmp_path / "run")
    written = _predictions(np.random.default_rng(0))
    assert files.write_predictions(written) == tmp_path / "run" / "eval" / "predictions.csv"
    read = files.read_predictions()
    assert read.class_ids == written.class_ids
    for name in ("index", "true", "predicted", "probs"):
        assert np.array_equal(getattr(read, name), getattr(written, name)), name  # full precision
    assert np.array_equal(read.labels, [written.class_ids.index(int(t)) for t in written.true])
    ordered = read.sorted_by_index()
    assert np.all(np.diff(ordered.index) > 0)
    assert np.array_equal(ordered.probs[0], written.probs[np.argmin(written.index)])


def test_predictions_in_another_eval_folder(tmp_path):
    files = RunFolder(tmp_path / "run", eval_dir=tmp_path / "elsewhere")
    files.write_predictions(_predictions(np.random.default_rng(1)))
    assert (tmp_path / "elsewhere" / "predictions.csv").is_file()
    assert not (tmp_path / "run" / "eval").exists()
    assert RunFolder(tmp_path / "run").with_eval_dir(tmp_path / "elsewhere").read_predictions().index.size == 7


def test_missing_or_damaged_predictions_are_one_line_errors(tmp_path):
    files = RunFolder(tmp_path)
    with pytest.raises(GalaxymorphError, match="evaluate"):
        files.read_predictions()
    files.eval.mkdir()
    files.predictions_path.write_text("index,true,predicted,prob_2,prob_5\n1,2,2,0.5\n")
    with pytest.raises(GalaxymorphError, match="damaged"):
        files.read_predictions()


def test_history_round_trip(tmp_path):
    files = RunFolder(tmp_path)
    assert files.read_history() == []
    rows = [{"epoch": e, "train_loss": 0.5 / e, "train_acc": 0.7, "val_loss": float("nan") if e == 2 else 0.4,
             "val_acc": 0.8, "lr": 1e-3, "seconds": 2.5} for e in (1, 2)]
    files.write_history(rows)
    read = files.read_history()
    assert [r["epoch"] for r in read] == [1, 2] and isinstance(read[0]["epoch"], int)
    assert read[0] == rows[0]
    assert math.isnan(read[1]["val_loss"])


def test_config_round_trip(tmp_path):
    files = RunFolder(tmp_path)
    assert files.read_config() is None
    config = Config.resolve(overrides={"classes": [2, 5, 7], "epochs": 3, "seed": 11})
    files.write_config(config)
    assert files.read_config() == config


def test_run_json_update_keeps_other_keys(tmp_path):
    files = RunFolder(tmp_path)
    assert files.read_run_json() == {}
    files.update_run_json(status="running", data="x.h5")
    assert files.update_run_json(status="complete", best_epoch=4) == files.read_run_json()
    assert files.read_run_json() == {"status": "complete", "data": "x.h5", "best_epoch": 4}
    files.run_json_path.write_text("{")
    with pytest.raises(GalaxymorphError, match="damaged"):
        files.read_run_json()


def test_json_artefacts_round_trip(tmp_path):
    files = RunFolder(tmp_path)
    assert files.read_metrics() is None and files.read_explain() is None and files.read_environment() == {}
    files.write_metrics({"split": "test", "n": 3})
    files.write_explain({"methods": {"gradcam": {"best_epoch": 2}}})
    files.write_environment({"torch": "x"})
    assert files.read_metrics() == {"split": "test", "n": 3}
    assert files.read_explain() == {"methods": {"gradcam": {"best_epoch": 2}}}
    assert files.read_environment() == {"torch": "x"}


def test_bench_real_reads_predictions_through_run_folder(tmp_path):
    from benchmarks.studies.common import read_predictions

    written = _predictions(np.random.default_rng(2), n=9, class_ids=(2, 5))
    RunFolder(tmp_path).write_predictions(written)
    index, y, p = read_predictions(RunFolder(tmp_path))
    order = np.argsort(written.index)
    assert np.array_equal(index, written.index[order])
    assert np.array_equal(y, (written.true[order] == 5).astype(int))
    assert np.array_equal(p, written.probs[order, 1])
