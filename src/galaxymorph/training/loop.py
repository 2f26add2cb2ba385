"""The training loop: :func:`train`, and the steps its loop reads as (set-up, build or resume, one
epoch, the files after it, the end), each a function of its own.

``train(config, out)`` makes a run folder (see docs/architecture.md), trains the configured model
on the manifest's ``train`` split, picks the best epoch on the ``val`` split's loss, and returns
the folder. ``train(None, resume=RUN_DIR)`` continues an interrupted run from its last finished
epoch, and ends exactly where an uninterrupted run would have (every epoch's batch order,
augmentation and dropout come from generators seeded with ``(seed, epoch)``).

Under ``torchrun --nproc_per_node=N -m galaxymorph train ...`` the same code trains with
DistributedDataParallel: every rank sees its shard of each epoch, metrics are summed over the
ranks, and only rank 0 writes files and shows progress. ``batch_size`` is per process.

What is not the loop lives beside it: run folders, resume and history files in
:mod:`galaxymorph.runs`, checkpoints in :mod:`galaxymorph.models.checkpoints`, device and
precision in :mod:`.device`, DDP helpers in :mod:`.distributed`.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .. import runs
from ..config import Config
from ..data.batches import Augmenter, BatchSampler, epoch_seed, iterate_batches, load_split, to_device
from ..data.splits import load_manifest
from ..errors import GalaxymorphError
from ..fileio import is_disk_full
from ..decision import predicted_positions
from ..models import Classifier, build_model, read_checkpoint, resolve_architecture, save_checkpoint
from ..models.checkpoints import load_weights
from ..models.tree import tree_loss_and_correct
from ..progress import progress_bar, progress_enabled, status
from ..trained_on import record_training_galaxies
from ..votes import split_soft_targets
from .curves import plot_curves
from ..device import dtype_name, is_out_of_memory, mixed_precision, select_device, set_threads, tuned_backends
from .distributed import barrier, local_device, reduce_mean, share, start_distributed, sync_buffers
from .finetune import load_encoder, parameter_groups
from .schedule import lr_factor

CURVES_EVERY_S = 5.0  # curves.png is redrawn after an epoch at most this often, and at the end


class TrainingDiverged(GalaxymorphError):
    """A training or validation loss became NaN or infinite: the run is marked failed (its
    history.csv shows the epoch), and no checkpoint of those weights is chosen as best."""


def train(config: Config | Mapping[str, Any] | None = None, out: str | os.PathLike | None = None,
          resume: str | os.PathLike | None = None, progress: bool = True, overwrite: bool = False,
          on_epoch_end: Callable[[int, dict, Classifier], None] | None = None) -> Path:
    """Train a classifier and return its run folder.

    ``config``: what to train. With ``resume``: None (the run folder's own config), a mapping
    of settings to change, or a whole Config; only ``runs.RESUMABLE_CHANGES`` may differ.
    ``out``: the run folder to create (default ``runs/<date>-<time>-<model>-<classes>``); one
    that already holds files is refused unless ``overwrite``. ``on_epoch_end(epoch, record,
    model)`` is called on every rank after each epoch's files are written.
    """
    if resume is not None:
        config = runs.resume_config(resume, config)
    elif config is None:
        raise GalaxymorphError("train needs a config, or resume=RUN_DIR to continue a run")
    config = config.validate()
    resolve_architecture(config.model)  # an unknown model name fails here, before any work
    if config.init and resume is None:  # so does an --init run that does not fit the model
        load_encoder(build_model(config.model, config.classes), config.init)
    set_threads(config.threads)
    device = select_device(config.device)
    rank, world, owns_group = start_distributed(device)
    device = local_device(device, world)
    amp_dtype = mixed_precision(device, config.amp)
    claimed: list[Path] = []  # the run folder, once rank 0 holds it (runs.claim_run_dir)
    try:
        with tuned_backends(device):
            return _train(config, out, resume, device, amp_dtype, rank, world, progress and rank == 0, overwrite,
                          on_epoch_end, claimed)
    finally:
        for run_dir in claimed:
            runs.release_run_dir(run_dir)
        if owns_group:
            torch.distributed.destroy_process_group()


@dataclass(frozen=True)
class Process:
    """Where this process trains: its device and autocast dtype, its DDP rank and the world size,
    and whether it shows progress (rank 0 only)."""
    device: torch.device
    amp_dtype: torch.dtype | None
    rank: int
    world: int
    show: bool


@dataclass
class TrainData:
    """The train and val splits on the device, with their batch order, augmentation and class weights."""
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    train_batches: BatchSampler
    val_batches: BatchSampler
    augment: Augmenter
    class_weights: torch.Tensor | None
    tree: dict | None  # the manifest's decision tree (--targets tree), else None


@dataclass
class TrainState:
    """What the epochs change, and checkpoints/last.pt keeps for --resume."""
    model: Classifier
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ema_model: torch.nn.Module | None = None  # the moving average of the weights (--ema)
    step: int = 0
    start_epoch: int = 1
    history: list = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"epoch": 0, "val_loss": math.inf})
    ddp_model: torch.nn.Module | None = None  # what the steps call: model, wrapped for DDP and compiled

    @property
    def validated(self) -> torch.nn.Module:
        """The weights that are validated and saved: the model's, or their moving average."""
        return self.ema_model.module if self.ema_model is not None else self.model


def _train(config, out, resume, device, amp_dtype, rank, world, show, overwrite, on_epoch_end, claimed) -> Path:
    """Set up, build or resume, then per epoch: train, validate, keep the record and files; a
    failure or Ctrl-C is recorded by :func:`record_failure`, the end by :func:`finish_run`."""
    proc, start = Process(device, amp_dtype, rank, world, show), time.time()
    run_dir, data_path, created = open_run_dir(config, out, resume, overwrite, proc, claimed)
    last_path = runs.RunFolder(run_dir).last_checkpoint
    epochs_done = 0
    try:
        data = load_data(config, run_dir, data_path, proc)
        state = build_or_resume(config, data.tree, last_path if resume is not None else None, proc)
        epochs_done = state.start_epoch - 1
        state.ddp_model = compiled(distributed(state.model, proc), config.compile)  # (around DDP, as torch advises)
        if rank == 0 and resume is None:  # epoch 0: a Ctrl-C during epoch 1 is resumable too
            save_last(last_path, state, 0, config)
        plotted = -math.inf
        for epoch in range(state.start_epoch, config.epochs + 1):
            if config.patience and epoch - state.best["epoch"] > config.patience and state.best["epoch"] > 0:
                break  # (only reached on resume: a finished early stop)
            t0 = time.perf_counter()
            train_loss, train_acc, lr = train_epoch(state, data, config, epoch, proc)
            val_loss, val_acc = evaluate_loss(state.validated, data.val_x, data.val_y, data.val_batches, device,
                                              amp_dtype, state.model.n_outputs == 1, config.channels_last, world)
            record = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
                      "val_acc": val_acc, "lr": lr, "seconds": round(time.perf_counter() - t0, 3)}
            improved = add_epoch(state, record, config, run_dir, rank)
            if rank == 0:
                plotted = save_epoch(state, record, improved, config, run_dir, plotted)
            epochs_done = epoch  # saved: what a resume continues from
            if show:
                status(epoch_line(record, config.epochs, improved))
            if on_epoch_end is not None:
                on_epoch_end(epoch, record, state.model)
            if config.patience and epoch - state.best["epoch"] >= config.patience:
                if show:
                    status(f"early stop: no better validation loss for {config.patience} epochs "
                           f"(best: epoch {state.best['epoch']})")
                break
    except BaseException as exc:
        replacement = record_failure(exc, config, proc, run_dir, created, resume is not None, epochs_done)
        if replacement is not None:
            raise replacement from None
        raise
    if rank == 0:
        finish_run(state, config, run_dir, epochs_done, start)
    barrier(world)
    return run_dir


