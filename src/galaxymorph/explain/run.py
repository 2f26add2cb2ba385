"""``galaxymorph explain RUN_DIR``: heatmaps, galleries and faithfulness checks for a trained run.

Reads the run's model (``checkpoints/best.pt``), split manifest and data file (``run.json``
key ``data``), predicts the chosen split (never ``train``: explanations of images the model
was fitted on say little about how it generalises), picks galleries -- the most confident
correct images of each class, the misclassified ones, a seeded random sample -- explains each
image's PREDICTED class, and writes into ``RUN_DIR/explain/`` (file names start with the
method, so several methods can sit side by side):

- ``<method>_confident.jpg``, ``<method>_misclassified.jpg``, ``<method>_random.jpg``: galleries
  (JPEG: photographs under heatmaps);
- ``<method>_overlay_<index>.jpg``: a few single original | overlay figures;
- ``<method>_maps.npz``: ``indices`` (into the data file), ``labels``, ``targets``, ``probs``,
  ``maps`` (float16, (n, 256, 256), scaled to [0, 1]) and one boolean mask per gallery;
- ``<method>_localisation.png``: per class, each image's share of the map on the galaxy
  against the share of the image the galaxy covers (what a uniform map scores);
- ``explain.json``: per method (under ``methods``): layer, counts, files, the localisation
  scores per class (:mod:`.localisation`), the deletion, insertion and randomisation checks
  with their verdicts and 95% intervals, and timings.

When ``evaluate`` has already scored the test split (``RUN_DIR/eval/predictions.csv`` holds
exactly its images), its probabilities are reused instead of predicting the split again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import GalaxymorphError
from ..fileio import atomic_path, check_writable_folder
from ..models import load_model
from ..decision import predicted_positions
from ..inference import predict_selection
from ..plotting import PHOTO_SUFFIX, FigurePool
from ..rundir import RunFolder
from ..run_names import resolve_run
from ..runs import open_held_out, read_run_json, run_device
from .faithfulness import deletion_check, insertion_check, randomisation_check
from .figures import METHOD_TITLES, caption, save_gallery, save_localisation, save_pair
from .localisation import localisation_scores, meets_aim
from .localisation import percent as _share
from .methods import DEFAULT_METHOD, METHODS, make_explainer
from .summary import record_entry
from .tree import check_answer, explain_tree

N_OVERLAYS = 4          # single original | overlay figures
N_FAITHFULNESS = 24     # images in the deletion and insertion checks (enough for a useful interval)
N_RANDOMISATION = 8     # images in the randomisation check
N_LOCALISATION = 256    # images of the split scored for localisation (all of a smaller split)


def pick_galleries(labels: np.ndarray, probs: np.ndarray, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Positions (into the split) for each gallery, ``n`` each or fewer if not available.

    confident: the n most confident correct predictions OF EACH CLASS (class by class);
    misclassified: the n most confidently wrong; random: n drawn with ``seed``.
    """
    pred = predicted_positions(probs)
    conf = probs.max(1)
    confident = []
    for c in range(probs.shape[1]):
        members = np.flatnonzero((labels == c) & (pred == c))
        confident.extend(members[np.argsort(-conf[members], kind="stable")][:n])
    wrong = np.flatnonzero(pred != labels)
    misclassified = wrong[np.argsort(-conf[wrong], kind="stable")][:n]
    rng = np.random.default_rng(seed)
    random = np.sort(rng.choice(len(labels), size=min(n, len(labels)), replace=False))
    return {"confident": np.asarray(confident, dtype=np.int64), "misclassified": misclassified.astype(np.int64),
            "random": random.astype(np.int64)}


def evaluated_probabilities(run_dir: Path, indices: np.ndarray, class_ids: list[int]) -> np.ndarray | None:
    """Probabilities (len(indices), k) from evaluate's predictions (:meth:`RunFolder.read_predictions`),
    in ``indices``' order, or None when there are none or they do not hold exactly these images and classes."""
    try:
        evaluated = RunFolder(run_dir).read_predictions()
    except GalaxymorphError:  # not evaluated yet, or a damaged file: predict instead
        return None
    if [int(c) for c in class_ids] != evaluated.class_ids:
        return None
    by_index = {int(i): row for i, row in zip(evaluated.index, evaluated.probs)}
    if len(by_index) != len(evaluated.index) or set(by_index) != set(int(i) for i in indices):
        return None
    return np.array([by_index[int(i)] for i in indices], dtype=np.float64)


