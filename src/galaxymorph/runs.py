"""Run folders and the data behind them: the one place that creates, reopens and resumes a run.

Used by ``train`` (:mod:`galaxymorph.training.loop`), ``galaxymorph run`` and every stage after
training.

- :func:`resolve_data` turns ``config.data`` into a Galaxy10-layout file on disk. The synthetic
  sky is rendered once and cached in ``<data dir>/synthetic/`` under a name made of everything
  that decides its pixels (classes, images per class, seed, difficulty), so a second run with
  the same settings reuses it; ``<data dir>`` is ``$GALAXYMORPH_DATA`` or the user cache
  (``galaxymorph.data.download.default_data_dir``).
- :func:`resolve_manifest` gives the split manifest: the one named in the config (checked
  against the data file's SHA-256) or a fresh stratified split.
- :func:`create_run` makes a new run folder with its first files; :func:`resume_config` and
  :func:`reopen_for_training` continue one; :func:`open_run` reads a trained one.
- :func:`environment_info`: versions and hardware for ``environment.json``. Where each file of a
  run folder lies, and how the files stages share are written and read, is
  :class:`galaxymorph.rundir.RunFolder` (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from ._version import __version__
from .config import CONFIG_HEADER, Config
from .data.download import default_data_dir, fetch
from .data.galaxy10 import CLASS_NAMES, folder_given, label_positions, open_galaxy10
from .data.scale import file_scale
from .data.splits import check_manifest_matches, load_manifest, prepare, split_indices
from .data.synthetic import GENERATOR_VERSION, synthesize
from .errors import DataError, GalaxymorphError
from .fileio import atomic_path, check_writable_folder, sha256_file, write_error, write_json
from .run_names import SHIPPED_RUNS, not_a_run_folder
from .rundir import RunFolder
from .votes import split_soft_targets

try:
    import fcntl
except ImportError:  # no flock (Windows): a claim is not enforced there
    fcntl = None

RESUMABLE_CHANGES = ("epochs", "patience", "device", "threads", "tta", "compile")  # may differ on --resume


# -- data -------------------------------------------------------------------------------------
def synthetic_path(config: Config) -> Path:
    """The cache file of the synthetic sky for this config's classes, size, seed and difficulty.

    The generator's version is part of the name, so a changed renderer never serves old pixels.
    """
    version = GENERATOR_VERSION.rsplit("/", 1)[-1]
    classes = "-".join(str(c) for c in config.classes)
    name = f"sky-v{version}-c{classes}-n{config.n_per_class}-s{config.seed}-d{config.difficulty:g}.h5"
    return Path(default_data_dir()) / "synthetic" / name


def resolve_data(config: Config, progress: bool = True) -> Path:
    """The Galaxy10-layout file that ``config.data`` names, rendering or downloading it if needed."""
    if config.data == "synthetic":
        path = synthetic_path(config)
        if not path.is_file():
            synthesize(path, classes=config.classes, n_per_class=config.n_per_class, seed=config.seed,
                       difficulty=config.difficulty, progress=progress)
        return path
    if config.data == "galaxy10":
        return Path(fetch(progress=progress))
    path = Path(config.data).expanduser()
    if path.is_dir():
        raise folder_given(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path} (give a Galaxy10-layout HDF5 file, 'synthetic' or 'galaxy10')")
    return path


def resolve_manifest(config: Config, data_path: Path) -> tuple[dict, Path | None]:
    """The split manifest for this run and the file it came from (None for a fresh split).

    A given manifest must have been made from ``data_path`` (SHA-256) and hold exactly
    ``config.classes`` in the same order, since the label order decides the model's outputs.
    """
    if config.manifest:
        source = Path(config.manifest)
        manifest = load_manifest(source, data_path)
    else:
        source = None
        manifest = prepare(data_path, None, classes=config.classes, fractions=config.fractions, seed=config.seed,
                           targets="tree" if config.targets == "tree" else "labels")
    tree_split = manifest.get("targets") == "tree"
    if tree_split != (config.targets == "tree"):
        what = "--targets tree" if tree_split else f"classes {manifest['classes']}"
        raise GalaxymorphError(f"the split manifest is for {what} but the config asks for --targets {config.targets}; "
                               "make a split for it with 'data prepare' (--targets tree for a tree model)")
    if config.targets == "tree":
        return manifest, source
    if [int(c) for c in manifest["classes"]] != list(config.classes):
        raise GalaxymorphError(
            f"the split manifest is for classes {manifest['classes']} but the config asks for {config.classes}; "
            f"pass --classes {' '.join(str(c) for c in manifest['classes'])} or make a new split")
    return manifest, source


def portable_config(config: Config, run_dir: Path) -> Config:
    """The config as a run folder keeps it: file paths absolute, and the split pointing at the
    run's own manifest copy, so ``train --config RUN_DIR/config.toml`` repeats the run from any
    working folder, on the same split."""
    def absolute(p: str) -> str:
        return str(Path(p).expanduser().resolve()) if p else p

    data = config.data if config.data in ("synthetic", "galaxy10") else absolute(config.data)
    init = config.init if config.init in SHIPPED_RUNS else absolute(config.init)
    return config.replace(data=data, weights=absolute(config.weights), init=init,
                          manifest=str(RunFolder(run_dir).manifest_path.resolve()))


def write_manifest(run_dir: Path, manifest: dict, source: Path | None) -> Path:
    """RUN_DIR/manifest.json: a byte copy of a given manifest, or the fresh one as JSON."""
    dest = RunFolder(run_dir).manifest_path
    if source is None:
        return write_json(dest, manifest)
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
    return dest


# -- the run folder ---------------------------------------------------------------------------
def default_run_dir(config: Config) -> Path:
    """``runs/<date>-<time>-<model>-<classes>``: a new folder for every run."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config.model}-{'v'.join(str(c) for c in config.classes)}"


