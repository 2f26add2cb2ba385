"""The ``galaxymorph`` command line: argument parsing only; every command calls the Python API.

A user error (:class:`~galaxymorph.errors.GalaxymorphError`), or a file that cannot be written
(read-only, no permission, disk full), ends in one line on stderr and exit status 2;
``--verbose`` shows the traceback. Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
import warnings
from pathlib import Path

from . import __version__
from .config import HELP, Config, check_fractions, check_seed, load_mapping, validate_classes
from .errors import GalaxymorphError
from .fileio import WRITE_ERRNOS, check_output_file, is_disk_full, write_error
from .interrupts import handling_interrupts, interrupted
from .progress import set_quiet, status

DEFAULTS = Config()  # the one place where default values live

# Library warnings that tell a user nothing to act on, hidden unless --verbose: (message, category).
HARMLESS_WARNINGS = [
    # Pillow: a large image, which is read and shrunk to 256 px (one past twice the limit is skipped)
    (r"Image size \(\d+ pixels\) exceeds limit", Warning),
    # numpy: NaN/inf arithmetic on blank images or empty classes, whose results are checked
    (r"(invalid value|divide by zero|overflow) encountered", RuntimeWarning),
    (r"Mean of empty slice", RuntimeWarning),
    # torch: read-only arrays (memory maps) handed to torch, which only reads them
    (r"The given NumPy array is not writable", UserWarning),
    # torch: deprecations inside torch's own code paths
    (r"TypedStorage is deprecated", UserWarning),
]


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One ``--option`` per Config field, spelled like the field, so every command agrees."""
    parser.add_argument("--config", metavar="FILE", help="TOML or YAML file of config values")
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        sample = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kwargs: dict = {"dest": f.name, "default": None, "help": f"{HELP.get(f.name, '')} (default: {_shown(sample)})"}
        if isinstance(sample, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(sample, list):
            kwargs.update(nargs="+", type=type(sample[0]), metavar=f.name[:-2].upper() if f.name.endswith("es") else "X")
        else:
            kwargs.update(type=type(sample), metavar=f.name.upper())
        parser.add_argument(flag, **kwargs)


def _shown(default) -> str:
    """A default as help text: a list as it is typed on the command line (``2 5``)."""
    if isinstance(default, list):
        return " ".join(str(v) for v in default)
    return json.dumps(default) if isinstance(default, bool) else repr(default)


def _add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--threads`` for the commands that run a trained model (evaluate,
    explain, predict)."""
    parser.add_argument("--device", help="where the model runs: cpu, cuda, cuda:N or auto (default: the run's "
                        "device when this machine has it, else auto)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (default 0: one per core; 1 on a machine others share)")


def _use_threads(args: argparse.Namespace) -> None:
    from .device import set_threads  # lazy: keeps --help free of torch

    set_threads(args.threads)


def _config_from_args(args: argparse.Namespace) -> Config:
    names = {f.name for f in dataclasses.fields(Config)}
    return Config.resolve(args.config, {k: v for k, v in vars(args).items() if k in names})


def _resume_changes(args: argparse.Namespace) -> dict:
    """The settings given beside ``--resume`` (from ``--config`` and options): they apply on top
    of the run's saved config, which checks what may change (``runs.resume_config``)."""
    if args.out or args.overwrite:
        raise GalaxymorphError(f"--resume continues {args.resume} in place; it takes no --out or --overwrite")
    names = {f.name for f in dataclasses.fields(Config)}
    changes = load_mapping(args.config) if args.config else {}
    changes.update({k: v for k, v in vars(args).items() if k in names and v is not None})
    return changes


def _add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace the --out file if it exists")


def _check_out_file(args) -> None:
    """Refuse an existing --out file (unless --overwrite) before any work is done."""
    check_output_file(args.out, overwrite=args.overwrite)


def _add_run_folder_options(parser: argparse.ArgumentParser) -> None:
    """--out, --resume and --overwrite: where 'train' and 'run' write, and how they continue."""
    parser.add_argument("--out", metavar="RUN_DIR", help="run folder to create "
                        "(default: runs/<date>-<time>-<model>-<classes>)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (or extend a finished "
                        "one with a larger --epochs); options given with it change the saved config")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder")


class _DefaultsShown(argparse.HelpFormatter):
    """Help that ends each option's text with its default, where it has one the text does not
    already give (None and False, off switches, are not shown)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text or action.default is None
                or action.default is False or action.default is argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser (and so every sub-command's parser) whose help shows the defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _DefaultsShown)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="galaxymorph",
        description="Train, evaluate and explain CNN classifiers of galaxy morphology (Galaxy10 DECaLS).",
    )
    p.add_argument("--version", action="version", version=f"galaxymorph {__version__}")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show tracebacks on errors, and the libraries' routine warnings")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars or stage lines (the same as GALAXYMORPH_NO_PROGRESS=1)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data = sub.add_parser("data", help="get, render, import, inspect and split data")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    for add in (_add_data_fetch, _add_data_info, _add_data_synth, _add_data_import, _add_data_merge, _add_data_prepare):
        add(dsub)
    for add in (_add_train, _add_evaluate, _add_explain, _add_predict, _add_report, _add_run):
        add(sub)
    return p


def _add_data_fetch(sub) -> None:
    """The parser of ``galaxymorph data fetch``."""
    q = sub.add_parser("fetch", help="download Galaxy10_DECals.h5 (2.5 GB), verified by SHA-256")
    q.add_argument("--dest", metavar="DIR", help="folder to put it in (default: $GALAXYMORPH_DATA or the user cache)")
    q.add_argument("--url", help="download from this URL instead of Zenodo")
    q.add_argument("--sha256", help="expected SHA-256 of the file (with --url)")
    q.set_defaults(handler=cmd_data_fetch)


def _add_data_info(sub) -> None:
    """The parser of ``galaxymorph data info``."""
    q = sub.add_parser("info", help="counts per class, shapes, SHA-256, and a PNG grid of examples")
    q.add_argument("file", help="Galaxy10-layout HDF5 file")
    q.add_argument("--grid", metavar="PNG", help="where to write the example grid (default: <FILE name>_grid.png "
                   "in the current folder)")
    q.add_argument("--n", type=int, default=8, help="examples per class in the grid")
    q.set_defaults(handler=cmd_data_info)


def _add_data_synth(sub) -> None:
    """The parser of ``galaxymorph data synth``."""
    q = sub.add_parser("synth", help="render a synthetic Galaxy10-like sky into an HDF5 file")
    q.add_argument("--out", required=True, metavar="FILE", help="HDF5 file to write")
    q.add_argument("--classes", nargs="+", type=int, default=DEFAULTS.classes,
                   help=f"{HELP['classes']} (default: {_shown(DEFAULTS.classes)})")
    q.add_argument("--n-per-class", type=int, default=DEFAULTS.n_per_class, help="images per class")
    q.add_argument("--seed", type=int, default=DEFAULTS.seed, help="same seed, same images")
    q.add_argument("--difficulty", type=float, default=DEFAULTS.difficulty, help=HELP["difficulty"])
    q.add_argument("--workers", type=int, help="processes rendering in parallel (default: every core, at most "
                   "one per 128 images); the images do not depend on it")
    _add_overwrite(q)
    q.set_defaults(handler=cmd_data_synth)


def _add_data_import(sub) -> None:
    """The parser of ``galaxymorph data import``."""
    q = sub.add_parser("import", help="turn JPG/PNG folders or FITS cutouts into a Galaxy10-layout file")
    q.add_argument("src", help="folder of images (class from sub-folder name or file-name prefix) or FITS files")
    q.add_argument("--out", required=True, metavar="FILE", help="HDF5 file to write")
    _add_overwrite(q)
    q.add_argument("--catalog", metavar="CSV", help="join a CSV by its file/filename/path column: ra, dec, redshift, "
                   "pxscale, a class column (checked) and numeric columns (stored under catalog/)")
    q.add_argument("--pixel-scale", type=float, metavar="ARCSEC", help="arcsec per pixel of the image files "
                   "(where the catalogue and FITS WCS do not say); recorded as pxscale of the stored 256 px images")
    q.add_argument("--classes-from", choices=["gz2-votes"], help="gz2-votes: each image's Galaxy10 class from "
                   "the catalogue's Galaxy Zoo 2 vote fractions (overruling folders; no class where the rule "
                   "does not decide)")
    q.set_defaults(handler=cmd_data_import)


def _add_data_merge(sub) -> None:
    """The parser of ``galaxymorph data merge``."""
    q = sub.add_parser("merge", help="join Galaxy10-layout files into one (images, classes, columns)")
    q.add_argument("files", nargs="+", metavar="FILE", help="Galaxy10-layout HDF5 files, two or more")
    q.add_argument("--out", required=True, metavar="FILE", help="HDF5 file to write")
    _add_overwrite(q)
    q.set_defaults(handler=cmd_data_merge)


def _add_data_prepare(sub) -> None:
    """The parser of ``galaxymorph data prepare``."""
    q = sub.add_parser("prepare", help="stratified, seeded train/val/test split saved as a JSON manifest")
    q.add_argument("file", help="Galaxy10-layout HDF5 file")
    q.add_argument("--out", required=True, metavar="MANIFEST", help="JSON manifest to write")
    q.add_argument("--classes", nargs="+", type=int, default=DEFAULTS.classes,
                   help=f"{HELP['classes']} (default: {_shown(DEFAULTS.classes)})")
    q.add_argument("--fractions", nargs=3, type=float, default=DEFAULTS.fractions,
                   help=f"{HELP['fractions']} (default: {_shown(DEFAULTS.fractions)})")
    q.add_argument("--seed", type=int, default=DEFAULTS.seed, help="random seed of the split")
    q.add_argument("--targets", choices=["labels", "tree"], default="labels",
                   help="'labels': a stratified split of the given classes; 'tree': every image with decision-tree votes, "
                        "whatever its class (for train --targets tree; docs/votes.md)")
    _add_overwrite(q)
    q.set_defaults(handler=cmd_data_prepare)


def _add_train(sub) -> None:
    """The parser of ``galaxymorph train``."""
    q = sub.add_parser("train", help="train a classifier; writes a run folder")
    _add_config_options(q)
    _add_run_folder_options(q)
    q.set_defaults(handler=cmd_train)


def _add_evaluate(sub) -> None:
    """The parser of ``galaxymorph evaluate``."""
    q = sub.add_parser("evaluate", help="score a trained run on a held-out split")
    q.add_argument("run_dir", help="run folder written by 'train'")
    q.add_argument("--split", default="test", choices=["val", "test"], help="which split to score")
    q.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None, help=HELP["tta"])
    q.add_argument("--out", metavar="DIR", default=None,
                   help="write metrics.json, predictions.csv and the figures here (default: RUN_DIR/eval)")
    _add_device_option(q)
    q.set_defaults(handler=cmd_evaluate)


def _add_explain(sub) -> None:
    """The parser of ``galaxymorph explain``."""
    q = sub.add_parser("explain", help="GradCAM and other heatmaps, galleries and faithfulness checks")
    q.add_argument("run_dir", help="run folder written by 'train'")
    q.add_argument("--split", default="test", choices=["val", "test"], help="which split to explain")
    q.add_argument("--n", type=int, default=16, help="images per gallery")
    q.add_argument("--answer", metavar="ANSWER", help="decision-tree models only: the answer whose evidence to map, "
                   "e.g. t03_bar_a06_bar (docs/votes.md)")
    q.add_argument("--method", default="gradcam++-sky",
                   help="gradcam++-sky (default), gradcam, gradcam++ or integrated-gradients")
    _add_device_option(q)
    q.set_defaults(handler=cmd_explain)


def _add_predict(sub) -> None:
    """The parser of ``galaxymorph predict``."""
    q = sub.add_parser("predict", help="classify new images (JPG/PNG, folders, FITS, Galaxy10 HDF5)")
    q.add_argument("run_dir", help="run folder written by 'train'")
    q.add_argument("inputs", nargs="+", help="image files, folders, FITS cutouts or an HDF5 file")
    q.add_argument("--out", required=True, metavar="CSV", help="CSV file to write")
    _add_overwrite(q)
    q.add_argument("--tta", action=argparse.BooleanOptionalAction, default=False, help=HELP["tta"])
    q.add_argument("--batch-size", type=int, help="images per forward pass (default: 64 on the CPU, 512 on a GPU)")
    _add_device_option(q)
    q.set_defaults(handler=cmd_predict)


def _add_report(sub) -> None:
    """The parser of ``galaxymorph report``."""
    q = sub.add_parser("report", help="write RUN_DIR/report.html, one self-contained page")
    q.add_argument("run_dir", help="run folder written by 'train'")
    q.add_argument("--screenshot", metavar="PNG", help="also save a picture of the page's top (needs Chromium)")
    q.set_defaults(handler=cmd_report)


def _add_run(sub) -> None:
    """The parser of ``galaxymorph run``."""
    q = sub.add_parser("run", help="everything: data, split, train, evaluate, explain, report")
    _add_config_options(q)
    _add_run_folder_options(q)
    q.set_defaults(handler=cmd_run)


# -- handlers: each turns parsed arguments into one API call and prints a short result ------
def cmd_data_fetch(args) -> None:
    from .data import download  # lazy: keeps --help free of ssl and certifi

    kwargs = {"dest": args.dest}
    if args.url:
        kwargs["url"] = args.url
    if args.sha256:
        kwargs["sha256"] = args.sha256
    print(download.fetch(**kwargs))


def cmd_data_info(args) -> None:
    from .data.info import describe, format_summary  # lazy: keeps --help free of numpy, h5py, matplotlib

    grid = args.grid or f"{Path(args.file).stem}_grid.png"  # the data's folder may be read-only
    check_output_file(grid)
    print(format_summary(describe(args.file, grid=grid, per_class=args.n)))


def cmd_data_synth(args) -> None:
    from .data.synthetic import synthesize  # lazy: keeps --help free of numpy, scipy, h5py

    _check_out_file(args)
    check_seed(args.seed)
    path = synthesize(args.out, classes=args.classes, n_per_class=args.n_per_class, seed=args.seed,
                      difficulty=args.difficulty, workers=args.workers)
    print(f"wrote {path}")


def cmd_data_import(args) -> None:
    from .data.importers import import_images  # lazy: keeps --help free of numpy, h5py, PIL

    _check_out_file(args)
    report = import_images(args.src, args.out, catalog=args.catalog, pixel_scale=args.pixel_scale,
                           classes_from=args.classes_from)
    print(report)


def cmd_data_merge(args) -> None:
    from .data.merge import merge_files  # lazy: keeps --help free of numpy, h5py, scipy

    print(merge_files(args.files, args.out, overwrite=args.overwrite))


def cmd_data_prepare(args) -> None:
    from .data.splits import describe_manifest, prepare  # lazy: keeps --help free of numpy, h5py

    _check_out_file(args)
    validate_classes(args.classes)  # a bad id or fraction is told before the file is read
    check_fractions(args.fractions)
    check_seed(args.seed)
    status(f"galaxymorph: splitting {args.file}: reading labels, hashing the file, looking for duplicate images ...")
    manifest = prepare(args.file, args.out, classes=args.classes, fractions=args.fractions, seed=args.seed,
                       targets=args.targets)
    print(describe_manifest(manifest))
    print(f"wrote {args.out}")


def _start_or_resume(stage, args) -> Path:
    """Call ``train`` or ``run`` for a new run folder, or to resume ``--resume RUN_DIR``."""
    if args.resume:
        return Path(stage(_resume_changes(args), resume=args.resume))
    return Path(stage(_config_from_args(args), out=args.out, overwrite=args.overwrite))


def cmd_train(args) -> None:
    from .training import train  # lazy: keeps --help free of torch

    print(f"run folder: {_start_or_resume(train, args)}")


def cmd_evaluate(args) -> None:
    from .evaluation import evaluate, format_metrics  # lazy: keeps --help free of torch

    _use_threads(args)
    metrics = evaluate(args.run_dir, split=args.split, tta=args.tta, device=args.device, out=args.out)
    print(format_metrics(metrics))


def cmd_explain(args) -> None:
    from .explain.run import explain_run  # lazy: keeps --help free of torch

    _use_threads(args)
    summary = explain_run(args.run_dir, split=args.split, n=args.n, method=args.method, device=args.device,
                          answer=args.answer)
    print(summary["text"] if isinstance(summary, dict) and "text" in summary else summary)


def cmd_predict(args) -> None:
    from .prediction import predict  # lazy: keeps --help free of torch

    _use_threads(args)
    print(predict(args.run_dir, args.inputs, args.out, tta=args.tta, batch_size=args.batch_size,
                  device=args.device, overwrite=args.overwrite))


def cmd_report(args) -> None:
    from .report import screenshot, write_report  # lazy: keeps --help free of numpy, h5py

    if args.screenshot:
        check_output_file(args.screenshot)
    page = write_report(args.run_dir)
    print(f"wrote {page}")
    if args.screenshot:
        print(f"wrote {screenshot(page, args.screenshot)}")


def cmd_run(args) -> None:
    from .evaluation import format_metrics  # lazy: keeps --help free of torch
    from .pipeline import run  # lazy: keeps --help free of torch
    from .rundir import RunFolder  # lazy: keeps --help free of numpy

    files = RunFolder(_start_or_resume(run, args))
    print(format_metrics(files.read_metrics()))
    print(f"report: {files.report_path}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quiet:
        set_quiet()
    with handling_interrupts(), warnings.catch_warnings():
        if not args.verbose:
            for message, category in HARMLESS_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
        return _run_command(args)


def _run_command(args) -> int:
    """The command's exit status: 0, 2 for a user error, 130 for Ctrl-C (also one that Python
    swallowed in a finalizer, see :mod:`galaxymorph.interrupts`)."""
    try:
        args.handler(args)
        if not interrupted():
            sys.stdout.flush()  # a closed pipe (``| head``) shows here, not at exit
    except GalaxymorphError as exc:
        if interrupted():
            return _interrupted_status()
        if args.verbose:
            traceback.print_exc()
        print(f"galaxymorph: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted_status()
    except BrokenPipeError:
        return _closed_pipe_status()
    except OSError as exc:  # a write that did not go through fileio: still one line when the place is at fault
        if interrupted():
            return _interrupted_status()
        if not (exc.errno in WRITE_ERRNOS or is_disk_full(exc)):
            raise
        if args.verbose:
            traceback.print_exc()
        message = write_error(exc.filename, exc) if exc.filename else f"cannot write: {exc.strerror or exc}"
        print(f"galaxymorph: error: {message}", file=sys.stderr)
        return 2
    except Exception:
        if interrupted():  # a library turned the KeyboardInterrupt into its own error
            return _interrupted_status()
        raise
    return _interrupted_status() if interrupted() else 0


def _interrupted_status() -> int:
    print("galaxymorph: interrupted", file=sys.stderr)
    return 130


def _closed_pipe_status() -> int:
    """The reader of stdout went away (``galaxymorph data info x.h5 | head -1``): stop quietly,
    as the Python docs recommend, with stdout pointed at devnull so the exit's flush is silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
