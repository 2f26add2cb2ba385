"""The command line: one-line errors, --verbose tracebacks, data info and prepare."""

import json
import subprocess
import sys

import pytest

from galaxymorph.cli import build_parser, main


def test_every_subcommand_is_there():
    parser = build_parser()
    for argv in (["data", "fetch"], ["data", "info", "f"], ["data", "synth", "--out", "f"],
                 ["data", "import", "s", "--out", "f"], ["data", "prepare", "f", "--out", "m"],
                 ["train"], ["evaluate", "r"], ["explain", "r"], ["predict", "r", "x", "--out", "c"],
                 ["report", "r"], ["run"]):
        assert callable(parser.parse_args(argv).handler)


def test_user_error_is_one_line_without_traceback(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "missing.h5")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"galaxymorph: error: data file not found: {tmp_path / 'missing.h5'}"


def test_verbose_shows_the_traceback(tmp_path, capsys):
    assert main(["--verbose", "data", "info", str(tmp_path / "missing.h5")]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_bad_option_value_names_it(capsys):
    assert main(["train", "--classes", "2", "42"]) == 2
    assert "unknown class id 42" in capsys.readouterr().err


def test_data_info_prints_counts_and_writes_a_grid(tiny_h5, tmp_path, capsys):
    grid = tmp_path / "grid.png"
    assert main(["data", "info", str(tiny_h5), "--grid", str(grid), "--n", "3"]) == 0
    out = capsys.readouterr().out
    assert "Round Smooth" in out and "20" in out and "sha256" in out
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("n", ["0", "-1"])
def test_data_info_refuses_a_grid_of_no_examples(tiny_h5, tmp_path, capsys, n):
    grid = tmp_path / "grid.png"
    assert main(["data", "info", str(tiny_h5), "--grid", str(grid), "--n", n]) == 2  # -1 was a ValueError
    assert capsys.readouterr().err.strip() == f"galaxymorph: error: --n (examples per class in the grid) must be " \
                                              f"at least 1, got {n}"
    assert not grid.exists()  # 0 wrote a grid without images


def test_data_prepare_writes_the_manifest(tiny_h5, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["data", "prepare", str(tiny_h5), "--out", str(out), "--fractions", "0.5", "0.25", "0.25"]) == 0
    manifest = json.loads(out.read_text())
    assert manifest["fractions"] == [0.5, 0.25, 0.25]
    assert sum(len(v) for v in manifest["splits"].values()) == 40
    assert "train" in capsys.readouterr().out


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "galaxymorph", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("galaxymorph ")


@pytest.mark.parametrize("name", ["load_model", "train", "evaluate", "synthesize", "fetch"])
def test_api_mirrors_cli(name):
    import galaxymorph

    assert callable(getattr(galaxymorph, name))


def test_an_output_path_that_is_a_folder_is_one_line(tiny_h5, tmp_path, capsys):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert main(["data", "prepare", str(tiny_h5), "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a folder; give the path of a file" in err
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["a-folder", "tiny.h5"]


def test_a_class_too_small_to_split_is_named(tmp_path, capsys):
    import numpy as np

    from galaxymorph.data.galaxy10 import write_galaxy10

    path = write_galaxy10(tmp_path / "few.h5", np.zeros((5, 256, 256, 3), np.uint8), [2, 2, 5, 5, 5])
    assert main(["data", "prepare", str(path), "--out", str(tmp_path / "m.json")]) == 2
    assert "class 2 (Round Smooth) has only 2 image(s)" in capsys.readouterr().err


def test_bad_yaml_config_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1\n")
    assert main(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot parse config file" in err


def test_help_shows_defaults(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    from galaxymorph import Config

    assert f"(default: {Config().epochs})" in out and "(default: 'default')" in out and "(default: 2 5)" in out


@pytest.mark.parametrize("argv", [["train"], ["data", "synth"], ["data", "prepare"]])
def test_help_shows_each_default_once(argv, capsys):
    with pytest.raises(SystemExit):
        main(argv + ["--help"])
    out = " ".join(capsys.readouterr().out.split())
    classes = out[out.rindex("--classes "):]  # 'train' said (default: 2 5) (default: [2, 5])
    assert classes[:classes.index("--", 3)].count("(default:") == 1
    assert "(default: 2 5)" in classes


@pytest.mark.parametrize("argv", [["train", "--resume", "nowhere/run"], ["run", "--resume", "nowhere/run"],
                                  ["predict", "nowhere/run", "x.png", "--out", "p.csv"]])
def test_a_missing_run_folder_is_named(argv, capsys):
    assert main(argv) == 2
    assert "not found" in capsys.readouterr().err


def test_a_folder_that_is_not_a_run_is_named_alike_by_every_command(tmp_path, capsys):
    """evaluate said 'not a run folder'; explain and predict 'checkpoint not found: X/checkpoints/best.pt'."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "x.png").write_bytes(b"")
    errors = []
    for argv in (["evaluate", str(folder)], ["explain", str(folder)],
                 ["predict", str(folder), str(folder / "x.png"), "--out", str(tmp_path / "p.csv")]):
        assert main(argv) == 2
        errors.append(capsys.readouterr().err)
    assert errors[0].count("\n") == 1 and "not a galaxymorph run folder" in errors[0]
    assert errors == [errors[0]] * 3


def test_importing_the_package_and_the_cli_loads_no_heavy_library():
    """``import galaxymorph`` and the parser behind ``--help`` load neither torch nor numpy/h5py."""
    code = ("import sys, galaxymorph, galaxymorph.cli; galaxymorph.cli.build_parser(); "
            "print(galaxymorph.__version__); "
            "print(' '.join(m for m in ('torch', 'numpy', 'h5py', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    version, loaded = out.stdout.split("\n")[:2]
    assert version and loaded == ""


def test_api_names_are_the_functions_even_after_their_modules_load():
    import importlib

    import galaxymorph

    importlib.import_module("galaxymorph.training.loop")
    assert callable(galaxymorph.train) and galaxymorph.train.__name__ == "train"


@pytest.mark.parametrize("action", ["synth", "import", "prepare"])
def test_data_commands_refuse_an_existing_out_file_before_any_work(action, tiny_h5, tmp_path, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the --out file was checked")

    for target in ("galaxymorph.data.synthetic.synthesize", "galaxymorph.data.importers.import_images",
                   "galaxymorph.data.splits.prepare"):
        monkeypatch.setattr(target, no_work)
    out = tmp_path / "precious.out"
    out.write_text("keep me")
    argv = {"synth": ["data", "synth"], "import": ["data", "import", str(tmp_path)],
            "prepare": ["data", "prepare", str(tiny_h5)]}[action] + ["--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists; add --overwrite" in err
    assert out.read_text() == "keep me"


def test_data_prepare_overwrite_replaces_the_file(tiny_h5, tmp_path):
    out = tmp_path / "m.json"
    out.write_text("old")
    assert main(["data", "prepare", str(tiny_h5), "--out", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["splits"]


def test_data_prepare_rejects_a_bad_class_id_before_reading_the_file(tmp_path, capsys):
    from galaxymorph.cli import main

    assert main(["data", "prepare", str(tmp_path / "absent.h5"), "--out", str(tmp_path / "m.json"),
                 "--classes", "2", "11"]) == 2
    err = capsys.readouterr().err
    assert "unknown class id 11" in err and "splitting" not in err


@pytest.mark.parametrize("argv, what", [
    (["train", "--config", "{folder}"], "config file"),
    (["train", "--data", "{data}", "--manifest", "{folder}", "--out", "{tmp}/run"], "split manifest"),
    (["data", "import", "{folder}", "--out", "{tmp}/x.h5", "--catalog", "{folder}"], "catalogue"),
])
def test_a_folder_where_a_file_belongs_is_named_as_such(tiny_h5, tmp_path, capsys, argv, what):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    argv = [a.format(folder=folder, data=tiny_h5, tmp=tmp_path) for a in argv]
    assert main(argv) == 2  # said "... not found: a_folder" for a folder that is there
    assert capsys.readouterr().err.strip() == f"galaxymorph: error: {what} {folder} is a folder, not a file"
    assert not (tmp_path / "run").exists() and not (tmp_path / "x.h5").exists()  # nothing written


def test_weights_that_name_a_folder(tmp_path):
    from galaxymorph.errors import DataError
    from galaxymorph.models import build_model, load_weights

    with pytest.raises(DataError, match=r"--weights file .* is a folder, not a file"):
        load_weights(build_model("seed", [2, 5]), tmp_path)


def test_every_command_checks_first_that_it_can_write_and_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    """A read-only output folder (or a full disk): one line naming it, before any work; no traceback."""
    import errno

    from conftest import make_blobs
    from galaxymorph import fileio
    from galaxymorph.data.galaxy10 import write_galaxy10
    from helpers_runs import make_run, write_data
    from test_fileio import ReadOnlyBelow

    data = write_data(tmp_path / "data.h5", n_per_class=12)
    run = make_run(tmp_path / "run", data, steps=2)
    (tmp_path / "images" / "round").mkdir(parents=True)
    write_galaxy10(tmp_path / "new.h5", make_blobs([0, 1]), [2, 5])

    def no_work(*args, **kwargs):
        raise AssertionError("worked before checking that the output can be written")

    monkeypatch.setattr("galaxymorph.evaluation.run.predict_selection", no_work)
    monkeypatch.setattr("galaxymorph.explain.run.predict_selection", no_work)
    monkeypatch.setattr("galaxymorph.models.Classifier.predict_proba", no_work)
    monkeypatch.setattr("galaxymorph.report.build_html", no_work)
    monkeypatch.setattr("galaxymorph.data.synthetic._rendered_chunks", no_work)
    monkeypatch.setattr("galaxymorph.data.splits.prepare", no_work)
    monkeypatch.setattr("galaxymorph.runs.prepare", no_work)  # train and run split the data through runs

    ro = tmp_path / "ro"  # below it, nothing can be written
    ro.mkdir()
    train = ["--data", str(data), "--epochs", "1", "--device", "cpu", "--out", str(ro / "run")]
    commands = {
        "train": ["train", *train], "run": ["run", *train],
        "predict": ["predict", str(run), str(tmp_path / "new.h5"), "--out", str(ro / "p.csv")],
        "synth": ["data", "synth", "--out", str(ro / "sky.h5")],
        "import": ["data", "import", str(tmp_path / "images"), "--out", str(ro / "i.h5")],
        "prepare": ["data", "prepare", str(data), "--out", str(ro / "m.json")],
        "info": ["data", "info", str(data), "--grid", str(ro / "grid.png")],
        "report --screenshot": ["report", str(run), "--screenshot", str(ro / "page.png")],
    }
    for code, says in ((errno.EROFS, "Read-only file system"), (errno.ENOSPC, "disk full: no space left in")):
        monkeypatch.setattr(fileio, "tempfile", ReadOnlyBelow(ro, code))
        for name, argv in commands.items():
            assert main(argv) == 2, name
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and says in err and str(ro) in err, (name, err)
        monkeypatch.setattr(fileio, "tempfile", ReadOnlyBelow(run, code))  # the run folder itself
        for name in ("evaluate", "explain", "report"):
            assert main([name, str(run)]) == 2, name
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and says in err and str(run) in err, (name, err)
    assert list(ro.iterdir()) == []
