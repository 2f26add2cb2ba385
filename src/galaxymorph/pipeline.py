"""``galaxymorph run``: the main job, every stage in order, into one run folder.

data (synthetic sky, the real Galaxy10 file, or a given file) -> split -> train -> evaluate
-> explain -> report. Each stage writes its own files, so an interrupted run continues with
``run --resume RUN_DIR`` from the first stage whose output is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from .config import Config
from .errors import GalaxymorphError
from .fileio import write_json


def default_run_dir(config: Config) -> Path:
    """``runs/<date>-<time>-<model>-<classes>``: a new folder for every run."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config.model}-{'v'.join(str(c) for c in config.classes)}"


def _claim_folder(run_dir: Path, overwrite: bool) -> None:
    """Refuse to run into a used folder unless asked to overwrite it."""
    if run_dir.exists() and not run_dir.is_dir():
        raise GalaxymorphError(f"{run_dir} exists and is not a folder")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise GalaxymorphError(
                f"run folder {run_dir} already holds a run; use --resume {run_dir} to continue it "
                "or --overwrite to replace it")
        shutil.rmtree(run_dir)


def _record_timing(run_dir: Path, stage: str, seconds: float) -> None:
    path = run_dir / "run.json"
    run = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    run.setdefault("timings", {})[stage] = round(seconds, 2)
    write_json(path, run)


def _training_complete(run_dir: Path) -> bool:
    path = run_dir / "run.json"
    return path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("status") == "complete"


def run(config: Config | None, out: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
        overwrite: bool = False, progress: bool = True) -> Path:
    """Run every stage; returns the run folder, which ends with ``report.html``."""
    from .evaluate import evaluate
    from .explain.run import explain_run
    from .report import write_report
    from .train import train

    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.toml").is_file():
            raise GalaxymorphError(f"cannot resume: {run_dir} is not a galaxymorph run folder (no config.toml)")
        if not _training_complete(run_dir):
            _stage("train", run_dir, lambda: train(None, resume=run_dir, progress=progress))
    else:
        if config is None:
            raise GalaxymorphError("run needs a config or --resume RUN_DIR")
        run_dir = Path(out) if out is not None else default_run_dir(config)
        _claim_folder(run_dir, overwrite)
        _stage("train", run_dir, lambda: train(config, out=run_dir, progress=progress))

    if resume is None or not (run_dir / "eval" / "metrics.json").is_file():
        _stage("evaluate", run_dir, lambda: evaluate(run_dir, split="test", progress=progress))
    if resume is None or not (run_dir / "explain" / "explain.json").is_file():
        _stage("explain", run_dir, lambda: explain_run(run_dir, split="test", progress=progress))
    _stage("report", run_dir, lambda: write_report(run_dir))
    return run_dir


def _stage(name: str, run_dir: Path, work) -> None:
    """Run one stage, say so on stderr, and record how long it took in run.json."""
    import sys

    print(f"galaxymorph: {name} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        work()
    except KeyboardInterrupt:
        print(f"galaxymorph: interrupted during {name}; continue with: galaxymorph run --resume {run_dir}",
              file=sys.stderr)
        raise
    _record_timing(run_dir, name, time.perf_counter() - start)
