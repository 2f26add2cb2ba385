"""The training loop: the exact seed CNN, run folders, best-epoch choice, resume, bad input."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch

from galaxymorph import Config, GalaxymorphError, load_model
from galaxymorph.data.galaxy10 import write_galaxy10
from galaxymorph.data.splits import prepare
from galaxymorph.errors import DataError
from galaxymorph.models import build_model, read_checkpoint
from galaxymorph.rundir import RunFolder
from galaxymorph.training import train
from galaxymorph.training.schedule import lr_factor

loop_module = importlib.import_module("galaxymorph.training.loop")

# One thread: the CI machine has two cores, often shared; OpenMP spin-waiting on a busy
# core makes two threads far slower than one for these tiny batches.
FAST = dict(epochs=2, batch_size=8, device="cpu", amp=False, threads=1, patience=0)


def tiny_config(data, **changes) -> Config:
    return Config(data=str(data), **{**FAST, **changes})


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def strip_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


# -- the models -----------------------------------------------------------------------------
def test_seed_model_is_the_reference_cnn():
    model = build_model("seed", [2, 5])
    assert sum(p.numel() for p in model.parameters()) == 1_015_361
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
             for m in model.net.features if isinstance(m, (torch.nn.Conv2d, torch.nn.MaxPool2d))]
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 256, 256))
    for h in hooks:
        h.remove()
    assert sizes == [254, 127, 125, 62, 60, 30, 28, 14, 12]
    assert out.shape == (1, 1)


@pytest.mark.slow
def test_compile_setting_compiles_the_model_it_trains(tiny_h5, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(torch, "compile", lambda model, mode: seen.append(mode) or model)
    train(tiny_config(tiny_h5, epochs=1, compile="reduce-overhead"), out=tmp_path / "run", progress=False)
    assert seen == ["reduce-overhead"]
    with pytest.raises(GalaxymorphError, match="--compile must be one of"):
        tiny_config(tiny_h5, compile="fast").validate()


def test_lr_schedules():
    assert lr_factor(50, 100, "constant") == 1.0
    assert lr_factor(0, 100, "cosine") == pytest.approx(1.0) and lr_factor(99, 100, "cosine") == pytest.approx(0.0)
    peak = max(lr_factor(s, 100, "onecycle") for s in range(100))
    assert peak == pytest.approx(1.0, abs=0.01)
    assert lr_factor(0, 100, "onecycle") == pytest.approx(1 / 25) and lr_factor(99, 100, "onecycle") < 1e-3


# -- a run folder ---------------------------------------------------------------------------
def test_train_writes_a_complete_run_folder(tiny_h5, tmp_path):
    run_dir = train(tiny_config(tiny_h5), out=tmp_path / "run", progress=False)
    for name in ("config.toml", "manifest.json", "run.json", "environment.json", "history.csv", "curves.png",
                 "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (run_dir / name).is_file(), name
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "complete" and run["epochs_done"] == 2
    assert run["data"] == str(tiny_h5.resolve())
    assert run["data_sha256"] == json.loads((run_dir / "manifest.json").read_text())["source"]["sha256"]
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["torch"] == torch.__version__ and env["threads"] == 1 and env["mixed_precision"] == "off"
    saved = Config.resolve(run_dir / "config.toml")  # repeatable from any folder, on the same split
    assert saved == tiny_config(tiny_h5).replace(data=str(tiny_h5.resolve()),
                                                 manifest=str((run_dir / "manifest.json").resolve()))

    history = RunFolder(run_dir).read_history()
    assert [r["epoch"] for r in history] == [1, 2]
    best_epoch = min(history, key=lambda r: r["val_loss"])["epoch"]
    best = read_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert best["epoch"] == best_epoch == run["best_epoch"]
    assert best["val_loss"] == pytest.approx(min(r["val_loss"] for r in history))

    model = load_model(run_dir)
    assert not model.training and model.class_ids == [2, 5]
    from galaxymorph.data.galaxy10 import open_galaxy10

    with open_galaxy10(tiny_h5) as data:
        proba = model.predict_proba(data.images(range(4)))
    assert proba.shape == (4, 2) and np.allclose(proba.sum(1), 1)


@pytest.mark.slow
def test_same_seed_same_history_and_resume_is_exact(tiny_h5, tmp_path, monkeypatch):
    straight = train(tiny_config(tiny_h5), out=tmp_path / "a", progress=False)
    again = train(tiny_config(tiny_h5), out=tmp_path / "b", progress=False)
    assert strip_seconds(RunFolder(straight).read_history()) == strip_seconds(RunFolder(again).read_history())

    # Ctrl-C in the middle of epoch 2, then --resume: the same result as never stopping.
    real = loop_module.iterate_batches
    calls = {"n": 0}

    def interrupt_in_epoch_2(*args, **kwargs):
        for i, batch in enumerate(real(*args, **kwargs)):
            if args[3] == 2 and i == 1:  # (epoch, batch); evaluation passes epoch 0
                calls["n"] += 1
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(loop_module, "iterate_batches", interrupt_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tiny_h5), out=tmp_path / "c", progress=False)
    assert calls["n"] == 1
    cut = tmp_path / "c"
    assert json.loads((cut / "run.json").read_text())["status"] == "interrupted"
    assert read_checkpoint(cut / "checkpoints" / "last.pt")["epoch"] == 1
    monkeypatch.setattr(loop_module, "iterate_batches", real)

    train(None, resume=cut, progress=False)
    assert json.loads((cut / "run.json").read_text())["status"] == "complete"
    assert strip_seconds(RunFolder(cut).read_history()) == strip_seconds(RunFolder(straight).read_history())
    assert same_weights(read_checkpoint(cut / "checkpoints" / "last.pt")["state_dict"],
                        read_checkpoint(straight / "checkpoints" / "last.pt")["state_dict"])
    with pytest.raises(GalaxymorphError, match="already complete"):
        train(None, resume=cut, progress=False)


@pytest.mark.slow
def test_moving_average_is_what_is_validated_saved_and_resumed(tiny_h5, tmp_path):
    straight = train(tiny_config(tiny_h5, ema=0.9, schedule="constant"), out=tmp_path / "a", progress=False)
    plain = train(tiny_config(tiny_h5, schedule="constant"), out=tmp_path / "p", progress=False)
    last = read_checkpoint(straight / "checkpoints" / "last.pt")
    best = read_checkpoint(straight / "checkpoints" / "best.pt")
    averaged = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
    if best["epoch"] == 2:  # the saved best weights are the average, not the raw weights
        assert same_weights(best["state_dict"], averaged)
        assert not same_weights(best["state_dict"], last["state_dict"])
    assert strip_seconds(RunFolder(straight).read_history()) != strip_seconds(RunFolder(plain).read_history())
    # one epoch, then --resume to two (a constant rate: the schedule does not depend on the epochs)
    cut = train(tiny_config(tiny_h5, ema=0.9, schedule="constant", epochs=1), out=tmp_path / "c", progress=False)
    train(tiny_config(tiny_h5, ema=0.9, schedule="constant", epochs=2), resume=cut, progress=False)
    assert same_weights(read_checkpoint(cut / "checkpoints" / "last.pt")["ema"], last["ema"])
    with pytest.raises(GalaxymorphError, match="--ema must be in"):
        tiny_config(tiny_h5, ema=1.0).validate()


def test_balanced_class_weights():
    from galaxymorph.training.loop import balanced_weights, weighted_mean

    weights = balanced_weights(np.array([0, 0, 0, 1]), 2, torch.device("cpu"))
    assert torch.allclose(weights, torch.tensor([4 / 6, 4 / 2]))  # n / (k * n_c)
    soft = balanced_weights(np.array([0.1, 0.2, 0.3, 0.9]), 2, torch.device("cpu"))  # soft targets: their side
    assert torch.equal(soft, weights)
    losses, y = torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([0, 0, 0, 1])
    assert float(weighted_mean(losses, y, weights)) == pytest.approx(1.0)  # the weights average to 1
    assert float(weighted_mean(torch.tensor([0.0, 0, 0, 1]), y, weights)) == pytest.approx(0.5)
    assert float(weighted_mean(losses, y, None)) == 1.0


@pytest.mark.slow
def test_resume_can_extend_epochs_and_hook_sees_each_epoch(tiny_h5, tmp_path, capsys):
    seen = []
    run_dir = train(tiny_config(tiny_h5, epochs=1, schedule="constant", augment="seed"),
                    out=tmp_path / "r", progress=False, on_epoch_end=lambda e, rec, m: seen.append(e))
    train(tiny_config(tiny_h5, epochs=2, schedule="constant", augment="seed"), resume=run_dir,
          progress=False, on_epoch_end=lambda e, rec, m: seen.append(e))
    assert seen == [1, 2]
    assert [r["epoch"] for r in RunFolder(run_dir).read_history()] == [1, 2]
    assert "warning" not in capsys.readouterr().err  # a constant schedule does not depend on the total
    with pytest.raises(GalaxymorphError, match="lr"):
        train(tiny_config(tiny_h5, epochs=3, lr=0.1), resume=run_dir, progress=False)


@pytest.mark.slow
def test_resume_with_other_epochs_warns_that_the_schedule_is_reshaped(tiny_h5, tmp_path, capsys):
    run_dir = train(tiny_config(tiny_h5, epochs=1, schedule="onecycle", augment="seed"), out=tmp_path / "r",
                    progress=False)
    capsys.readouterr()
    train(tiny_config(tiny_h5, epochs=2, schedule="onecycle", augment="seed"), resume=run_dir, progress=False)
    err = capsys.readouterr().err
    assert "warning: resuming with --epochs 2 instead of 1 reshapes the onecycle" in err
    assert err.count("warning") == 1


# -- bad input ------------------------------------------------------------------------------
def test_unknown_model_and_absent_classes(tiny_h5, tmp_path):
    with pytest.raises(GalaxymorphError, match="known models: seed, default"):
        train(tiny_config(tiny_h5, model="resnet9000"), out=tmp_path / "x", progress=False)
    with pytest.raises(DataError, match="no images of class 7"):
        train(tiny_config(tiny_h5, classes=[2, 7]), out=tmp_path / "y", progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_manifest_checks(tiny_h5, tmp_path):
    other = write_galaxy10(tmp_path / "other.h5", np.zeros((6, 256, 256, 3), np.uint8), [2, 5] * 3)
    prepare(other, tmp_path / "other.json", check_duplicates=False)
    with pytest.raises(DataError, match="different file"):
        train(tiny_config(tiny_h5, manifest=str(tmp_path / "other.json")), out=tmp_path / "x", progress=False)
    prepare(tiny_h5, tmp_path / "m.json", classes=[5, 2], check_duplicates=False)
    with pytest.raises(GalaxymorphError, match="classes"):
        train(tiny_config(tiny_h5, manifest=str(tmp_path / "m.json")), out=tmp_path / "y", progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.slow
def test_existing_folder_corrupt_checkpoint_and_bad_weights(tiny_h5, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with pytest.raises(GalaxymorphError, match="already holds files"):
        train(tiny_config(tiny_h5), out=used, progress=False)
    assert (used / "notes.txt").read_text() == "mine"

    run_dir = train(tiny_config(tiny_h5, epochs=1), out=tmp_path / "run", progress=False)
    # weights: a run's checkpoint fits the same model; a seed-model state_dict does not
    train(tiny_config(tiny_h5, epochs=1, weights=str(run_dir / "checkpoints" / "best.pt")),
          out=tmp_path / "warm", progress=False)
    torch.save(build_model("seed", [2, 5]).state_dict(), tmp_path / "seed.pt")
    with pytest.raises(GalaxymorphError, match="do not fit"):
        train(tiny_config(tiny_h5, weights=str(tmp_path / "seed.pt")), out=tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()

    (run_dir / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    (run_dir / "run.json").write_text(json.dumps({**json.loads((run_dir / "run.json").read_text()),
                                                  "status": "interrupted"}))
    with pytest.raises(GalaxymorphError, match="corrupt"):
        train(tiny_config(tiny_h5, epochs=2), resume=run_dir, progress=False)
    with pytest.raises(GalaxymorphError, match="run folder not found"):
        train(None, resume=tmp_path / "nothing", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GalaxymorphError, match="not a galaxymorph run folder"):
        train(None, resume=tmp_path / "empty", progress=False)


def test_out_of_memory_is_a_clear_error_and_leaves_no_folder(tiny_h5, tmp_path, monkeypatch):
    def no_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 99999999999 bytes")

    monkeypatch.setattr(loop_module, "loss_and_correct", no_memory)
    with pytest.raises(GalaxymorphError, match="smaller --batch-size"):
        train(tiny_config(tiny_h5), out=tmp_path / "oom", progress=False)
    assert not (tmp_path / "oom").exists()


def test_synthetic_data_is_rendered_once_into_the_cache(tiny_h5, tmp_path, monkeypatch):
    import shutil

    from galaxymorph import runs

    rendered = []

    def fake_synthesize(out, **kwargs):
        rendered.append(kwargs)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tiny_h5, out)
        return out

    monkeypatch.setenv("GALAXYMORPH_DATA", str(tmp_path / "cache"))  # the documented override
    monkeypatch.setattr(runs, "synthesize", fake_synthesize)
    config = Config(data="synthetic", n_per_class=20, seed=3, difficulty=0.25)
    path = runs.resolve_data(config)
    assert runs.resolve_data(config) == path and len(rendered) == 1
    assert path.parent == tmp_path / "cache" / "synthetic" and "n20-s3-d0.25" in path.name
    assert rendered[0] == dict(classes=[2, 5], n_per_class=20, seed=3, difficulty=0.25, progress=True)
    with pytest.raises(DataError, match="not found"):
        runs.resolve_data(Config(data=str(tmp_path / "missing.h5")))


def test_cli_train(tiny_h5, tmp_path, capsys):
    from galaxymorph.cli import main

    out = tmp_path / "cli-run"
    code = main(["train", "--data", str(tiny_h5), "--epochs", "1", "--batch-size", "8", "--device", "cpu",
                 "--no-amp", "--threads", "1", "--augment", "none", "--out", str(out)])
    assert code == 0 and (out / "checkpoints" / "best.pt").is_file()
    assert main(["train", "--data", str(tiny_h5), "--out", str(out)]) == 2
    assert "already holds files" in capsys.readouterr().err


def test_a_folder_of_images_as_data_points_at_data_import(tmp_path, capsys):
    from galaxymorph.cli import main

    images = tmp_path / "my_galaxies"
    (images / "round_smooth").mkdir(parents=True)
    assert main(["train", "--data", str(images), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()  # was "data file not found", for a folder that is there
    assert err.startswith(f"galaxymorph: error: expected an HDF5 file, got a folder: {images}")
    assert f"'galaxymorph data import {images} --out FILE.h5'" in err and "\n" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cli_resume_applies_the_options_given_with_it(tiny_h5, tmp_path, capsys):
    from galaxymorph.cli import main

    out = tmp_path / "run"
    base = ["--data", str(tiny_h5), "--batch-size", "8", "--device", "cpu", "--no-amp", "--threads", "1",
            "--augment", "none", "--patience", "0"]
    assert main(["train", *base, "--epochs", "1", "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 0  # extends the finished run
    assert [r["epoch"] for r in RunFolder(out).read_history()] == [1, 2]
    assert Config.resolve(out / "config.toml").epochs == 2
    capsys.readouterr()

    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 2  # nothing left to train
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--epochs 3 or more" in err

    assert main(["train", "--resume", str(out), "--epochs", "3", "--lr", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lr (saved 0.002, given 0.1)" in err and "train a new run" in err
    assert Config.resolve(out / "config.toml").epochs == 2  # a refused resume changes nothing

    assert main(["train", "--resume", str(out), "--out", str(tmp_path / "elsewhere")]) == 2
    assert "takes no --out" in capsys.readouterr().err


@pytest.mark.slow
def test_disk_full_marks_the_run_failed_in_one_line_and_resume_continues(tiny_h5, tmp_path, monkeypatch):
    import errno
    import tempfile

    from galaxymorph import fileio

    class FillingDisk:  # every new file fails with ENOSPC once the disk is "full"
        full = False

        def mkstemp(self, *args, **kwargs):
            if self.full:
                raise OSError(errno.ENOSPC, "No space left on device")
            return tempfile.mkstemp(*args, **kwargs)

    disk = FillingDisk()
    monkeypatch.setattr(fileio, "tempfile", disk)

    def fill_after_epoch_1(epoch, record, model):
        disk.full = True

    run_dir = tmp_path / "run"
    with pytest.raises(GalaxymorphError, match="disk full") as err:
        train(tiny_config(tiny_h5), out=run_dir, progress=False, on_epoch_end=fill_after_epoch_1)
    assert "\n" not in str(err.value) and f"train --resume {run_dir}" in str(err.value)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "failed" and run["epochs_done"] == 1

    disk.full = False  # space freed: the run continues where it stopped
    train(None, resume=run_dir, progress=False)
    assert [r["epoch"] for r in RunFolder(run_dir).read_history()] == [1, 2]


def test_gpu_backend_settings_are_put_back_after_training():
    from galaxymorph.device import tuned_backends

    before = torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()
    with tuned_backends(torch.device("cuda")):  # only sets flags: runs without a GPU
        assert torch.backends.cudnn.benchmark and torch.get_float32_matmul_precision() == "high"
    assert (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()) == before
    with tuned_backends(torch.device("cpu")):
        assert (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()) == before


# -- replacing and claiming run folders -----------------------------------------------------------
CLI_FAST = ["--batch-size", "8", "--device", "cpu", "--no-amp", "--threads", "1", "--augment", "none",
            "--patience", "0", "--epochs", "1"]


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_overwrite_replaces_only_a_run_folder_and_only_after_every_other_check(tiny_h5, tmp_path, monkeypatch,
                                                                                capsys):
    from galaxymorph.cli import main

    work = tmp_path / "work"
    (work / "thesis" / "ch").mkdir(parents=True)
    (work / "thesis" / "ch" / "a.tex").write_text("x")
    monkeypatch.chdir(work)
    base = ["--data", str(tiny_h5), *CLI_FAST]
    for command in ("train", "run"):
        for extra in (["--weights", "nope.pt"], []):  # the --weights error used to come after the removal
            assert main([command, *base, "--out", "thesis", "--overwrite", *extra]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "thesis: it holds files but is not a galaxymorph run folder" in err
        for folder in (".", "..", str(tmp_path)):  # the working folder and those holding it
            assert main([command, *base, "--out", folder, "--overwrite"]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "it is the working folder or holds it" in err
    home = tmp_path / "home"
    home.mkdir()
    (home / "run.json").write_text('{"status": "complete"}')  # even when it looks like a run
    monkeypatch.setenv("HOME", str(home))
    assert main(["train", *base, "--out", str(home), "--overwrite"]) == 2
    assert "it is the home folder" in capsys.readouterr().err
    assert listing(work) == ["thesis", "thesis/ch", "thesis/ch/a.tex"] and (home / "run.json").is_file()

    # a run folder is replaced, but only once every other check has passed
    run_dir = train(tiny_config(tiny_h5, epochs=1), out=work / "run", progress=False)
    before, best = listing(run_dir), (run_dir / "checkpoints" / "best.pt").read_bytes()
    assert main(["train", *base, "--out", "run", "--overwrite", "--weights", "nope.pt"]) == 2
    assert "--weights file not found: nope.pt" in capsys.readouterr().err
    torch.save(build_model("seed", [2, 5]).state_dict(), work / "seed.pt")
    assert main(["train", *base, "--out", "run", "--overwrite", "--weights", "seed.pt"]) == 2
    assert "do not fit" in capsys.readouterr().err
    assert listing(run_dir) == before and (run_dir / "checkpoints" / "best.pt").read_bytes() == best
    assert main(["train", *base, "--out", "run", "--overwrite", "--seed", "1"]) == 0
    assert Config.resolve(run_dir / "config.toml").seed == 1 and listing(run_dir) == before


HOLD = ("import sys; from galaxymorph.runs import claim_run_dir; claim_run_dir(sys.argv[1]); "
        "print('held', flush=True); sys.stdin.read()")


def hold_run_dir(folder):
    """Another process that claims ``folder`` and keeps it until killed."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import galaxymorph

    env = {**os.environ, "PYTHONPATH": str(Path(galaxymorph.__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env)
    assert proc.stdout.readline() == b"held\n"
    return proc


def test_a_run_folder_is_trained_by_one_process_at_a_time(tiny_h5, tmp_path, capsys):
    from galaxymorph.cli import main
    from galaxymorph.runs import LOCK_NAME

    run_dir = tmp_path / "run"
    holder = hold_run_dir(run_dir)  # another training got there first
    try:
        with pytest.raises(GalaxymorphError, match=rf"in use by another galaxymorph process \(pid {holder.pid}\)"):
            train(tiny_config(tiny_h5, epochs=1), out=run_dir, progress=False)
        assert listing(run_dir) == [LOCK_NAME]  # nothing of ours beside its files
    finally:
        holder.kill()  # dies holding it: its lock file stays behind, stale
        holder.wait()
    assert (run_dir / LOCK_NAME).is_file()
    train(tiny_config(tiny_h5, epochs=1), out=run_dir, progress=False)
    assert (run_dir / "checkpoints" / "best.pt").is_file() and not (run_dir / LOCK_NAME).exists()

    before = listing(run_dir), (run_dir / "run.json").read_text(), (run_dir / "config.toml").read_text()
    holder = hold_run_dir(run_dir)
    try:
        for command in (["train", "--resume", str(run_dir), "--epochs", "2"], ["run", "--resume", str(run_dir)],
                        ["train", "--data", str(tiny_h5), "--out", str(run_dir), "--overwrite"]):
            assert main(command) == 2
            err = capsys.readouterr().err.splitlines()  # (resuming with another --epochs warns first)
            assert err[-1].startswith("galaxymorph: error: ") and f"(pid {holder.pid})" in err[-1]
            assert not any("error" in line or "Traceback" in line for line in err[:-1])
    finally:
        holder.kill()
        holder.wait()
    assert (listing(run_dir), (run_dir / "run.json").read_text(), (run_dir / "config.toml").read_text()) == \
        (sorted(before[0] + [LOCK_NAME]), *before[1:])


def test_a_diverged_loss_fails_the_run_and_chooses_no_best(tiny_h5, tmp_path, monkeypatch):
    """A NaN validation loss was recorded, the run called complete and its weights saved as best.pt."""
    monkeypatch.setattr(loop_module, "evaluate_loss", lambda *args, **kwargs: (float("nan"), 0.5))
    run = tmp_path / "run"
    with pytest.raises(GalaxymorphError, match="diverged in epoch 1 .*lower --lr") as err:
        train(tiny_config(tiny_h5), out=run, progress=False)
    assert "\n" not in str(err.value)
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "failed" and "diverged" in record["error"]
    assert not (run / "checkpoints" / "best.pt").exists()
    assert np.isnan(RunFolder(run).read_history()[0]["val_loss"])  # the epoch that diverged is shown


def test_a_learning_rate_far_too_high_is_one_line_from_the_cli(tiny_h5, tmp_path, capsys):
    from galaxymorph.cli import main

    run = tmp_path / "run"
    argv = ["-q", "train", "--data", str(tiny_h5), "--model", "seed", "--epochs", "2", "--batch-size", "8",
            "--device", "cpu", "--no-amp", "--threads", "1", "--patience", "0", "--lr", "1e6", "--out", str(run)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "diverged" in err and "--lr" in err
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert not (run / "checkpoints" / "best.pt").exists()
