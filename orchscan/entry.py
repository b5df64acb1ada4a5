"""The ``orchscan`` process: what only a process of its own (not a command run in-process) does."""

from __future__ import annotations

import gc
import os
import signal
import sys
from contextlib import suppress
from typing import NoReturn

from orchscan.exits import EXIT_INTERRUPTED


def main() -> None:
    """Run the command line as the process's whole work.

    Ctrl-C while the modules load ends the process by the signal's default action, without a
    traceback from whichever import it interrupted. Once the command has run, a late signal is
    ignored (:func:`orchscan.interrupts.settle`), so the process ends as the command decided.
    A command interrupted by Ctrl-C, its cleanup done, ends by SIGINT itself: shells report
    that as 130 and, unlike a plain exit status, it also stops a script that loops over scans.

    A command that ran to its end has closed its files, workers and threads: the process then
    ends at once (see :func:`_end_now`) instead of tearing the interpreter down.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    gc.disable()  # no collection while the modules load (see orchscan.heap)
    from orchscan.cli import main as command
    from orchscan.interrupts import settle

    gc.enable()

    try:
        command()
    except SystemExit as ended:
        settle()
        if ended.code == EXIT_INTERRUPTED:
            _end_by_sigint()
        _end_now(ended.code)
    finally:
        settle()


def _end_now(code: object) -> NoReturn:
    """End the process with ``code`` as ``sys.exit`` would, without the interpreter's teardown.

    The teardown frees every object and module one by one: 0.15-0.2 s after a scan of a million
    spans (the pandas, Arrow and networkx modules, the landscape's frames), for nothing the
    command still needs. Standard streams are flushed first; everything else is closed by then.
    """
    if code is not None and not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(code or 0)


def _end_by_sigint() -> None:
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
