"""Fine-tuning from a pretrained run (``train --init RUN``): its encoder, a new head, two learning rates.

As Zoobot's fine-tuning: the classifier for the requested classes is built as usual, every
weight of RUN's ``checkpoints/best.pt`` except the network's last layer (its head, see
:meth:`Classifier.head_parameter_names`) is copied in, and the optimiser trains the encoder at
``lr x encoder_lr_factor`` and the new head at ``lr`` (the schedule scales both), or, with
``freeze_encoder``, the head alone. RUN may be any run folder whose network has the same
architecture (a Galaxy Zoo tree model, a classifier of other classes), or ``gz2``, the shipped
model (:func:`galaxymorph.run_names.resolve_run`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import GalaxymorphError, one_line
from ..models import read_checkpoint
from ..rundir import RunFolder
from ..run_names import init_run_dir


def init_checkpoint(init: str | os.PathLike) -> tuple[Path, dict]:
    """The init run's folder and its ``checkpoints/best.pt`` (read with weights_only)."""
    run_dir = init_run_dir(init)
    return run_dir, read_checkpoint(RunFolder(run_dir).best_checkpoint)


def _same(a: dict, b: dict) -> bool:
    """Architectures equal as saved (JSON: a tuple read back from a checkpoint equals its list)."""
    return json.dumps(a, sort_keys=True, default=list) == json.dumps(b, sort_keys=True, default=list)


def load_encoder(model, init: str | os.PathLike) -> Path:
    """Copy every weight of the init run's best checkpoint into ``model`` except the head's (the
    new head keeps its fresh initialisation). A run whose network has another architecture is
    refused in one line that names both. Returns the init run's folder."""
    run_dir, state = init_checkpoint(init)
    theirs = state.get("architecture")
    if not isinstance(theirs, dict) or not _same(theirs, model.architecture):
        raise GalaxymorphError(
            f"--init {init}: its network ({state.get('model')!r}: {_describe(theirs)}) differs from --model "
            f"{model.name!r} ({_describe(model.architecture)}); leave out --model to use the init run's")
    encoder = model.encoder_state(state.get("state_dict", {}))
    missing, unexpected = [], []
    try:
        missing, unexpected = model.load_state_dict(encoder, strict=False)
    except RuntimeError as exc:  # same names, other shapes
        raise GalaxymorphError(f"--init {init}: its weights do not fit model {model.name!r}: "
                               f"{one_line(exc, 300)}") from None
    missing = sorted(set(missing) - set(model.head_parameter_names()))
    if missing or unexpected:
        raise GalaxymorphError(f"--init {init}: its checkpoint does not fit model {model.name!r} (missing "
                               f"{missing[:3]}, unexpected {list(unexpected)[:3]})")
    return run_dir


def _describe(architecture) -> str:
    if not isinstance(architecture, dict):
        return "unknown"
    kwargs = ", ".join(f"{k}={v}" for k, v in sorted(architecture.get("kwargs", {}).items()))
    return f"{architecture.get('net')}({kwargs})"


def parameter_groups(model, weight_decay: float, init: bool = False, encoder_lr_factor: float = 1.0,
                     freeze_encoder: bool = False) -> list[dict]:
    """The optimiser's parameter groups: weight decay on conv and linear weights, none on biases
    and norms. With ``init`` the encoder's groups carry ``lr_scale = encoder_lr_factor`` (the loop
    sets each group's rate to the scheduled rate times its ``lr_scale``), and with
    ``freeze_encoder`` only the head's weights are trained (the model's encoder is frozen here).
    Without ``init``: the two groups of a run from scratch, as before."""
    if freeze_encoder:
        model.freeze_encoder()
    if not init:
        params = list(model.parameters())
        return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    head = set(model.head_parameter_names())
    groups = []
    for part, scale in (("encoder", encoder_lr_factor), ("head", 1.0)):
        params = [p for name, p in model.named_parameters() if (name in head) == (part == "head") and p.requires_grad]
        for decayed in (True, False):
            chosen = [p for p in params if (p.ndim >= 2) == decayed]
            if chosen:
                groups.append({"params": chosen, "weight_decay": weight_decay if decayed else 0.0,
                               "lr_scale": scale, "part": part})
    return groups
