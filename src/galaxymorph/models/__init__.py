"""Models: a registry of architectures, the classifier wrapper (:mod:`.classifier`), and
checkpoints (:mod:`.checkpoints`).

Every trained model is a :class:`Classifier`: a ``torch.nn.Module`` whose ``forward`` takes the
float tensor made by its own :meth:`Classifier.preprocess` from uint8 images (N, 256, 256, 3) as
stored, and returns logits: (N, 1) for two classes (positive = the second class), (N, k) for
more. ``galaxymorph.load_model(run_dir)`` gives one back in eval mode.
"""

from .checkpoints import (
    CHECKPOINT_FORMAT, load_model, load_weights, model_from_checkpoint, read_checkpoint, save_checkpoint,
)
from .classifier import REGISTRY, Classifier, build_model, resolve_architecture

__all__ = ["CHECKPOINT_FORMAT", "REGISTRY", "Classifier", "build_model", "load_model", "load_weights",
           "model_from_checkpoint", "read_checkpoint", "resolve_architecture", "save_checkpoint"]
