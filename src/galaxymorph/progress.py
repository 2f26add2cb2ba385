"""Progress bars for long work (tqdm on stderr); quiet when not wanted."""

from __future__ import annotations

import os

from tqdm.auto import tqdm


def progress_bar(iterable=None, desc: str | None = None, total: int | None = None, unit: str = "it",
                 disable: bool = False, **kwargs):
    """A tqdm bar; ``GALAXYMORPH_NO_PROGRESS=1`` turns every bar off (tests, logs)."""
    disable = disable or os.environ.get("GALAXYMORPH_NO_PROGRESS") == "1"
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, dynamic_ncols=True,
                leave=False, **kwargs)
