"""The one typed config: defaults < preset < file < CLI, saved and read back exactly."""

import pytest

from galaxymorph.config import Config
from galaxymorph.errors import GalaxymorphError


def test_precedence_defaults_preset_file_cli(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('preset = "seed"\nepochs = 5\nbatch_size = 16\n')
    cfg = Config.resolve(f, {"batch_size": 4, "lr": None})
    assert cfg.model == "seed" and cfg.optimizer == "adam"  # from the preset
    assert cfg.epochs == 5  # the file beats the preset
    assert cfg.batch_size == 4  # the CLI beats the file
    assert cfg.lr == 1e-3  # None means "not given"


def test_seed_preset_is_the_reference_recipe():
    cfg = Config.resolve(overrides={"preset": "seed"})
    assert (cfg.model, cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == ("seed", "adam", 1e-3, 8, 30)
    assert (cfg.augment, cfg.rotation, cfg.zoom) == ("seed", 0.1, 0.2)


def test_saved_toml_reads_back_equal(tmp_path):
    cfg = Config.resolve(overrides={"classes": [5, 2, 7], "epochs": 3, "amp": False})
    cfg.save(tmp_path / "config.toml")
    assert Config.resolve(tmp_path / "config.toml") == cfg


def test_yaml_files_work(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("classes: [0, 1, 2]\nlr: 0.01\n")
    cfg = Config.resolve(f)
    assert cfg.classes == [0, 1, 2] and cfg.lr == 0.01


@pytest.mark.parametrize("overrides, message", [
    ({"classes": [2, 12]}, "unknown class id 12"),
    ({"fractions": [0.5, 0.5, 0.5]}, "--fractions"),
    ({"optimizer": "sgd"}, "--optimizer must be one of"),
    ({"epochs": 0}, "--epochs must be at least 1"),
    ({"preset": "fast"}, "unknown preset 'fast'"),
    ({"nonsense": 1}, "unknown config key"),
    ({"epochs": "many"}, "cannot read 'many' as int"),
])
def test_bad_values_are_named(overrides, message):
    with pytest.raises(GalaxymorphError, match=message):
        Config.resolve(overrides=overrides)


def test_bad_config_file(tmp_path):
    with pytest.raises(GalaxymorphError, match="not found"):
        Config.resolve(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("epochs = = 3")
    with pytest.raises(GalaxymorphError, match="cannot parse"):
        Config.resolve(tmp_path / "bad.toml")
