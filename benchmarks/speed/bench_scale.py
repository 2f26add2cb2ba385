"""Galaxy10 at full scale, stage by stage: loading (three HDF5 layouts), synthesis, training,
evaluation and explanation, with images per second and peak memory.

    python benchmarks/speed/bench_scale.py --n 2000            # a few minutes on 2 cores
    python benchmarks/speed/bench_scale.py                     # Galaxy10's 17,736 images (~8 GB of files)
    python benchmarks/speed/bench_scale.py --n 2000 --skip-train --markdown

What it does:

1. **Synthesis**: renders ``--synth-n`` synthetic cutouts of the 10 classes with
   ``synthesize`` (on ``--workers`` processes where ``synthesize`` takes them) and reports img/s.
2. **Files**: builds ``--n`` images with the 10 classes in Galaxy10 DECaLS's proportions, in the
   three layouts a Galaxy10 file comes in: contiguous, one image per chunk (lzf, what
   galaxymorph writes) and h5py's automatic chunks with gzip (``create_dataset(...,
   compression="gzip")``, many images per chunk). Pixels are the rendered cutouts in their 8
   D4 orientations, tiled, with the image's number written into its first pixels so every
   image is different: building the files costs a few seconds of compression, not hours of
   rendering.
3. **Loading**, per layout: the sequential read of the whole file (chunk-aligned slabs into one
   reused buffer: what the disk and the decompressor give), then selections read with
   ``Galaxy10File.images`` into a fresh array: the train split of the 2-vs-5 task, the train
   split of all 10 classes, and a random 10% in random order. Each figure is the best of
   ``--repeat`` rounds, sequential and selections measured in turn within each round, so a
   noisy machine slows both alike. A selection cannot be read faster than the chunks holding
   it: ``file share in touched chunks`` is how much of the file those are (with hundreds of
   images per gzip chunk, every chunk holds a selected image), and ``time vs reading those``
   compares the selection's time with the sequential read of that share. ``h5py fancy`` is
   the old way, ``dataset[sorted unique indices]``, timed on the first ``--fancy-sample``
   indices of the selection. ``memory / selection``: the peak of Python and numpy allocations
   during the read over the selection's uint8 size (tracemalloc; HDF5's buffers not counted).
   A file galaxymorph re-chunks (many images per chunk: the gzip layout; see
   ``galaxymorph.data.rechunk``) gets its one-time copy built before the rounds (its seconds
   are reported) and a second set of rows, ``after re-chunking``: the same
   selections as every command reads them from then on, still compared with the sequential
   read of the original file. The "before" rows are read with ``rechunk=False``. Copies go to
   ``cache/`` in the benchmark's folder, never the user's cache.
4. **Training** (default model, 10 classes, ``--epochs``) on the gzip file (or the first of
   ``--layouts`` without it; epochs run from memory, so the layout only changes the load), as ``galaxymorph
   train`` does it: split (with the duplicate check), load, epochs. Then **evaluation** and
   **explanation** (GradCAM) of that run, each with its wall time and peak RSS.

Figures depend on the page cache: files just written are in memory, so loading measures
decompression and copying, not the disk. Linux only for the per-stage peak RSS
(``/proc/self/clear_refs``); elsewhere the process-wide peak is shown.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from galaxymorph.data import rechunk
from galaxymorph.data.galaxy10 import IMAGE_SHAPE, open_galaxy10
from galaxymorph.data.splits import stratified_split
from galaxymorph.runs import cpu_name

# Images per class in Galaxy10 DECaLS (Leung & Bovy), 17,736 in all.
GALAXY10_COUNTS = np.array([1081, 1853, 2645, 2027, 334, 2043, 1829, 2628, 1423, 1873])
LAYOUTS = {
    "contiguous": {},
    "one image per chunk, lzf": {"chunks": (1, *IMAGE_SHAPE), "compression": "lzf"},
    "h5py auto chunks, gzip": {"compression": "gzip"},
}
IMAGE_BYTES = int(np.prod(IMAGE_SHAPE))
GZIP = "h5py auto chunks, gzip"  # the real Galaxy10 file's layout: the one the model stages train on
SHORT_NAMES = dict(zip(("contiguous", "lzf", "gzip"), LAYOUTS))  # --layouts


# -- memory -------------------------------------------------------------------------------------
def reset_peak_rss() -> None:
    """Start a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def rss_mb(field: str = "VmHWM") -> float:
    """Peak (``VmHWM``) or current (``VmRSS``) resident memory in MiB (elsewhere than Linux: the
    process's peak)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


# -- stages -------------------------------------------------------------------------------------
def synthesize_pool(folder: Path, n: int, workers: int) -> tuple[np.ndarray, float]:
    """Render about ``n`` cutouts of the 10 classes; returns them and the img/s of rendering."""
    from galaxymorph.data.synthetic import synthesize

    kwargs = {"workers": workers} if "workers" in inspect.signature(synthesize).parameters else {}
    path = folder / "pool.h5"
    per_class = max(1, n // 10)
    start = time.perf_counter()
    synthesize(path, classes=list(range(10)), n_per_class=per_class, seed=0, progress=False, **kwargs)
    rate = 10 * per_class / (time.perf_counter() - start)
    with open_galaxy10(path) as data:
        pool = data.images()
    return pool, rate


def galaxy10_labels(n: int, seed: int = 0) -> np.ndarray:
    """``n`` class ids in Galaxy10's proportions (every class at least 3 images), shuffled."""
    counts = np.maximum(3, np.round(GALAXY10_COUNTS * n / GALAXY10_COUNTS.sum()).astype(int))
    counts[np.argmax(counts)] += n - counts.sum()
    labels = np.repeat(np.arange(10), counts)
    return np.random.default_rng(seed).permutation(labels).astype(np.uint8)