LOCK_NAME = RunFolder.LOCK  # held (flock) by the process that trains a run folder


def check_run_dir(out: str | os.PathLike | None, config: Config, overwrite: bool = False) -> Path:
    """The run folder to create (``out`` or a new default name); one that already holds files is
    refused unless ``overwrite``, and even then unless it is a run folder (:func:`is_run_folder`)
    other than the working folder, a parent of it or the home folder. It must be writable.
    Nothing is changed on disk."""
    run_dir = Path(out) if out is not None else default_run_dir(config)
    if run_dir.exists() and not run_dir.is_dir():
        raise GalaxymorphError(f"{run_dir} exists and is not a folder")
    if _run_dir_contents(run_dir):
        if not overwrite:
            raise GalaxymorphError(
                f"run folder {run_dir} already holds files; use --resume {run_dir} to continue it, "
                "--overwrite to replace it, or another --out")
        check_replaceable(run_dir)
    check_writable_folder(run_dir)
    return run_dir


def _run_dir_contents(run_dir: Path) -> list[Path]:
    """What a folder holds besides the lock file (nothing when it does not exist)."""
    if not run_dir.is_dir():
        return []
    return [p for p in run_dir.iterdir() if p.name != LOCK_NAME]


def is_run_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a run.json or config.toml that galaxymorph wrote."""
    files = RunFolder(folder)
    try:
        if "status" in files.read_run_json():
            return True
    except (GalaxymorphError, OSError, ValueError):  # a damaged run.json: the config may still tell
        pass
    try:
        with open(files.config_path, encoding="utf-8") as fh:
            return fh.readline().strip() == CONFIG_HEADER
    except (OSError, UnicodeDecodeError):
        return False


def check_replaceable(run_dir: Path) -> None:
    """Refuse to --overwrite a folder that is not a run folder, or that holds the working folder
    or is the home folder (a mistyped --out must not empty them)."""
    where = run_dir.resolve()
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if where == cwd or where in cwd.parents:
        raise GalaxymorphError(f"refusing to --overwrite {run_dir}: it is the working folder or holds it; "
                               "give a run folder as --out")
    if where == home:
        raise GalaxymorphError(f"refusing to --overwrite {run_dir}: it is the home folder; give a run folder as --out")
    if not is_run_folder(run_dir):
        raise GalaxymorphError(f"refusing to --overwrite {run_dir}: it holds files but is not a galaxymorph run "
                               "folder (no run.json or config.toml that galaxymorph wrote); choose another --out")


def create_run_dir(out: str | os.PathLike | None, config: Config, overwrite: bool = False) -> tuple[Path, bool]:
    """Claim the run folder (:func:`claim_run_dir`, which makes it) and, under that claim,
    check it again (:func:`check_run_dir`) and, with ``overwrite``, empty it.

    Returns the folder and whether it was made for this run (so a failure before the first
    epoch can remove exactly what was made, and never a folder the user had). The claim is
    held on return: release it with :func:`release_run_dir`.
    """
    run_dir = Path(out) if out is not None else default_run_dir(config)
    created = claim_run_dir(run_dir)
    try:
        check_run_dir(run_dir, config, overwrite)  # another process may have written here meanwhile
        replaced = _run_dir_contents(run_dir)
        created = created or bool(replaced)  # emptied for this run: a failure removes what it made
        for item in replaced:
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item)
            else:
                item.unlink()
    except OSError as exc:
        release_run_dir(run_dir)
        raise write_error(run_dir, exc) from exc
    except BaseException:
        release_run_dir(run_dir)
        raise
    return run_dir, created


def create_run(config: Config, out: str | os.PathLike | None, overwrite: bool, progress: bool,
               environment: dict, world_size: int = 1) -> tuple[Path, Path, bool]:
    """A new run folder with its first files: data, split, config.toml, manifest.json,
    environment.json and run.json (status "running").

    Every check (folder, data, split, --weights, vote targets) comes before the folder is made
    or emptied. Returns (run_dir, data_path, created), with the folder claimed
    (:func:`release_run_dir` it when done). On any failure, a folder this call made is removed.
    """
    run_dir = check_run_dir(out, config, overwrite)  # before any work: data can take minutes
    data_path = resolve_data(config, progress=progress)
    manifest, source = resolve_manifest(config, data_path)
    check_training_inputs(config, data_path, manifest)
    run_dir, created = create_run_dir(run_dir, config, overwrite)
    try:
        RunFolder(run_dir).write_config(portable_config(config, run_dir))
        manifest_file = write_manifest(run_dir, manifest, source)
        RunFolder(run_dir).write_environment(environment)
        update_run_json(
            run_dir, status="running", started=now(), model=config.model, classes=config.classes,
            data=str(data_path.resolve()), data_sha256=data_sha256(manifest, data_path),
            data_requested=config.data,
            manifest={"path": RunFolder.MANIFEST, "sha256": sha256_file(manifest_file),
                      "source": str(source) if source else None},
            world_size=world_size, mixed_precision=environment.get("mixed_precision", "off"),
            data_scale=_training_scale(data_path, manifest))
    except BaseException:
        discard_run_dir(run_dir, created)
        release_run_dir(run_dir)
        raise
    return run_dir, data_path, created


def check_training_inputs(config: Config, data_path: Path, manifest: dict) -> None:
    """What training reads besides the split, checked before a run folder is made or replaced:
    the --weights file fits the model, and vote targets exist for every training image."""
    if config.weights:
        from .models import build_model  # lazy: torch; `galaxymorph report` imports this module and needs none
        from .models.checkpoints import load_weights  # lazy: torch, as above

        # the model training builds (a decision-tree model for --targets tree: the manifest names its tree)
        load_weights(build_model(config.model, config.classes, tree=manifest.get("tree")), config.weights)
    if config.targets == "votes":
        split_soft_targets(data_path, manifest, "train")


# -- claiming a run folder: one process trains it at a time -------------------------------------
_CLAIMS: dict[Path, list] = {}  # resolved folder -> [lock fd, times claimed, made by the claim]


def claim_run_dir(run_dir: str | os.PathLike) -> bool:
    """Make ``run_dir`` if needed and hold its lock file (an exclusive ``flock`` on
    ``RUN_DIR/.galaxymorph.lock``, which the system releases when the process ends, so a
    crashed run leaves no stale claim). A folder another process holds is refused in one line
    naming its pid. Claims nest within a process. Returns whether the folder was made for it.
    """
    run_dir = Path(run_dir)
    key = run_dir.resolve()
    if key in _CLAIMS:
        _CLAIMS[key][1] += 1
        return _CLAIMS[key][2]
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = _lock(run_dir)
    except BaseException as exc:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_error(RunFolder(run_dir).lock_path, exc) from exc
        raise
    _CLAIMS[key] = [fd, 1, created]
    return created


def release_run_dir(run_dir: str | os.PathLike) -> None:
    """Undo one :func:`claim_run_dir`; the last removes the lock file (and the folder, when the
    claim made it and nothing else was written there)."""
    run_dir = Path(run_dir)
    key = run_dir.resolve()
    claim = _CLAIMS.get(key)
    if claim is None:
        return
    claim[1] -= 1
    if claim[1] > 0:
        return
    del _CLAIMS[key]
    fd, _, created = claim
    try:
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_ino == os.stat(RunFolder(run_dir).lock_path).st_ino:
                os.unlink(RunFolder(run_dir).lock_path)  # while still locked: no one can hold a removed file
        if created:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only when empty
    finally:
        os.close(fd)


def _lock(run_dir: Path) -> int:
    """An open descriptor of RUN_DIR's lock file, locked by this process, with its pid inside."""
    path = RunFolder(run_dir).lock_path
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if not _try_lock(fd):
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
                raise GalaxymorphError(
                    f"run folder {run_dir} is in use by another galaxymorph process (pid {holder}); "
                    "wait for it to finish, or choose another --out")
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False  # its holder released it (and removed it) while we opened it
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise GalaxymorphError(f"could not claim run folder {run_dir}: its lock file keeps changing")


