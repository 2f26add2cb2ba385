"""The HTML report (placeholder)."""

from __future__ import annotations

from .errors import NotBuiltYet


def write_report(run_dir, **kwargs):
    raise NotBuiltYet("'galaxymorph report' is not built yet")
