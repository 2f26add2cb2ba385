"""Real-galaxy benchmark: candidate models and recipes compared on the same splits of real images.

Imports ``../shared/data/sdss_gz2`` (1,785 SDSS cutouts with Galaxy Zoo 2 vote fractions) with
the project's own importer, makes one stratified split per seed (0.7/0.15/0.15), and trains and
scores every candidate on every seed's split through the public API (``galaxymorph.Config``,
``galaxymorph.train``, ``galaxymorph.evaluate``), so the numbers are what users get.

Per candidate: accuracy, balanced accuracy, ROC AUC and log loss on the test split, accuracy on
confidently voted galaxies (every deciding vote fraction >= 0.8), each as mean and spread over
seeds; paired differences against the seed recipe and against the current default with 95%
intervals from a paired bootstrap over the test images pooled across seeds (resampled within
each seed and class); and the training seconds (one thread). Finished runs are reused, so an
interrupted benchmark continues where it stopped; two processes with disjoint ``--candidates``
may share one ``--out``.

    python -m benchmarks.studies.real --out /tmp/gm-bench-real                      # everything
    python -m benchmarks.studies.real --out /tmp/gm-bench-real --candidates default narrow-30
    python -m benchmarks.studies.real --out /tmp/gm-bench-real --table-only --markdown

``--pretrain`` runs the synthetic-pretraining study instead (fine-tune on 50, 100, 200 and all
real training images per class against training from scratch; docs/models.md). ``--committee``
trains nothing: it averages the finished candidates of each seed and lists the test galaxies
most of them misclassify (benchmarks/studies/committee.py). ``--learning-curve`` trains the default
recipe on 25/50/75% of each split's training images (benchmarks/studies/curve.py). Each study
also runs on its own: ``python -m benchmarks.studies.pretrain --out OUT`` and so on.
"""

from __future__ import annotations

import sys

from benchmarks.studies import committee, curve, pretrain
from benchmarks.studies.common import (CANDIDATES, collect, environment, set_up, study_parser, summarise, table,
                                       train_and_score, vote_table)


def parse_args(argv=None):
    p = study_parser(__doc__)
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    p.add_argument("--seed-epochs", type=int, default=0, help="epochs of the seed recipe (0: its preset's 30)")
    p.add_argument("--baseline", default="default", choices=list(CANDIDATES),
                   help="the candidate the second pair of paired differences is taken against")
    p.add_argument("--table-only", action="store_true", help="no training: tabulate the finished runs")
    p.add_argument("--markdown", action="store_true", help="print only the markdown table")
    p.add_argument("--pretrain", action="store_true", help="run the synthetic-pretraining study instead")
    p.add_argument("--learning-curve", action="store_true",
                   help="train the default recipe on shares of each split's training images (--curve-shares)")
    curve.add_options(p)
    p.add_argument("--committee", action="store_true",
                   help="no training: average the finished candidates per seed and list the galaxies most get wrong")
    pretrain.add_options(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    out, data, splits = set_up(args, "real")
    if args.pretrain:
        return pretrain.pretrain_study(out, data, splits, args)
    if args.learning_curve:
        return curve.curve_study(out, data, splits, args)
    if args.committee:
        return committee.committee_study(out, data, args.candidates, args.seeds)
    if not args.table_only:
        for seed in args.seeds:  # seed-major: every candidate gets seed 0 first
            for name in args.candidates:
                train_and_score(name, data, splits[seed], seed, args, out)
    results = {}
    for name in args.candidates:
        per_seed = collect(name, out, data, args.seeds)
        if per_seed is None:
            print(f"({name}: not finished for every seed; left out)", file=sys.stderr)
        else:
            results[name] = per_seed
    rows = summarise(results, args.seeds, args.n_boot, ("seed", args.baseline))
    text = table(rows, args.baseline) + "\n" + vote_table(results, args.seeds)
    from galaxymorph.fileio import write_json, write_text

    write_json(out / "bench_real.json", {"args": vars(args), "environment": environment(), "data": str(data),
                                         "rows": rows})
    write_text(out / "bench_real.md", text)
    if not args.markdown:
        print(f"data: {data}; seeds {args.seeds}; {environment()}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