# -- set-up: the run folder and the data ----------------------------------------------------------
def open_run_dir(config: Config, out, resume, overwrite: bool, proc: Process,
                 claimed: list[Path]) -> tuple[Path, Path, bool]:
    """(run folder, data file, whether this call created the folder): rank 0 creates or reopens
    the folder and claims it (appending it to ``claimed``); the other ranks wait and read it."""
    created, setup_error, run_dir, data_path = False, None, None, None
    if proc.rank == 0:
        try:
            if resume is not None:
                runs.claim_run_dir(resume)  # one process at a time trains a run folder
                claimed.append(Path(resume))
                run_dir, data_path = runs.reopen_for_training(resume, config)
            else:
                run_dir, data_path, created = runs.create_run(
                    config, out, overwrite, progress=proc.show,
                    environment=runs.environment_info(proc.device, torch.get_num_threads(),
                                                      dtype_name(proc.amp_dtype), proc.world),
                    world_size=proc.world)
                claimed.append(run_dir)
        except Exception as exc:  # told to the other ranks below, then raised here
            setup_error = exc
    run_dir, data_path, error = share((run_dir, data_path, str(setup_error) if setup_error else None), proc.world)
    if setup_error is not None:
        raise setup_error
    if error is not None:
        raise GalaxymorphError(f"rank 0 could not set up the run: {error}")
    return Path(run_dir), Path(data_path), created