@dataclass
class Selection:
    """The split's probabilities and the images chosen from it: ``chosen`` (positions into the
    split, sorted) with their ``images`` and predicted ``targets``; ``loc_*``: the localisation sample."""
    indices: np.ndarray          # the split's indices into the data file
    labels: np.ndarray
    probs: np.ndarray
    probabilities_from: str
    galleries: dict[str, np.ndarray]
    chosen: np.ndarray
    images: np.ndarray
    targets: np.ndarray
    loc_pos: np.ndarray
    loc_images: np.ndarray
    mask_bits: np.ndarray | None  # renderer masks (synthetic data), else None


@dataclass
class Attribution:
    """The chosen images' maps from ``explainer`` and the localisation sample's scores."""
    explainer: object
    maps: np.ndarray
    layer_name: str | None
    options: dict                # {"layer": ...} for the checks, when the method maps a layer
    per_class: dict
    localisation: dict


def explain_run(run_dir: str | os.PathLike, split: str = "test", n: int = 16, method: str = DEFAULT_METHOD,
                progress: bool = True, batch_size: int = 32, seed: int = 0, device=None,
                n_localisation: int = N_LOCALISATION, answer: str | None = None) -> dict:
    """Explain a run folder's ``split`` with ``method``; write RUN_DIR/explain/; return a summary dict.

    ``device``: where the model runs (None: the run's own device when this machine has it, else auto).
    ``answer``: for a decision-tree model (and only for one), the answer whose evidence is mapped
    (:mod:`.tree`).
    """
    run_dir = resolve_run(run_dir)  # "gz2": the shipped model
    if split == "train":
        raise GalaxymorphError("refusing to explain the training split: use 'val' or 'test' (maps of images the "
                               "model was fitted on say little about how it generalises)")
    if method not in METHODS:
        raise GalaxymorphError(f"unknown explanation method {method!r}; known methods: {', '.join(METHODS)}")
    if not isinstance(n, int) or n < 1:
        raise GalaxymorphError(f"n (images per gallery) must be a positive integer, got {n!r}")
    model = load_model(run_dir, device=run_device(run_dir, device))
    check_writable_folder(RunFolder(run_dir).explain_dir)  # before the work, not after it

    if check_answer(model, answer) is not None:
        return explain_tree(run_dir, model, answer, split, n, method, progress, batch_size, seed)
    held_out = open_held_out(run_dir, split, class_ids=model.class_ids)
    timings: dict[str, float] = {}
    out = RunFolder(run_dir).explain_dir
    selection = select_images(run_dir, held_out, model, split, n, seed, n_localisation, batch_size, progress,
                              timings)
    attribution = attribute(model, method, selection, batch_size, progress, timings)
    t0 = time.perf_counter()
    with FigurePool() as figures:  # figures drawn in worker processes while the checks run here
        files = draw_figures(figures, out, model, method, split, seed, selection, attribution, batch_size)
        timings["figures_submit_s"] = time.perf_counter() - t0
        checks = check_faithfulness(model, method, selection, attribution, seed, batch_size, progress, timings)
        t0 = time.perf_counter()  # leaving the block waits for the figures
    timings["figures_wait_s"] = time.perf_counter() - t0
    return summarise(run_dir, out, model, method, split, selection, attribution, files, checks, timings)


# 1. select: the split's probabilities, the galleries and the localisation sample ----------------------
def select_images(run_dir: Path, held_out, model, split: str, n: int, seed: int, n_localisation: int,
                  batch_size: int, progress: bool, timings: dict) -> Selection:
    """The split's probabilities (evaluate's when it scored this split, else predicted, streamed: the
    real test split is hundreds of MB of pixels), the galleries and the localisation sample's pixels."""
    indices, labels = held_out.indices, held_out.labels
    t0 = time.perf_counter()
    with held_out.open_data() as data:
        probs = evaluated_probabilities(run_dir, indices, model.class_ids) if split == "test" else None
        probabilities_from = f"{RunFolder.EVAL}/{RunFolder.PREDICTIONS}" if probs is not None else "predicted"
        if probs is None:
            probs = predict_selection(model, data, indices, batch_size, progress=progress, desc=f"predict {split}")
        timings["predict_s"] = time.perf_counter() - t0

        # localisation: a seeded sample of the split, each class's images explained for their class
        rng = np.random.default_rng(seed)
        loc_pos = np.sort(rng.choice(len(indices), size=min(n_localisation, len(indices)), replace=False))
        loc_images = data.images(indices[loc_pos])
        mask_bits = data.masks(indices[loc_pos])  # None for real data

        # galleries; each chosen image is explained once, for its predicted class
        galleries = pick_galleries(labels, probs, n, seed)
        chosen = np.unique(np.concatenate(list(galleries.values())))
        images = data.images(indices[chosen])
    return Selection(indices, labels, probs, probabilities_from, galleries, chosen, images,
                     targets=predicted_positions(probs[chosen]), loc_pos=loc_pos, loc_images=loc_images, mask_bits=mask_bits)


