"""Evaluation (placeholder)."""

from __future__ import annotations

from .errors import NotBuiltYet


def evaluate(run_dir, split='test', **kwargs):
    raise NotBuiltYet("'galaxymorph evaluate' is not built yet")


def format_metrics(metrics):
    return str(metrics)
