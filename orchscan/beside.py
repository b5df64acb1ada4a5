"""One call run in a forked child while the caller goes on with its own work.

The landscape stage runs in the parent alone once the reducing workers have ended, and leaves
every other core idle. Two of its steps are independent of each other (mining event-driven
flows from the message chains, and mining the orchestrated flows), and both are Python-heavy,
so threads would take turns on the GIL. A forked child gets the parent's data without a copy or
a pickle, and only its result, a few flows, comes back through a pipe.

Where ``fork`` is missing, or the scan was given one job, the call runs in the caller when its
result is asked for: the same result, one core.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from typing import Generic, TypeVar

from orchscan.collectors.side_threads import run_inline
from orchscan.collectors.traces.worker_signals import signals_blocked, take_default_actions
from orchscan.engines.local import WorkerError

T = TypeVar("T")


class Beside(Generic[T]):
    """The pending result of a call started by :func:`beside`."""

    def __init__(self, call: Callable[[], T], *, fork: bool) -> None:
        self._call: Callable[[], T] | None = call
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None
        if fork:
            self._start(call)

    def _start(self, call: Callable[[], T]) -> None:
        context = multiprocessing.get_context("fork")
        parent, child = context.Pipe(duplex=False)
        process = context.Process(target=_run, args=(call, child, parent), daemon=True)
        # A signal that comes while the child starts is raised once it is recorded, so that
        # stopping the scan stops the child too.
        with signals_blocked():
            process.start()
            child.close()
            self._process, self._connection, self._call = process, parent, None

    def result(self) -> T:
        """The call's result, waiting for the child if it still runs; its error, re-raised here."""
        if self._call is not None:
            return self._call()
        assert self._process is not None and self._connection is not None
        try:
            kind, payload = self._connection.recv()
        except (EOFError, OSError):
            self._process.join()
            status = self._process.exitcode
            raise WorkerError(f"the side process ended unexpectedly (exit status {status})") from None
        finally:
            self._connection.close()
        self._process.join()
        if kind == "error":
            raise WorkerError(f"the side process failed:\n{payload}")
        result: T = payload
        return result

    def stop(self) -> None:
        """End the child if it still runs (the caller failed or was interrupted)."""
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join()
        if self._connection is not None:
            self._connection.close()


@contextmanager
def beside(call: Callable[[], T], *, jobs: int) -> Iterator[Beside[T]]:
    """Start ``call`` in a forked child when ``jobs`` allows a second process; the block's work
    runs meanwhile, and the child is ended when the block is left without its result."""
    pending = Beside(call, fork=jobs > 1 and "fork" in multiprocessing.get_all_start_methods())
    try:
        yield pending
    finally:
        pending.stop()


def _run(call: Callable[[], object], connection: Connection, inherited: Connection) -> None:
    """The child: make the call and send its result, or the error it raised."""
    take_default_actions()
    inherited.close()
    # The parent's own work takes the other core.
    run_inline()
    try:
        message: tuple[str, object] = ("ok", call())
    except Exception:
        message = ("error", traceback.format_exc())
    with suppress(BrokenPipeError, ConnectionResetError):  # the parent is gone: nobody to tell
        connection.send(message)
    connection.close()
