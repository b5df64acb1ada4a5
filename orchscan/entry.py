"""The ``orchscan`` process: what only a process of its own (not a command run in-process) does."""

from __future__ import annotations

import os
import signal
import sys
from contextlib import suppress

from orchscan.exits import EXIT_INTERRUPTED


def main() -> None:
    """Run the command line as the process's whole work.

    Ctrl-C while the modules load ends the process by the signal's default action, without a
    traceback from whichever import it interrupted. Once the command has run, a late signal is
    ignored (:func:`orchscan.interrupts.settle`), so the process ends as the command decided.
    A command interrupted by Ctrl-C, its cleanup done, ends by SIGINT itself: shells report
    that as 130 and, unlike a plain exit status, it also stops a script that loops over scans.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from orchscan.cli import main as command
    from orchscan.interrupts import settle

    try:
        command()
    except SystemExit as ended:
        if ended.code == EXIT_INTERRUPTED:
            _end_by_sigint()
        raise
    finally:
        settle()


def _end_by_sigint() -> None:
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