def load_data(config: Config, run_dir: Path, data_path: Path, proc: Process) -> TrainData:
    """The train and val splits in memory (uint8 pixels) on the device; rank 0 also records which
    galaxies they are (for evaluate's check of test images)."""
    manifest = load_manifest(runs.RunFolder(run_dir).manifest_path)
    train_x, train_y = load_split(data_path, manifest, "train", progress=proc.show)
    class_weights = balanced_weights(train_y, len(config.classes), proc.device) \
        if config.class_weight == "balanced" else None
    if config.targets == "votes":  # soft targets: p(second class) from the catalogue's vote fractions
        train_y = split_soft_targets(data_path, manifest, "train")
    val_x, val_y = load_split(data_path, manifest, "val", progress=proc.show)
    if proc.rank == 0:  # the galaxies these weights learn from, for evaluate's check of test images
        record_training_galaxies(run_dir, data_path, manifest, {"train": train_x, "val": val_x})
    (train_x, train_y), (val_x, val_y) = to_device(train_x, train_y, proc.device), to_device(val_x, val_y, proc.device)
    return TrainData(
        train_x, train_y, val_x, val_y,
        train_batches=BatchSampler(len(train_y), config.batch_size, config.seed, True, proc.rank, proc.world),
        val_batches=BatchSampler(len(val_y), max(config.batch_size, 64), config.seed, False, proc.rank, proc.world),
        augment=Augmenter(config.augment, config.rotation, config.zoom, config.shift),
        class_weights=class_weights, tree=manifest.get("tree"))


# -- the model: built fresh or resumed from last.pt, and saved there -------------------------------
def build_or_resume(config: Config, tree: dict | None, last_path: Path | None, proc: Process) -> TrainState:
    """The model (with --weights / --init on a fresh run), optimiser, grad scaler and EMA; with
    ``last_path`` (a resume), all of them and the torch RNG as they were after its last epoch."""
    torch.manual_seed(config.seed)
    model = build_model(config.model, config.classes, tree=tree)  # tree: --targets tree
    if config.weights and last_path is None:
        load_weights(model, config.weights)
    if config.init and last_path is None:
        load_encoder(model, config.init)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(proc.device, memory_format=memory_format)
    groups = parameter_groups(model, config.weight_decay, bool(config.init), config.encoder_lr_factor,
                              config.freeze_encoder)
    Optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    fused = {"fused": True} if proc.device.type == "cuda" else {}  # one kernel for all parameters
    state = TrainState(model, Optimizer(groups, lr=config.lr, **fused),
                       torch.amp.GradScaler(proc.device.type, enabled=proc.amp_dtype == torch.float16))
    if config.ema:
        state.ema_model = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
    if last_path is not None:  # continue from the last finished epoch
        resume_state(state, last_path)
    return state


