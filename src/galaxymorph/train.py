"""The training loop: one function, :func:`train`, readable top to bottom.

``train(config, out)`` makes a run folder (see docs/architecture.md), trains the configured model
on the manifest's ``train`` split, picks the best epoch on the ``val`` split's loss, and returns
the folder. ``train(None, resume=RUN_DIR)`` continues an interrupted run from its last finished
epoch, and ends exactly where an uninterrupted run would have (every epoch's batch order,
augmentation and dropout come from generators seeded with ``(seed, epoch)``).

Under ``torchrun --nproc_per_node=N -m galaxymorph train ...`` the same code trains with
DistributedDataParallel: every rank sees its shard of each epoch, metrics are summed over the
ranks, and only rank 0 writes files and shows progress. ``batch_size`` is per process.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .config import Config, load_mapping
from .data.batches import Augmenter, BatchSampler, epoch_seed, iterate_batches, load_split
from .errors import GalaxymorphError
from .fileio import sha256_file, write_json, write_text
from .models import REGISTRY, Classifier, build_model, read_checkpoint, save_checkpoint
from .progress import progress_bar
from . import runs

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
RESUMABLE_CHANGES = ("epochs", "patience", "device", "threads")  # may differ on --resume


def train(config: Config | None = None, out: str | os.PathLike | None = None,
          resume: str | os.PathLike | None = None, progress: bool = True, overwrite: bool = False,
          on_epoch_end: Callable[[int, dict, Classifier], None] | None = None) -> Path:
    """Train a classifier and return its run folder.

    ``config``: what to train (``None`` with ``resume`` = the run folder's own config; with
    ``resume`` it may change only ``epochs``, ``patience``, ``device`` and ``threads``).
    ``out``: the run folder to create (default ``runs/<date>-<time>-<model>-<classes>``); one
    that already holds files is refused unless ``overwrite``. ``on_epoch_end(epoch, record,
    model)`` is called on every rank after each epoch's files are written.
    """
    # ---- what to run ---------------------------------------------------------------------
    if resume is not None:
        run_dir = Path(resume)
        config = _resume_config(run_dir, config)
    elif config is None:
        raise GalaxymorphError("train needs a config, or resume=RUN_DIR to continue a run")
    config = config.validate()
    if config.model not in REGISTRY:
        raise GalaxymorphError(f"unknown model {config.model!r}; known models: {', '.join(REGISTRY)}")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    device = select_device(config.device)
    rank, world, owns_group = start_distributed(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    amp_dtype = mixed_precision(device, config.amp)
    show = progress and rank == 0
    try:
        return _train(config, out, resume, device, amp_dtype, rank, world, show, overwrite, on_epoch_end)
    finally:
        if owns_group:
            torch.distributed.destroy_process_group()


def _train(config, out, resume, device, amp_dtype, rank, world, show, overwrite, on_epoch_end) -> Path:
    # ---- the run folder (rank 0 makes it; the other ranks wait and read it) ----------------
    created, start = False, time.time()
    setup_error, run_dir, data_path = None, None, None
    if rank == 0:
        try:
            run_dir, data_path, created = _prepare_run_dir(config, out, resume, overwrite, device, amp_dtype,
                                                           world, show)
        except Exception as exc:  # told to the other ranks below, then raised here
            setup_error = exc
    run_dir, data_path, error = _share((run_dir, data_path, str(setup_error) if setup_error else None), world)
    if setup_error is not None:
        raise setup_error
    if error is not None:
        raise GalaxymorphError(f"rank 0 could not set up the run: {error}")
    run_dir, data_path = Path(run_dir), Path(data_path)
    last_path, best_path = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt"

    epochs_done = 0
    try:
        # ---- data: the train and val splits in memory as uint8 -----------------------------
        from .data.splits import load_manifest

        manifest = load_manifest(run_dir / "manifest.json")
        train_x, train_y = load_split(data_path, manifest, "train", progress=show)
        if config.targets == "votes":  # soft targets: p(second class) from the catalogue's vote fractions
            from .votes import split_soft_targets

            train_y = split_soft_targets(data_path, manifest, "train")
        val_x, val_y = load_split(data_path, manifest, "val", progress=show)
        train_batches = BatchSampler(len(train_y), config.batch_size, config.seed, True, rank, world)
        val_batches = BatchSampler(len(val_y), max(config.batch_size, 64), config.seed, False, rank, world)
        augment = Augmenter(config.augment, config.rotation, config.zoom, config.shift)

        # ---- model and optimiser --------------------------------------------------------------
        torch.manual_seed(config.seed)
        model = build_model(config.model, config.classes)
        if config.weights and resume is None:
            load_weights(model, config.weights)
        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        model = model.to(device, memory_format=memory_format)
        binary = model.n_outputs == 1
        decay = [p for p in model.parameters() if p.ndim >= 2]  # conv and linear weights, not biases/norms
        no_decay = [p for p in model.parameters() if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        Optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        optimizer = Optimizer(groups, lr=config.lr)
        scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        total_steps = config.epochs * len(train_batches)
        step, start_epoch, history = 0, 1, []
        best = {"epoch": 0, "val_loss": math.inf}

        if resume is not None:  # continue from the last finished epoch
            state = read_checkpoint(last_path)
            try:
                model.load_state_dict(state["state_dict"])
                optimizer.load_state_dict(state["optimizer"])
                scaler.load_state_dict(state["scaler"])
                step, history, best = state["step"], state["history"], state["best"]
                start_epoch = state["epoch"] + 1
                torch.set_rng_state(state["rng"]["torch"])
            except (KeyError, ValueError, RuntimeError) as exc:
                raise GalaxymorphError(f"cannot resume from {last_path}: it does not match this run ({exc})") from None
            epochs_done = state["epoch"]
        ddp_model = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if rank == 0 and resume is None:  # epoch 0: a Ctrl-C during epoch 1 is resumable too
            _save_last(last_path, model, optimizer, scaler, step, 0, best, history, config)

        # ---- the epochs -------------------------------------------------------------------------
        for epoch in range(start_epoch, config.epochs + 1):
            if config.patience and epoch - best["epoch"] > config.patience and best["epoch"] > 0:
                break  # (only reached on resume: a finished early stop)
            t0 = time.perf_counter()
            torch.manual_seed(epoch_seed(config.seed, epoch, rank))  # dropout: same on resume
            model.train()
            sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
            bar = progress_bar(total=len(train_batches), desc=f"epoch {epoch}/{config.epochs}", unit="batch",
                               disable=not show)
            lr = config.lr
            for x, y in iterate_batches(train_x, train_y, train_batches, epoch, device, model.resize, augment,
                                        config.seed, config.channels_last):
                lr = config.lr * lr_factor(step, total_steps, config.schedule)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    logits = ddp_model(x)
                losses, correct = loss_and_correct(logits, y, binary)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(losses.mean()).backward()
                scaler.step(optimizer)
                scaler.update()
                step += 1
                sums += torch.stack([losses.detach().sum().double(), correct.double(),
                                     torch.tensor(len(y), dtype=torch.float64, device=device)])
                bar.update(1)
                if show and (bar.n % 5 == 0 or bar.n == bar.total):
                    s = sums.tolist()
                    bar.set_postfix(loss=f"{s[0] / s[2]:.4f}", acc=f"{s[1] / s[2]:.3f}")
            bar.close()
            train_loss, train_acc = _reduce(sums, world)
            sync_buffers(model, world)  # batch-norm statistics: rank 0's on every rank
            val_loss, val_acc = evaluate_loss(model, val_x, val_y, val_batches, device, amp_dtype, binary,
                                              config.channels_last, world)
            record = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
                      "val_acc": val_acc, "lr": lr, "seconds": round(time.perf_counter() - t0, 3)}
            history.append(record)
            improved = val_loss < best["val_loss"]
            if improved:
                best = {"epoch": epoch, "val_loss": val_loss, "val_acc": val_acc}
            epochs_done = epoch

            # ---- files of this epoch (rank 0) ----------------------------------------------------
            if rank == 0:
                if improved:
                    save_checkpoint(best_path, model, epoch=epoch, val_loss=val_loss, val_acc=val_acc,
                                    config=config.to_dict())
                _save_last(last_path, model, optimizer, scaler, step, epoch, best, history, config)
                write_history(run_dir / "history.csv", history)
                plot_curves(history, run_dir / "curves.png", model, best["epoch"])
                runs.update_run_json(run_dir, epochs_done=epoch, best_epoch=best["epoch"],
                                     best_val_loss=best["val_loss"], best_val_acc=best.get("val_acc"))
            if show:
                print(f"epoch {epoch}/{config.epochs}  train loss {train_loss:.4f} acc {train_acc:.3f}  "
                      f"val loss {val_loss:.4f} acc {val_acc:.3f}  lr {lr:.2e}  {record['seconds']:.1f}s"
                      + ("  *best" if improved else ""), file=sys.stderr, flush=True)
            if on_epoch_end is not None:
                on_epoch_end(epoch, record, model)
            if config.patience and epoch - best["epoch"] >= config.patience:
                if show:
                    print(f"early stop: no better validation loss for {config.patience} epochs "
                          f"(best: epoch {best['epoch']})", file=sys.stderr)
                break

    except KeyboardInterrupt:
        if rank == 0:
            if last_path.is_file():
                runs.update_run_json(run_dir, status="interrupted", epochs_done=epochs_done)
                print(f"galaxymorph: training interrupted after epoch {epochs_done}; continue with: "
                      f"galaxymorph train --resume {run_dir}", file=sys.stderr)
            else:
                _discard(run_dir, created)
        raise
    except BaseException as exc:
        if rank == 0:
            if epochs_done == 0 and resume is None:
                _discard(run_dir, created)  # nothing worth keeping: no half-made run folder
            else:
                runs.update_run_json(run_dir, status="failed", error=str(exc)[:500], epochs_done=epochs_done)
        if _is_out_of_memory(exc):
            raise GalaxymorphError(
                f"out of memory with --batch-size {config.batch_size} on {device}; try a smaller --batch-size "
                f"(e.g. {max(1, config.batch_size // 2)})") from None
        raise

    # ---- done ---------------------------------------------------------------------------------
    if rank == 0:
        if not best_path.is_file():  # no epoch ran (e.g. resumed a finished run): keep the last weights
            save_checkpoint(best_path, model, epoch=epochs_done, config=config.to_dict())
        previous = runs.read_run_json(run_dir).get("train_seconds", 0.0)
        runs.update_run_json(run_dir, status="complete", finished=_now(), epochs_done=epochs_done,
                             stopped_early=epochs_done < config.epochs, best_epoch=best["epoch"],
                             best_val_loss=best["val_loss"] if best["epoch"] else None,
                             best_val_acc=best.get("val_acc"),
                             train_seconds=round(previous + time.time() - start, 2))
    if world > 1:
        torch.distributed.barrier()
    return run_dir


# -- setting up ---------------------------------------------------------------------------------
def _prepare_run_dir(config: Config, out, resume, overwrite: bool, device, amp_dtype, world: int,
                     show: bool) -> tuple[Path, Path, bool]:
    """Rank 0: data, split and the run folder's first files. Returns (run_dir, data_path, created)."""
    if resume is not None:
        run_dir = Path(resume)
        run = runs.read_run_json(run_dir)
        if run.get("status") == "complete" and run.get("epochs_done", 0) >= config.epochs:
            raise GalaxymorphError(f"{run_dir} is already complete ({run.get('epochs_done')} epochs); "
                                   "pass a larger --epochs to train further")
        if not (run_dir / "checkpoints" / "last.pt").is_file():
            raise GalaxymorphError(f"cannot resume {run_dir}: no checkpoints/last.pt")
        data_path = runs.open_run(run_dir).data_path  # the data file, checked against the manifest
        config.save(run_dir / "config.toml")
        runs.update_run_json(run_dir, status="running", resumed=_now())
        return run_dir, data_path, False

    data_path = runs.resolve_data(config, progress=show)
    manifest, source = runs.resolve_manifest(config, data_path)
    run_dir, created = runs.create_run_dir(out, config, overwrite)
    try:
        runs.portable_config(config, run_dir).save(run_dir / "config.toml")
        manifest_file = runs.write_manifest(run_dir, manifest, source)
        write_json(run_dir / "environment.json",
                        runs.environment_info(device, torch.get_num_threads(), _dtype_name(amp_dtype), world))
        runs.update_run_json(
            run_dir, status="running", started=_now(), model=config.model, classes=config.classes,
            data=str(data_path.resolve()), data_sha256=runs.data_sha256(manifest, data_path),
            data_requested=config.data,
            manifest={"path": "manifest.json", "sha256": sha256_file(manifest_file),
                      "source": str(source) if source else None},
            world_size=world, mixed_precision=_dtype_name(amp_dtype) or "off")
    except BaseException:
        _discard(run_dir, created)
        raise
    return run_dir, data_path, created


