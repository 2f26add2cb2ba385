"""Training: the loop (:mod:`.loop`), device and precision choice (:mod:`.device`), DDP helpers
(:mod:`.distributed`), the learning-rate schedule (:mod:`.schedule`) and the curves plot
(:mod:`.curves`). Run folders, resume and history files live in :mod:`galaxymorph.runs`.
"""

from .loop import train

__all__ = ["train"]
