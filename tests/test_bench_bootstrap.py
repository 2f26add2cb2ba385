"""The real benchmark's metrics and paired bootstrap (benchmarks/studies/common.py) come from
galaxymorph.evaluation.metrics and give the numbers the benchmark's own copies gave."""

import numpy as np
import pytest

import benchmarks.studies.common as bench_real
from galaxymorph.evaluation.metrics import paired_bootstrap, point_metrics, weighted_metrics


# -- the benchmark's own copies before they moved to evaluation.metrics (the reference) -----------
def old_per_image_scores(y, p):
    eps = 1e-7
    return {"correct": ((p >= 0.5).astype(int) == y).astype(float),
            "log_loss": -np.log(np.clip(np.where(y == 1, p, 1 - p), eps, 1))}


def old_metrics(y, p, confident):
    from scipy.stats import rankdata

    s = old_per_image_scores(y, p)
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    auc = (rankdata(p)[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return {"accuracy": s["correct"].mean(), "balanced_accuracy": (s["correct"][pos].mean() + s["correct"][~pos].mean()) / 2,
            "roc_auc": float(auc), "confident_accuracy": s["correct"][confident].mean(),
            "log_loss": s["log_loss"].mean()}


def old_paired_bootstrap(a, b, seeds, n_boot, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    keys = ("accuracy", "balanced_accuracy", "roc_auc", "confident_accuracy")
    draws = {k: np.empty(n_boot) for k in keys}
    point = {k: np.mean([a[s]["metrics"][k] - b[s]["metrics"][k] for s in seeds]) for k in keys}
    for i in range(n_boot):
        acc = {k: 0.0 for k in keys}
        for s in seeds:
            y = a[s]["y"]
            idx = np.concatenate([rng.choice(np.flatnonzero(y == c), (y == c).sum()) for c in (0, 1)])
            conf = a[s]["confidence"][idx] >= 0.8
            ma = old_metrics(y[idx], a[s]["p"][idx], conf)
            mb = old_metrics(y[idx], b[s]["p"][idx], conf)
            for k in keys:
                acc[k] += (ma[k] - mb[k]) / len(seeds)
        for k in keys:
            draws[k][i] = acc[k]
    return {k: [float(point[k]), *map(float, np.percentile(draws[k], [2.5, 97.5]))] for k in keys}


# -- synthetic candidates: two models scored on the same test images of three seeds ---------------
def candidates(n=(90, 70, 80), seed=1):
    rng = np.random.default_rng(seed)
    a, b = {}, {}
    for s, size in zip((3, 4, 5), n):
        y = (rng.random(size) < 0.3).astype(int)
        index = np.sort(rng.choice(1000, size, replace=False))
        confidence = rng.random(size)
        for out, skill in ((a, 1.5), (b, 1.0)):
            p = 1 / (1 + np.exp(-(skill * (2 * y - 1) + rng.normal(0, 1.2, size))))
            p = np.round(p, 2)  # ties in the scores, and some exactly 0.5
            p[:3] = (0.0, 1.0, 0.5)  # the clip of the log loss and the tie of the decision rule
            out[s] = {"index": index, "y": y, "p": p, "confidence": confidence,
                      "metrics": old_metrics(y, p, confidence >= 0.8)}
    return a, b


def test_bench_metrics_match_the_benchmarks_old_numbers():
    a, _ = candidates()
    for s, scored in a.items():
        new = bench_real.metrics(scored["y"], scored["p"], scored["confidence"] >= 0.8)
        assert new.keys() == scored["metrics"].keys()
        for k, v in scored["metrics"].items():
            assert new[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k


def test_paired_bootstrap_reproduces_the_benchmarks_old_intervals():
    a, b = candidates()
    seeds = [3, 4, 5]
    old = old_paired_bootstrap(a, b, seeds, n_boot=200, rng_seed=7)
    new = bench_real.paired_bootstrap(a, b, seeds, n_boot=200, rng_seed=7)
    assert new.keys() == old.keys()
    for k in old:
        np.testing.assert_allclose(new[k], old[k], rtol=1e-9, atol=1e-12, err_msg=k)
    assert old["accuracy"][1] < old["accuracy"][2]  # an interval, not a point


def test_paired_bootstrap_of_a_model_against_itself_is_zero():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    probs = rng.dirichlet(np.ones(3), 60)
    out = paired_bootstrap(y, probs, probs, n_boot=50, seed=1)
    assert {"accuracy", "roc_auc", "log_loss", "ece"} <= out.keys()
    for k, v in out.items():
        assert v == pytest.approx([0, 0, 0], abs=1e-12), k


def test_one_log_loss_clip_for_point_bootstrap_and_benchmark():
    """p(true class) = 0 costs -log(1e-7) everywhere: evaluate's point estimate (scikit-learn clipped
    at the float eps of the probabilities' dtype), its bootstrap (float64 eps) and the benchmark
    (1e-7) disagreed before."""
    y = np.array([0, 1, 1, 0])
    for dtype in (np.float32, np.float64):
        probs = np.array([[0.0, 1.0], [0.2, 0.8], [0.6, 0.4], [0.9, 0.1]], dtype=dtype)
        expected = (-np.log(1e-7) - np.log(0.8) - np.log(0.4) - np.log(0.9)) / 4
        pred = probs.argmax(1)
        assert point_metrics(y, probs, pred)["log_loss"] == pytest.approx(expected, rel=1e-6)
        assert weighted_metrics(np.ones((1, 4)), y, probs, pred)["log_loss"][0] == pytest.approx(expected, rel=1e-6)
        p = probs[:, 1].astype(np.float64)
        assert bench_real.metrics(y, p, np.ones(4, bool))["log_loss"] == pytest.approx(expected, rel=1e-6)
