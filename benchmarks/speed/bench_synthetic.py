"""Synthetic-sky speed: one worker's render rate against an earlier renderer, and `data synth` on N cores.

Two measurements, on the same machine in one run (timings on a shared machine vary; compare
the figures of one run with each other, not with another run's):

1. **Render rate, one core, side by side.** The current renderer and the one at git revision
   ``--baseline`` (default: the commit before the parallel renderer) render the same
   ``(class, index)`` list, all ten classes, in alternating rounds; the best round of each is
   reported (the least disturbed by other work on the machine), in images per wall-clock second
   and per CPU second (the latter barely depends on other work competing for the cores).
2. **Steady state**: the rendering workers' rate after their first batch (without start-up).
3. **`synthesize` end to end** (render, masks, LZF compression, write) with ``--workers 1`` and
   with every core, in images per second.

    python benchmarks/speed/bench_synthetic.py [--n 200] [--rounds 3] [--baseline 04d272c] [--workers N]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASELINE = "04d272c"  # last commit with the single-process, float64 renderer (galaxymorph-synthetic/2)


def load_baseline(rev: str):
    """The synthetic module as it was at git revision ``rev``, imported beside the current one."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:src/galaxymorph/data/synthetic.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "synthetic_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("galaxymorph.data._synthetic_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def render_rate(module, jobs, difficulty: float) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU second of this process)."""
    start, cpu = time.perf_counter(), time.process_time()
    for c, i in jobs:
        module.render_galaxy(c, module.image_rng(0, c, i), difficulty)
    return len(jobs) / (time.perf_counter() - start), len(jobs) / (time.process_time() - cpu)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="images per round and per synthesize() call")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of the side-by-side render (0: skip it)")
    ap.add_argument("--baseline", default=BASELINE, help="git revision of the renderer to compare with ('' = none)")
    ap.add_argument("--workers", type=int, default=0, help="workers of the parallel run (0 = every core)")
    ap.add_argument("--difficulty", type=float, default=0.8)
    args = ap.parse_args(argv)

    src = str(REPO / "src")
    sys.path.insert(0, src)  # this checkout's galaxymorph, here and in the worker processes
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    from galaxymorph.data import synthetic
    from galaxymorph.runs import cpu_name
    from galaxymorph.workers import usable_cores

    workers = args.workers or usable_cores()
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, {workers} workers; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    jobs = [(c, i) for i in range(args.n) for c in range(10)][: args.n]
    modules = {"current": synthetic}
    if args.baseline:
        modules[f"baseline {args.baseline}"] = load_baseline(args.baseline)
    for module in modules.values():  # warm up: imports, caches
        render_rate(module, jobs[:3], args.difficulty)
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in modules}
    for _ in range(args.rounds):
        for name, module in modules.items():
            rates[name].append(render_rate(module, jobs, args.difficulty))
    if args.rounds:
        print(f"\nrender rate, one core, {args.n} images of all ten classes, difficulty {args.difficulty}:")
    best = {}
    for name, r in rates.items() if args.rounds else ():
        wall, cpu = [x[0] for x in r], [x[1] for x in r]
        best[name] = (max(wall), max(cpu))
        print(f"  {name:28s} wall: best {max(wall):6.1f} img/s, median {statistics.median(wall):6.1f};"
              f"  CPU: best {max(cpu):6.1f} img/s")
    if args.baseline and args.rounds:
        (w1, c1), (w0, c0) = best.values()
        print(f"  speed-up: {w1 / w0:.2f}x wall, {c1 / c0:.2f}x CPU")

    print(f"\nsteady state (after the first batch: without the workers' start-up), {args.n} images:")
    jobs2 = [(c, i) for i in range(args.n // 2) for c in (2, 5)]
    chunks = [jobs2[k:k + synthetic.CHUNK] for k in range(0, len(jobs2), synthetic.CHUNK)]
    for w in sorted({1, workers}):
        start = first = time.perf_counter()
        done = 0
        for k, (images, _) in enumerate(synthetic._rendered_chunks(chunks, 0, args.difficulty, w)):
            if k == 0:
                first = time.perf_counter()
            else:
                done += len(images)
        elapsed = time.perf_counter() - first
        print(f"  workers={w:<3d} {done / elapsed:6.1f} img/s  (first batch after {first - start:.1f} s)")

    print(f"\nsynthesize() end to end (render + masks + write), {args.n} images of classes 2 and 5:")
    with tempfile.TemporaryDirectory() as tmp:
        for w in sorted({1, workers}):
            start = time.perf_counter()
            synthetic.synthesize(Path(tmp) / f"sky{w}.h5", classes=(2, 5), n_per_class=args.n // 2,
                                 difficulty=args.difficulty, progress=False, workers=w)
            elapsed = time.perf_counter() - start
            print(f"  workers={w:<3d} {args.n / elapsed:6.1f} img/s  ({elapsed:.1f} s; a Galaxy10-sized "
                  f"sky of 17,736 images would take {17736 / (args.n / elapsed) / 60:.1f} min)")


if __name__ == "__main__":
    main()
