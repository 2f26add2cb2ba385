"""One typed configuration object for a run: defaults, presets, a file, CLI overrides.

Precedence, lowest first: the defaults below < a preset (``--preset seed``) < a TOML or YAML
file (``--config``) < options given on the command line. The resolved object is saved as
``config.toml`` in every run folder, so a run can be repeated with
``galaxymorph train --config RUN_DIR/config.toml``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .errors import DataError, GalaxymorphError, one_line
from .fileio import check_input_file, write_text
from .run_names import init_run_dir

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass
class Config:
    """Everything that decides what a run does. Field names match the CLI's ``--options``."""

    # -- data ------------------------------------------------------------------------
    data: str = "synthetic"  # "synthetic", "galaxy10" (download), or a Galaxy10-layout file
    manifest: str = ""  # split manifest; made from data/split/seed when empty
    classes: list[int] = field(default_factory=lambda: [2, 5])
    fractions: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])  # train/val/test (= splits.DEFAULT_FRACTIONS)
    seed: int = 0
    n_per_class: int = 600  # synthetic sky only: images rendered per class
    difficulty: float = 0.8  # synthetic sky only: 0 easy .. 1 hard (docs/synthetic.md: why 0.8)

    # -- model -----------------------------------------------------------------------
    model: str = "default"  # "seed" (the reference CNN) or "default"
    weights: str = ""  # optional local checkpoint/state_dict to start from
    init: str = ""  # a run folder (or "gz2") whose encoder starts the model; "" = from scratch
    encoder_lr_factor: float = 0.1  # with init: the encoder's learning rate is lr x this
    freeze_encoder: bool = False  # with init: train the head only (a linear probe)

    # -- training --------------------------------------------------------------------
    preset: str = ""  # "seed" = the reference notebook's recipe
    epochs: int = 30  # chosen on real galaxies with patience 10 (docs/models.md)
    batch_size: int = 32
    optimizer: str = "adamw"  # "adamw" or "adam"
    lr: float = 2e-3
    weight_decay: float = 0.05
    schedule: str = "onecycle"  # "onecycle", "cosine" or "constant"
    patience: int = 10  # early stopping on validation loss; 0 = never stop early
    augment: str = "d4"  # "d4" (all rotations, both flips, zoom, shift), "seed", or "none"
    zoom: float = 0.1  # +- fractional zoom
    shift: float = 0.05  # +- fraction of the image size, below MAX_SHIFT
    rotation: float = 0.5  # +- turns of rotation ("seed" augmentation uses 0.1)
    amp: bool = True  # bf16 autocast on CPUs that support it, AMP on CUDA
    channels_last: bool = True
    compile: str = "off"  # "off", "default" or "reduce-overhead" (torch.compile; pays on GPUs, docs/performance.md)
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    threads: int = 1  # CPU threads for torch; 0 = torch's default (one per core). 1: see benchmarks/speed/bench_threads.py
    tta: bool = False  # D4 test-time averaging at evaluation and prediction
    targets: str = "labels"  # "labels" (hard), "votes" (soft, from vote fractions) or "tree" (every vote: docs/votes.md)
    class_weight: str = "none"  # "none" or "balanced" (each class weighs the same in the loss)
    ema: float = 0.0  # decay of a moving average of the weights, validated and saved instead (0 = off)

    def validate(self) -> "Config":
        """Raise a one-line error for a value that cannot work; return self."""
        self.classes = validate_classes(self.classes)
        check_finite(self)
        self.fractions = check_fractions(self.fractions)
        for name in ("epochs", "batch_size", "n_per_class"):
            if getattr(self, name) < 1:
                raise GalaxymorphError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise GalaxymorphError(
                    f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        self.difficulty = check_difficulty(self.difficulty)
        check_augmentation(self.rotation, self.zoom, self.shift)
        for name, meaning in (("patience", " (0 = no early stopping)"), ("weight_decay", " (0 = none)")):
            if not getattr(self, name) >= 0:  # 'not >=' also refuses NaN
                raise GalaxymorphError(f"--{name.replace('_', '-')} must be >= 0{meaning}, got {getattr(self, name)}")
        check_seed(self.seed)
        check_threads(self.threads)
        if not 0 <= self.ema < 1:
            raise GalaxymorphError(f"--ema must be in [0, 1) (0 = off; e.g. 0.99), got {self.ema}")
        if self.targets == "tree" and self.class_weight != "none":
            raise GalaxymorphError("--class-weight balanced weighs classes, and --targets tree has none; "
                                   "use --class-weight none")
        if not 0 < self.lr < math.inf:
            raise GalaxymorphError(f"--lr must be a positive number, got {self.lr}")
        if self.init and self.weights:
            raise GalaxymorphError("--init and --weights both say where the weights start; give one of them")
        if not 0 < self.encoder_lr_factor <= 1:
            raise GalaxymorphError(f"--encoder-lr-factor must be in (0, 1] (0.1: the encoder learns at a tenth of "
                                   f"--lr; --freeze-encoder for none), got {self.encoder_lr_factor}")
        if self.preset and self.preset not in PRESETS:
            raise GalaxymorphError(f"unknown preset {self.preset!r}; known presets: {', '.join(PRESETS)}")
        if self.preset == "seed" and self.model != "seed":  # Config(preset="seed") alone applies nothing
            raise GalaxymorphError("preset 'seed' names the reference CNN but model is "
                                   f"{self.model!r}: build the config with Config.resolve(overrides="
                                   "{'preset': 'seed'}) (or --preset seed), which applies the preset")
        if self.freeze_encoder and not self.init:
            raise GalaxymorphError("--freeze-encoder trains only the head on a pretrained encoder: give --init RUN")
        return self

    # -- building ----------------------------------------------------------------------
    @classmethod
    def resolve(cls, file: str | os.PathLike | None = None,
                overrides: Mapping[str, Any] | None = None) -> "Config":
        """Defaults, then the preset, then ``file``, then non-None ``overrides``; validated."""
        from_file = load_mapping(file) if file else {}
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        preset = given.get("preset", from_file.get("preset")) or ""
        values: dict[str, Any] = {}
        if preset:
            if preset not in PRESETS:
                raise GalaxymorphError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
            values.update(PRESETS[preset])
        values.update(from_file)
        values.update(given)
        if values.get("init") and "model" not in values:  # the init run's model, unless one was asked for
            values["model"] = init_model_name(values["init"])
        return cls.from_dict(values).validate()

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Config":
        """A Config from a mapping; unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise GalaxymorphError(f"unknown config key(s): {', '.join(unknown)}")
        cfg = cls(**{k: _coerce(cls, k, v) for k, v in values.items()})
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        """TOML text of every field; reading it back gives an equal Config."""
        lines = [CONFIG_HEADER, ""]
        for key, value in self.to_dict().items():
            lines.append(f"{key} = {json.dumps(value)}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | os.PathLike) -> Path:
        return write_text(path, self.to_toml())

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)


def init_model_name(init: str | os.PathLike) -> str:
    """The registry name of the ``--init`` run's model (``--model``'s default with ``--init``), as
    the run's config.toml records it (read as a file: the config layer never loads a checkpoint)."""
    run_dir = init_run_dir(init)
    model = load_mapping(run_dir / "config.toml").get("model") if (run_dir / "config.toml").is_file() else None
    if not isinstance(model, str) or not model:
        raise GalaxymorphError(f"--init {init}: {run_dir / 'config.toml'} does not name the run's model; "
                               "give --model")
    return model


