"""All ten Galaxy10 classes: a softmax head end to end (synthetic sky -> train -> evaluate)."""

import json

import numpy as np
import pytest

from galaxymorph.config import Config
from galaxymorph.data.synthetic import synthesize
from galaxymorph.evaluation import evaluate
from galaxymorph.models import load_model
from galaxymorph.training import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
def test_ten_classes_train_a_softmax_head_and_evaluate_per_class(tmp_path):
    data = synthesize(tmp_path / "sky10.h5", classes=tuple(range(10)), n_per_class=6, seed=1,
                      difficulty=0.0, progress=False)
    config = Config.resolve(overrides=dict(data=str(data), classes=list(range(10)), epochs=1, batch_size=16,
                                           amp=False, device="cpu"))
    run_dir = train(config, out=tmp_path / "run", progress=False)

    model = load_model(run_dir)
    assert model.n_outputs == 10 and model.class_ids == list(range(10))
    probs = model.predict_proba(np.zeros((2, 256, 256, 3), np.uint8))
    assert probs.shape == (2, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)

    metrics = evaluate(run_dir, n_boot=50, progress=False, plots=False)
    saved = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert saved["n"] == metrics["n"] == 10  # one test image per class
    per_class = json.dumps(saved)
    for name in ("Disturbed", "Merging", "Edge-on with Bulge"):
        assert name in per_class
    header = (run_dir / "eval" / "predictions.csv").read_text().splitlines()[0]
    assert header == "index,true,predicted," + ",".join(f"prob_{c}" for c in range(10))
