"""The run folder as one object: the contract between the stages (docs/architecture.md).

:class:`RunFolder` is the one place that knows where each artefact of a run folder lies, and
holds the one writer and the one reader of each file format that one stage writes and another
reads: ``config.toml``, ``run.json``, ``environment.json``, ``history.csv``,
``eval/metrics.json``, ``eval/predictions.csv`` and ``explain/explain.json``. The other files
(``manifest.json``, ``train_galaxies.npz``, the checkpoints, ``eval/tree_predictions.csv``,
``report.html``, the lock file) have their path here and their format with the module that
owns it (:mod:`.data.splits`, :mod:`.trained_on`, :mod:`.models.checkpoints`, ...).

A stage takes the run folder (or what it needs from it) as arguments and reads another stage's
file through these functions, never by a path string of its own. Low in the layers: it needs
only the config, the errors and the file helpers, so every stage may import it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .errors import GalaxymorphError
from .fileio import atomic_path, read_json, write_json, write_text

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


@dataclass(frozen=True)
class Predictions:
    """``eval/predictions.csv``: one row per scored image, in the order evaluate scored them.

    ``index``: the image's index in the data file; ``true`` and ``predicted``: class ids;
    ``probs``: (n, k) probabilities, column j for ``class_ids[j]``.
    """

    index: "np.ndarray"
    true: "np.ndarray"
    predicted: "np.ndarray"
    probs: "np.ndarray"
    class_ids: list[int]

    @property
    def labels(self) -> "np.ndarray":
        """The true classes as positions 0..k-1 in ``class_ids`` (the model's label encoding)."""
        lookup = {c: i for i, c in enumerate(self.class_ids)}
        return np.array([lookup[int(c)] for c in self.true], dtype=np.int64)

    def sorted_by_index(self) -> "Predictions":
        """The same rows ordered by file index."""
        order = np.argsort(self.index, kind="stable")
        return Predictions(self.index[order], self.true[order], self.predicted[order], self.probs[order],
                           self.class_ids)


@dataclass(frozen=True)
class RunFolder:
    """A run folder on disk: the path of each artefact, and the one reader and writer of each
    format stages share. ``eval_dir``: where evaluate's files are (default ``RUN_DIR/eval``;
    ``evaluate --out DIR`` writes them elsewhere)."""

    path: Path
    eval_dir: Path | None = None

    CONFIG = "config.toml"
    MANIFEST = "manifest.json"
    RUN_JSON = "run.json"
    ENVIRONMENT = "environment.json"
    HISTORY = "history.csv"
    CURVES = "curves.png"
    TRAIN_GALAXIES = "train_galaxies.npz"
    CHECKPOINTS = "checkpoints"
    BEST = "best.pt"
    LAST = "last.pt"
    EVAL = "eval"
    METRICS = "metrics.json"
    PREDICTIONS = "predictions.csv"
    TREE_PREDICTIONS = "tree_predictions.csv"
    EXAMPLES_FIGURE = "data_examples.jpg"  # training images per class, written by evaluate
    EXPLAIN = "explain"
    EXPLAIN_JSON = "explain.json"
    REPORT = "report.html"
    LOCK = ".galaxymorph.lock"  # held (flock) by the process that trains the folder

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))
        if self.eval_dir is not None:
            object.__setattr__(self, "eval_dir", Path(self.eval_dir))

    @classmethod
    def of(cls, run: "str | os.PathLike | RunFolder") -> "RunFolder":
        """``run`` as a RunFolder (a path or one already)."""
        return run if isinstance(run, RunFolder) else cls(Path(run))

    def with_eval_dir(self, eval_dir: "str | os.PathLike | None") -> "RunFolder":
        """The same run folder with evaluate's files in ``eval_dir`` (None: the default)."""
        return RunFolder(self.path, None if eval_dir is None else Path(eval_dir))

    # -- paths ------------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def manifest_path(self) -> Path:
        return self.path / self.MANIFEST

    @property
    def run_json_path(self) -> Path:
        return self.path / self.RUN_JSON

    @property
    def environment_path(self) -> Path:
        return self.path / self.ENVIRONMENT

    @property
    def history_path(self) -> Path:
        return self.path / self.HISTORY

    @property
    def curves_path(self) -> Path:
        return self.path / self.CURVES

    @property
    def train_galaxies_path(self) -> Path:
        return self.path / self.TRAIN_GALAXIES

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints_dir / self.BEST

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints_dir / self.LAST

    @property
    def eval(self) -> Path:
        """evaluate's folder: ``RUN_DIR/eval`` or the ``--out`` it was given."""
        return self.eval_dir if self.eval_dir is not None else self.path / self.EVAL

    @property
    def metrics_path(self) -> Path:
        return self.eval / self.METRICS

    @property
    def predictions_path(self) -> Path:
        return self.eval / self.PREDICTIONS

    @property
    def tree_predictions_path(self) -> Path:
        return self.eval / self.TREE_PREDICTIONS

    @property
    def examples_figure(self) -> Path:
        return self.path / self.EXAMPLES_FIGURE

    @property
    def explain_dir(self) -> Path:
        return self.path / self.EXPLAIN

    @property
    def explain_json_path(self) -> Path:
        return self.explain_dir / self.EXPLAIN_JSON

    @property
    def report_path(self) -> Path:
        return self.path / self.REPORT

    @property
    def lock_path(self) -> Path:
        return self.path / self.LOCK

    # -- config.toml -------------------------------------------------------------------------------
    def write_config(self, config: Config) -> Path:
        return config.save(self.config_path)

    def read_config(self) -> Config | None:
        """The run's Config (validated), or None when the folder has no config.toml."""
        return Config.resolve(self.config_path) if self.config_path.is_file() else None

    # -- run.json ----------------------------------------------------------------------------------
    def read_run_json(self) -> dict:
        """run.json as a dict ({} when absent); a damaged file is a one-line error."""
        path = self.run_json_path
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise GalaxymorphError(f"{path} is damaged ({exc})") from None

    def update_run_json(self, **fields) -> dict:
        """Merge ``fields`` into run.json (keeping keys other stages wrote), atomically."""
        run = self.read_run_json()
        run.update(fields)
        write_json(self.run_json_path, run, in_place_when_full=True)  # "failed" must get out
        return run

    # -- environment.json ------------------------------------------------------------------------------
    def write_environment(self, environment: dict) -> Path:
        return write_json(self.environment_path, environment)

    def read_environment(self) -> dict:
        """environment.json ({} when absent or unreadable)."""
        return _json_object(self.environment_path) or {}

    # -- history.csv -------------------------------------------------------------------------------
    def write_history(self, history: list[dict]) -> Path:
        """history.csv: one row per epoch."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({k: row[k] for k in HISTORY_COLUMNS})
        return write_text(self.history_path, buf.getvalue())

    def read_history(self) -> list[dict]:
        """history.csv back as a list of dicts of numbers ([] when absent)."""
        if not self.history_path.is_file():
            return []
        try:
            with open(self.history_path, encoding="utf-8", newline="") as fh:
                return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
                        for row in csv.DictReader(fh)]
        except (ValueError, TypeError) as exc:
            raise GalaxymorphError(f"{self.history_path} is damaged ({exc})") from None

    # -- eval/metrics.json -------------------------------------------------------------------------
    def write_metrics(self, metrics: dict) -> Path:
        return write_json(self.metrics_path, metrics)

    def read_metrics(self) -> dict | None:
        """eval/metrics.json, or None when evaluate has not written it (or it is unreadable)."""
        return _json_object(self.metrics_path)

    # -- eval/predictions.csv ----------------------------------------------------------------------
    def write_predictions(self, predictions: Predictions) -> Path:
        """One row per scored image; ``explain`` reuses these probabilities instead of predicting again."""
        p = predictions
        with atomic_path(self.predictions_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["index", "true", "predicted"] + [f"prob_{c}" for c in p.class_ids])
            # numbers only (file index, class ids, full-precision probabilities): no cell a
            # spreadsheet could take for a formula (text cells go through fileio.spreadsheet_safe)
            for i, t, k, row in zip(p.index, p.true, p.predicted, p.probs):
                writer.writerow([int(i), int(t), int(k)] + [repr(float(v)) for v in row])
        return self.predictions_path

    def read_predictions(self) -> Predictions:
        """eval/predictions.csv as written; a missing or damaged file is a one-line error."""
        path = self.predictions_path
        if not path.is_file():
            raise GalaxymorphError(f"no {path}: run 'galaxymorph evaluate {self.path}' first")
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                header = next(reader)
                rows = list(reader)
            if header[:3] != ["index", "true", "predicted"] or not all(h.startswith("prob_") for h in header[3:]):
                raise ValueError(f"unexpected columns {header}")
            class_ids = [int(h.removeprefix("prob_")) for h in header[3:]]
            table = np.array(rows, dtype=object).reshape(len(rows), len(header))
            return Predictions(index=table[:, 0].astype(np.int64), true=table[:, 1].astype(np.int64),
                               predicted=table[:, 2].astype(np.int64),
                               probs=table[:, 3:].astype(np.float64).reshape(len(rows), len(class_ids)),
                               class_ids=class_ids)
        except (StopIteration, ValueError, TypeError) as exc:
            raise GalaxymorphError(f"{path} is damaged ({exc})") from None

    # -- explain/explain.json ----------------------------------------------------------------------
    def write_explain(self, summary: dict) -> Path:
        return write_json(self.explain_json_path, summary)

    def read_explain(self) -> dict | None:
        """explain/explain.json, or None when explain has not written it (or it is unreadable)."""
        return _json_object(self.explain_json_path)


def _json_object(path: Path) -> dict | None:
    """An optional JSON file of the run folder as a dict; None when absent, damaged or not an object."""
    value = read_json(path)
    return value if isinstance(value, dict) else None