def _try_lock(fd: int) -> bool:
    """An exclusive lock on ``fd`` without waiting: False when another process holds one."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _training_scale(data_path: Path, manifest: dict) -> dict:
    """The pixel scale and apparent galaxy size of the training split, kept in run.json so that
    evaluate and predict can warn about inputs at another scale without re-measuring it."""
    return file_scale(data_path, split_indices(manifest, "train"))


def discard_run_dir(run_dir: Path, created: bool) -> None:
    """Remove a run folder this call made, so no half-made run is left behind."""
    if created and run_dir.is_dir():
        shutil.rmtree(run_dir, ignore_errors=True)


# -- resume -----------------------------------------------------------------------------------
def resume_config(run_dir: str | os.PathLike, given: Config | Mapping[str, Any] | None) -> Config:
    """The config to continue a run with: the one saved in the run folder, changed by ``given``.

    ``given`` is None (the saved config as it is), a mapping of changed settings (what was given
    on the command line with ``--resume``), or a whole Config. Only RESUMABLE_CHANGES may differ
    from the saved values: the rest decide what the saved weights mean.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise GalaxymorphError(f"cannot resume: run folder not found: {run_dir}")
    saved = RunFolder(run_dir).read_config()
    if saved is None:
        raise GalaxymorphError(f"cannot resume: {not_a_run_folder(run_dir, RunFolder.CONFIG)}")
    # as portable_config saves it: the split is the run's own manifest.json, wherever the folder now is
    saved = portable_config(saved, run_dir)
    if given is None:
        return saved
    if isinstance(given, Config):
        given = given.to_dict()
    wanted = portable_config(Config.from_dict({**saved.to_dict(), **given}), run_dir)  # paths as saved
    changed = [k for k in given if getattr(wanted, k) != getattr(saved, k) and k not in RESUMABLE_CHANGES]
    if changed:
        differences = ", ".join(f"{k} (saved {getattr(saved, k)!r}, given {getattr(wanted, k)!r})" for k in changed)
        raise GalaxymorphError(
            f"cannot resume {run_dir} with a different {differences}: a resumed run keeps its settings "
            f"except {', '.join(RESUMABLE_CHANGES)}; train a new run to change the others")
    if wanted.epochs != saved.epochs and wanted.schedule != "constant":
        # the schedule is a function of the step and the total: a new total reshapes the rest of it
        print(f"warning: resuming with --epochs {wanted.epochs} instead of {saved.epochs} reshapes the "
              f"{wanted.schedule} learning-rate schedule from here on (it is spread over {wanted.epochs} "
              f"epochs); the result differs from an uninterrupted {wanted.epochs}-epoch run", file=sys.stderr)
    return wanted.validate()


