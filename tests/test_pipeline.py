"""``galaxymorph run``: every stage into one folder, refusal to clobber, resume after a stop."""

from __future__ import annotations

import importlib
import json
import shutil

import pytest

from galaxymorph.cli import main
from galaxymorph.config import Config
from galaxymorph.errors import GalaxymorphError
from galaxymorph.pipeline import run


def _config(data) -> Config:
    return Config.resolve(overrides=dict(data=str(data), epochs=1, batch_size=8, amp=False, device="cpu"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One small end-to-end run, shared by the tests below (training is the slow part)."""
    from conftest import make_blobs

    import numpy as np

    from galaxymorph.data.galaxy10 import write_galaxy10

    folder = tmp_path_factory.mktemp("pipeline")
    ans = np.array([2, 5] * 24, dtype=np.uint8)
    data = write_galaxy10(folder / "blobs.h5", make_blobs((ans == 5).astype(int), seed=1), ans)
    run_dir = run(_config(data), out=folder / "run", progress=False)
    return data, run_dir


@pytest.mark.slow
def test_run_writes_every_stage(finished_run):
    _, run_dir = finished_run
    for rel in ("config.toml", "manifest.json", "run.json", "checkpoints/best.pt", "history.csv",
                "curves.png", "eval/metrics.json", "eval/predictions.csv", "explain/explain.json", "report.html"):
        assert (run_dir / rel).is_file(), rel
    timings = json.loads((run_dir / "run.json").read_text())["timings"]
    assert {"train", "evaluate", "explain", "report"} <= set(timings)
    page = (run_dir / "report.html").read_text()
    assert "Round Smooth vs Barred Spiral" in page and "not produced yet" not in page


@pytest.mark.slow
def test_second_run_into_the_same_folder_is_refused(finished_run):
    data, run_dir = finished_run
    with pytest.raises(GalaxymorphError, match="--overwrite"):
        run(_config(data), out=run_dir)


@pytest.mark.slow
def test_resume_redoes_only_the_missing_stages(finished_run):
    _, run_dir = finished_run
    best = (run_dir / "checkpoints" / "best.pt").stat().st_mtime_ns
    shutil.rmtree(run_dir / "explain")
    (run_dir / "report.html").unlink()
    run(None, resume=run_dir, progress=False)
    assert (run_dir / "explain" / "explain.json").is_file() and (run_dir / "report.html").is_file()
    assert (run_dir / "checkpoints" / "best.pt").stat().st_mtime_ns == best  # not trained again


@pytest.mark.slow
def test_cli_run_with_overwrite(finished_run, tmp_path, capsys):
    data, _ = finished_run
    out = tmp_path / "cli-run"
    out.mkdir()
    (out / "old.txt").write_text("an earlier run")
    (out / "run.json").write_text('{"status": "complete"}')  # --overwrite replaces only a run folder
    argv = ["run", "--data", str(data), "--epochs", "1", "--batch-size", "8", "--no-amp", "--out", str(out)]
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err and (out / "old.txt").exists()
    assert main(argv + ["--overwrite"]) == 0
    assert not (out / "old.txt").exists() and (out / "report.html").is_file()


def test_resume_of_something_else_is_refused(tmp_path):
    with pytest.raises(GalaxymorphError, match="not a galaxymorph run folder"):
        run(None, resume=tmp_path)


def _interrupt_once(monkeypatch, module, name):
    """Make ``module.name`` raise KeyboardInterrupt (Ctrl-C) the first time it is called."""
    original = getattr(module, name)
    calls = []

    def once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, once)


@pytest.mark.slow
def test_ctrl_c_during_training_then_run_resume(finished_run, tmp_path, monkeypatch):
    loop_module = importlib.import_module("galaxymorph.training.loop")

    data, _ = finished_run
    _interrupt_once(monkeypatch, loop_module, "plot_curves")  # after epoch 1's checkpoint
    config = _config(data).replace(epochs=2)
    with pytest.raises(KeyboardInterrupt):
        run(config, out=tmp_path / "r", progress=False)
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "interrupted"
    run(None, resume=tmp_path / "r", progress=False)
    history = (tmp_path / "r" / "history.csv").read_text().splitlines()
    assert len(history) == 3 and (tmp_path / "r" / "report.html").is_file()  # header + 2 epochs


@pytest.mark.slow
def test_ctrl_c_during_evaluation_then_run_resume(finished_run, tmp_path, monkeypatch):
    pipeline_module = importlib.import_module("galaxymorph.pipeline")  # where run looks evaluate up

    data, _ = finished_run
    _interrupt_once(monkeypatch, pipeline_module, "evaluate")
    with pytest.raises(KeyboardInterrupt):
        run(_config(data), out=tmp_path / "r", progress=False)
    assert not (tmp_path / "r" / "eval" / "metrics.json").exists()
    best = (tmp_path / "r" / "checkpoints" / "best.pt").stat().st_mtime_ns
    run(None, resume=tmp_path / "r", progress=False)
    assert (tmp_path / "r" / "eval" / "metrics.json").is_file() and (tmp_path / "r" / "report.html").is_file()
    assert (tmp_path / "r" / "checkpoints" / "best.pt").stat().st_mtime_ns == best  # not trained again


@pytest.mark.slow
def test_cli_run_resume_with_more_epochs_trains_on_and_redoes_the_later_stages(finished_run, tmp_path):
    _, run_dir = finished_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    metrics = (copy / "eval" / "metrics.json").stat().st_mtime_ns
    assert main(["run", "--resume", str(copy), "--epochs", "2"]) == 0
    assert len((copy / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs
    assert (copy / "eval" / "metrics.json").stat().st_mtime_ns != metrics  # the new model is scored
    assert Config.resolve(copy / "config.toml").epochs == 2


@pytest.mark.slow
def test_run_resume_redoes_the_stages_written_for_an_earlier_model(finished_run, tmp_path):
    """After 'train --resume' found a better checkpoint, the test metrics and maps describe the old one."""
    _, run_dir = finished_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    metrics, maps = copy / "eval" / "metrics.json", copy / "explain" / "explain.json"
    best_epoch = json.loads((copy / "run.json").read_text())["best_epoch"]
    assert json.loads(metrics.read_text())["best_epoch"] == best_epoch
    assert all(m["best_epoch"] == best_epoch for m in json.loads(maps.read_text())["methods"].values())
    run(None, resume=copy, progress=False)
    assert metrics.stat().st_mtime_ns == (run_dir / "eval" / "metrics.json").stat().st_mtime_ns  # current: kept
    for output in (metrics, maps):  # as if made when an earlier epoch was the best
        output.write_text(output.read_text().replace(f'"best_epoch": {best_epoch}', '"best_epoch": 0'))
    run(None, resume=copy, progress=False)  # kept them as they were
    assert json.loads(metrics.read_text())["best_epoch"] == best_epoch
    assert all(m["best_epoch"] == best_epoch for m in json.loads(maps.read_text())["methods"].values())
    assert (copy / "checkpoints" / "best.pt").read_bytes() == (run_dir / "checkpoints" / "best.pt").read_bytes()


def test_ctrl_c_before_the_run_folder_exists_gives_no_resume_advice(tmp_path, monkeypatch, capsys):
    def ctrl_c(*args, **kwargs):  # Ctrl-C while the data is being rendered or split
        raise KeyboardInterrupt

    monkeypatch.setattr("galaxymorph.runs.resolve_data", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run(_config(tmp_path / "any.h5"), out=tmp_path / "r", progress=False)
    err = capsys.readouterr().err
    assert "--resume" not in err and "nothing to resume" in err
    assert not (tmp_path / "r").exists()


def test_run_into_a_used_folder_is_refused_before_any_data_work(tiny_h5, tmp_path, monkeypatch, capsys):
    def no_data_work(*args, **kwargs):
        raise AssertionError("the data was resolved before the folder was checked")

    monkeypatch.setattr("galaxymorph.runs.resolve_data", no_data_work)
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    assert main(["run", "--data", str(tiny_h5), "--out", str(used)]) == 2
    assert "already holds files" in capsys.readouterr().err


@pytest.mark.slow
def test_report_is_its_pictures_and_little_else(finished_run):
    """The galleries are JPEG and the page embeds each picture once, as written: its size is the
    pictures' base64 and some text (a gallery as PNG made a default run's page 11-15 MB)."""
    import base64
    import re

    _, run_dir = finished_run
    page = (run_dir / "report.html").read_text()
    pictures = [base64.b64decode(data) for data in re.findall(r'src="data:image/[a-z]+;base64,([^"]+)"', page)]
    explain = json.loads((run_dir / "explain" / "explain.json").read_text())
    files = explain["methods"][explain["latest"]]["files"]
    galleries = [(run_dir / "explain" / files[g]).read_bytes() for g in ("confident", "random")]
    assert all(g.startswith(b"\xff\xd8\xff") and g in pictures for g in galleries)  # JPEG, embedded as is
    assert len(page.encode()) < 4 / 3 * sum(map(len, pictures)) + 64_000
    assert len(page.encode()) < 1_500_000  # this run's page: 0.96 MB; 3.1 MB with PNG galleries
