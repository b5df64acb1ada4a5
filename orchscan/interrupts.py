"""Ctrl-C and SIGTERM end a command with one line and 130 or 143, whenever they arrive.

A signal sent to the whole process group (Ctrl-C in a terminal, ``kill -- -PGID``, a CI runner's
timeout) reaches the scan and its worker processes at the same moment, so four moments need care:

- a worker process takes the default actions from its start (see
  :mod:`orchscan.collectors.traces.worker_signals`), so it simply ends;
- the parent may see a worker's end (a reset connection, a broken pool) before its own handler
  has run: :func:`signalled` says a signal came, so the end is reported as the interruption;
- a worker may end by the signal while the parent's handler is still pending: a worker's end
  by SIGINT or SIGTERM is reported as the interruption too (:func:`status_of_signal`);
- once a command has done its work, a late signal must not change its outcome: the interpreter
  resets Python-level handlers to the default action while it shuts down, which would kill the
  process, so :func:`settle` ignores both signals from then on.
"""

from __future__ import annotations

import signal
from types import FrameType

from orchscan.exits import EXIT_INTERRUPTED, EXIT_TERMINATED

#: The signals that end a command.
ENDING = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []


class Terminated(BaseException):
    """SIGTERM, raised where the process is so that cleanup (the staging folder) still runs."""


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def _on_terminate(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise Terminated


def install() -> None:
    """Take SIGINT and SIGTERM as exceptions raised where the command is, so cleanup runs."""
    _received.clear()
    signal.signal(signal.SIGINT, _on_interrupt)
    signal.signal(signal.SIGTERM, _on_terminate)


def settle() -> None:
    """The command's work is done: ignore both signals, so shutting down cannot turn into a kill."""
    for signum in ENDING:
        signal.signal(signum, signal.SIG_IGN)


def signalled() -> int | None:
    """The exit status of the first SIGINT or SIGTERM this command received, if any."""
    return status_of_signal(_received[0]) if _received else None


def status_of_signal(signum: int) -> int | None:
    """130 for SIGINT, 143 for SIGTERM, ``None`` for any other signal."""
    return {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}.get(signal.Signals(signum))