def check_finite(config: "Config") -> None:
    """A one-line error naming the first float setting (or float in a list) that is NaN or
    infinite: the one rule for all of them, before their own range checks. (JSON and TOML have
    no NaN or infinity, so config.toml could not be read back.)"""
    for f in fields(config):
        value = getattr(config, f.name)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, float) and not math.isfinite(v):
                raise GalaxymorphError(f"--{f.name.replace('_', '-')} must be a finite number, got {value}")


MAX_SEED = 2**63 - 1  # the largest integer TOML (and torch.manual_seed of a signed 64-bit) holds
MAX_THREADS = 1024  # far above any useful count; torch crashes (not an error) at 100000


def check_seed(seed: int) -> int:
    """The seed, or a one-line error when it is negative or too large for config.toml (TOML integers
    are signed 64-bit): the one check of --seed for every command."""
    if not seed >= 0:
        raise GalaxymorphError(f"--seed must be >= 0, got {seed}")
    if seed > MAX_SEED:
        raise GalaxymorphError(f"--seed must be between 0 and 2**63 - 1, got {seed}")
    return seed


def check_threads(threads: int) -> int:
    """The thread count, or a one-line error: 0 (one per core) up to MAX_THREADS."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise GalaxymorphError(f"--threads must be >= 0 (0 = one per core), got {threads}")
    if threads > MAX_THREADS:
        raise GalaxymorphError(f"--threads must be between 0 (one per core) and {MAX_THREADS}, got {threads}")
    return threads


# -- the values of the data stages that a Config holds: the one check of each, used by Config.validate
# and by the data stages themselves (data.galaxy10, data.splits, data.batches, data.synthetic)
CLASS_NAMES: dict[int, str] = {
    0: "Disturbed",
    1: "Merging",
    2: "Round Smooth",
    3: "In-between Round Smooth",
    4: "Cigar Shaped Smooth",
    5: "Barred Spiral",
    6: "Unbarred Tight Spiral",
    7: "Unbarred Loose Spiral",
    8: "Edge-on without Bulge",
    9: "Edge-on with Bulge",
}


def check_class_id(class_id) -> int:
    """One Galaxy10 class id as an int, with an error that names a bad one."""
    try:
        ci = int(class_id)
    except (TypeError, ValueError):
        raise DataError(f"class id {class_id!r} is not an integer (Galaxy10 ids are 0..9)") from None
    if ci not in CLASS_NAMES:
        raise DataError(f"unknown class id {ci}: Galaxy10 class ids are 0..9")
    return ci


def validate_classes(classes: Iterable[int] | int, minimum: int = 2,
                     check: Callable[[object], int] = check_class_id) -> list[int]:
    """Check a class subset: each id passes ``check``, no repeats, at least ``minimum`` (two to
    classify; one is enough to render). Keeps the order."""
    if isinstance(classes, numbers.Integral):
        classes = [classes]
    out: list[int] = []
    for c in classes:
        ci = check(c)
        if ci in out:
            raise DataError(f"class id {ci} is given twice")
        out.append(ci)
    if not out:
        raise DataError("no classes given: name Galaxy10 class ids (0..9)")
    if len(out) < minimum:
        raise DataError(f"need at least two classes to classify, got {out}")
    return out


def check_fractions(fractions: Sequence[float]) -> list[float]:
    """The train/val/test fractions as a list, or a one-line error: three positive numbers
    adding up to 1 (the one copy of this rule, used by ``prepare`` and ``Config``). NaN and
    infinity are refused (NaN slips through every comparison)."""
    values = [float(f) for f in fractions]
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        raise DataError(f"--fractions needs three positive train/val/test fractions adding up to 1, got {values}")
    return values


def check_difficulty(difficulty) -> float:
    """The difficulty as a float in [0, 1], or a one-line error: the one check of it."""
    try:
        d = float(difficulty)
    except (TypeError, ValueError):
        raise DataError(f"--difficulty must be a number in [0, 1], got {difficulty!r}") from None
    if not 0.0 <= d <= 1.0:
        raise DataError(f"--difficulty must be between 0 and 1, got {d:g}")
    return d


def check_augmentation(rotation: float, zoom: float, shift: float) -> None:
    """A one-line error for augmentation amounts that cannot work (the one copy of this rule,
    used by :class:`Augmenter` and ``Config.validate``): each >= 0, a zoom below 1, and a shift
    below ``MAX_SHIFT``.

    The shift bound: a cutout is centred on the galaxy its label describes, and a shift of half
    the image puts that centre on the edge; beyond it the galaxy leaves the frame and the
    reflected border shows only its mirror image, so the label would describe nothing in view.
    """
    for name, value in (("rotation", rotation), ("zoom", zoom), ("shift", shift)):
        if not value >= 0:  # also refuses NaN
            raise GalaxymorphError(f"--{name} must be >= 0, got {value}")
    if zoom >= 1:
        raise GalaxymorphError(f"--zoom must be below 1 (a zoom of -100% has no pixels), got {zoom}")
    if shift >= MAX_SHIFT:
        raise GalaxymorphError(f"--shift must be below {MAX_SHIFT} (a fraction of the image: half of it moves "
                               f"the centred galaxy to the edge), got {shift}")


AUGMENTATIONS = ("d4", "seed", "none")  # also what data.batches.Augmenter accepts
MAX_SHIFT = 0.5  # --shift stays below half the image (check_augmentation says why)
CHOICES: dict[str, tuple[str, ...]] = {  # the settings that name one of a few options
    "optimizer": ("adamw", "adam"), "schedule": ("onecycle", "cosine", "constant"), "augment": AUGMENTATIONS,
    "targets": ("labels", "votes", "tree"), "compile": ("off", "default", "reduce-overhead"),
    "class_weight": ("none", "balanced"),
}

HELP: dict[str, str] = {
    "data": "'synthetic' (rendered offline), 'galaxy10' (downloaded) or a Galaxy10-layout HDF5 file",
    "manifest": "split manifest from 'data prepare' (made from --data/--fractions/--seed when empty)",
    "classes": "Galaxy10 class ids to tell apart, in label order",
    "fractions": "train/val/test fractions for a new split",
    "seed": "random seed for splits, synthesis, initialisation and batches",
    "n_per_class": "synthetic sky only: images rendered per class",
    "difficulty": "synthetic sky only: 0 (easy) .. 1 (hard)",
    "model": "'seed' (the reference CNN), 'default' (the stronger galaxy model) or a galaxy-* variant (docs/models.md)",
    "weights": "local checkpoint or state_dict to initialise the model from",
    "init": "a run folder, or 'gz2' (the shipped Galaxy Zoo model), whose weights start the model, all but "
            "the last layer (fine-tuning; --model defaults to that run's)",
    "encoder_lr_factor": "with --init: the encoder learns at --lr times this, the new head at --lr (ignored "
                         "without --init)",
    "freeze_encoder": "with --init: train only the new head on the fixed encoder (a linear probe)",
    "preset": "'seed' = the reference notebook's recipe (Adam 1e-3, batch 8, 30 epochs)",
    "epochs": "maximum number of epochs",
    "batch_size": "images per optimisation step",
    "optimizer": "'adamw' or 'adam'",
    "lr": "peak learning rate",
    "weight_decay": "decoupled weight decay (AdamW)",
    "schedule": "'onecycle', 'cosine' or 'constant' learning rate",
    "patience": "stop after this many epochs without a better validation loss (0 = never)",
    "augment": "'d4' (all rotations and flips, zoom, shift), 'seed' (the reference's) or 'none'",
    "zoom": "+- fractional zoom of the augmentation",
    "shift": f"+- shift of the augmentation, as a fraction of the image size (below {MAX_SHIFT}: half the "
             "image moves the centred galaxy to the edge)",
    "rotation": "+- rotation of the augmentation, in turns",
    "amp": "mixed precision: bf16 autocast on capable CPUs, AMP on CUDA",
    "channels_last": "channels-last memory format (faster convolutions)",
    "compile": "'off', or torch.compile the model: 'default', or 'reduce-overhead' (also CUDA graphs); "
               "costs a minute of compiling, pays on long GPU runs",
    "device": "'auto', 'cpu', 'cuda' or 'cuda:N'",
    "threads": "CPU threads for torch; more than 1 pays only on cores nothing else uses (0 = one per core)",
    "tta": "D4 test-time averaging (8 rotations/flips) at evaluation and prediction",
    "class_weight": "'none', or 'balanced': weigh each image's loss by n / (classes x its class's count), so "
                    "every class counts the same (for imbalanced splits such as 3:1)",
    "ema": "decay of an exponential moving average of the weights (e.g. 0.99), which is what gets validated "
           "and saved; 0 = off",
    "targets": "'labels' (hard class labels) or 'votes' (soft targets from Galaxy Zoo vote fractions in the "
               "data file's catalog/ group; two classes only) or 'tree' (every Galaxy Zoo 2 vote on every "
               "question, one output per answer; the classes are then unused: docs/votes.md)",
}

CONFIG_HEADER = "# galaxymorph run configuration"  # the first line of every config.toml (runs.is_run_folder reads it)

PRESETS: dict[str, dict[str, Any]] = {
    # The reference Keras notebook: Adam 1e-3, batch 8, 30 epochs, flip/rotate 0.1 turn/zoom 20%.
    "seed": dict(model="seed", optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="constant",
                 batch_size=8, epochs=30, patience=0, augment="seed", rotation=0.1, zoom=0.2,
                 shift=0.0),
    "default": {},
}


def _coerce(cls, key: str, value: Any) -> Any:
    """Turn values read from TOML/YAML/CLI into the field's type, with a clear error."""
    default = {f.name: f for f in fields(cls)}[key]
    sample = default.default if default.default is not dataclasses.MISSING else default.default_factory()
    if value is None:
        raise GalaxymorphError(f"config key {key!r} needs a value")
    try:
        if isinstance(sample, list):
            items = value if isinstance(value, (list, tuple)) else [value]
            return [_coerce_scalar(type(sample[0]), v) for v in items]
        return _coerce_scalar(type(sample), value)
    except (TypeError, ValueError, OverflowError):
        raise GalaxymorphError(f"config key {key!r}: cannot read {value!r} as {type(sample).__name__}") from None


