"""The scan process's heap: the loaded modules' objects are frozen out of the collector's walks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from paths import SAMPLE

from orchscan.heap import YOUNG_COLLECTION_ALLOCATIONS

#: Runs the real command line, then says what the collector saw before the process ends.
REPORTS_HEAP = (
    "import gc, sys\n"
    "import orchscan.entry as entry\n"
    "end = entry._end_now\n"
    "def report(code):\n"
    "    sys.stderr.write(f'heap: frozen={gc.get_freeze_count()} enabled={gc.isenabled()} '\n"
    "                     f'young={gc.get_threshold()[0]}\\n')\n"
    "    end(code)\n"
    "entry._end_now = report\n"
    "sys.argv = ['orchscan', *sys.argv[1:]]\n"
    "entry.main()\n"
)

#: Loads modules twice, as a process running two commands would.
LOADS_TWICE = (
    "import gc\n"
    "from orchscan.heap import loading_modules\n"
    "with loading_modules():\n"
    "    assert not gc.isenabled()\n"
    "    import json\n"
    "first = gc.get_freeze_count()\n"
    "with loading_modules():\n"
    "    import csv\n"
    "print(first, gc.get_freeze_count(), gc.isenabled())\n"
)


def test_a_scan_freezes_the_modules_it_loaded_and_keeps_collecting(tmp_path: Path) -> None:
    command = [sys.executable, "-c", REPORTS_HEAP, "scan", str(SAMPLE / "traces"), "--format", "json"]
    result = subprocess.run(
        [*command, "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("heap: ")]
    frozen, enabled, young = line.removeprefix("heap: ").split()
    # pandas, Arrow and networkx alone are hundreds of thousands of objects
    assert int(frozen.removeprefix("frozen=")) > 100_000 and enabled == "enabled=True"
    assert young == f"young={YOUNG_COLLECTION_ALLOCATIONS}"


def test_modules_are_frozen_once_per_process() -> None:
    result = subprocess.run([sys.executable, "-c", LOADS_TWICE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    first, second, enabled = result.stdout.split()
    assert int(first) > 0 and second == first and enabled == "True"
