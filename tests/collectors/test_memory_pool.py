"""How a scan's processes allocate: Arrow on jemalloc (else the system's allocator), numpy without
huge-page advice, unless the user chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "sample_traces" / "traces" / "shop.otlp.pb.gz"

# Runs a command in-process, then prints the backend of Arrow's default pool and numpy's
# huge-page setting, in the process and in a forked child.
_PROBE = """
import os, sys
import pyarrow as pa
from orchscan.cli import main
from orchscan.collectors.memory_pool import set_numpy_huge_pages
try:
    main(["inspect", "--json", sys.argv[1]], standalone_mode=True)
except SystemExit as ended:
    assert ended.code == 0, ended.code
def state():
    huge = set_numpy_huge_pages(True)
    set_numpy_huge_pages(huge)
    return f"{pa.default_memory_pool().backend_name},{'huge' if huge else 'small'}"
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
    names = ("ARROW_DEFAULT_MEMORY_POOL", "NUMPY_MADVISE_HUGEPAGE")
    return {**{k: v for k, v in os.environ.items() if k not in names}, **chosen}


def test_a_command_leaves_mimalloc_and_huge_page_advice_for_allocations_that_fault_cheaply() -> None:
    (parent, parent_pages), (child, child_pages) = _states(_environment())
    assert parent in {"jemalloc", "system"}
    assert child == parent
    assert parent_pages == child_pages == "small"


@pytest.mark.parametrize("chosen", ["mimalloc", "system"])
def test_the_users_choice_of_pool_wins(chosen: str) -> None:
    (parent, _), (child, _) = _states(_environment(ARROW_DEFAULT_MEMORY_POOL=chosen))
    assert parent == child == chosen


def test_the_users_choice_of_huge_pages_wins() -> None:
    (_, parent_pages), (_, child_pages) = _states(_environment(NUMPY_MADVISE_HUGEPAGE="1"))
    assert parent_pages == child_pages == "huge"
