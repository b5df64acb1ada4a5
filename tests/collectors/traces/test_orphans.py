"""Pool workers of a parent killed outright end on their own, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from orchscan.collectors.traces.orphans import ORPHANED_EXIT, PARENT_CHECK_SECONDS

# A parent that starts a pool of two workers, prints their ids and waits to be killed.
_PARENT = textwrap.dedent(
    """
    import multiprocessing, os, sys, time
    from orchscan.collectors.traces.worker_signals import QuietPool

    def slow_pid():
        time.sleep(0.5)  # both workers take one
        return os.getpid()

    pool = QuietPool(2, multiprocessing.get_context("fork"))
    pids = {future.result() for future in [pool.submit(slow_pid), pool.submit(slow_pid)]}
    print(" ".join(map(str, sorted(pids))), flush=True)
    time.sleep(600)
    """
)


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs; an ended worker whose new parent does not reap it is a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_pool_workers_end_once_their_parent_was_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(_running(pid) for pid in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=60)
    deadline = time.monotonic() + 30 * PARENT_CHECK_SECONDS
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _running(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []


def test_a_worker_that_outlived_its_parent_exits_with_its_own_status() -> None:
    script = textwrap.dedent(
        """
        import os, time
        from orchscan.collectors.traces.orphans import end_when_parent_is_gone
        end_when_parent_is_gone(os.getpid())  # an id that is never its parent's
        time.sleep(60)
        """
    )
    ended = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert ended.returncode == ORPHANED_EXIT
