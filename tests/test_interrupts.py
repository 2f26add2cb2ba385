"""Ctrl-C: every command stops with exit status 130 and leaves no half-written file."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from galaxymorph import cli
from galaxymorph.fileio import write_text

from helpers_runs import make_run, write_data

SRC = str(Path(__file__).resolve().parents[1] / "src")


class _Finalized:
    pass


@pytest.fixture(autouse=True)
def ctrl_c_as_from_a_terminal():
    """In-process tests need Python's own SIGINT handler, as a terminal gives it; a test runner
    started in the background (as CI may be) inherits SIGINT ignored, which galaxymorph keeps."""
    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, saved)


def _sigint_inside_a_finalizer() -> None:
    """A SIGINT that arrives while a weakref finalizer runs: Python prints "Exception ignored"
    and goes on, as happens at random when Ctrl-C lands in numpy/torch/h5py clean-up code."""
    obj = _Finalized()
    weakref.finalize(obj, signal.raise_signal, signal.SIGINT)
    del obj
    gc.collect()


def test_an_interrupt_swallowed_by_a_finalizer_still_stops_the_command(tmp_path, monkeypatch, capsys):
    import galaxymorph.data.synthetic as synthetic

    def fake_synthesize(out, **kwargs):
        _sigint_inside_a_finalizer()
        return write_text(out, "finished\n")

    monkeypatch.setattr(synthetic, "synthesize", fake_synthesize)
    out = tmp_path / "sky.h5"
    assert cli.main(["data", "synth", "--out", str(out)]) == 130
    assert not out.exists() and list(tmp_path.iterdir()) == []
    err = capsys.readouterr().err
    assert "galaxymorph: interrupted" in err and "Exception ignored" not in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored after main


def test_an_interrupt_swallowed_after_the_last_write_still_exits_130(monkeypatch):
    import galaxymorph.data.synthetic as synthetic

    monkeypatch.setattr(synthetic, "synthesize", lambda out, **kwargs: _sigint_inside_a_finalizer() or out)
    assert cli.main(["data", "synth", "--out", "unused.h5"]) == 130


def _interrupt(cmd: list[str], ready, delay: float, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``galaxymorph CMD`` in its own process group, wait until ``ready(stderr_so_far)``
    is true, then ``delay`` seconds, and send SIGINT to the whole group, as a terminal does."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1",
               GALAXYMORPH_NO_PROGRESS="0")
    proc = subprocess.Popen([sys.executable, "-m", "galaxymorph", *cmd], cwd=cwd, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # as from a terminal, even where this test runs with SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 20
    while not ready("".join(err)) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    out = proc.stdout.read()
    proc.wait(timeout=30)
    reader.join(timeout=5)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "".join(err))


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.is_file()]


def _has_temp_file(folder: Path):
    return lambda err: bool(_leftovers(folder))


@pytest.mark.parametrize("delay", [0.0, 0.5])
def test_ctrl_c_stops_data_synth(tmp_path, delay):
    out = tmp_path / "sky.h5"
    done = _interrupt(["data", "synth", "--out", str(out), "--n-per-class", "400", "--workers", "2"],
                      _has_temp_file(tmp_path), delay, tmp_path)
    assert done.returncode == 130, done.stderr
    assert not out.exists() and _leftovers(tmp_path) == []
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("delay", [0.0, 0.2])
def test_ctrl_c_stops_data_import(tmp_path, delay):
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    for c in (2, 5):
        (src / str(c)).mkdir(parents=True)
        for i in range(200):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(src / str(c) / f"{i}.png")
    out = tmp_path / "out" / "imported.h5"
    out.parent.mkdir()
    done = _interrupt(["data", "import", str(src), "--out", str(out)], _has_temp_file(out.parent), delay, tmp_path)
    assert done.returncode == 130, done.stderr
    assert not out.exists() and _leftovers(out.parent) == []
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt")
    return make_run(root / "run", write_data(root / "data.h5", n_per_class=24), steps=2)


@pytest.mark.parametrize("delay", [0.1])
def test_ctrl_c_stops_evaluate(run_dir, tmp_path, delay):
    done = _interrupt(["evaluate", str(run_dir), "--threads", "1"], lambda err: "evaluate test" in err,
                      delay, tmp_path)
    assert done.returncode == 130, done.stderr
    assert _leftovers(run_dir) == []
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr


def test_what_an_interrupt_handler_writes_is_kept(tmp_path):
    """Training records status "interrupted" in run.json from its except block: that write stays."""
    from galaxymorph.interrupts import handling_interrupts

    with handling_interrupts():
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            write_text(tmp_path / "run.json", '{"status": "interrupted"}')
    assert (tmp_path / "run.json").read_text() == '{"status": "interrupted"}'


def test_a_process_started_deaf_to_ctrl_c_stays_so():
    from galaxymorph.interrupts import handling_interrupts

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with handling_interrupts():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
