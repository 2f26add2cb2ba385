"""A run's figures and report: seconds to draw each figure, bytes of each file and of report.html.

For a trained run folder, in a temporary copy of it (the run itself is not touched): runs
``evaluate`` and ``explain`` with every figure drawn in this process, one after another, and
times each figure (the work that ``explain`` hands to its worker processes, and that a GPU run
waits for; each after a ``gc.collect()``, so that no figure pays for the garbage of those before
it); then writes report.html and times it. ``--baseline-src`` does the same with another
checkout's source (e.g. a clone of main) in a subprocess, on the same run, and prints both side
by side with their ratios; each source is measured ``--repeats`` times, alternating, in fresh
processes, and the least time of each is kept. Prints a Markdown table.

    python benchmarks/speed/bench_figures.py RUN_DIR [--baseline-src OTHER/src] [--threads 1] [--repeats 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# what the copy keeps: training's outputs; evaluate and explain write the rest again
KEPT = ("config.toml", "manifest.json", "run.json", "environment.json", "history.csv", "curves.png", "checkpoints")


def copy_run(run_dir: Path, into: Path) -> Path:
    """The run's training outputs (checkpoint, manifest, config, curves) in a fresh folder."""
    copy = into / run_dir.name
    copy.mkdir()
    for name in KEPT:
        source = run_dir / name
        if source.is_dir():
            shutil.copytree(source, copy / name)
        elif source.is_file():
            shutil.copy2(source, copy / name)
    return copy


def measure(run_dir: Path, threads: int) -> dict:
    """Seconds and bytes per figure file (name relative to the copy), explain's and the report's."""
    import torch

    import galaxymorph.evaluation.run as evaluation_run
    import galaxymorph.explain.run as explain_run_module
    from galaxymorph.evaluation import evaluate
    from galaxymorph.explain import explain_run
    from galaxymorph.report import write_report

    torch.set_num_threads(threads)
    figures: dict[str, dict] = {}
    copy = Path()  # the run's copy, set below: figure names are relative to it

    def timed(draw):
        def wrapper(*args, **kwargs):
            gc.collect()  # the garbage of earlier figures is collected here, not in this one's time
            t0 = time.perf_counter()
            written = draw(*args, **kwargs)
            seconds = time.perf_counter() - t0
            for path in written if isinstance(written, list) else [written]:
                path = Path(path)  # several files from one call: each gets the call's share of the time
                figures[path.relative_to(copy).as_posix()] = {
                    "seconds": seconds / (len(written) if isinstance(written, list) else 1),
                    "bytes": path.stat().st_size}
            return written
        return wrapper

    class InlinePool:
        """explain's FigurePool, drawing each figure at once in this process, timed."""

        def __enter__(self):
            return self

        def submit(self, draw, *args, **kwargs):
            timed(draw)(*args, **kwargs)

        def __exit__(self, *exc):
            return None

    evaluation_run.write_plots = timed(evaluation_run.write_plots)
    evaluation_run.write_examples = timed(evaluation_run.write_examples)
    explain_run_module.FigurePool = lambda *a, **k: InlinePool()
    with tempfile.TemporaryDirectory(prefix="bench-figures-") as tmp:
        copy = copy_run(run_dir, Path(tmp)).resolve()
        evaluate(copy, n_boot=200, progress=False, device="cpu")
        t0 = time.perf_counter()
        explain_run(copy, progress=False, device="cpu")
        explain_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = write_report(copy)
        report_s = time.perf_counter() - t0
        return {"figures": figures, "explain_s": explain_s, "report_s": report_s,
                "report_bytes": report.stat().st_size}


def measure_in(src: str | None, run_dir: Path, threads: int) -> dict:
    """:func:`measure` in a fresh subprocess, with the galaxymorph under ``src`` (None: this one's)."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.path.abspath(src)
    done = subprocess.run([sys.executable, __file__, str(run_dir), "--threads", str(threads), "--json"],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"measuring with {src or 'this source'} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def best(measurements: list[dict]) -> dict:
    """Each number's least value over repeated measurements (the least disturbed by other work)."""
    first = measurements[0]
    out = {k: min(m[k] for m in measurements) for k in first if k != "figures"}
    out["figures"] = {name: {k: min(m["figures"][name][k] for m in measurements) for k in entry}
                      for name, entry in first["figures"].items()}
    return out


def _kb(n: float) -> str:
    return f"{n / 1024:,.0f}"


def _ratio(before: float | None, after: float | None) -> str:
    return f"{before / after:.1f}x" if before and after else ""


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]  # gallery.png before, gallery.jpg after: the same figure


def table(after: dict, before: dict | None) -> str:
    """Markdown: one row per figure (matched by name without its ending), then explain and the report."""
    old = {_stem(k): v for k, v in (before or {}).get("figures", {}).items()}
    lines = ["| file | before KB | after KB | smaller | before s | after s | faster |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, new in sorted(after["figures"].items()):
        was = old.get(_stem(name), {"bytes": None, "seconds": None})
        cells = [_kb(was["bytes"]) if was["bytes"] else "", _kb(new["bytes"]), _ratio(was["bytes"], new["bytes"]),
                 _seconds(was["seconds"]), _seconds(new["seconds"]), _ratio(was["seconds"], new["seconds"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    totals = [("explain figures, drawn one after another (s)",
               lambda m: sum(v["seconds"] for k, v in m["figures"].items() if k.startswith("explain/"))),
              ("explain stage, figures drawn in turn (s)", lambda m: m["explain_s"]),
              ("report.html (KB)", lambda m: m["report_bytes"] / 1024), ("report (s)", lambda m: m["report_s"])]
    for label, value in totals:
        b, a = (value(before) if before else None), value(after)
        lines.append(f"| **{label}** | | | | {'' if b is None else f'{b:,.2f}'} | {a:,.2f} | {_ratio(b, a)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, help="a trained run folder (only read)")
    ap.add_argument("--baseline-src", help="another checkout's src/ folder, measured on the same run first")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (figures use one core either way)")
    ap.add_argument("--repeats", type=int, default=2, help="measurements of each source, alternating; least kept")
    ap.add_argument("--json", action="store_true", help="print the measurement as one JSON line")
    args = ap.parse_args()
    os.environ["GALAXYMORPH_NO_PROGRESS"] = "1"
    if args.json:
        print(json.dumps(measure(args.run_dir, args.threads)))
        return
    befores, afters = [], []
    for _ in range(args.repeats):  # alternating, so both sources meet the same disturbances
        if args.baseline_src:
            befores.append(measure_in(args.baseline_src, args.run_dir, args.threads))
        afters.append(measure_in(None, args.run_dir, args.threads))
    before, after = (best(befores) if befores else None), best(afters)
    import galaxymorph
    from galaxymorph.runs import cpu_name

    print(f"{args.run_dir}: galaxymorph from {Path(galaxymorph.__file__).parent}"
          + (f", before: {args.baseline_src}" if before else "") + f"; {cpu_name()}, "
          f"{args.threads} torch thread(s)\n")
    print(table(after, before))


if __name__ == "__main__":
    main()
