"""The garbage collector's view of the process: the loaded modules' objects are set aside.

A full collection walks every tracked object, and most of a scan's are the modules' own (pandas,
Arrow, numpy, networkx): on a million spans the parent's four full collections took 150 ms,
two of them during the imports and two among the landscape stage's results. Objects frozen once
the modules are loaded are never walked again (nor written to by a walk in forked workers,
which would copy their pages): those last two took 15 ms.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loading_modules() -> Iterator[None]:
    """Load modules with the collector paused, then freeze what the process holds.

    Frozen once per process: a process that runs commands one after another (the tests) would
    otherwise freeze, and so never free, the garbage of every command before the last.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
        if enabled:
            gc.enable()