def _resume_config(run_dir: Path, given: Config | None) -> Config:
    """The config saved in a run folder; a given one may differ only in RESUMABLE_CHANGES."""
    path = run_dir / "config.toml"
    if not run_dir.exists():
        raise GalaxymorphError(f"cannot resume: run folder not found: {run_dir}")
    if not path.is_file():
        raise GalaxymorphError(f"cannot resume: {run_dir} is not a galaxymorph run folder (no config.toml)")
    saved = Config.from_dict(load_mapping(path))
    if given is None:
        return saved
    given = runs.portable_config(given, run_dir)  # compare like with like: paths as saved
    changed = [k for k, v in given.to_dict().items() if v != getattr(saved, k) and k not in RESUMABLE_CHANGES]
    if changed:
        raise GalaxymorphError(f"cannot resume {run_dir} with different {', '.join(changed)}; "
                               f"only {', '.join(RESUMABLE_CHANGES)} may change")
    return given


def select_device(name: str) -> torch.device:
    """``auto`` = the GPU when there is one; a CUDA device that is not there is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GalaxymorphError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GalaxymorphError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
    return device


def mixed_precision(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype: bf16 on CPUs with native bf16 (AVX512-BF16/AMX) and capable GPUs, else
    fp16 on older GPUs; None (fp32) when ``amp`` is off or the CPU would only emulate bf16."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def cpu_has_bf16() -> bool:
    for probe in ("is_bf16_supported", "_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, probe, None)
        if check is not None:
            try:
                if check():
                    return True
            except Exception:  # an old or odd build: treat as unsupported
                pass
    return False


def load_weights(model: Classifier, path: str | os.PathLike) -> None:
    """Initialise from a local galaxymorph checkpoint or a plain state_dict (of the Classifier or its net)."""
    path = Path(path)
    if not path.is_file():
        raise GalaxymorphError(f"--weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise GalaxymorphError(f"cannot read --weights {path}: not a torch file ({exc})") from None
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


# -- distributed ----------------------------------------------------------------------------------
def start_distributed(device: torch.device) -> tuple[int, int, bool]:
    """(rank, world_size, whether we started the process group) from torchrun's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, False
    import torch.distributed as dist

    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), True


