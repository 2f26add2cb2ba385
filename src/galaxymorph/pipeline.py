"""``galaxymorph run``: the main job, every stage in order, into one run folder.

data (synthetic sky, the real Galaxy10 file, or a given file) -> split -> train -> evaluate
-> explain -> report. Each stage writes its own files, so an interrupted run continues with
``run --resume RUN_DIR`` from the first stage whose output is missing.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from .config import Config
from .errors import GalaxymorphError
from .evaluation import evaluate
from .explain.run import explain_run
from .fileio import read_json
from .progress import status
from .report import write_report
from .rundir import RunFolder
from .runs import (check_run_dir, claim_run_dir, needs_training, outdated_outputs, read_run_json, release_run_dir,
                   resume_config, update_run_json)
from .training import train


def run(config: Config | Mapping[str, Any] | None, out: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None, overwrite: bool = False, progress: bool = True) -> Path:
    """Run every stage; returns the run folder, which ends with ``report.html``.

    A folder that already holds a run is refused unless ``overwrite``. ``resume`` continues a
    run: training where it stopped (or further, when ``config`` raises ``epochs``), then each
    stage whose output is missing or older than the training. With ``resume``, ``config`` is
    None, a mapping of changed settings, or a Config (see :func:`runs.resume_config`).
    """
    if resume is not None:
        run_dir = Path(resume)
        config = resume_config(run_dir, config)
    else:
        if config is None:
            raise GalaxymorphError("run needs a config or --resume RUN_DIR")
        run_dir = check_run_dir(out, config, overwrite)  # (a default name is fixed here, once)
    claim_run_dir(run_dir)  # every stage under one claim: no other process works in this folder meanwhile
    try:
        return _run_stages(config, run_dir, resume, overwrite, progress)
    finally:
        release_run_dir(run_dir)


def _run_stages(config: Config, run_dir: Path, resume, overwrite: bool, progress: bool) -> Path:
    trained = True
    if resume is not None:
        trained = needs_training(run_dir, config)
        if trained:
            _stage("train", run_dir, lambda: train(config, resume=run_dir, progress=progress))
    else:
        _stage("train", run_dir, lambda: train(config, out=run_dir, overwrite=overwrite, progress=progress))

    outdated = outdated_outputs(run_dir)  # made for an earlier model (train --resume found a better one)
    files = RunFolder(run_dir)
    if trained or outdated["metrics"] or not files.metrics_path.is_file():
        _stage("evaluate", run_dir, lambda: evaluate(run_dir, split="test", progress=progress))
    # a decision-tree model is explained one answer at a time (explain --answer): no default stage
    tree = (read_json(files.manifest_path) or {}).get("targets") == "tree"
    if not tree and (trained or outdated["explain"] or not files.explain_json_path.is_file()):
        _stage("explain", run_dir, lambda: explain_run(run_dir, split="test", progress=progress))
    _stage("report", run_dir, lambda: write_report(run_dir))
    return run_dir


def _stage(name: str, run_dir: Path, work: Callable[[], object]) -> None:
    """Run one stage, say so on stderr, and record how long it took in run.json."""
    status(f"galaxymorph: {name} ...")
    start = time.perf_counter()
    try:
        work()
    except KeyboardInterrupt:
        if RunFolder(run_dir).last_checkpoint.is_file():
            advice = f"continue with: galaxymorph run --resume {run_dir}"
        else:  # stopped before the first checkpoint: train removed its half-made folder, if any
            advice = "nothing was saved yet, so there is nothing to resume; run the same command again"
        print(f"galaxymorph: interrupted during {name}; {advice}", file=sys.stderr)
        raise
    timings = read_run_json(run_dir).get("timings", {})
    update_run_json(run_dir, timings={**timings, name: round(time.perf_counter() - start, 2)})
