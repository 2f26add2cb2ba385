"""Checkpoints: save a model with what rebuilds it, read one back, and start from ``--weights``.

A checkpoint is a dict of tensors and plain values (str, int, float, bool, None, lists, tuples,
dicts): the model's registry name, class ids, architecture and state_dict, plus, in
``last.pt``, the optimiser, scaler and RNG state that ``--resume`` needs. Files are read with
``torch.load(weights_only=True)``, so a file that holds anything else, such as a pickled object
that would run code when loaded, is refused and never executed.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
import zipfile
from pathlib import Path

import torch

from ..errors import GalaxymorphError
from ..fileio import atomic_path, check_input_file
from ..rundir import RunFolder
from ..run_names import not_a_run_folder, resolve_run
from .classifier import build_model

CHECKPOINT_FORMAT = "galaxymorph-checkpoint/1"
MAX_PARAMETERS = 1_000_000_000  # 4 GB of float32 weights; the models here have 0.2-2 million


def save_checkpoint(path: str | os.PathLike, model, **extra) -> Path:
    """Save model weights and what is needed to rebuild it (plus any training state)."""
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
    in the messages ("checkpoint", "--weights"). A file whose tensors declare more data than it
    holds is refused before torch allocates it (:func:`check_declared_sizes`).
    """
    check_declared_sizes(path, what)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch words it "Unsupported global: GLOBAL eval ..." or "unsupported GLOBAL posix.system
        # whose module posix is blocked"
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:  # a pickled class or function: the way a file runs code when loaded
            raise GalaxymorphError(
                f"refused to load {what} {path}: it holds code or pickled Python objects ({found.group(1)}), "
                "not only tensors and plain values, and loading those could run code") from None
        raise GalaxymorphError(f"cannot read {what} {path}: it is corrupt or not a torch file "
                               f"({_unpickler_reason(exc)})") from None
    except Exception as exc:  # torch raises many types for a damaged file
        raise GalaxymorphError(f"cannot read {what} {path}: it is corrupt or not a torch file "
                               f"({_unpickler_reason(exc)})") from None
    _check_tensor_sizes(loaded, path, what, os.path.getsize(path))
    return loaded


def _check_tensor_sizes(obj, path: Path, what: str, size: int) -> None:
    """Refuse a tensor with more elements than the file has bytes: a crafted size with stride 0
    views a few bytes as billions of elements, and the first copy of it would allocate them all."""
    if isinstance(obj, torch.Tensor):
        if obj.numel() > size:
            raise GalaxymorphError(f"refused to load {what} {path}: a tensor of shape {tuple(obj.shape)} has more "
                                   f"elements than the file has bytes ({size:,}); it is damaged or crafted")
    elif isinstance(obj, dict):
        for value in obj.values():
            _check_tensor_sizes(value, path, what, size)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _check_tensor_sizes(value, path, what, size)


def _unpickler_reason(exc: BaseException) -> str:
    """What torch's weights-only unpickler stopped at (``Unsupported operand 72`` for an HDF5 or
    CSV file), without the preamble around it, which suggests ``weights_only=False``: the very
    load this module refuses (so no line that mentions it is ever echoed)."""
    found = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(exc))
    if found:
        return found.group(1).strip()
    lines = [line.strip() for line in str(exc).splitlines()
             if line.strip() and not re.search(r"weights.only|Check the documentation", line, re.IGNORECASE)]
    return lines[0] if lines else type(exc).__name__


_INT_OPS = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"}
_MEMO_OPS = {"BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"}
LEGACY_PICKLES_BYTES = 64 * 2**20  # where a legacy file's pickles are looked for (its tensor data follows them)


