"""Training: the loop (:mod:`.loop`), DDP helpers (:mod:`.distributed`), the learning-rate schedule
(:mod:`.schedule`) and the curves plot (:mod:`.curves`). Run folders, resume and history files
live in :mod:`galaxymorph.runs`; device and precision choice in :mod:`galaxymorph.device`.
"""

from .loop import train

__all__ = ["train"]
