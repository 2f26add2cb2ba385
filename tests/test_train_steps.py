"""The steps of the training loop, each on its own: build or resume, one epoch's record, failures."""

from __future__ import annotations

import math

import pytest
import torch

from galaxymorph import Config, GalaxymorphError
from galaxymorph.rundir import RunFolder
from galaxymorph.runs import read_run_json, update_run_json
from galaxymorph.training.loop import (Process, TrainingDiverged, TrainState, add_epoch, build_or_resume,
                                       record_failure, save_last)

CPU = Process(torch.device("cpu"), None, rank=0, world=1, show=False)


def config(**changes) -> Config:
    return Config(data="unused.h5", device="cpu", amp=False, threads=1, **changes)


def state_dicts_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_state_is_what_save_last_saved(tmp_path, one_torch_thread):
    cfg = config(ema=0.9)
    state = build_or_resume(cfg, None, None, CPU)
    assert state.start_epoch == 1 and state.step == 0 and state.ema_model is not None
    state.model(torch.rand(2, 3, 256, 256)).sum().backward()  # one step: optimiser and EMA state to keep
    state.optimizer.step()
    state.ema_model.update_parameters(state.model)
    state.step, state.history, state.best = 7, [{"epoch": 3}], {"epoch": 3, "val_loss": 0.25, "val_acc": 0.9}
    save_last(tmp_path / "last.pt", state, 3, cfg)
    rng = torch.get_rng_state()
    torch.manual_seed(123)  # resume restores the generator as it was saved

    resumed = build_or_resume(cfg, None, tmp_path / "last.pt", CPU)
    assert (resumed.start_epoch, resumed.step, resumed.history, resumed.best) == (4, 7, state.history, state.best)
    assert state_dicts_equal(resumed.model.state_dict(), state.model.state_dict())
    assert state_dicts_equal(resumed.ema_model.state_dict(), state.ema_model.state_dict())
    assert resumed.optimizer.state_dict()["state"].keys() == state.optimizer.state_dict()["state"].keys()
    assert torch.equal(torch.get_rng_state(), rng)
    assert resumed.validated is resumed.ema_model.module


def test_resume_from_a_checkpoint_of_another_model_is_one_line(tmp_path):
    state = build_or_resume(config(), None, None, CPU)
    save_last(tmp_path / "last.pt", state, 1, config())
    with pytest.raises(GalaxymorphError, match="does not match this run"):
        build_or_resume(config(ema=0.9), None, tmp_path / "last.pt", CPU)  # no EMA weights saved


def record(epoch: int, val_loss: float, train_loss: float = 0.5) -> dict:
    return {"epoch": epoch, "train_loss": train_loss, "train_acc": 0.5, "val_loss": val_loss, "val_acc": 0.5,
            "lr": 1e-3, "seconds": 0.1}


@pytest.mark.parametrize("rank", [0, 1])
def test_add_epoch_keeps_the_best_and_fails_on_a_non_finite_loss(tmp_path, rank):
    state = TrainState(model=None, optimizer=None, scaler=None)
    assert add_epoch(state, record(1, 0.5), config(), tmp_path, rank) is True
    assert add_epoch(state, record(2, 0.6), config(), tmp_path, rank) is False
    assert state.best == {"epoch": 1, "val_loss": 0.5, "val_acc": 0.5}
    with pytest.raises(TrainingDiverged, match="epoch 3"):
        add_epoch(state, record(3, 0.4, train_loss=math.nan), config(), tmp_path, rank)
    assert state.best["epoch"] == 1 and len(state.history) == 3
    assert (tmp_path / "history.csv").is_file() == (rank == 0)  # only rank 0 writes files
    if rank == 0:
        assert [row["epoch"] for row in RunFolder(tmp_path).read_history()] == [1, 2, 3]


def test_interrupt_marks_the_run_and_says_how_to_resume(tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"")
    update_run_json(tmp_path, status="running")
    assert record_failure(KeyboardInterrupt(), config(), CPU, tmp_path, True, False, 2) is None
    assert read_run_json(tmp_path)["status"] == "interrupted"
    assert f"galaxymorph train --resume {tmp_path}" in capsys.readouterr().err


def test_interrupt_before_any_checkpoint_removes_the_folder_it_made(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert record_failure(KeyboardInterrupt(), config(), CPU, run_dir, True, False, 0) is None
    assert not run_dir.exists()


def test_out_of_memory_becomes_a_one_line_error_and_the_run_is_failed(tmp_path):
    error = record_failure(RuntimeError("CUDA out of memory"), config(batch_size=64), CPU, tmp_path, True, False, 1)
    assert isinstance(error, GalaxymorphError) and "smaller --batch-size (e.g. 32)" in str(error)
    assert read_run_json(tmp_path)["status"] == "failed"
    assert record_failure(ValueError("a bug"), config(), CPU, tmp_path, True, False, 1) is None  # re-raised as is
