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


@pytest.mark.parametrize("values, message", [
    ({"lr": True}, "'lr': cannot read True as float"),  # was silently lr = 1.0
    ({"epochs": True}, "'epochs': cannot read True as int"),  # was silently 1 epoch
    ({"epochs": 2.7}, "'epochs': cannot read 2.7 as int"),  # was silently 2
    ({"epochs": float("inf")}, "'epochs': cannot read inf as int"),  # was an OverflowError
    ({"amp": 1.5}, "'amp': cannot read 1.5 as bool"),  # was silently True
    ({"data": 5}, "'data': cannot read 5 as str"),
    ({"classes": [2.5, 5]}, "'classes': cannot read"),  # was silently [2, 5]
])
def test_config_values_of_the_wrong_type_are_refused(values, message):
    with pytest.raises(GalaxymorphError, match=message):
        Config.from_dict(values)


def test_config_values_that_mean_the_same_are_read():
    cfg = Config.from_dict({"epochs": "3", "lr": 1, "amp": "no", "channels_last": 0, "classes": ["2", "5"],
                            "patience": 4.0})
    assert (cfg.epochs, cfg.lr, cfg.amp, cfg.channels_last, cfg.classes, cfg.patience) == (3, 1.0, False, False,
                                                                                         [2, 5], 4)
    assert isinstance(cfg.lr, float) and isinstance(cfg.patience, int)


@pytest.mark.parametrize("overrides, message", [
    ({"seed": -1}, "--seed must be >= 0"),  # was a numpy traceback
    ({"threads": -2}, "--threads must be >= 0"),  # was silently one thread per core
    ({"weight_decay": -0.1}, "--weight-decay must be >= 0"),  # was silently accepted
    ({"zoom": -1.0}, "--zoom must be >= 0"),  # was a ValueError traceback after loading the data
    ({"shift": -0.1}, "--shift must be >= 0"),
    ({"rotation": float("nan")}, "--rotation must be a finite number"),
    ({"zoom": 1.0}, "--zoom must be below 1"),
    ({"shift": 0.5}, "--shift must be below 0.5"),  # had no upper bound: 3.0 moved the galaxy out of view
    ({"lr": float("nan")}, "--lr must be a finite number"),
    ({"lr": 0.0}, "--lr must be a positive number"),
    ({"class_weight": "equal"}, "--class-weight must be one of"),  # was spelled --class_weight
])
def test_settings_out_of_range_are_named_before_any_work(overrides, message):
    with pytest.raises(GalaxymorphError, match=message):
        Config.resolve(overrides=overrides)


def test_a_binary_config_file_is_a_one_line_error(tmp_path):
    f = tmp_path / "c.toml"
    f.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(GalaxymorphError, match="cannot parse config file"):  # was a UnicodeDecodeError
        Config.resolve(f)


@pytest.mark.parametrize("overrides, message", [
    ({"weight_decay": float("inf")}, "--weight-decay must be a finite number"),  # trained, wrote unreadable TOML
    ({"rotation": float("inf")}, "--rotation must be a finite number"),
    ({"fractions": [float("nan"), 0.5, 0.5]}, "--fractions must be a finite number"),  # was a 2/2/116 split
    ({"lr": float("-inf")}, "--lr must be a finite number"),
    ({"ema": float("nan")}, "--ema must be a finite number"),
    ({"threads": 100000}, "--threads must be between 0"),  # torch crashed
    ({"seed": 2**70}, "--seed must be between 0 and 2"),  # a traceback; TOML cannot hold it either
])
def test_non_finite_and_huge_settings_are_refused(overrides, message):
    with pytest.raises(GalaxymorphError, match=message) as err:
        Config.resolve(overrides=overrides)
    assert "\n" not in str(err.value)


def test_nan_in_a_config_file_is_refused(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("weight_decay = nan\n")  # TOML has nan and inf literals
    with pytest.raises(GalaxymorphError, match="--weight-decay must be a finite number"):
        Config.resolve(f)


def test_the_largest_seed_still_saves_as_readable_toml(tmp_path):
    cfg = Config.resolve(overrides={"seed": 2**63 - 1})
    cfg.save(tmp_path / "config.toml")
    assert Config.resolve(tmp_path / "config.toml") == cfg


def test_a_preset_is_applied_or_refused_never_silently_ignored():
    import pytest

    from galaxymorph.config import Config
    from galaxymorph.errors import GalaxymorphError

    with pytest.raises(GalaxymorphError, match="Config.resolve"):
        Config(preset="seed").validate()  # used to validate and train the default model
    with pytest.raises(GalaxymorphError, match="unknown preset"):
        Config(preset="keras").validate()
    applied = Config.resolve(overrides={"preset": "seed"})
    assert applied.model == "seed" and applied.batch_size == 8 and applied.optimizer == "adam"
