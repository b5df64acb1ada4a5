"""A real Dask cluster for tests: a ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1.

The scheduler picks a free port and writes its address to a scheduler file; every worker runs
under its nanny (as ``dask worker`` does by default), so a killed worker process is restarted.
An observer client watches the cluster; its logs stay in the cluster's folder for a failed test.

Nothing outlives the test: each process starts in a session of its own, and the whole session
(nanny and worker together) is stopped at the end, then checked gone. Should the test process
itself be killed, its cluster gets SIGTERM from the kernel (``PR_SET_PDEATHSIG``), and workers
whose scheduler is gone close after ``DEATH_TIMEOUT_S``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
from distributed import Client

DASK = Path(sys.executable).parent / "dask"
START_TIMEOUT_S = 120
#: A worker that has lost its scheduler for this long closes (``dask worker --death-timeout``).
DEATH_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30

# Run as ``python -c _LAUNCH PARENT_PID COMMAND...``: ask the kernel for SIGTERM when the test
# process dies, then become the command (the request survives exec).
_LAUNCH = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit('the test process is gone')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


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
    launch = [sys.executable, "-c", _LAUNCH, str(os.getpid()), *command]
    with log.open("wb") as out:
        return subprocess.Popen(
            launch, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True
        )


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
        worker += ["--death-timeout", str(DEATH_TIMEOUT_S)]
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
    """Workers first, then the scheduler, each with its whole session (a nanny and its worker);
    then every process that ran is checked gone."""
    started = [psutil.Process(p.pid) for p in processes if p.poll() is None]
    for process in list(started):
        with suppress(psutil.NoSuchProcess):
            started += process.children(recursive=True)
    for process in reversed(processes):
        _stop_session(process, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _stop_session(process, signal.SIGKILL)
            process.wait()
    _, alive = psutil.wait_procs(started, timeout=STOP_TIMEOUT_S)
    for process in alive:
        process.kill()
    if alive:
        raise AssertionError(f"cluster processes outlived the cluster: {[p.pid for p in alive]}")


def _stop_session(process: subprocess.Popen[bytes], signal_number: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal_number)