def resume_state(state: TrainState, last_path: Path) -> None:
    """Load what :func:`save_last` wrote into ``state`` (and the torch RNG): the next epoch is
    ``state.start_epoch``."""
    saved = read_checkpoint(last_path)
    try:
        state.model.load_state_dict(saved["state_dict"])
        state.optimizer.load_state_dict(saved["optimizer"])
        state.scaler.load_state_dict(saved["scaler"])
        state.step, state.history, state.best = saved["step"], saved["history"], saved["best"]
        if state.ema_model is not None:
            state.ema_model.load_state_dict(saved["ema"])
        state.start_epoch = saved["epoch"] + 1
        torch.set_rng_state(saved["rng"]["torch"])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise GalaxymorphError(f"cannot resume from {last_path}: it does not match this run ({exc})") from None


def save_last(path: Path, state: TrainState, epoch: int, config: Config) -> None:
    """checkpoints/last.pt: everything --resume needs to continue exactly (tensors and plain values)."""
    extra = {"ema": state.ema_model.state_dict()} if state.ema_model is not None else {}
    save_checkpoint(path, state.model, optimizer=state.optimizer.state_dict(), scaler=state.scaler.state_dict(),
                    step=state.step, epoch=epoch, best=state.best, history=state.history,
                    rng={"torch": torch.get_rng_state()}, config=config.to_dict(), **extra)


def distributed(model: torch.nn.Module, proc: Process) -> torch.nn.Module:
    """The model itself, or wrapped in DistributedDataParallel when there are several ranks."""
    if proc.world == 1:
        return model
    return DistributedDataParallel(model, device_ids=[proc.device.index] if proc.device.type == "cuda" else None)


# -- one epoch -------------------------------------------------------------------------------------
def train_epoch(state: TrainState, data: TrainData, config: Config, epoch: int,
                proc: Process) -> tuple[float, float, float]:
    """One pass over this rank's shard of the train split: (mean loss, accuracy) over all ranks,
    and the last learning rate. Batch order, augmentation and dropout are seeded by the epoch."""
    device, amp_dtype, model = proc.device, proc.amp_dtype, state.model
    torch.manual_seed(epoch_seed(config.seed, epoch, proc.rank))  # dropout: same on resume
    model.train()
    binary, total_steps = model.n_outputs == 1, config.epochs * len(data.train_batches)
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
    bar = progress_bar(total=len(data.train_batches), desc=f"epoch {epoch}/{config.epochs}", unit="batch",
                       disable=not proc.show, log_line=False)  # the epoch's own line follows
    lr = config.lr
    for x, y in iterate_batches(data.train_x, data.train_y, data.train_batches, epoch, device, model.resize,
                                data.augment, config.seed, config.channels_last):
        lr = config.lr * lr_factor(state.step, total_steps, config.schedule)
        for group in state.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # (finetune: the encoder's is lower)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = state.ddp_model(x)
        losses, correct = loss_and_correct(logits, y, binary)
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(weighted_mean(losses, y, data.class_weights)).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
        if state.ema_model is not None:
            state.ema_model.update_parameters(model)
        state.step += 1
        sums += torch.stack([losses.detach().sum().double(), correct.double(), count(y)])
        bar.update(1)
        if proc.show and progress_enabled() and (bar.n % 5 == 0 or bar.n == bar.total):
            s = sums.tolist()
            bar.set_postfix(loss=f"{s[0] / s[2]:.4f}", acc=f"{s[1] / s[2]:.3f}")
    bar.close()
    train_loss, train_acc = reduce_mean(sums, proc.world)
    sync_buffers(model, proc.world)  # batch-norm statistics: rank 0's on every rank
    return train_loss, train_acc, lr


# -- after each epoch: its record, the best so far, and the files ----------------------------------
def add_epoch(state: TrainState, record: dict, config: Config, run_dir: Path, rank: int) -> bool:
    """Append the epoch's record to the history and return whether it is the best so far. A
    non-finite loss raises :class:`TrainingDiverged` (rank 0 writes history.csv first)."""
    state.history.append(record)
    train_loss, val_loss = record["train_loss"], record["val_loss"]
    if not (math.isfinite(train_loss) and math.isfinite(val_loss)):  # no best.pt from NaN weights
        if rank == 0:
            runs.RunFolder(run_dir).write_history(state.history)
        raise TrainingDiverged(f"training diverged in epoch {record['epoch']} (train loss {train_loss:.4g}, "
                               f"validation loss {val_loss:.4g}); try a lower --lr than {config.lr:g}")
    improved = val_loss < state.best["val_loss"]
    if improved:
        state.best = {"epoch": record["epoch"], "val_loss": val_loss, "val_acc": record["val_acc"]}
    return improved