def needs_training(run_dir: Path, config: Config) -> bool:
    """Whether ``train --resume`` with ``config`` has epochs left to train in this run folder."""
    run = read_run_json(run_dir)
    if run.get("status") != "complete":
        return True
    return config.epochs > run.get("epochs_done", 0) and not run.get("stopped_early", False)


def outdated_outputs(run_dir: str | os.PathLike) -> dict[str, bool]:
    """Which outputs of evaluate and explain describe an earlier model than the run's best
    checkpoint, as after ``train --resume RUN_DIR --epochs N`` found a better one.

    Each records the ``best_epoch`` of run.json it was made with (``eval/metrics.json``, and each
    method in ``explain/explain.json``); a file without that record (older versions) counts as
    current. Content, not file times: a copied run folder keeps its answer.
    """
    run_dir = Path(run_dir)
    current = read_run_json(run_dir).get("best_epoch")

    def outdated(*records: dict) -> bool:
        return any("best_epoch" in r and r["best_epoch"] != current for r in records if isinstance(r, dict))

    files = RunFolder(run_dir)
    methods = (files.read_explain() or {}).get("methods", {})
    return {"metrics": outdated(files.read_metrics()), "explain": outdated(*methods.values())}


def reopen_for_training(run_dir: str | os.PathLike, config: Config) -> tuple[Path, Path]:
    """Check that a run folder can train further under ``config``, save that config and mark the
    run "running". Returns (run_dir, data_path)."""
    run_dir = Path(run_dir)
    check_writable_folder(run_dir)
    run = read_run_json(run_dir)
    done = run.get("epochs_done", 0)
    if run.get("status") == "complete" and done >= config.epochs:
        raise GalaxymorphError(f"{run_dir} is already complete: {done} epoch(s) trained, and --epochs is "
                               f"{config.epochs}; give --epochs {done + 1} or more to train it further")
    if not RunFolder(run_dir).last_checkpoint.is_file():
        raise GalaxymorphError(f"cannot resume {run_dir}: no checkpoints/last.pt")
    data_path = open_run(run_dir).data_path  # the data file, checked against the manifest
    RunFolder(run_dir).write_config(config)
    update_run_json(run_dir, status="running", resumed=now())
    return run_dir, data_path


