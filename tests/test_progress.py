"""Progress: one line per stage in a log (not a bar per update), nothing with --quiet."""

from __future__ import annotations

from galaxymorph.cli import main
from galaxymorph.progress import progress_bar


def test_in_a_log_a_bar_becomes_one_line_at_the_end(monkeypatch, capsys):
    monkeypatch.delenv("GALAXYMORPH_NO_PROGRESS", raising=False)  # capsys: stderr is not a terminal
    assert sum(progress_bar(range(50), desc="load train", unit="img")) == sum(range(50))
    with progress_bar(total=3, desc="synth", unit="img") as bar:
        for _ in range(3):
            bar.update(1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("load train: 50/50 img in ") and lines[1].startswith("synth: 3/3 img in ")


def test_data_prepare_says_what_it_does_and_quiet_silences_it(tiny_h5, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GALAXYMORPH_NO_PROGRESS", raising=False)  # restored after the test
    assert main(["data", "prepare", str(tiny_h5), "--out", str(tmp_path / "a.json")]) == 0
    assert "splitting" in capsys.readouterr().err
    assert main(["--quiet", "data", "prepare", str(tiny_h5), "--out", str(tmp_path / "b.json")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "wrote" in captured.out
