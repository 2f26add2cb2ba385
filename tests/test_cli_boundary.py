"""The command line's edges: a closed stdout pipe, help texts, library warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _galaxymorph(args, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "galaxymorph", *args], env=env, **kwargs)


def test_a_closed_stdout_pipe_ends_quietly(tiny_h5, tmp_path):
    """``galaxymorph data info x.h5 | head -1``: the reader is gone before the output is written."""
    proc = _galaxymorph(["data", "info", str(tiny_h5), "--grid", str(tmp_path / "grid.png")],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # no reader left: writing to stdout fails with EPIPE
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert err == "", err