# -- run.json -------------------------------------------------------------------------------
def read_run_json(run_dir: str | os.PathLike) -> dict:
    """RUN_DIR/run.json ({} when absent): :meth:`RunFolder.read_run_json`."""
    return RunFolder(run_dir).read_run_json()


def update_run_json(run_dir: str | os.PathLike, **fields) -> dict:
    """Merge ``fields`` into RUN_DIR/run.json: :meth:`RunFolder.update_run_json`."""
    return RunFolder(run_dir).update_run_json(**fields)


def now() -> str:
    """The local time as run.json records it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# -- a trained run ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainedRun:
    """What the stages after training read from a run folder, checked once."""

    path: Path
    run: dict  # run.json
    config: Config
    data_path: Path
    manifest: dict  # verified against the data file's SHA-256


def open_run(run_dir: str | os.PathLike) -> TrainedRun:
    """Read a trained run folder: run.json, config, data file and verified split manifest.

    Errors name what is missing: the folder, run.json, the data file the run was trained on
    (moved or deleted), or a manifest that no longer matches that file.
    """
    run_dir = Path(run_dir)
    files = RunFolder(run_dir)
    if not run_dir.is_dir():
        raise GalaxymorphError(f"run folder not found: {run_dir}")
    if not files.run_json_path.is_file():
        raise not_a_run_folder(run_dir)
    run = files.read_run_json()
    data = run.get("data")
    if not isinstance(data, str) or not data:
        raise GalaxymorphError(f"{files.run_json_path} does not name the run's data file ('data')")
    data_path = Path(data)
    if not data_path.is_absolute() and not data_path.exists():
        data_path = run_dir / data_path
    if not data_path.is_file():
        raise DataError(f"the run's data file is missing: {data_path} (named in {files.run_json_path}); "
                        "put it back or fix 'data' there")
    config = files.read_config() or Config()
    manifest = load_manifest(files.manifest_path)
    try:
        check_manifest_matches(manifest, data_path)
    except DataError:  # its advice (a new split) would not bring back what the model was trained on
        raise DataError(f"the run's data file {data_path} has changed since the run was trained (its SHA-256 "
                        f"is not the one in {files.manifest_path}); put the original back, or train a new "
                        "run on it") from None
    return TrainedRun(run_dir, run, config, data_path, manifest)


def environment_info(device, threads: int, amp_dtype: str | None, world_size: int = 1) -> dict:
    """Versions and hardware, so a run's numbers can be traced to what produced them."""
    import torch  # lazy: `galaxymorph report` imports this module and needs no torch

    info = {
        "galaxymorph": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "device": str(device),
        "threads": threads,
        "mixed_precision": amp_dtype or "off",
        "world_size": world_size,
    }
    if str(device).startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def data_sha256(manifest: dict, data_path: Path) -> str:
    """The data file's SHA-256: the manifest's (already checked against the file) or computed."""
    return manifest.get("source", {}).get("sha256") or sha256_file(data_path)


