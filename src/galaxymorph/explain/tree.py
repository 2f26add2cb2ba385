"""``galaxymorph explain RUN_DIR --answer ANSWER`` for a decision-tree model (``--targets tree``).

The map shows the evidence for one answer of the tree: the explained score is that answer's
logit (its Dirichlet concentration rises with it, and with it the expected vote fraction).
Two galleries of the held-out split: the images with the highest expected fraction for the
answer, and a seeded random sample; each caption gives the model's expected fraction and the
volunteers' observed one (where the question had votes). As for a class model, the maps are
scored for localisation (:mod:`.localisation`): the share of each map's energy on the galaxy's
footprint (the renderer's masks on synthetic data, else sep's central source), the footprint's
share of the image and their ratio (lift), medians over all the images mapped and over each
gallery. Files, in ``RUN_DIR/explain/``: ``<method>_<answer>_most.jpg``,
``<method>_<answer>_random.jpg``, ``<method>_<answer>_localisation.png``,
``<method>_<answer>_maps.npz``, and an entry ``<method> <answer>`` in ``explain.json``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..data.galaxy10 import open_galaxy10
from ..data.tree import load_tree
from ..errors import GalaxymorphError
from ..fileio import atomic_path
from ..inference import predict_selection
from ..models.tree import expected_fractions
from ..rundir import RunFolder
from ..plotting import PHOTO_SUFFIX
from ..runs import held_out_indices, open_run, read_run_json
from .figures import METHOD_TITLES, save_gallery, save_localisation
from .localisation import galaxy_masks, localisation_summary, meets_aim
from .localisation import percent as _share
from .methods import make_explainer
from .summary import record_entry


def check_answer(model, answer: str | None) -> int | None:
    """The answer's output position for a tree model; None for a class model without one.
    An answer for a class model, or a tree model without one, is a one-line error."""
    if model.tree is None:
        if answer is not None:
            raise GalaxymorphError(f"--answer names a decision-tree answer, but this run's model classifies "
                                   f"(classes {model.class_ids}); leave out --answer")
        return None
    tree = load_tree(model.tree)
    if answer is None:
        raise GalaxymorphError(f"this run's model predicts the {tree.name} tree's votes, not classes: name the "
                               "answer to explain with --answer (e.g. t03_bar_a06_bar)")
    tree.question_of(answer)  # an unknown answer: a one-line error that lists the answers
    return tree.answers.index(answer)


def explain_tree(run_dir: Path, model, answer: str, split: str, n: int, method: str, progress: bool,
                 batch_size: int, seed: int) -> dict:
    """Maps of the evidence for ``answer`` on a tree run's held-out split; see the module docstring."""
    target = check_answer(model, answer)
    tree = load_tree(model.tree)
    question = tree.slices[[q.name for q in tree.questions].index(tree.question_of(answer).name)]
    folder = open_run(run_dir)
    indices = held_out_indices(folder, split)
    started = time.perf_counter()
    with open_galaxy10(folder.data_path, labelled=False) as data:
        conc = predict_selection(model, data, indices, batch_size, progress=progress, desc=f"predict {split}")
        counts = tree.read_counts(data, indices)
        expected = expected_fractions(conc.astype(np.float64), tree)[:, target]
        most = np.argsort(-expected, kind="stable")[:n]
        random = np.sort(np.random.default_rng(seed).choice(len(indices), size=min(n, len(indices)), replace=False))
        chosen = np.unique(np.concatenate([most, random]))
        images = data.images(indices[chosen])
        mask_bits = data.masks(indices[chosen])  # None for real data
    explainer = make_explainer(method, model)
    maps = explainer(images, target=np.full(len(chosen), target), batch_size=batch_size, progress=progress)
    votes = counts[chosen][:, question].sum(1)
    observed = np.divide(counts[chosen, target], votes, out=np.full(len(chosen), np.nan), where=votes > 0)
    captions = [f"model {e:.2f}\nvolunteers " + ("-" if np.isnan(o) else f"{o:.2f} of {int(v)}")
                for e, o, v in zip(expected[chosen], observed, votes)]
    out = RunFolder(run_dir).explain_dir
    label = METHOD_TITLES.get(method, method)
    row = {int(p): r for r, p in enumerate(chosen)}
    files = {}
    for gallery, positions, title in (
            ("most", most, f"{label}: evidence for {answer}, images the model gives the highest fraction ({split})"),
            ("random", random, f"{label}: evidence for {answer}, random sample ({split}, seed {seed})")):
        rows = [row[int(p)] for p in positions]
        path = out / f"{method}_{answer}_{gallery}{PHOTO_SUFFIX}"
        save_gallery(path, images[rows], maps[rows], [captions[r] for r in rows], title)
        files[gallery] = path.name
    per_row, localisation = answer_localisation(answer, images, maps, mask_bits,
                                                {"most": [row[int(p)] for p in most],
                                                 "random": [row[int(p)] for p in random]})
    path = out / f"{method}_{answer}_localisation.png"
    save_localisation(path, per_row, f"{label}: localisation of the evidence for {answer} ({split})")
    files["localisation"] = path.name
    with atomic_path(out / f"{method}_{answer}_maps.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, indices=indices[chosen], expected_fraction=expected[chosen].astype(np.float32),
                            observed_fraction=observed.astype(np.float32), maps=maps.astype(np.float16),
                            in_most=np.isin(chosen, most), in_random=np.isin(chosen, random))
    files["maps"] = f"{method}_{answer}_maps.npz"
    entry = {
        "method": method, "layer": getattr(explainer, "layer_name", None), "split": split,
        "target": f"answer {answer} (its logit)", "answer": answer, "tree": tree.name,
        "counts": {"split": int(len(indices)), "explained": int(len(chosen)), "most": int(len(most)),
                   "random": int(len(random))},
        "files": files,
        "localisation": localisation,
        "captions": {"most": f"Images the model gives the highest expected fraction for {answer}.",
                     "random": "A random sample."},
        "seconds": round(time.perf_counter() - started, 2),
        "best_epoch": read_run_json(run_dir).get("best_epoch"),
    }
    record_entry(RunFolder(run_dir), f"{method} {answer}", entry)
    return {**entry, "out": str(out), "text": _text(entry, label, out)}


