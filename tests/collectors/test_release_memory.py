"""Freed memory goes back to the system between stages, so the next stage does not peak on top of it."""

from __future__ import annotations

import os
import subprocess
import sys

# Frees 400 MB of 1 MB numpy arrays that lie between small blocks still in use (as a stage's
# frames lie between the objects that outlive it): glibc can only keep those holes for reuse
# until it is told to hand them back. Prints the resident size before and after releasing.
_PROBE = """
import numpy as np
from orchscan.collectors.memory_pool import release_freed_memory

def resident():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))

big = np.ones(16 << 20, dtype=np.uint8)
del big  # glibc now serves blocks below 16 MB from its heap
arrays, kept = [], []
for _ in range(400):
    arrays.append(np.ones(1 << 20, dtype=np.uint8))
    kept.append(np.ones(1024, dtype=np.uint8))
del arrays
before = resident()
release_freed_memory()
print(before, resident())
"""


def test_memory_freed_by_pandas_and_numpy_is_handed_back() -> None:
    # Without glibc's tuning variables, which Dask's nanny sets for the workers it starts (and
    # so for this process once a Dask test ran here): any of them freezes the mmap threshold,
    # the 1 MB arrays are mapped apart and unmapped when freed, and there is nothing to hand back.
    env = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, env=env)
    before, after = map(int, done.stdout.split())
    assert before - after >= 300, (before, after)
