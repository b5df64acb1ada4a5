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

import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from orchscan.collectors.traces.orphans import end_when_parent_is_gone

#: The signals that end a scan.
ENDING = (signal.SIGINT, signal.SIGTERM)

T = TypeVar("T")


@contextmanager
def signals_blocked() -> Iterator[None]:
    """Start worker processes inside this block; the signals wait until it ends.

    The mask holds them for the workers, which inherit it. It is the calling thread's only: the
    kernel gives a signal sent to the process to another thread that does not block it, and
    Python runs the handler in the main thread at its next instruction, inside the block. So the
    main thread's handlers are also replaced by one that notes the signal, and what it noted is
    raised again once the block has ended.
    """
    noted: list[int] = []
    replaced = _note_ending_signals(noted)
    masked = hasattr(signal, "pthread_sigmask")
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, ENDING) if masked else set()
    try:
        yield
    finally:
        for signum, handler in replaced.items():
            signal.signal(signum, handler)
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        for signum in dict.fromkeys(noted):
            signal.raise_signal(signum)


def _note_ending_signals(noted: list[int]) -> dict[int, Any]:
    """Replace the Python handlers of the ending signals by one that appends to ``noted``.

    Only the main thread may set handlers; the ones set outside Python (``None``) stay.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    replaced: dict[int, Any] = {}
    for signum in ENDING:
        handler = signal.getsignal(signum)
        if handler is not None:
            replaced[signum] = signal.signal(signum, lambda number, frame: noted.append(number))
    return replaced


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


def _start_pool_worker(parent: int) -> None:
    ignore_ending_signals()
    end_when_parent_is_gone(parent)


class QuietPool(ProcessPoolExecutor):
    """A process pool whose workers ignore SIGINT and SIGTERM from their start (see the module).

    A pool worker killed while it sends a result leaves a partial message in the pool's result
    pipe, whose reading thread then waits for the rest forever (and the interpreter's exit with
    it). So pool workers are never ended by a signal: the parent, interrupted, cancels what is
    queued and the workers stop after their current task (one chunk). A worker whose parent was
    killed outright ends on its own (see :mod:`.orphans`).
    """

    def __init__(self, max_workers: int, mp_context: Any) -> None:
        super().__init__(
            max_workers=max_workers,
            mp_context=mp_context,
            initializer=_start_pool_worker,
            initargs=(os.getpid(),),
        )

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with signals_blocked():
            return super().submit(fn, *args, **kwargs)
