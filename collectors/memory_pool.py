"""Which allocator Arrow's buffers come from in every process of a scan, and handing freed
memory back to the system.

pyarrow's wheels default to mimalloc. On a scan's pattern (batches of tens of thousands of
rows allocated, copied by ``take`` and freed, in several processes at once) it handed pages
back to the kernel and faulted them in again: 10-12 s of system time in a 23 s scan of a
million spans, against under 3 s with jemalloc or the C library's allocator (benchmarks/README.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import pyarrow as pa

#: The environment variable by which Arrow lets a user pick the allocator; a choice made there wins.
POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def use_scan_memory_pool() -> str:
    """Make jemalloc (else the system allocator) Arrow's default pool, unless the user chose one.

    Returns the backend in use. Cheap and idempotent: every process that allocates Arrow memory
    for a scan calls it before its first batch (forked workers inherit it).
    """
    if POOL_VARIABLE not in os.environ:
        try:
            pool = pa.jemalloc_memory_pool()
        except NotImplementedError:  # a build without jemalloc (Windows wheels)
            pool = pa.system_memory_pool()
        pa.set_memory_pool(pool)
    backend: str = pa.default_memory_pool().backend_name
    return backend


def _glibc_trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None)
    except OSError:
        return None


#: glibc's malloc_trim, absent on other C libraries.
_MALLOC_TRIM = _glibc_trim()


def release_freed_memory() -> None:
    """Hand memory freed so far back to the system: Arrow's pool's, and the C heap's on glibc.

    pandas and numpy allocate from the C heap, and glibc keeps what they free for reuse instead
    of returning it, so a stage that frees its large input before working on a merged copy
    would still peak on top of it. Called between stages, where much was just freed: trimming
    costs milliseconds; doing it through glibc's thresholds for every allocation cost 2-4 s of
    system time in a scan of a million spans.
    """
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
