"""How every process of a scan allocates: which allocator Arrow's buffers come from, whether
numpy asks for huge pages, and handing freed memory back to the system.

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

#: The environment variable numpy reads for its huge-page advice; a choice made there wins.
HUGE_PAGE_VARIABLE = "NUMPY_MADVISE_HUGEPAGE"


def use_scan_allocators() -> str:
    """Make jemalloc (else the system allocator) Arrow's default pool, and stop numpy advising
    huge pages, each unless the user chose otherwise.

    numpy advises transparent huge pages for every array of 4 MB or more. Where the kernel
    honours that advice only (the common ``madvise`` setting), each fault of such an array waits
    for the kernel to assemble and zero a 2 MB page, compacting memory when the page cache
    holds the spilled partitions: merging the edges of 10M spans spent 1.3 s of system time in
    those faults, and the scan took 47.3-47.4 s against 44.8-46.1 s without the advice.

    Returns the Arrow backend in use. Cheap and idempotent: every process that allocates for a
    scan calls it before its first batch (forked workers inherit it).
    """
    if POOL_VARIABLE not in os.environ:
        try:
            pool = pa.jemalloc_memory_pool()
        except NotImplementedError:  # a build without jemalloc (Windows wheels)
            pool = pa.system_memory_pool()
        pa.set_memory_pool(pool)
    if HUGE_PAGE_VARIABLE not in os.environ:
        set_numpy_huge_pages(False)
    backend: str = pa.default_memory_pool().backend_name
    return backend


def set_numpy_huge_pages(enabled: bool) -> bool:
    """Whether numpy advises huge pages for large arrays from now on; returns the previous setting."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage  # type: ignore[attr-defined]
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _set_madvise_hugepage  # type: ignore[no-redef]
    previous: bool = _set_madvise_hugepage(enabled)
    return previous


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