def _share(values: tuple, world: int) -> tuple:
    """Rank 0's values on every rank."""
    if world <= 1:
        return values
    box = [tuple(str(v) if isinstance(v, Path) else v for v in values)]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def _reduce(sums: torch.Tensor, world: int) -> tuple[float, float]:
    """(mean loss, accuracy) from (loss sum, correct, count), summed over ranks."""
    if world > 1:
        sums = sums.clone()
        torch.distributed.all_reduce(sums)
    loss_sum, correct, count = sums.tolist()
    return loss_sum / max(count, 1), correct / max(count, 1)


def sync_buffers(model: torch.nn.Module, world: int) -> None:
    """Give every rank rank 0's buffers (batch-norm running statistics), so all ranks hold one model."""
    if world > 1:
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, src=0)


# -- the maths of one step ------------------------------------------------------------------------
def loss_and_correct(logits: torch.Tensor, y: torch.Tensor, binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image losses (fp32) and the number right: one logit + BCE for two classes, else softmax + CE."""
    logits = logits.float()
    if binary:
        z = logits[:, 0]
        # y: 0/1 labels, or soft targets in [0, 1] (counted right when on the same side of 0.5)
        return F.binary_cross_entropy_with_logits(z, y.float(), reduction="none"), ((z > 0) == (y > 0.5)).sum()
    return F.cross_entropy(logits, y, reduction="none"), (logits.argmax(1) == y).sum()


def lr_factor(step: int, total: int, schedule: str) -> float:
    """Learning-rate multiplier at ``step`` of ``total``.

    ``onecycle``: cosine warm-up from 1/25 to 1 over the first 25% of steps, then cosine decay
    to 1e-4; ``cosine``: cosine decay from 1 to 0; ``constant``: 1.
    """
    if schedule == "constant":
        return 1.0
    t = min(step / max(total - 1, 1), 1.0)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    warm = 0.25
    if t < warm:
        return 1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi * t / warm))
    return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (t - warm) / (1 - warm)))


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
        sums += torch.stack([losses.sum().double(), correct.double(),
                             torch.tensor(len(y), dtype=torch.float64, device=device)])
    model.train()
    return _reduce(sums, world)


# -- files ----------------------------------------------------------------------------------------
def _save_last(path: Path, model, optimizer, scaler, step: int, epoch: int, best: dict, history: list,
               config: Config) -> None:
    """checkpoints/last.pt: everything --resume needs to continue exactly."""
    save_checkpoint(path, model, optimizer=optimizer.state_dict(), scaler=scaler.state_dict(), step=step,
                    epoch=epoch, best=best, history=history, rng={"torch": torch.get_rng_state()},
                    config=config.to_dict())


def write_history(path: Path, history: list[dict]) -> Path:
    """history.csv: one row per epoch."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row[k] for k in HISTORY_COLUMNS})
    return write_text(path, buf.getvalue())


def read_history(path: str | os.PathLike) -> list[dict]:
    """history.csv back as a list of dicts of numbers."""
    with open(path, encoding="utf-8", newline="") as fh:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(fh)]


def plot_curves(history: list[dict], path: Path, model: Classifier, best_epoch: int) -> Path:
    """curves.png: loss and accuracy per epoch, train vs validation, best epoch marked."""
    from .plotting import plt, save_figure

    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.plot(epochs, [r[f"train_{key}"] for r in history], "o-", ms=3, label="train")
        ax.plot(epochs, [r[f"val_{key}"] for r in history], "o-", ms=3, label="validation")
        if best_epoch:
            ax.axvline(best_epoch, color="0.6", ls="--", lw=1, label=f"best (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    classes = " vs ".join(model.class_names) if len(model.class_names) <= 3 else f"{len(model.class_names)} classes"
    fig.suptitle(f"{model.name} model: {classes}", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)


def _discard(run_dir: Path, created: bool) -> None:
    """Remove a run folder this call made, so no half-made run is left behind."""
    if created and run_dir.is_dir():
        shutil.rmtree(run_dir, ignore_errors=True)


def _is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    text = str(exc)
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or isinstance(exc, MemoryError))


def _dtype_name(dtype: torch.dtype | None) -> str | None:
    return None if dtype is None else str(dtype).replace("torch.", "")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
