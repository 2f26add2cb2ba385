"""Checkpoints are loaded with weights_only: a file that would run code is refused, not executed."""

from __future__ import annotations

import pytest
import torch

from galaxymorph.errors import GalaxymorphError
from galaxymorph.models import build_model, load_model, load_weights, read_checkpoint, save_checkpoint
from galaxymorph.models.checkpoints import CHECKPOINT_FORMAT


class CreatesFileWhenUnpickled:
    """Unpickling this calls ``open(path, "w")``: the kind of payload a shared checkpoint could carry."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def booby_trapped(tmp_path):
    """A checkpoint laid out like a real one, plus an object that creates ``marker`` on load."""
    marker = tmp_path / "code-ran.txt"
    model = build_model("seed", [2, 5])
    state = {"format": CHECKPOINT_FORMAT, "model": "seed", "class_ids": [2, 5], "net_kwargs": {},
             "state_dict": model.state_dict(), "extra": CreatesFileWhenUnpickled(str(marker))}
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save(state, run_dir / "checkpoints" / "best.pt")
    return run_dir, marker


def test_a_checkpoint_that_would_run_code_is_refused(booby_trapped):
    run_dir, marker = booby_trapped
    path = run_dir / "checkpoints" / "best.pt"
    for load in (lambda: read_checkpoint(path), lambda: load_model(run_dir),
                 lambda: load_weights(build_model("seed", [2, 5]), path)):
        with pytest.raises(GalaxymorphError, match="refused to load") as err:
            load()
        assert "\n" not in str(err.value)
    assert not marker.exists()


def test_predict_with_such_a_checkpoint_is_a_one_line_error(booby_trapped, tmp_path, capsys):
    from galaxymorph.cli import main

    run_dir, marker = booby_trapped
    image = tmp_path / "x.png"
    image.write_bytes(b"")
    assert main(["predict", str(run_dir), str(image), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused to load" in err
    assert not marker.exists()


@pytest.mark.slow
def test_training_state_round_trips_under_weights_only(tmp_path):
    """What last.pt holds (optimizer, scaler, RNG state, history, config) is all plain."""
    model = build_model("seed", [2, 5])
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.zeros(1, 3, 256, 256)).sum().backward()
    optimizer.step()
    save_checkpoint(tmp_path / "last.pt", model, optimizer=optimizer.state_dict(),
                    scaler=torch.amp.GradScaler("cpu", enabled=False).state_dict(), step=1, epoch=1,
                    best={"epoch": 1, "val_loss": 0.5}, history=[{"epoch": 1, "val_loss": 0.5}],
                    rng={"torch": torch.get_rng_state()}, config={"classes": [2, 5], "lr": 1e-3})
    state = read_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1 and torch.equal(state["rng"]["torch"], torch.get_rng_state())
    optimizer.load_state_dict(state["optimizer"])


def test_a_damaged_checkpoint_is_one_line(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(GalaxymorphError, match="corrupt") as err:
        read_checkpoint(tmp_path / "bad.pt")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("content", [b"\x89HDF\r\n\x1a\n" + bytes(200), b"file,galaxy10_class\na.jpg,2\n"],
                         ids=["hdf5", "csv"])
def test_a_file_that_is_not_a_checkpoint_does_not_suggest_unsafe_loading(tmp_path, content):
    (tmp_path / "sky.h5").write_bytes(content)  # e.g. 'explain sky.h5' for 'explain RUN_DIR'
    with pytest.raises(GalaxymorphError, match="corrupt or not a torch file") as err:
        read_checkpoint(tmp_path / "sky.h5")
    message = str(err.value)  # torch's own first line advised weights_only=False
    assert "weights_only" not in message and "\n" not in message and len(message) < 200
