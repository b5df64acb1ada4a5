"""How a scan's processes allocate: Arrow on jemalloc (else the system's allocator), numpy without
huge-page advice, the C heap keeping freed blocks, each unless the user chose otherwise."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "sample_traces" / "traces" / "shop.otlp.pb.gz"

# Runs a command in-process, then prints the backend of Arrow's default pool, numpy's huge-page
# setting and whether glibc keeps 100 MB of freed 1 MB blocks in its heap (by default it maps
# such blocks on their own or trims the heap's top beyond 64 MB), in the process and in a
# forked child.
_PROBE = """
import ctypes, os, sys
import numpy as np
import pyarrow as pa
from orchscan.cli import main
from orchscan.collectors.memory_pool import set_numpy_huge_pages
try:
    main(["inspect", "--json", sys.argv[1]], standalone_mode=True)
except SystemExit as ended:
    assert ended.code == 0, ended.code
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
def state():
    huge = set_numpy_huge_pages(True)
    set_numpy_huge_pages(huge)
    heap = mallinfo2().arena
    blocks = [np.ones(1 << 17) for _ in range(100)]
    del blocks
    kept = "kept" if mallinfo2().arena - heap >= 90 << 20 else "returned"
    return f"{pa.default_memory_pool().backend_name},{'huge' if huge else 'small'},{kept}"
read, write = os.pipe()
if os.fork() == 0:
    os.write(write, state().encode())
    os._exit(0)
os.wait()
print(state(), os.read(read, 64).decode(), file=sys.stderr)
"""


def _states(env: dict[str, str]) -> list[list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(SAMPLE)], env=env, capture_output=True, text=True, check=True
    )
    return [state.split(",") for state in done.stderr.split()]


def _environment(**chosen: str) -> dict[str, str]:
    names = (
        "ARROW_DEFAULT_MEMORY_POOL",
        "NUMPY_MADVISE_HUGEPAGE",
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
    )
    return {**{k: v for k, v in os.environ.items() if k not in names}, **chosen}


@pytest.fixture(autouse=True)
def _glibc() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the probe reads glibc's heap statistics")


def test_a_command_sets_allocators_that_reuse_freed_memory_and_fault_cheaply() -> None:
    (parent, parent_pages, parent_heap), (child, child_pages, child_heap) = _states(_environment())
    assert parent in {"jemalloc", "system"}
    assert child == parent
    assert parent_pages == child_pages == "small"
    assert parent_heap == child_heap == "kept"


@pytest.mark.parametrize("chosen", ["mimalloc", "system"])
def test_the_users_choice_of_pool_wins(chosen: str) -> None:
    (parent, _, _), (child, _, _) = _states(_environment(ARROW_DEFAULT_MEMORY_POOL=chosen))
    assert parent == child == chosen


def test_the_users_choice_of_huge_pages_wins() -> None:
    (_, parent_pages, _), (_, child_pages, _) = _states(_environment(NUMPY_MADVISE_HUGEPAGE="1"))
    assert parent_pages == child_pages == "huge"


@pytest.mark.parametrize(
    "chosen", [{"MALLOC_MMAP_THRESHOLD_": "131072"}, {"MALLOC_TRIM_THRESHOLD_": "131072"}]
)
def test_the_users_choice_of_heap_thresholds_wins(chosen: dict[str, str]) -> None:
    (_, _, parent_heap), (_, _, child_heap) = _states(_environment(**chosen))
    assert parent_heap == child_heap == "returned"
