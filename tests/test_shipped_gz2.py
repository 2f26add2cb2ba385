"""The shipped gz2 decision-tree model: present in the package, pinned by the SHA-256 its README
states, loadable with no network, and predicting vote fractions that add up per question."""

import hashlib
import re

import numpy as np

from galaxymorph.run_names import PRETRAINED_DIR

GZ2 = PRETRAINED_DIR / "gz2"


def test_the_shipped_weights_are_the_ones_its_readme_pins():
    readme = (GZ2 / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"SHA-256:\*\* `([0-9a-f]{64})`", readme).group(1)
    assert hashlib.sha256((GZ2 / "checkpoints" / "best.pt").read_bytes()).hexdigest() == stated
    assert (GZ2 / "checkpoints" / "best.pt").stat().st_size < 5_000_000  # small enough for the wheel


def test_gz2_loads_by_name_and_predicts_fractions_per_question(one_torch_thread):
    from galaxymorph.data.tree import load_tree
    from galaxymorph.models import load_model
    from galaxymorph.models.tree import expected_fractions

    model = load_model("gz2")
    tree = load_tree(model.tree)
    images = np.random.default_rng(0).integers(0, 256, size=(3, 256, 256, 3), dtype=np.uint8)
    conc = model.predict_proba(images)
    assert conc.shape == (3, len(tree.answers)) and (conc > 0).all()
    fractions = np.asarray(expected_fractions(conc, tree))
    for part in tree.slices:
        assert np.allclose(fractions[:, part].sum(1), 1, atol=1e-5)


def test_gz2_records_the_galaxies_it_was_trained_on():
    record = np.load(GZ2 / "train_galaxies.npz", allow_pickle=False)
    assert len(record["sha256"]) > 6000 and np.isfinite(record["ra"]).all()
