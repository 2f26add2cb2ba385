"""Checkpoints are loaded with weights_only: a file that would run code is refused, not executed."""

from __future__ import annotations

import struct

import pytest
import torch

from galaxymorph.errors import GalaxymorphError
from galaxymorph.models import build_model, load_model, load_weights, read_checkpoint, save_checkpoint
from galaxymorph.models.checkpoints import CHECKPOINT_FORMAT, load_tensors, model_from_checkpoint


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


class RunsACommandWhenUnpickled:
    """``os.system``: torch refuses it as a global of a blocked module, in other words than for ``open``."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        import os

        return (os.system, (f"echo ran > {self.path}",))


def test_a_command_payload_is_refused_as_code_not_called_corrupt(tmp_path):
    marker = tmp_path / "code-ran.txt"
    path = tmp_path / "best.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "extra": RunsACommandWhenUnpickled(str(marker))}, path)
    with pytest.raises(GalaxymorphError, match="refused to load checkpoint .*holds code or pickled Python") as err:
        read_checkpoint(path)
    message = str(err.value)  # was "corrupt", with torch's advice to load it with weights_only=False
    assert "corrupt" not in message and "weights_only" not in message and "\n" not in message
    assert not marker.exists()


def _rewritten(src, dest, edit):
    """A copy of the torch zip ``src`` with its data.pkl bytes passed through ``edit``."""
    import zipfile

    with zipfile.ZipFile(src) as archive, zipfile.ZipFile(dest, "w") as out:
        for info in archive.infolist():
            data = archive.read(info)
            out.writestr(info.filename, edit(data) if info.filename.endswith("data.pkl") else data)
    return dest


N = 70_000  # elements of the honest tensor: pickled as BININT, so its 4 bytes can be replaced in place
HUGE = struct.pack("<i", 2**31 - 1)


def test_a_storage_declared_far_larger_than_the_file_is_refused_before_loading(tmp_path):
    honest = tmp_path / "honest.pt"
    torch.save({"state_dict": {"w": torch.zeros(N, dtype=torch.float64)}}, honest)
    crafted = _rewritten(honest, tmp_path / "crafted.pt",  # the storage's element count: 17 GB of float64
                         lambda data: data.replace(b"J" + struct.pack("<i", N), b"J" + HUGE, 1))
    load_tensors(honest)  # the honest file loads
    with pytest.raises(GalaxymorphError, match="its tensors declare 2,147,483,647 elements") as err:
        load_tensors(crafted)
    assert "\n" not in str(err.value)


def test_a_tensor_viewing_a_few_bytes_as_billions_of_elements_is_refused(tmp_path):
    honest = tmp_path / "honest.pt"
    torch.save({"w": torch.zeros(N, dtype=torch.float64)}, honest)

    def stride_zero(data):  # size (2**31 - 1,), stride (0,): every element is the first one
        at = data.index(b"Q")  # BINPERSID; the size and stride tuples follow it
        tail = data[at:].replace(b"J" + struct.pack("<i", N), b"J" + HUGE, 1).replace(b"K\x01\x85", b"K\x00\x85", 1)
        return data[:at] + tail

    crafted = _rewritten(honest, tmp_path / "crafted.pt", stride_zero)
    with pytest.raises(GalaxymorphError, match="more elements than the file has bytes"):  # a copy would take 17 GB
        load_weights(build_model("seed", [2, 5]), crafted)


def test_an_architecture_of_terabytes_is_refused_before_building(tmp_path):
    model = build_model("default", [2, 5])
    save_checkpoint(tmp_path / "best.pt", model)
    state = read_checkpoint(tmp_path / "best.pt")
    state["architecture"] = {**model.architecture, "kwargs": {**model.architecture["kwargs"], "widths": [300_000] * 2}}
    with pytest.raises(GalaxymorphError, match=r"architecture declares [\d,]+ weights, more than") as err:
        model_from_checkpoint(state)  # building it would have allocated 13 TB
    assert "\n" not in str(err.value)


def test_a_legacy_format_file_declaring_a_huge_storage_is_refused(tmp_path):
    """torch's pre-zip format: loading this one tried to allocate 17 GB."""
    honest = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(N, dtype=torch.float64)}, honest, _use_new_zipfile_serialization=False)
    load_tensors(honest)
    crafted = tmp_path / "crafted.pt"
    crafted.write_bytes(honest.read_bytes().replace(b"J" + struct.pack("<i", N), b"J" + HUGE, 1))
    with pytest.raises(GalaxymorphError, match="its tensors declare 2,147,483,647 elements"):
        load_tensors(crafted)
