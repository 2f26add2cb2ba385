"""Explaining a trained run (placeholder)."""

from __future__ import annotations

from ..errors import NotBuiltYet


def explain_run(run_dir, **kwargs):
    raise NotBuiltYet("'galaxymorph explain' is not built yet")