# -- the scored split: the one way evaluate and explain open a run's held-out images -----------
@dataclass(frozen=True)
class HeldOutSplit:
    """A run's held-out split, checked once: which images, their labels, the run's classes.

    ``indices`` point into the run's data file; ``labels`` are positions 0..k-1 in
    ``class_ids`` (the model's label encoding), and every class has at least one image.
    """

    folder: TrainedRun
    name: str
    indices: "np.ndarray"
    labels: "np.ndarray"
    class_ids: list[int]

    @property
    def class_names(self) -> list[str]:
        return [CLASS_NAMES[c] for c in self.class_ids]

    def open_data(self):
        """The run's data file, open (use as a context manager); pixels are read on demand."""
        return open_galaxy10(self.folder.data_path)

    def images(self, positions=None) -> "np.ndarray":
        """uint8 pixels of the split's images (or of ``positions`` into the split), in order."""
        chosen = self.indices if positions is None else self.indices[np.asarray(positions, dtype=np.int64)]
        with self.open_data() as data:
            return data.images(chosen)


def open_held_out(run: str | os.PathLike | TrainedRun, split: str = "test",
                  class_ids: list[int] | None = None) -> HeldOutSplit:
    """Open a held-out split of a trained run: refuse the training split, a split that shares
    images with it or is empty, a model whose classes (``class_ids``, e.g. the checkpoint's)
    differ from the manifest's, and a split that misses a class (ROC AUC and the per-class
    figures need every class)."""
    folder = run if isinstance(run, TrainedRun) else open_run(run)
    manifest = folder.manifest
    indices = _held_out_split(manifest, split)
    classes = [int(c) for c in manifest["classes"]]
    if class_ids is not None and [int(c) for c in class_ids] != classes:
        raise GalaxymorphError(f"the checkpoint's classes {list(class_ids)} differ from the manifest's {classes}")
    with open_galaxy10(folder.data_path) as data:
        try:
            labels = label_positions(data.labels[indices], classes)
        except DataError as exc:
            raise DataError(f"the {split} split holds images the model was not trained on: {exc}") from None
    missing = [c for i, c in enumerate(classes) if not np.any(labels == i)]
    if missing:
        raise DataError(f"the {split} split has no images of class {missing} "
                        f"({', '.join(CLASS_NAMES[c] for c in missing)}): ROC AUC and per-class figures "
                        "need every class; make a split with more images")
    return HeldOutSplit(folder, split, indices, labels, classes)


def held_out_indices(folder: TrainedRun, split: str) -> np.ndarray:
    """Data-file indices of a held-out split of a tree run (refusing ``train``, an empty split, or
    one that shares images with the training split)."""
    manifest = folder.manifest
    if manifest.get("targets") != "tree":
        raise GalaxymorphError(f"{folder.path} holds a decision-tree model but its split is not a tree split")
    return _held_out_split(manifest, split)


def _held_out_split(manifest: dict, split: str) -> np.ndarray:
    """Data-file indices of a held-out split: refuses the training split, a split that shares
    images with it, and an empty one (the one copy of these checks, for classes and trees)."""
    if split == "train":
        raise GalaxymorphError("refusing to score the training split: results on it say nothing about new "
                               "images (use --split test or val)")
    indices = split_indices(manifest, split)
    shared = np.intersect1d(indices, split_indices(manifest, "train"))
    if shared.size:
        raise GalaxymorphError(f"refusing to score: {shared.size} image(s) of the {split} split are also "
                               f"in the training split (e.g. index {int(shared[0])}); make a new split")
    if indices.size == 0:
        raise DataError(f"the {split} split of the manifest is empty")
    return indices


def run_device(run_dir: str | os.PathLike, device: str | None = None):
    """The torch device for scoring a run: ``device`` if given (a missing GPU is an error),
    else the device the run's config asked for when this machine has it, else ``auto``."""
    from .device import select_device  # lazy: torch; `galaxymorph report` imports this module and needs none

    if device is not None:
        return select_device(str(device))
    config = RunFolder(run_dir).read_config()
    wanted = config.device if config is not None else "auto"
    try:
        return select_device(wanted)
    except GalaxymorphError:  # trained on a GPU this machine lacks: score where we are
        return select_device("auto")
