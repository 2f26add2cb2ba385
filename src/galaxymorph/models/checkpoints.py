"""Checkpoints: save a model with what rebuilds it, read one back, and start from ``--weights``.

A checkpoint is a dict of tensors and plain values (str, int, float, bool, None, lists, tuples,
dicts): the model's registry name, class ids, architecture and state_dict, plus, in
``last.pt``, the optimiser, scaler and RNG state that ``--resume`` needs. Files are read with
``torch.load(weights_only=True)``, so a file that holds anything else, such as a pickled object
that would run code when loaded, is refused and never executed.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import torch

from ..errors import GalaxymorphError
from ..fileio import check_input_file

CHECKPOINT_FORMAT = "galaxymorph-checkpoint/1"


def save_checkpoint(path: str | os.PathLike, model, **extra) -> Path:
    """Save model weights and what is needed to rebuild it (plus any training state)."""
    from ..fileio import atomic_path

    state = {
        "format": CHECKPOINT_FORMAT,
        "model": model.name,
        "class_ids": model.class_ids,
        "net_kwargs": model.net_kwargs,
        "architecture": model.architecture,
        **({"targets": "tree", "tree": model.tree} if getattr(model, "tree", None) else {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_tensors(path: Path, what: str = "checkpoint"):
    """``torch.load(path, weights_only=True)``: tensors and plain values only, never code.

    A file that holds other objects is refused with a one-line error (unpickling them could run
    whatever they carry); a damaged file is a one-line error too. ``what`` names the file's role
    in the messages ("checkpoint", "--weights").
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found:  # a pickled class or function: the way a file runs code when loaded
            raise GalaxymorphError(
                f"refused to load {what} {path}: it holds Python objects ({found.group(1)}), not only tensors "
                "and plain values, and loading those could run code") from None
        raise GalaxymorphError(f"cannot read {what} {path}: it is corrupt or not a torch file "
                               f"({_unpickler_reason(exc)})") from None
    except Exception as exc:  # torch raises many types for a damaged file
        raise GalaxymorphError(f"cannot read {what} {path}: it is corrupt or not a torch file ({_first_line(exc)})") from None


def _unpickler_reason(exc: BaseException) -> str:
    """What torch's weights-only unpickler stopped at (``Unsupported operand 72`` for an HDF5 or
    CSV file), without the preamble around it, which suggests ``weights_only=False``: the very
    load this module refuses."""
    found = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(exc))
    return found.group(1).strip() if found else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint dict, with a clear error for a missing, corrupt, unsafe or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise GalaxymorphError(f"checkpoint not found: {path}")
    state = load_tensors(path, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise GalaxymorphError(f"{path} is not a galaxymorph checkpoint ({CHECKPOINT_FORMAT})")
    return state


def model_from_checkpoint(state: dict):
    """Rebuild a :class:`~galaxymorph.models.Classifier` from a checkpoint dict, checking the weights fit."""
    from . import build_model

    model = build_model(state["model"], state["class_ids"], architecture=state.get("architecture"),
                        tree=state.get("tree"), **state.get("net_kwargs", {}))
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise GalaxymorphError(f"checkpoint weights do not fit model {state['model']!r}: {exc}") from None
    return model


def load_model(run_dir: str | os.PathLike, checkpoint: str = "best.pt", device: str | torch.device = "cpu"):
    """The trained model of a run folder (or a checkpoint file), in eval mode.

    A folder without the checkpoint and without run.json is not a run at all: the error says so,
    as evaluate's does (:func:`galaxymorph.runs.not_a_run_folder`), not that a file inside it is
    missing. ``gz2`` names the shipped model (:func:`galaxymorph.runs.resolve_run`)."""
    from ..runs import resolve_run

    run_dir = resolve_run(run_dir)
    path = Path(run_dir)
    if not path.exists():
        raise GalaxymorphError(f"run folder or checkpoint not found: {path}")
    if path.is_dir():
        path = path / "checkpoints" / checkpoint
        if not path.is_file() and not (Path(run_dir) / "run.json").is_file():
            from ..runs import not_a_run_folder

            raise not_a_run_folder(run_dir)
    model = model_from_checkpoint(read_checkpoint(path)).to(device, memory_format=torch.channels_last)
    return model.eval()


def load_weights(model, path: str | os.PathLike) -> None:
    """Initialise from a local galaxymorph checkpoint or a plain state_dict (of the Classifier or its net)."""
    path = check_input_file(path, "--weights file")
    obj = load_tensors(path, "--weights")
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise GalaxymorphError(f"--weights {path} holds no state_dict")
    try:
        model.load_state_dict(state)
        return
    except RuntimeError:
        pass
    try:
        model.net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[:2]
        raise GalaxymorphError(f"--weights {path} do not fit model {model.name!r} with {model.n_outputs} "
                               f"output(s): {' '.join(first)}") from None
