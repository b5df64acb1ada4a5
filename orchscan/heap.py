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

#: Allocations between two collections of the youngest generation (Python's default is 700).
#: A scan's Python objects are mostly results that live until it ends (flows, steps, edges):
#: young collections found little to free, and at 700 the parent of a 1M-span scan ran 419 of
#: them (and 38 of the next generation), 90 ms in all; at 20,000, 218 and 19, 45 ms.
YOUNG_COLLECTION_ALLOCATIONS = 20_000


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
            gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, *gc.get_threshold()[1:])
        if enabled:
            gc.enable()
