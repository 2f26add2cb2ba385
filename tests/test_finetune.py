"""Fine-tuning from a pretrained run: --init, the encoder's learning rate, --freeze-encoder, gz2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_blobs

from galaxymorph import Config, GalaxymorphError, load_model, run_names, runs
from galaxymorph.cli import main
from galaxymorph.data.galaxy10 import write_galaxy10
from galaxymorph.models import build_model, read_checkpoint
from galaxymorph.trained_on import TRAIN_GALAXIES, image_sha256, read_training_galaxies
from galaxymorph.training import train
from galaxymorph.training.finetune import load_encoder, parameter_groups

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(epochs=1, batch_size=8, device="cpu", amp=False, threads=1, patience=0, schedule="constant")


def encoder_of(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.startswith("net.head.")}


def head_of(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.startswith("net.head.")}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def sky(tmp_path_factory):
    """40 images of classes 2 and 5, with sky positions."""
    root = tmp_path_factory.mktemp("sky")
    ans = np.array([2, 5] * 20, dtype=np.uint8)
    ra, dec = np.linspace(150, 151, 40), np.linspace(2, 2.5, 40)
    return write_galaxy10(root / "sky.h5", make_blobs((ans == 5).astype(int), seed=3), ans, ra=ra, dec=dec)


@pytest.fixture(scope="module")
def pretrained(sky, tmp_path_factory):
    """A run trained from scratch for one epoch: what the others start from."""
    out = tmp_path_factory.mktemp("pre") / "run"
    return train(Config(data=str(sky), **FAST), out=out, progress=False)


# -- the head ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["seed", "default"])
def test_the_head_is_the_networks_last_layer(name):
    model = build_model(name, [2, 5])
    assert model.head_parameter_names() == ["net.head.weight", "net.head.bias"]
    assert [n for n, _ in model.named_parameters()][-2:] == ["net.head.weight", "net.head.bias"]
    encoder = model.encoder_state(model.state_dict())
    assert set(model.state_dict()) - set(encoder) == {"net.head.weight", "net.head.bias"}


def test_load_encoder_copies_all_but_the_head(pretrained):
    saved = read_checkpoint(pretrained / "checkpoints" / "best.pt")["state_dict"]
    torch.manual_seed(1)
    model = build_model("default", [2, 5, 7])  # another number of classes: another head
    fresh_head = {k: v.clone() for k, v in head_of(model.state_dict()).items()}
    assert load_encoder(model, str(pretrained)) == pretrained
    assert same(encoder_of(model.state_dict()), encoder_of(saved))  # BatchNorm statistics included
    assert same(head_of(model.state_dict()), fresh_head)


# -- training from an init run ----------------------------------------------------------------
def test_init_trains_the_encoder_at_a_lower_learning_rate(sky, pretrained, tmp_path):
    run_dir = train(Config(data=str(sky), init=str(pretrained), lr=1e-3, **FAST), out=tmp_path / "ft",
                    progress=False)
    before = read_checkpoint(pretrained / "checkpoints" / "best.pt")["state_dict"]
    last = read_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert not same(encoder_of(last["state_dict"]), encoder_of(before))  # the encoder learned too
    groups = last["optimizer"]["param_groups"]
    lrs = {g["part"]: g["lr"] for g in groups}
    assert lrs["encoder"] == pytest.approx(0.1 * 1e-3) and lrs["head"] == pytest.approx(1e-3)
    saved = runs.read_run_json(run_dir)
    assert saved["status"] == "complete"
    assert Config.resolve(run_dir / "config.toml").init == str(pretrained.resolve())  # absolute, like --weights


def test_freeze_encoder_trains_the_head_only(sky, pretrained, tmp_path):
    run_dir = train(Config(data=str(sky), init=str(pretrained), freeze_encoder=True, lr=1e-2, **FAST),
                    out=tmp_path / "probe", progress=False)
    before = read_checkpoint(pretrained / "checkpoints" / "best.pt")["state_dict"]
    after = read_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert same(encoder_of(after["state_dict"]), encoder_of(before))  # weights and BatchNorm statistics
    torch.manual_seed(0)  # the loop builds the model after seeding with config.seed
    fresh = build_model("default", [2, 5]).state_dict()
    assert not same(head_of(after["state_dict"]), head_of(fresh))
    assert sum(len(g["params"]) for g in after["optimizer"]["param_groups"]) == 2  # head weight and bias


def test_frozen_encoder_stays_in_eval_mode_while_the_head_trains():
    model = build_model("default", [2, 5])
    groups = parameter_groups(model, 0.05, init=True, encoder_lr_factor=0.1, freeze_encoder=True)
    assert [g["part"] for g in groups] == ["head", "head"]
    model.train()
    norms = [m for m in model.net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    assert model.net.head.training and model.net.dropout.training
    assert not any(p.requires_grad for n, p in model.named_parameters() if not n.startswith("net.head."))


def test_groups_of_a_run_from_scratch_are_unchanged():
    model = build_model("default", [2, 5])
    groups = parameter_groups(model, 0.05)
    assert [len(g) for g in groups] == [2, 2] and "lr_scale" not in groups[0]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_model_defaults_to_the_init_runs(pretrained, tmp_path):
    from helpers_runs import make_run, write_data

    seed_run = make_run(tmp_path / "seed", write_data(tmp_path / "d.h5", n_per_class=8), steps=1, model="seed")
    assert Config.resolve(None, {"init": str(seed_run)}).model == "seed"
    assert Config.resolve(None, {"init": str(pretrained), "model": "seed"}).model == "seed"  # asked for
    with pytest.raises(GalaxymorphError, match="differs from --model 'default'"):
        load_encoder(build_model("default", [2, 5]), str(seed_run))


def test_a_model_that_differs_from_the_init_runs_is_refused_before_any_work(sky, pretrained, tmp_path,
                                                                           monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the run folder was made before --init was checked")

    monkeypatch.setattr(runs, "create_run", no_work)
    with pytest.raises(GalaxymorphError, match="differs from --model 'seed'"):
        train(Config(data=str(sky), init=str(pretrained), model="seed", **FAST), out=tmp_path / "x", progress=False)


def test_refusals(sky, pretrained, tmp_path):
    cases = [({"init": str(pretrained), "weights": str(pretrained / "checkpoints" / "best.pt")}, "give one of them"),
             ({"freeze_encoder": True}, "give --init RUN"),
             ({"init": str(pretrained), "encoder_lr_factor": 0.0}, "encoder-lr-factor must be in"),
             ({"init": str(tmp_path / "nowhere")}, "run folder not found"),
             ({"init": str(sky.parent)}, "no checkpoints/best.pt")]
    for given, message in cases:
        with pytest.raises(GalaxymorphError, match=message):
            Config.resolve(None, {"data": str(sky), **given})


def test_run_and_train_take_the_fine_tuning_options():
    from galaxymorph.cli import build_parser

    for command in ("train", "run"):
        args = build_parser().parse_args([command, "--init", "gz2", "--encoder-lr-factor", "0.2", "--freeze-encoder"])
        assert (args.init, args.encoder_lr_factor, args.freeze_encoder) == ("gz2", 0.2, True)


def test_cli_refuses_init_with_weights_in_one_line(sky, pretrained, tmp_path, capsys):
    code = main(["train", "--data", str(sky), "--init", str(pretrained), "--weights", str(pretrained),
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--init and --weights" in err
    assert not (tmp_path / "x").exists()


# -- gz2: the shipped model ---------------------------------------------------------------------
def test_gz2_names_the_shipped_run_folder(sky, pretrained, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run_names, "PRETRAINED_DIR", tmp_path / "pretrained")
    with pytest.raises(GalaxymorphError, match="shipped model 'gz2' is not installed"):
        run_names.resolve_run("gz2")
    for command in (["predict", "gz2", str(sky), "--out", str(tmp_path / "votes.csv")], ["explain", "gz2"],
                    ["train", "--data", str(sky), "--init", "gz2", "--out", str(tmp_path / "no")]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "shipped model 'gz2' is not installed" in err
    shipped = tmp_path / "pretrained" / "gz2"
    shutil.copytree(pretrained, shipped)
    assert run_names.resolve_run("gz2") == shipped
    assert run_names.resolve_run("./gz2") == Path("gz2")  # a local folder of that name
    assert load_model("gz2").class_ids == [2, 5]
    assert main(["predict", "gz2", str(sky), "--out", str(tmp_path / "votes.csv")]) == 0
    assert (tmp_path / "votes.csv").is_file()
    out = tmp_path / "ft"
    assert main(["train", "--data", str(sky), "--init", "gz2", "--epochs", "1", "--batch-size", "8", "--device",
                 "cpu", "--no-amp", "--out", str(out)]) == 0
    assert Config.resolve(out / "config.toml").init == "gz2"  # the name is kept, not the package path


# -- the record of training galaxies ----------------------------------------------------------
def test_a_run_records_its_train_and_val_galaxies(sky, pretrained):
    from galaxymorph.data.galaxy10 import open_galaxy10

    record = read_training_galaxies(pretrained)
    manifest = json.loads((pretrained / "manifest.json").read_text())
    expected = manifest["splits"]["train"] + manifest["splits"]["val"]
    assert record["index"].tolist() == expected
    with np.load(pretrained / TRAIN_GALAXIES, allow_pickle=False) as npz:  # plain arrays only
        assert npz["sha256"].dtype.kind == "U"
    with open_galaxy10(sky) as data:
        assert record["sha256"].tolist() == image_sha256(data.images(expected)).tolist()
        assert np.allclose(record["ra"], data.column("ra")[expected])


def test_the_shipped_run_folders_files_are_package_data():
    from pathlib import PurePosixPath

    from galaxymorph.config import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["galaxymorph"]
    for name in ("config.toml", "run.json", "train_galaxies.npz", "checkpoints/best.pt", "README.md"):
        assert any(PurePosixPath(f"pretrained/gz2/{name}").match(p) for p in patterns), name
    assert run_names.PRETRAINED_DIR == Path(run_names.__file__).resolve().parent / "pretrained"


def test_the_init_runs_model_is_read_from_its_config_toml(pretrained, tmp_path):
    """--model's default with --init comes from the init run's config.toml (the config never loads
    a checkpoint); a folder holding only a checkpoint asks for --model in one line."""
    bare = tmp_path / "bare"
    (bare / "checkpoints").mkdir(parents=True)
    shutil.copyfile(pretrained / "checkpoints" / "best.pt", bare / "checkpoints" / "best.pt")
    with pytest.raises(GalaxymorphError, match="does not name the run's model; give --model"):
        Config.resolve(None, {"init": str(bare)})
    assert Config.resolve(None, {"init": str(bare), "model": "seed"}).model == "seed"
    saved = Config.resolve(pretrained / "config.toml").model
    assert Config.resolve(None, {"init": str(pretrained)}).model == saved == read_checkpoint(
        pretrained / "checkpoints" / "best.pt")["model"]