# 2. attribute: the maps, and localisation against the galaxy's footprint ------------------------------
def attribute(model, method: str, s: Selection, batch_size: int, progress: bool, timings: dict) -> Attribution:
    """Each chosen image's map for its predicted class; the localisation sample scored against the
    galaxy's footprint (renderer masks, else sep's central source)."""
    t0 = time.perf_counter()
    explainer = make_explainer(method, model)
    maps = explainer(s.images, target=s.targets, batch_size=batch_size, progress=progress)
    timings["maps_s"] = time.perf_counter() - t0
    layer_name = getattr(explainer, "layer_name", None)
    options = {"layer": layer_name} if layer_name and layer_name != "input" else {}

    t0 = time.perf_counter()
    names = model.class_names
    per_class = localisation_scores(model, s.loc_images, s.labels[s.loc_pos], method, s.mask_bits,
                                    batch_size=batch_size, **options)
    localisation = {
        "footprint": "synthetic masks (bit 1)" if s.mask_bits is not None else "sep central source",
        "n_images": int(len(s.loc_pos)),
        "aim": "median share on the galaxy >= 0.6 and >= 2x its median area share, every class"
               + ("" if s.mask_bits is None else " (set for real galaxies and sep footprints; the synthetic "
                                                  "masks' 1-sigma footprints are tighter, so shares run lower)"),
        "classes": {names[c]: {k: v for k, v in summary.items() if not k.endswith("_per_image")}
                    for c, summary in per_class.items()},
    }
    localisation["meets_aim"] = bool(per_class) and all(meets_aim(v) for v in per_class.values())
    timings["localisation_s"] = time.perf_counter() - t0
    return Attribution(explainer, maps, layer_name, options, per_class, localisation)


# 3. draw: galleries, single overlays and the localisation plot ----------------------------------------
def draw_figures(figures: FigurePool, out: Path, model, method: str, split: str, seed: int, s: Selection,
                 a: Attribution, batch_size: int) -> dict:
    """Submit every figure to ``figures``; return their file names (the ``files`` of explain.json)."""
    names, labels, images, maps, targets = model.class_names, s.labels, s.images, a.maps, s.targets
    row = {p: r for r, p in enumerate(s.chosen)}  # split position -> row in images/maps
    captions = [caption(names[labels[p]], names[targets[row[p]]], s.probs[p, targets[row[p]]], short=True)
                for p in s.chosen]
    label = METHOD_TITLES.get(method, method)
    files = {}
    # misclassified images: also the map for the TRUE class, drawn beside the predicted one
    wrong_rows = [row[p] for p in s.galleries["misclassified"]]
    true_maps = a.explainer(images[wrong_rows], target=labels[s.chosen][wrong_rows], batch_size=batch_size) \
        if wrong_rows else None
    for gallery, positions in s.galleries.items():
        rows = [row[p] for p in positions]
        groups = labels[positions] if gallery == "confident" else None
        title = {"confident": f"{label}: most confident correct predictions per class ({split})",
                 "misclassified": f"{label}: misclassified ({split}), most confident first; "
                                  "left: map for the predicted class, right: for the true class",
                 "random": f"{label}: random sample ({split}, seed {seed})"}[gallery]
        path = out / f"{method}_{gallery}{PHOTO_SUFFIX}"
        extra = {}
        if gallery == "misclassified" and rows:
            extra = {"second_maps": true_maps,
                     "second_captions": [f"map for true class\n{names[labels[p]]}" for p in positions]}
        figures.submit(save_gallery, path, images[rows], maps[rows], [captions[r] for r in rows], title,
                       row_labels=names if gallery == "confident" else None, groups=groups, **extra)
        files[gallery] = path.name
    singles = list(dict.fromkeys([*s.galleries["misclassified"][:1], *s.galleries["confident"],
                                  *s.galleries["random"]]))[:N_OVERLAYS]
    files["overlays"] = []
    for p in singles:
        r = row[p]
        path = out / f"{method}_overlay_{int(s.indices[p])}{PHOTO_SUFFIX}"
        figures.submit(save_pair, path, images[r], maps[r], method, names[labels[p]], names[targets[r]],
                       s.probs[p, targets[r]])
        files["overlays"].append(path.name)
    path = out / f"{method}_localisation.png"
    figures.submit(save_localisation, path, {names[c]: v for c, v in a.per_class.items()},
                   f"{label}: localisation ({split})")
    files["localisation"] = path.name
    return files


