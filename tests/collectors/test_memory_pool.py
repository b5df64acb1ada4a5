"""Arrow's allocator in a scan's processes: jemalloc (else the system's), unless the user chose one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "sample_traces" / "traces" / "shop.otlp.pb.gz"

# Runs a command in-process, then prints the backend of Arrow's default pool and of the pool a
# forked child allocates from.
_PROBE = """
import os, sys
import pyarrow as pa
from orchscan.cli import main
try:
    main(["inspect", "--json", sys.argv[1]], standalone_mode=True)
except SystemExit as ended:
    assert ended.code == 0, ended.code
read, write = os.pipe()
if os.fork() == 0:
    os.write(write, pa.default_memory_pool().backend_name.encode())
    os._exit(0)
os.wait()
print(pa.default_memory_pool().backend_name, os.read(read, 64).decode(), file=sys.stderr)
"""


def _backends(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(SAMPLE)], env=env, capture_output=True, text=True, check=True
    )
    return done.stderr.split()


def test_a_command_leaves_mimalloc_for_an_allocator_that_returns_pages_without_refaulting() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    parent, child = _backends(env)
    assert parent in {"jemalloc", "system"}
    assert child == parent


@pytest.mark.parametrize("chosen", ["mimalloc", "system"])
def test_the_users_choice_of_pool_wins(chosen: str) -> None:
    parent, child = _backends({**os.environ, "ARROW_DEFAULT_MEMORY_POOL": chosen})
    assert parent == child == chosen
