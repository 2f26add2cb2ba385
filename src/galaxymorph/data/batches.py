"""Batches for training: the split held in memory as uint8, a seeded sampler, GPU/CPU augmentation.

The images of a split are read once into one uint8 array (N, 256, 256, 3) -- 192 KiB each, so
even the full two-class Galaxy10 training set fits in under a gigabyte -- and never copied as
floats. Each batch is cut from that array, moved to the device, turned into floats, resized to
the model's input size *first* (augmenting 128 px images is four times cheaper than 256 px),
then augmented with a handful of batched tensor operations: no per-image Python loop.

Randomness comes from generators seeded with ``(seed, epoch, rank)``, so an epoch's batches and
augmentations are the same whether it runs straight through or after ``--resume``.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..config import AUGMENTATIONS, check_augmentation
from ..errors import DataError
from ..inference import d4_transform, to_device_uint8, to_float_nchw
from ..progress import progress_bar
from .galaxy10 import label_positions, open_galaxy10
from .splits import split_indices
from .tree import load_tree



def epoch_seed(*parts: int) -> int:
    """One well-mixed 63-bit seed from integers such as (seed, epoch, rank)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint64)[0] >> 1)


# -- the split in memory ------------------------------------------------------------------
def load_split(data_path: str | os.PathLike, manifest: dict, split: str,
               progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, 256, 256, 3) and labels 0..k-1 of one split of a manifest (of a tree
    manifest, ``targets: tree``: the images' vote counts, float32 (n, answers)).

    Labels are positions in ``manifest["classes"]`` (so the positive class of a binary task is
    the second class id). Read chunk by chunk straight into one array of the split's size
    (:meth:`Galaxy10File.images`): no float copy, no temporary list of chunks.
    """
    classes = [int(c) for c in manifest["classes"]]
    indices = split_indices(manifest, split)
    if manifest.get("targets") == "tree":  # the labels are the images' vote counts (n, answers)
        with open_galaxy10(data_path, labelled=False) as data:
            labels = load_tree(manifest["tree"]).read_counts(data, indices)
            with progress_bar(total=len(indices), desc=f"load {split}", unit="img", disable=not progress) as bar:
                return data.images(indices, progress=bar.update), labels
    with open_galaxy10(data_path) as data:
        try:
            labels = label_positions(data.labels[indices], classes)
        except DataError as exc:
            raise DataError(f"split {split!r} of the manifest points at images outside its classes: {exc}") from None
        with progress_bar(total=len(indices), desc=f"load {split}", unit="img", disable=not progress) as bar:
            images = data.images(indices, progress=bar.update)
    return images, labels


# -- which images go in which batch ---------------------------------------------------------
class BatchSampler:
    """Seeded batches of positions 0..n-1, reshuffled every epoch, sharded across ranks.

    Training (``shuffle=True``): the order of epoch ``e`` is a permutation seeded with
    ``(seed, e)``, the same on every rank; it is padded by repetition to a multiple of
    ``world_size`` and rank ``r`` takes every ``world_size``-th position from ``r``, so every rank
    runs the same number of steps (as ``torch.utils.data.DistributedSampler`` does).
    Evaluation (``shuffle=False``): positions in order, split across ranks without padding, so
    every image is counted exactly once when the ranks' sums are added up.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1):
        if n < 1:
            raise DataError("cannot make batches from an empty split")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size

    def positions(self, epoch: int = 0) -> np.ndarray:
        """The positions this rank sees in ``epoch``, in order."""
        if not self.shuffle:
            return np.arange(self.rank, self.n, self.world_size)
        order = np.random.default_rng(epoch_seed(self.seed, epoch)).permutation(self.n)
        padded = math.ceil(self.n / self.world_size) * self.world_size
        order = np.resize(order, padded)  # repeats the first few positions to pad
        return order[self.rank :: self.world_size]

    def batches(self, epoch: int = 0) -> list[np.ndarray]:
        pos = self.positions(epoch)
        return [pos[i : i + self.batch_size] for i in range(0, len(pos), self.batch_size)]

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        return len(self.batches(0))


# -- augmentation: batched tensor operations on the batch's device -------------------------
class Augmenter:
    """Random symmetries and small distortions of a float NCHW batch, all images at once.

    ``"d4"``: a random one of the 8 symmetries of the square per image (exact pixel moves:
    ``rot90`` and ``flip`` applied to masked groups), then a random rotation of
    +-``rotation`` turns, zoom of +-``zoom`` and shift of +-``shift`` image sizes in one
    ``affine_grid`` + ``grid_sample`` call. ``"seed"``: what the reference Keras notebook did --
    random horizontal flip, rotation +-``rotation`` turns and zoom +-``zoom``. ``"none"``: nothing.
    The border is filled by reflection: the edge of a cutout is sky noise, so a mirrored edge
    looks like more sky, not like a black frame the model could learn from.
    """

    def __init__(self, mode: str = "d4", rotation: float = 0.5, zoom: float = 0.1, shift: float = 0.05):
        if mode not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {mode!r}")
        check_augmentation(rotation, zoom, shift)
        self.mode, self.rotation, self.zoom = mode, rotation, zoom
        self.shift = 0.0 if mode == "seed" else shift

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.mode == "none":
            return x
        n = x.shape[0]
        on = generator.device if generator is not None else torch.device("cpu")  # draws: where the generator is
        uniform = lambda: torch.rand(n, generator=generator, device=on) * 2 - 1  # noqa: E731 - U(-1, 1) per image
        if self.mode == "d4":
            k = torch.randint(0, 4, (n,), generator=generator, device=on)
            flip = torch.randint(0, 2, (n,), generator=generator, device=on).bool()
            x = d4_transform(x, k, flip)
        else:  # "seed": horizontal flip only
            flip = torch.randint(0, 2, (n,), generator=generator, device=on).bool()
            x = torch.where(flip.to(x.device, non_blocking=True)[:, None, None, None], x.flip(-1), x)
        angle = uniform() * self.rotation * 2 * math.pi
        scale = 1 + uniform() * self.zoom
        shift = torch.stack([uniform(), uniform()], dim=1) * self.shift * 2  # normalised units: 2 = width
        if self.rotation == 0 and self.zoom == 0 and self.shift == 0:
            return x
        return affine(x, angle, scale, shift)


def affine(x: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate by ``angle`` (radians), zoom by ``scale`` (>1 enlarges) and shift, per image.

    One ``affine_grid`` + bilinear ``grid_sample`` for the whole batch, reflection padding.
    """
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    theta = theta.to(device=x.device, dtype=x.dtype, non_blocking=True)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


# -- putting it together ---------------------------------------------------------------------
def make_batch(images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
               positions: np.ndarray | torch.Tensor, device: torch.device,
               resize: Callable[[torch.Tensor], torch.Tensor], augment: Augmenter | None = None,
               generator: torch.Generator | None = None,
               channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The model-ready float batch (n, 3, s, s) in [0, 1] and its labels, on ``device``.

    uint8 pixels travel to the device (a quarter of the bytes of floats), then: float, resize to
    the model's input size, augment (if given), channels-last memory layout (if asked).
    ``images`` and ``labels`` may both be held on the device already (:func:`to_device`): then
    the batch is cut there and nothing crosses the bus.
    """
    if isinstance(images, torch.Tensor):  # held as tensors: cut where they are
        positions = torch.as_tensor(positions).to(images.device, non_blocking=True)
        y = labels[positions]
    else:
        y = torch.from_numpy(labels[positions])
    x = to_float_nchw(images[positions], device)
    x = resize(x)
    if augment is not None:
        x = augment(x, generator)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def to_device(images: np.ndarray, labels: np.ndarray, device: torch.device):
    """A split's uint8 images and labels moved to a GPU once (returned as they are for the CPU).

    On a GPU every batch is then cut, augmented and classified on the card: the host only
    launches work, and a Galaxy10 training split (2.4 GB as uint8) fits on any recent card.
    """
    if device.type == "cpu":
        return images, labels
    return to_device_uint8(images, device), torch.from_numpy(labels).to(device)


def iterate_batches(images: np.ndarray, labels: np.ndarray, sampler: BatchSampler, epoch: int,
                    device: torch.device, resize: Callable[[torch.Tensor], torch.Tensor],
                    augment: Augmenter | None = None, seed: int = 0,
                    channels_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Every batch of one epoch on this rank, augmented with a generator seeded by (seed, epoch, rank).

    The generator lives on the images' device, so a GPU draws its own augmentation parameters
    (the same ones on every run and resume with that device; a CPU run draws CPU numbers).
    """
    on = images.device if isinstance(images, torch.Tensor) else torch.device("cpu")
    generator = torch.Generator(device=on).manual_seed(epoch_seed(seed, epoch, sampler.rank, 1))
    batches = sampler.batches(epoch)
    if on.type != "cpu" and batches:  # the epoch's positions cross to the device in one copy
        order = torch.from_numpy(np.concatenate(batches)).to(on, non_blocking=True)
        batches = list(torch.split(order, [len(b) for b in batches]))
    for positions in batches:
        yield make_batch(images, labels, positions, device, resize, augment, generator, channels_last)