def save_epoch(state: TrainState, record: dict, improved: bool, config: Config, run_dir: Path,
               plotted: float) -> float:
    """Rank 0's files after an epoch: best.pt when it improved, last.pt, history.csv, run.json and
    (at most every CURVES_EVERY_S) curves.png. Returns when curves.png was last drawn."""
    epoch, best = record["epoch"], state.best
    if improved:
        save_checkpoint(runs.RunFolder(run_dir).best_checkpoint, state.validated, epoch=epoch,
                        val_loss=record["val_loss"], val_acc=record["val_acc"], config=config.to_dict())
    save_last(runs.RunFolder(run_dir).last_checkpoint, state, epoch, config)
    runs.RunFolder(run_dir).write_history(state.history)
    if time.monotonic() - plotted >= CURVES_EVERY_S:  # a plot costs 0.1-0.4 s: not every fast epoch
        plot_curves(state.history, runs.RunFolder(run_dir).curves_path, state.model, best["epoch"])
        plotted = time.monotonic()
    runs.update_run_json(run_dir, epochs_done=epoch, best_epoch=best["epoch"],
                         best_val_loss=best["val_loss"], best_val_acc=best.get("val_acc"))
    return plotted


def epoch_line(record: dict, epochs: int, improved: bool) -> str:
    """The epoch's one line of progress."""
    r = record
    return (f"epoch {r['epoch']}/{epochs}  train loss {r['train_loss']:.4f} acc {r['train_acc']:.3f}  "
            f"val loss {r['val_loss']:.4f} acc {r['val_acc']:.3f}  lr {r['lr']:.2e}  {r['seconds']:.1f}s"
            + ("  *best" if improved else ""))


# -- the end: finished, interrupted or failed ------------------------------------------------------
def finish_run(state: TrainState, config: Config, run_dir: Path, epochs_done: int, start: float) -> None:
    """Rank 0, after the last epoch: the final curves, best.pt if no epoch made one, run.json complete."""
    best, best_path = state.best, runs.RunFolder(run_dir).best_checkpoint
    if state.history:
        plot_curves(state.history, runs.RunFolder(run_dir).curves_path, state.model, best["epoch"])
    if not best_path.is_file():  # no epoch ran (e.g. resumed a finished run): keep the last weights
        save_checkpoint(best_path, state.validated, epoch=epochs_done, config=config.to_dict())
    previous = runs.read_run_json(run_dir).get("train_seconds", 0.0)
    runs.update_run_json(run_dir, status="complete", finished=runs.now(), epochs_done=epochs_done,
                         stopped_early=epochs_done < config.epochs, best_epoch=best["epoch"],
                         best_val_loss=best["val_loss"] if best["epoch"] else None,
                         best_val_acc=best.get("val_acc"),
                         train_seconds=round(previous + time.time() - start, 2))


def record_failure(exc: BaseException, config: Config, proc: Process, run_dir: Path, created: bool,
                   resumed: bool, epochs_done: int) -> GalaxymorphError | None:
    """Record why training stopped and return the one-line error to raise instead (None: re-raise
    ``exc``). Ctrl-C marks the run interrupted with a resume hint; another error marks it failed,
    or removes a folder with nothing worth keeping (rank 0 only)."""
    if isinstance(exc, KeyboardInterrupt):
        if proc.rank == 0:
            if runs.RunFolder(run_dir).last_checkpoint.is_file():
                runs.update_run_json(run_dir, status="interrupted", epochs_done=epochs_done)
                print(f"galaxymorph: training interrupted after epoch {epochs_done}; continue with: "
                      f"galaxymorph train --resume {run_dir}", file=sys.stderr)
            else:
                runs.discard_run_dir(run_dir, created)
        return None
    kept = epochs_done > 0 or resumed or isinstance(exc, TrainingDiverged)
    if proc.rank == 0:
        if not kept:
            runs.discard_run_dir(run_dir, created)  # nothing worth keeping: no half-made run folder
        else:
            try:
                runs.update_run_json(run_dir, status="failed", error=str(exc)[:500], epochs_done=epochs_done)
            except OSError:
                pass  # the error below matters more than the record of it
    if is_out_of_memory(exc):
        return GalaxymorphError(
            f"out of memory with --batch-size {config.batch_size} on {proc.device}; try a smaller --batch-size "
            f"(e.g. {max(1, config.batch_size // 2)})")
    if is_disk_full(exc):
        then = f"continue with: galaxymorph train --resume {run_dir}" if kept else "run the command again"
        return GalaxymorphError(f"disk full while writing to {run_dir} ({exc.filename or exc.strerror}); "
                                f"free some space, then {then}")
    return None