def build_files(folder: Path, pool: np.ndarray, labels: np.ndarray, layouts=tuple(LAYOUTS)) -> dict[str, dict]:
    """One Galaxy10-layout file per layout; returns path, build seconds and size per layout."""
    variants = np.concatenate([np.rot90(pool[:, :, ::flip], k, axes=(1, 2))
                               for k in range(4) for flip in (1, -1)])
    pick = np.random.default_rng(1).integers(0, len(variants), len(labels))
    built = {}
    for i, (name, options) in enumerate(LAYOUTS.items()):
        if name not in layouts:
            continue
        path = folder / f"layout{i}.h5"
        start = time.perf_counter()
        with h5py.File(path, "w") as f:
            ds = f.create_dataset("images", shape=(len(labels), *IMAGE_SHAPE), dtype=np.uint8, **options)
            f.create_dataset("ans", data=labels)
            step = 512 if ds.chunks is None else max(1, 512 // ds.chunks[0]) * ds.chunks[0]
            for s in range(0, len(labels), step):
                block = variants[pick[s:s + step]]
                number = np.arange(s, s + len(block), dtype=">u4").view(np.uint8).reshape(-1, 4)
                block[:, 0, :4, 0] = number  # every image different: no exact duplicates
                ds[s:s + len(block)] = block
            chunks = ds.chunks
        built[name] = {"path": path, "build_s": time.perf_counter() - start,
                       "size_mb": path.stat().st_size / 1e6, "chunks": chunks}
    return built


def sequential_read(path: Path) -> float:
    """img/s of reading every image in file order, chunk-aligned slabs into one reused buffer."""
    with h5py.File(path, "r") as f:
        ds = f["images"]
        rows = ds.chunks[0] if ds.chunks else 1
        step = max(1, 256 // rows) * rows
        buffer = np.empty((step, *IMAGE_SHAPE), dtype=np.uint8)
        start = time.perf_counter()
        for s in range(0, len(ds), step):
            e = min(len(ds), s + step)
            ds.read_direct(buffer, np.s_[s:e], np.s_[0:e - s])
        return len(ds) / (time.perf_counter() - start)


def selections(labels: np.ndarray) -> dict[str, np.ndarray]:
    """The selections every command reads: train splits, and an unsorted random tenth."""
    rng = np.random.default_rng(2)
    two = np.flatnonzero(np.isin(labels, [2, 5]))
    return {
        "2-vs-5 train split": two[stratified_split(labels[two], (0.7, 0.15, 0.15), 0)[0]],
        "10-class train split": stratified_split(labels, (0.7, 0.15, 0.15), 0)[0],
        "random 10%, unsorted": rng.permutation(len(labels))[: max(1, len(labels) // 10)],
    }


def read_selection(path: Path, idx: np.ndarray, from_copy: bool = False) -> float:
    """img/s of ``Galaxy10File.images(idx)``, into a fresh array as every command does; from
    the file itself, or (``from_copy``) from its re-chunked copy, which must exist already."""
    with open_galaxy10(path, rechunk=from_copy) as data:
        start = time.perf_counter()
        data.images(idx)
        return len(idx) / (time.perf_counter() - start)


def build_rechunked_copy(path: Path) -> dict | None:
    """Build the re-chunked copy galaxymorph would make of ``path`` (None when it makes none):
    its seconds (one sequential pass, as the first selection would pay), the growth of the
    peak RSS while building (MiB), size and path."""
    with h5py.File(path, "r") as f:
        if not rechunk.worth_copying(path, f):
            return None
        reset_peak_rss()
        before = rss_mb("VmRSS")
        start = time.perf_counter()
        copy = rechunk.open_copy(path, f, build=True)
        seconds = time.perf_counter() - start
        peak = rss_mb() - before
    if copy is None:
        return None
    copy_file = Path(copy.filename)
    copy.close()
    return {"build_s": seconds, "peak_mb": peak, "size_mb": copy_file.stat().st_size / 1e6, "path": copy_file}


def selection_memory(path: Path, idx: np.ndarray, from_copy: bool = False) -> float:
    """Peak of Python and numpy allocations while reading ``idx``, over the selection's uint8 size
    (1.0: the output array and nothing else; HDF5's own buffers are not counted)."""
    import tracemalloc

    with open_galaxy10(path, rechunk=from_copy) as data:
        tracemalloc.start()
        try:
            data.images(idx)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return peak / (len(idx) * IMAGE_BYTES)


def touched_share(chunks, idx: np.ndarray, n: int) -> float:
    """Share of the file's rows that lie in chunks holding a selected image (all must be read)."""
    rows = chunks[0] if chunks else 1
    blocks = np.unique(np.asarray(idx) // rows)
    return min(n, len(blocks) * rows) / n


def fancy_read(path: Path, idx: np.ndarray, sample: int) -> float:
    """img/s of h5py's fancy indexing (the old reader) on the first ``sample`` indices."""
    part = idx[:sample]
    with h5py.File(path, "r") as f:
        start = time.perf_counter()
        order = np.unique(part)
        f["images"][order][np.searchsorted(order, part)]
        return len(part) / (time.perf_counter() - start)


COPY_ROWS = ", after re-chunking"  # appended to the layout's name


def bench_loading(built: dict, labels: np.ndarray, repeat: int, fancy_sample: int) -> list[dict]:
    """Loading rows per layout (and per layout's re-chunked copy, building it first: its
    figures go into ``built[name]["copy"]``)."""
    rows = []
    sels = selections(labels)
    for name, info in built.items():
        copy = info["copy"] = build_rechunked_copy(info["path"])
        seq, copy_seq = 0.0, 0.0
        rate, copy_rate = {k: 0.0 for k in sels}, {k: 0.0 for k in sels}
        for _ in range(repeat):  # sequential and selections in turn, best of each
            seq = max(seq, sequential_read(info["path"]))
            for key, idx in sels.items():
                rate[key] = max(rate[key], read_selection(info["path"], idx))
                if copy:
                    copy_rate[key] = max(copy_rate[key], read_selection(info["path"], idx, from_copy=True))
            if copy:
                copy_seq = max(copy_seq, sequential_read(copy["path"]))
        for key, idx in sels.items():
            rows.append({"layout": name, "selection": key, "n": len(idx), "seq": seq, "rate": rate[key],
                         "touched": touched_share(info["chunks"], idx, len(labels)), "read_seq": seq,
                         "fancy": fancy_read(info["path"], idx, fancy_sample),
                         "mem": selection_memory(info["path"], idx)})
        if copy:
            copy["seq"] = copy_seq
            for key, idx in sels.items():
                rows.append({"layout": name + COPY_ROWS, "selection": key, "n": len(idx), "seq": seq,
                             "rate": copy_rate[key], "touched": touched_share(None, idx, len(labels)),
                             "read_seq": copy_seq, "fancy": None,
                             "mem": selection_memory(info["path"], idx, from_copy=True)})
    return rows


def bench_model_stages(path: Path, folder: Path, epochs: int, device: str, batch_size: int = 32) -> dict:
    """Train (10 classes, default model), evaluate and explain on ``path``: seconds and peak RSS."""
    import galaxymorph as gm
    from galaxymorph.rundir import RunFolder

    out = {}
    reset_peak_rss()
    start = time.perf_counter()
    run_dir = gm.train(gm.Config(data=str(path), classes=list(range(10)), epochs=epochs, patience=0,
                                 device=device, batch_size=batch_size), out=folder / "run", progress=False)
    out["train_s"], out["train_rss"] = time.perf_counter() - start, rss_mb()
    history = RunFolder(run_dir).read_history()
    manifest = gm.load_manifest(RunFolder(run_dir).manifest_path)
    out["n_train"], out["n_val"] = len(manifest["splits"]["train"]), len(manifest["splits"]["val"])
    out["epoch_s"] = [float(r["seconds"]) for r in history]
    for stage, call in (("evaluate", lambda: gm.evaluate(run_dir, progress=False)),
                        ("explain", lambda: gm.explain_run(run_dir, progress=False))):
        reset_peak_rss()
        start = time.perf_counter()
        call()
        out[f"{stage}_s"], out[f"{stage}_rss"] = time.perf_counter() - start, rss_mb()
    out["n_test"] = len(manifest["splits"]["test"])
    return out


# -- report -------------------------------------------------------------------------------------
def report(args, synth_rate: float, built: dict, loading: list[dict], model: dict | None) -> str:
    lines = [f"machine: {cpu_name()}, {os.cpu_count()} cores; python {platform.python_version()}, "
             f"h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}; load average "
             f"{os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"command: python benchmarks/speed/bench_scale.py {' '.join(sys.argv[1:])}", ""]
    lines += [f"synthesis: {synth_rate:.1f} img/s ({args.synth_n // 10 * 10} images, workers={args.workers})", ""]
    lines += ["| layout | chunk shape | file MB | build s |", "|---|---|---:|---:|"]
    for name, info in built.items():
        lines.append(f"| {name} | {info['chunks'] or 'contiguous'} | {info['size_mb']:.0f} | {info['build_s']:.1f} |")
    for name, info in built.items():
        copy = info.get("copy")
        if copy:
            lines += ["", f"re-chunked copy of the {name} file (one image per chunk, lzf; what galaxymorph "
                      f"builds at the first selection): built once in **{copy['build_s']:.1f} s** "
                      f"({args.n / copy['build_s']:.0f} img/s, peak RSS +{copy['peak_mb']:.0f} MiB), "
                      f"{copy['size_mb']:.0f} MB; "
                      f"sequential read of the copy {copy['seq']:.0f} img/s"]
    lines += ["", f"loading, {args.n} images (best of {args.repeat}):", "",
              "| layout | selection | images | sequential img/s | selection img/s | vs sequential | "
              "file share in touched chunks | time vs reading those | h5py fancy img/s | fancy vs sequential "
              "| memory / selection |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in loading:
        # The time to read the touched chunks sequentially (of the file read), over the selection's time.
        efficiency = (r["touched"] * args.n / r["read_seq"]) / (r["n"] / r["rate"])
        fancy = ("| – | – " if r["fancy"] is None else
                 f"| {r['fancy']:.0f} | {r['fancy'] / r['seq']:.0%} ")
        lines.append(f"| {r['layout']} | {r['selection']} | {r['n']} | {r['seq']:.0f} | {r['rate']:.0f} | "
                     f"**{r['rate'] / r['seq']:.0%}** | {r['touched']:.0%} | {efficiency:.0%} "
                     f"{fancy}| {r['mem']:.2f} |")
    if model:
        epochs = model["epoch_s"]
        per_epoch = sum(epochs) / len(epochs)
        lines += ["", f"model stages on the {args.train_layout} file (10 classes, default model, {len(epochs)} epoch(s), "
                  f"batch {args.batch_size}, device {args.device}; epoch seconds: "
                  f"{', '.join(f'{e:.2f}' for e in epochs)}):", "",
                  "| stage | images | seconds | img/s | peak RSS MiB |", "|---|---:|---:|---:|---:|",
                  f"| train: split + load + epochs | {model['n_train']} | {model['train_s']:.1f} | | "
                  f"{model['train_rss']:.0f} |",
                  f"| one epoch (train + validation pass) | {model['n_train']} + {model['n_val']} | "
                  f"{per_epoch:.1f} | {model['n_train'] / per_epoch:.0f} | |",
                  f"| evaluate (test split) | {model['n_test']} | {model['evaluate_s']:.1f} | "
                  f"{model['n_test'] / model['evaluate_s']:.0f} | {model['evaluate_rss']:.0f} |",
                  f"| explain (default method, 16 per gallery) | | {model['explain_s']:.1f} | | "
                  f"{model['explain_rss']:.0f} |"]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=int(GALAXY10_COUNTS.sum()), help="images per file (Galaxy10: 17736)")
    p.add_argument("--synth-n", type=int, default=100, help="images to render for the synthesis figure")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="synthesis processes")
    p.add_argument("--repeat", type=int, default=2, help="rounds of the loading measurements (best counts)")
    p.add_argument("--fancy-sample", type=int, default=200, help="indices timed with h5py fancy indexing")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--device", default="auto", help="device of the model stages")
    p.add_argument("--batch-size", type=int, default=32, help="training batch of the model stages")
    p.add_argument("--layouts", nargs="+", choices=list(SHORT_NAMES), default=list(SHORT_NAMES),
                   help="file layouts to build and time (the model stages need gzip)")
    p.add_argument("--skip-train", action="store_true", help="synthesis and loading only")
    p.add_argument("--rechunk-from-mb", type=float, default=rechunk.RECHUNK_FROM_BYTES / 2**20,
                   help="files this large (MiB) with many images per chunk get a re-chunked copy, as "
                        "galaxymorph.data.rechunk.RECHUNK_FROM_BYTES (default: its value)")
    p.add_argument("--dir", help="where to build the files (default: a temporary folder, deleted)")
    args = p.parse_args(argv)
    if args.n < 30:
        p.error("--n must be at least 30 (three images of every class)")
    os.environ.setdefault("GALAXYMORPH_NO_PROGRESS", "1")
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_scale_"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["XDG_CACHE_HOME"] = str(folder / "cache")  # re-chunked copies: here, not ~/.cache
    rechunk.RECHUNK_FROM_BYTES = int(args.rechunk_from_mb * 2**20)
    try:
        print(f"rendering {args.synth_n} cutouts ...", file=sys.stderr, flush=True)
        pool, synth_rate = synthesize_pool(folder, args.synth_n, args.workers)
        labels = galaxy10_labels(args.n)
        print(f"building {args.n}-image files in {len(args.layouts)} layouts in {folder} ...", file=sys.stderr, flush=True)
        built = build_files(folder, pool, labels, [SHORT_NAMES[k] for k in args.layouts])
        del pool
        print("loading ...", file=sys.stderr, flush=True)
        loading = bench_loading(built, labels, args.repeat, args.fancy_sample)
        model = None
        if not args.skip_train:  # on the gzip file (Galaxy10's layout) when it was built
            print("training, evaluating, explaining ...", file=sys.stderr, flush=True)
            args.train_layout = GZIP if GZIP in built else next(iter(built))
            model = bench_model_stages(built[args.train_layout]["path"], folder, args.epochs, args.device,
                                       args.batch_size)
        print(report(args, synth_rate, built, loading, model))
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
