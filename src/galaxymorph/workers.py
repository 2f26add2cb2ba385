"""Worker processes: how many cores this process may use, and how to start clean workers.

Shared by the two process pools of galaxymorph: the synthetic renderer
(:mod:`galaxymorph.data.synthetic`) and the explain figures (:class:`galaxymorph.plotting.FigurePool`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Iterator, Sequence


def usable_cores() -> int:
    """All the cores this process may use (its CPU affinity where the platform says so)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def can_start_workers() -> bool:
    """False when worker processes could not re-import the main program (its file is gone)."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


def worker_context(preload: Sequence[str] = ()):
    """A multiprocessing context whose workers start clean, whatever this process holds (a CUDA
    context must not be forked): forkserver, where the server imports ``preload`` once for every
    worker forked from it; else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover - not Linux
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    if preload:
        context.set_forkserver_preload(list(preload))
    return context


@contextlib.contextmanager
def deaf_to_ctrl_c() -> Iterator[None]:
    """Start worker processes (create a pool, submit to it) inside this block: they inherit a
    blocked SIGINT. Ctrl-C reaches the whole process group, and a worker (or the forkserver
    still importing its libraries) would print a traceback and break the pool; this way the
    parent alone stops and cancels the pending work. A Ctrl-C that arrives inside the block
    is raised in this process as it ends."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class WorkerPool(ProcessPoolExecutor):
    """A process pool whose workers start deaf to Ctrl-C (:func:`deaf_to_ctrl_c`): made and fed
    inside that block, since a submit may start a worker. The one pool of both pools' users."""

    def __init__(self, *args, **kwargs):
        with deaf_to_ctrl_c():
            super().__init__(*args, **kwargs)

    def submit(self, *args, **kwargs):
        with deaf_to_ctrl_c():  # may start a worker
            return super().submit(*args, **kwargs)