def _text(entry: dict, label: str, out: Path) -> str:
    """The lines the CLI prints for one answer."""
    c, loc = entry["counts"], entry["localisation"]
    overall = loc["classes"][entry["answer"]]
    return (f"{label} for answer {entry['answer']} on the {entry['split']} split: {c['explained']} images explained "
            f"(highest expected fraction {c['most']}, random {c['random']}) of {c['split']}\n"
            f"localisation: {_share(overall['share_on_galaxy'])} of the map on the galaxy, which covers "
            f"{_share(overall['galaxy_area_share'])} of the image (median of {overall['n_images']}; "
            f"{loc['footprint']})\nwritten to {out}")


GALLERY_ROWS = {"most": "highest fraction", "random": "random sample"}


def answer_localisation(answer: str, images: np.ndarray, maps: np.ndarray, mask_bits: np.ndarray | None,
                        galleries: dict[str, list[int]]) -> tuple[dict, dict]:
    """Localisation of one answer's maps: ``(per_row, entry)``.

    ``per_row``: :func:`~.localisation.localisation_summary` of all the mapped images (key: the
    answer) and of each gallery's (``galleries``: rows into ``images``/``maps``), per-image lists
    kept for the figure; ``entry``: explain.json's ``localisation``, laid out as a class model's
    (``classes`` holds the rows, without per-image lists; the aim is judged on all the images).
    """
    galaxy = galaxy_masks(images, mask_bits)
    per_row = {answer: localisation_summary(maps, galaxy)}
    for gallery, rows in galleries.items():
        if rows:
            per_row[f"{answer}, {GALLERY_ROWS.get(gallery, gallery)}"] = localisation_summary(maps[rows], galaxy[rows])
    entry = {
        "footprint": "synthetic masks (bit 1)" if mask_bits is not None else "sep central source",
        "n_images": int(len(images)),
        "aim": "median share on the galaxy >= 0.6 and >= 2x its median area share, over all the images mapped",
        "classes": {name: {k: v for k, v in s.items() if not k.endswith("_per_image")} for name, s in per_row.items()},
        "meets_aim": meets_aim(per_row[answer]),
    }
    return per_row, entry
