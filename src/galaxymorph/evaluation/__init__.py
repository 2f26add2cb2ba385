"""Evaluation of a trained run on a held-out split.

``from galaxymorph.evaluation import evaluate`` scores a run folder (:mod:`.run`); the metrics and
their intervals are in :mod:`.metrics`, the figures in :mod:`.figures`.
"""

from .run import evaluate, format_metrics

__all__ = ["evaluate", "format_metrics"]
