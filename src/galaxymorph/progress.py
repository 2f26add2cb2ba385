"""Progress of long work on stderr: a bar on a terminal, one line per stage in a log, or nothing.

- stderr is a terminal: a tqdm bar that updates in place.
- stderr is a file or a pipe (a log, CI, ``nohup``): no bar, which would write a line per
  update; instead one line when the work ends, e.g. ``load train: 840 img in 3.2s``.
- ``GALAXYMORPH_NO_PROGRESS=1`` or ``galaxymorph --quiet``: no progress at all (bars, stage
  and epoch lines). Results and errors are still printed.
"""

from __future__ import annotations

import os
import sys
import time

QUIET_VARIABLE = "GALAXYMORPH_NO_PROGRESS"


def progress_enabled() -> bool:
    """False when progress is silenced (``GALAXYMORPH_NO_PROGRESS=1``, ``--quiet``)."""
    return os.environ.get(QUIET_VARIABLE) != "1"


def set_quiet() -> None:
    """Silence all progress for the rest of this process (and the processes it starts)."""
    os.environ[QUIET_VARIABLE] = "1"


def status(message: str) -> None:
    """One progress line on stderr (a stage starting, an epoch's summary), unless silenced."""
    if progress_enabled():
        print(message, file=sys.stderr, flush=True)


def progress_bar(iterable=None, desc: str | None = None, total: int | None = None, unit: str = "it",
                 disable: bool = False, log_line: bool = True, **kwargs):
    """A tqdm bar on a terminal; elsewhere a :class:`LogLine` (one line at the end, unless
    ``log_line`` is False because the caller prints its own summary). Disabled by ``disable``
    or :func:`progress_enabled`."""
    quiet = disable or not progress_enabled()
    if not quiet and sys.stderr.isatty():
        from tqdm.auto import tqdm  # lazy: --help imports progress and loads no tqdm

        return tqdm(iterable, desc=desc, total=total, unit=unit, dynamic_ncols=True, leave=False, **kwargs)
    return LogLine(iterable, desc=desc, total=total, unit=unit, silent=quiet or not log_line,
                   initial=kwargs.get("initial", 0))


class LogLine:
    """The part of tqdm's interface galaxymorph uses, printing one summary line when closed."""

    def __init__(self, iterable=None, desc: str | None = None, total: int | None = None, unit: str = "it",
                 silent: bool = False, initial: int = 0):
        self.iterable, self.desc, self.unit, self.silent = iterable, desc or "progress", unit, silent
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.postfix = total, initial, {}
        self._start, self._closed = time.perf_counter(), False

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.n += 1
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **values) -> None:
        self.postfix = values

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.silent or not progress_enabled():
            return
        if self.unit == "B":  # downloads: megabytes
            done = f"{self.n / 1e6:.1f} MB"
        else:
            done = f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"
        extra = "".join(f"  {k} {v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {done} in {time.perf_counter() - self._start:.1f}s{extra}", file=sys.stderr, flush=True)
