"""A real Dask cluster for tests: a ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1.

The scheduler picks a free port and writes its address to a scheduler file; every worker runs
under its nanny (as ``dask worker`` does by default), so a killed worker process is restarted.
An observer client watches the cluster; its logs stay in the cluster's folder for a failed test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from distributed import Client

DASK = Path(sys.executable).parent / "dask"
START_TIMEOUT_S = 120


@dataclass
class DaskCluster:
    """A running cluster: its scheduler's address, an observer's client, where its logs are."""

    address: str
    client: Client
    folder: Path

    def workers(self) -> list[str]:
        """Addresses of the workers connected now."""
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def worker_pid(self, address: str) -> int:
        """The process id of the worker at ``address`` (not its nanny's)."""
        pid: int = self.client.run(os.getpid, workers=[address])[address]
        return pid


def _start(command: list[str], log: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})


@contextmanager
def dask_cluster(
    folder: Path, *, workers: int = 2, memory_limit: str = "1GB", env: Mapping[str, str] | None = None
) -> Iterator[DaskCluster]:
    """Start a scheduler and ``workers`` single-threaded workers; stop them when the block ends."""
    settings = dict(env or {})
    scheduler_file = folder / "scheduler.json"
    with ExitStack() as stack:
        processes: list[subprocess.Popen[bytes]] = []
        stack.callback(_stop, processes)
        scheduler = [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
        log = folder / "scheduler.log"
        processes.append(_start([*scheduler, "--scheduler-file", str(scheduler_file)], log, settings))
        address = _scheduler_address(scheduler_file, processes[0], log)
        worker = [str(DASK), "worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"]
        for name in (f"worker-{number}" for number in range(workers)):
            options = ["--memory-limit", memory_limit, "--name", name, "--local-directory", str(folder)]
            processes.append(_start([*worker, *options], folder / f"{name}.log", settings))
        client = stack.enter_context(Client(address, timeout=START_TIMEOUT_S, set_as_default=False))
        if workers:
            client.wait_for_workers(workers, timeout=START_TIMEOUT_S)
        yield DaskCluster(address, client, folder)


def _scheduler_address(scheduler_file: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dask scheduler ended ({process.returncode}):\n{log.read_text()}")
        try:
            address: str = json.loads(scheduler_file.read_text())["address"]
            return address
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
    raise RuntimeError(f"dask scheduler did not start within {START_TIMEOUT_S} s:\n{log.read_text()}")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Workers first (their nannies stop the worker processes), then the scheduler."""
    for process in reversed(processes):
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
