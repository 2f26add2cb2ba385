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


def _parsers(parser, name="galaxymorph"):
    import argparse

    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_help_shows_every_default():
    import argparse

    from galaxymorph.cli import build_parser

    missing = []
    for name, parser in _parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                    and "default" not in formatter._expand_help(action)):
                missing.append(f"{name} {action.option_strings[-1]}")
    assert missing == []
    text = build_parser()._subparsers._group_actions[0].choices["evaluate"].format_help()
    assert "which split to score (default: test)" in " ".join(text.split())


def test_routine_library_warnings_are_hidden_unless_verbose(tmp_path, monkeypatch):
    import warnings

    import numpy as np
    from PIL import Image

    import galaxymorph.data.synthetic as synthetic
    from galaxymorph.cli import main

    def noisy_synthesize(out, **kwargs):
        warnings.warn("Image size (95000000 pixels) exceeds limit of 89478485 pixels, could be decompression "
                      "bomb DOS attack.", Image.DecompressionBombWarning)
        with np.errstate(divide="warn", invalid="warn"):
            np.float64(0.0) / np.float64(0.0)
        warnings.warn("something new", DeprecationWarning)  # not a known one: shown
        return out

    monkeypatch.setattr(synthetic, "synthesize", noisy_synthesize)
    for args, expected in ((["data", "synth"], ["something new"]),
                           (["-v", "data", "synth"], ["Image size", "invalid value", "something new"])):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert main([*args, "--out", str(tmp_path / "x.h5")]) == 0
        shown = [str(w.message) for w in seen]
        assert len(shown) == len(expected) and all(s.startswith(e) for s, e in zip(shown, expected)), shown