# 4. check: deletion and insertion vs random order, and cascading weight randomisation -----------------
def check_faithfulness(model, method: str, s: Selection, a: Attribution, seed: int, batch_size: int,
                       progress: bool, timings: dict) -> dict:
    """{"deletion", "insertion", "randomisation"}: the checks' results, on an even spread of the chosen images."""
    images, maps, targets = s.images, a.maps, s.targets
    t0 = time.perf_counter()
    sub = np.unique(np.linspace(0, len(s.chosen) - 1, min(N_FAITHFULNESS, len(s.chosen))).round().astype(int))
    deletion = deletion_check(model, images[sub], maps[sub], targets[sub], seed=seed, batch_size=batch_size,
                              progress=progress)
    insertion = insertion_check(model, images[sub], maps[sub], targets[sub], seed=seed, batch_size=batch_size,
                                progress=progress)
    timings["deletion_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sub = sub[:N_RANDOMISATION]
    randomisation = randomisation_check(model, images[sub], method, targets[sub], maps=maps[sub], seed=seed,
                                        batch_size=batch_size, progress=progress, **a.options)
    timings["randomisation_s"] = time.perf_counter() - t0
    return {"deletion": deletion, "insertion": insertion, "randomisation": randomisation}


# 5. summarise: the maps file and explain.json --------------------------------------------------------
def summarise(run_dir: Path, out: Path, model, method: str, split: str, s: Selection, a: Attribution,
              files: dict, checks: dict, timings: dict) -> dict:
    """Write ``<method>_maps.npz`` and this method's entry of explain.json; return the entry with
    ``out`` and ``text`` (the lines the CLI prints)."""
    with atomic_path(out / f"{method}_maps.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, indices=s.indices[s.chosen], labels=s.labels[s.chosen], targets=s.targets,
                                probs=s.probs[s.chosen].astype(np.float32), maps=a.maps.astype(np.float16),
                                **{f"in_{g}": np.isin(s.chosen, pos) for g, pos in s.galleries.items()})
    files["maps"] = f"{method}_maps.npz"
    entry = {
        "method": method,
        "layer": a.layer_name,
        "split": split,
        "target": "predicted class",
        "map_size": list(a.maps.shape[1:]),
        "model_input_size": model.input_size,
        "counts": {"split": int(len(s.indices)), "explained": int(len(s.chosen)),
                   **{g: int(len(p)) for g, p in s.galleries.items()}},
        "accuracy": float(np.mean(predicted_positions(s.probs) == s.labels)),
        "probabilities_from": s.probabilities_from,
        "files": files,
        "localisation": a.localisation,
        **checks,
        "passed": bool(all(checks[k]["passed"] for k in ("deletion", "insertion", "randomisation"))),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "best_epoch": read_run_json(run_dir).get("best_epoch"),  # which best.pt: runs.outdated_outputs
    }
    record_entry(RunFolder(run_dir), method, entry)
    return {**entry, "out": str(out), "text": _text(entry, out)}


def _text(entry: dict, out: Path) -> str:
    c = entry["counts"]
    d, ins, r = entry["deletion"], entry["insertion"], entry["randomisation"]
    loc = entry["localisation"]
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    layer = f" (layer {entry['layer']})" if entry["layer"] and entry["layer"] != "input" else ""
    return "\n".join([
        f"{METHOD_TITLES.get(entry['method'], entry['method'])}{layer} on the {entry['split']} split: "
        f"{c['explained']} images explained (confident {c['confident']}, misclassified {c['misclassified']}, "
        f"random {c['random']}) of {c['split']}",
        *[f"localisation  {name}: {_share(s['share_on_galaxy'])} of the map on the galaxy, which covers "
          f"{_share(s['galaxy_area_share'])} of the image (median of {s['n_images']}; {loc['footprint']})"
          + (f"; {_share(s['share_on_bar_and_arms'])} on bar and arms" if s.get("share_on_bar_and_arms") is not None
             else "") for name, s in loc["classes"].items()],
        *[f"{k['mode']:<13} {verdict(k['passed'])}: AUC {k['auc']:.3f} vs random {k['auc_random']:.3f} "
          f"(margin {k['difference']:+.3f}, 95% interval {k['interval'][0]:+.3f} to {k['interval'][1]:+.3f}, "
          f"{k['n_images']} images)" for k in (d, ins)],
        f"randomisation {verdict(r['passed'])}: Spearman {r['spearman_first_stage']:.2f} (head reset) -> "
        f"{r['spearman_fully_random']:.2f} (all layers reset), pass below {r['threshold']}",
        f"written to {out}",
    ])