# -- the maths of one step ------------------------------------------------------------------------
def loss_and_correct(logits: torch.Tensor, y: torch.Tensor, binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image losses (fp32) and the number right: one logit + BCE for two classes, else softmax + CE;
    for vote counts (2-d ``y``), the Dirichlet-multinomial loss of :func:`models.tree.tree_loss_and_correct`."""
    if y.ndim == 2:  # vote counts (n, answers): a decision-tree model (--targets tree, models/tree.py)
        return tree_loss_and_correct(logits, y)
    logits = logits.float()
    if binary:
        z = logits[:, 0]
        # y: 0/1 labels, or soft targets in [0, 1] (counted right when on the same side of 0.5);
        # predicted as everywhere else (decision.predicted_positions: p >= 0.5, so z = 0 is positive)
        p = torch.sigmoid(z)
        pred = predicted_positions(torch.stack([1 - p, p], dim=1))
        return F.binary_cross_entropy_with_logits(z, y.float(), reduction="none"), (pred == (y > 0.5).long()).sum()
    pred = predicted_positions(torch.softmax(logits, dim=1))
    return F.cross_entropy(logits, y, reduction="none"), (pred == y).sum()


def balanced_weights(labels: np.ndarray, n_classes: int, device: torch.device) -> torch.Tensor:
    """Per-class loss weights n / (k * n_c) (scikit-learn's "balanced"): every class adds up to the
    same share of the loss. Soft targets count towards the class they lean to."""
    hard = (labels > 0.5).astype(np.int64) if labels.dtype.kind == "f" else labels.astype(np.int64)
    counts = np.bincount(hard, minlength=n_classes).astype(np.float64)
    weights = len(hard) / (n_classes * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32, device=device)


def weighted_mean(losses: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor | None) -> torch.Tensor:
    """The batch's loss: the plain mean, or the mean of each image's loss times its class's weight."""
    if class_weights is None:
        return losses.mean()
    classes = (y > 0.5).long() if y.is_floating_point() else y.long()
    return (losses * class_weights[classes]).mean()


def count(y: torch.Tensor) -> torch.Tensor:
    """len(y) as a float64 scalar made on y's device (a fill, not a host-to-GPU copy that waits)."""
    return torch.full((), float(len(y)), dtype=torch.float64, device=y.device)


def compiled(model: torch.nn.Module, mode: str) -> torch.nn.Module:
    """The model itself, or ``torch.compile(model, mode=...)`` (``compile`` = "default" or
    "reduce-overhead", which also replays CUDA graphs). Weights are shared, so checkpoints are
    saved from ``model`` as always."""
    return model if mode == "off" else torch.compile(model, mode=mode)


@torch.no_grad()
def evaluate_loss(model: Classifier, images: np.ndarray, labels: np.ndarray, sampler: BatchSampler,
                  device: torch.device, amp_dtype: torch.dtype | None, binary: bool, channels_last: bool,
                  world: int = 1) -> tuple[float, float]:
    """Mean loss and accuracy over a split (no augmentation, eval mode), summed over ranks."""
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    for x, y in iterate_batches(images, labels, sampler, 0, device, model.resize, None, channels_last=channels_last):
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = model(x)
        losses, correct = loss_and_correct(logits, y, binary)
        sums += torch.stack([losses.sum().double(), correct.double(), count(y)])
    model.train()
    return reduce_mean(sums, world)