def _coerce_scalar(kind: type, value: Any) -> Any:
    """``value`` as a ``kind`` (bool, int, float or str) without changing what it says: a
    number is never read as a switch, nor true/false as a number, nor 2.7 as the int 2, so a
    typo in a config file is an error rather than another setting. Raises ValueError."""
    if kind is bool:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return bool(value)
        text = str(value).lower() if isinstance(value, str) else ""
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if isinstance(value, bool):
        raise ValueError(value)
    if kind is str:
        if not isinstance(value, (str, os.PathLike)):
            raise ValueError(value)
        return os.fspath(value)
    if isinstance(value, str):
        value = value.strip()
    if kind is int:
        number = float(value) if isinstance(value, float) else int(value)
        if number != int(number):
            raise ValueError(value)
        return int(number)
    return kind(value)


def load_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """Read a flat TOML or YAML config file into a dict (YAML by suffix .yaml/.yml)."""
    path = check_input_file(path, "config file")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml  # lazy: --help imports config; PyYAML only for a YAML config file

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as exc:  # both parsers raise their own error types (and a binary file, UnicodeDecodeError)
        raise GalaxymorphError(f"cannot parse config file {path}: {one_line(exc, None)}") from None
    if not isinstance(data, dict):
        raise GalaxymorphError(f"config file {path} must hold key = value pairs")
    return data
