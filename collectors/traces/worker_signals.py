"""Worker processes and SIGINT/SIGTERM: one rule from a worker's first instruction on.

A signal to the whole process group (Ctrl-C in a terminal) reaches the workers too. A forked
child starts with its parent's Python handlers, and an exception they raise while the child
is still starting (in a fork hook) is printed and ignored, leaving a worker that missed its
signal. So workers are started with both signals blocked (a child inherits the mask, also
across the exec of the spawn start method), and a worker's first step sets its rule and
unblocks them: a worker with a pipe of its own ends by the default action (its parent sees the
pipe close), a pool worker ignores them (see :class:`QuietPool`). The parent reports the
interruption, once.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

#: The signals that end a scan.
ENDING = (signal.SIGINT, signal.SIGTERM)

T = TypeVar("T")


@contextmanager
def signals_blocked() -> Iterator[None]:
    """Start worker processes inside this block; the signals wait until it ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, ENDING)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def take_default_actions() -> None:
    """A worker's first step: SIGINT and SIGTERM end it, including one that came while it started."""
    _unblock_with(signal.SIG_DFL)


def ignore_ending_signals() -> None:
    """A pool worker's first step: it leaves SIGINT and SIGTERM to the parent, which shuts the pool down."""
    _unblock_with(signal.SIG_IGN)


def _unblock_with(action: signal.Handlers) -> None:
    for signum in ENDING:
        signal.signal(signum, action)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, ENDING)


class QuietPool(ProcessPoolExecutor):
    """A process pool whose workers ignore SIGINT and SIGTERM from their start (see the module).

    A pool worker killed while it sends a result leaves a partial message in the pool's result
    pipe, whose reading thread then waits for the rest forever (and the interpreter's exit with
    it). So pool workers are never ended by a signal: the parent, interrupted, cancels what is
    queued and the workers stop after their current task (one chunk).
    """

    def __init__(self, max_workers: int, mp_context: Any) -> None:
        super().__init__(max_workers=max_workers, mp_context=mp_context, initializer=ignore_ending_signals)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with signals_blocked():
            return super().submit(fn, *args, **kwargs)
