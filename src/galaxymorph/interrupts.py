"""Ctrl-C that always stops a command, even when it lands where Python cannot raise it.

A SIGINT raises ``KeyboardInterrupt`` wherever the main thread happens to be. When that is a
weakref callback, a finalizer or ``__del__`` (numpy, torch and h5py run many), CPython prints
"Exception ignored" and carries on, and the command would finish as if nothing happened.
While :func:`handling_interrupts` is active (the command line's ``main``), a SIGINT is also
recorded, and :func:`check` raises ``KeyboardInterrupt`` again at the next safe point: before
a finished file is renamed into place (``fileio.atomic_path``) and between batches written to
an HDF5 file, unless that code runs inside an ``except KeyboardInterrupt`` block (which saves
what a resume needs). The command line then exits with status 130 whatever happened in between.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator

_interrupted = False


def interrupted() -> bool:
    """True once a SIGINT arrived while :func:`handling_interrupts` was active."""
    return _interrupted


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a SIGINT arrived (even one that Python swallowed), unless
    the caller is handling that interrupt already: what an ``except KeyboardInterrupt`` block
    writes (training's "interrupted" status) is kept."""
    if _interrupted and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
        raise KeyboardInterrupt


def _on_sigint(signum, frame) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def handling_interrupts() -> Iterator[None]:
    """Record SIGINT for :func:`check` and keep the swallowed ``KeyboardInterrupt``'s
    "Exception ignored" message off the terminal; restore everything on leaving."""
    global _interrupted
    if (threading.current_thread() is not threading.main_thread()  # only it may set handlers
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):  # started deaf to Ctrl-C: stays so
        yield
        return
    previous_handler = signal.signal(signal.SIGINT, _on_sigint)
    previous_hook = sys.unraisablehook

    def quiet_hook(unraisable) -> None:
        if not (_interrupted and issubclass(unraisable.exc_type, KeyboardInterrupt)):
            previous_hook(unraisable)

    _interrupted = False
    sys.unraisablehook = quiet_hook
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        sys.unraisablehook = previous_hook
        _interrupted = False

