"""Distributed training on CPU: two gloo processes end with one model and one run folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from galaxymorph import Config
from galaxymorph.models import read_checkpoint

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, out: str, dump: str) -> None:
    """One rank, set up as torchrun would, dumping its weights after every epoch."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), GALAXYMORPH_NO_PROGRESS="1")
    from galaxymorph.training import train

    def dump_weights(epoch, record, model):
        torch.save({"state": model.state_dict(), "record": record}, os.path.join(dump, f"rank{rank}-epoch{epoch}.pt"))

    config = Config(data=data, epochs=2, batch_size=4, device="cpu", amp=False, threads=1, patience=0)
    train(config, out=out, progress=False, on_epoch_end=dump_weights)


@pytest.mark.slow
def test_two_cpu_ranks_train_one_model(tiny_h5, tmp_path):
    out, dump = tmp_path / "run", tmp_path / "dump"
    dump.mkdir()
    mp.spawn(_worker, args=(2, _free_port(), str(tiny_h5), str(out), str(dump)), nprocs=2, join=True)

    for epoch in (1, 2):
        a = torch.load(dump / f"rank0-epoch{epoch}.pt", weights_only=False)
        b = torch.load(dump / f"rank1-epoch{epoch}.pt", weights_only=False)
        assert a["state"].keys() == b["state"].keys()
        assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"]), f"ranks differ after epoch {epoch}"
        assert a["record"]["train_loss"] == b["record"]["train_loss"]  # metrics are all-reduced
        assert a["record"]["val_loss"] == b["record"]["val_loss"]
    last = read_checkpoint(out / "checkpoints" / "last.pt")
    assert all(torch.equal(last["state_dict"][k], a["state"][k]) for k in a["state"])

    # one run folder, written once by rank 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["checkpoints", "config.toml", "curves.png", "environment.json", "history.csv", "manifest.json", "run.json",
         "train_galaxies.npz"])
    assert len((out / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["world_size"] == 2


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("GALAXYMORPH_SLOW_TESTS") != "1",
                    reason="starts two fresh interpreters (~15 s); set GALAXYMORPH_SLOW_TESTS=1 to run")
def test_torchrun_command_line(tiny_h5, tmp_path):
    """The documented way: ``torchrun --nproc_per_node=2 -m galaxymorph train ...``."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "galaxymorph", "train", "--data", str(tiny_h5), "--epochs", "1", "--batch-size", "4",
           "--device", "cpu", "--no-amp", "--threads", "1", "--out", str(out)]
    env = {**os.environ, "GALAXYMORPH_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