def check_declared_sizes(path: Path, what: str = "checkpoint") -> None:
    """Refuse a torch file whose contents declare more bytes than the file holds, before
    ``torch.load`` allocates them: a crafted file of a few kB can declare a storage of hundreds of
    GB. torch stores its data uncompressed, so neither a zip member's size nor the storages'
    element counts (read from the pickles' persistent ids, at least a byte each, without
    unpickling anything) can honestly exceed the file's size. Both torch's zip format and its
    legacy format are read; anything else is left to ``torch.load``."""
    size = os.path.getsize(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = archive.infolist()
                pickles = [m for m in members if m.filename.endswith("data.pkl")]
                if len(pickles) != 1:
                    return  # not laid out as torch saves: torch.load says so
                if sum(m.file_size for m in members) > size:
                    raise GalaxymorphError(f"refused to load {what} {path}: its parts declare more bytes than "
                                           f"the file holds ({size:,}); it is damaged or crafted")
                declared = _declared_elements(io.BytesIO(archive.read(pickles[0])), 1)
        else:  # legacy format: magic number, protocol, system info, then the object's pickle; the
            with open(path, "rb") as stream:  # start only, so a length read from garbage allocates nothing
                declared = _declared_elements(io.BytesIO(stream.read(LEGACY_PICKLES_BYTES)), 4)
    except GalaxymorphError:
        raise
    except Exception:  # not a torch file, or a malformed one: torch.load says what it is
        return
    if declared > size:
        raise GalaxymorphError(f"refused to load {what} {path}: its tensors declare {declared:,} elements but "
                               f"the file holds {size:,} bytes; it is damaged or crafted")


def _declared_elements(stream, n_pickles: int) -> int:
    """The storages' element counts summed over the first ``n_pickles`` pickles of ``stream``,
    read opcode by opcode (nothing is unpickled): in each persistent id, ``('storage', type, key,
    location, numel[, view])``, the first integer of the tuple."""
    total = 0
    for _ in range(n_pickles):
        marks: list[list[int]] = []  # the integers pushed since each open MARK
        tuple_ints: list[int] = []
        previous = ""
        for op, arg, _ in pickletools.genops(stream):  # stops after this pickle's STOP
            if op.name in _MEMO_OPS:
                continue
            if op.name == "MARK":
                marks.append([])
            elif op.name in _INT_OPS and marks:
                marks[-1].append(int(arg))
            elif pickletools.markobject in op.stack_before and marks:
                closed = marks.pop()
                tuple_ints = closed if op.name == "TUPLE" else []
            elif op.name == "BINPERSID" and previous == "TUPLE" and tuple_ints:
                total += max(tuple_ints[0], 0)
            previous = op.name
    return total


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
    args = dict(name=state["model"], class_ids=state["class_ids"], architecture=state.get("architecture"),
                tree=state.get("tree"), **state.get("net_kwargs", {}))
    with torch.device("meta"):  # shapes only, no memory: a crafted architecture could ask for terabytes
        sizes = {k: v.numel() for k, v in build_model(**args).state_dict().items()}
    if sum(sizes.values()) > MAX_PARAMETERS:
        raise GalaxymorphError(f"refused to build the model of this checkpoint: its architecture declares "
                               f"{sum(sizes.values()):,} weights, more than {MAX_PARAMETERS:,}; it is damaged or crafted")
    model = build_model(**args)
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise GalaxymorphError(f"checkpoint weights do not fit model {state['model']!r}: {exc}") from None
    return model


def load_model(run_dir: str | os.PathLike, checkpoint: str = "best.pt", device: str | torch.device = "cpu"):
    """The trained model of a run folder (or a checkpoint file), in eval mode.

    A folder without the checkpoint and without run.json is not a run at all: the error says so,
    as evaluate's does (:func:`galaxymorph.run_names.not_a_run_folder`), not that a file inside it is
    missing. ``gz2`` names the shipped model (:func:`galaxymorph.run_names.resolve_run`)."""
    run_dir = resolve_run(run_dir)
    path = Path(run_dir)
    if not path.exists():
        raise GalaxymorphError(f"run folder or checkpoint not found: {path}")
    if path.is_dir():
        path = RunFolder(run_dir).checkpoints_dir / checkpoint
        if not path.is_file() and not RunFolder(run_dir).run_json_path.is_file():
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
