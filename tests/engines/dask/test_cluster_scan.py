"""The Dask engine on a real cluster (scheduler and workers as processes on 127.0.0.1) gives the local
engine's findings, with the work done by the workers, also when a worker is killed mid-scan."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner
from dask_cluster import DaskCluster, dask_cluster
from distributed import get_task_stream
from generated_landscape import write_landscape
from paths import SAMPLE

from orchscan.cli import main
from orchscan.engines.registry import ENGINES
from orchscan.engines.units import FOLD_BLOCK

pytestmark = pytest.mark.slow

SAMPLE_ARGS = [str(SAMPLE / "traces"), "--openapi", str(SAMPLE / "openapi")]
#: Small units and pieces, so that the generated landscape spreads over several of each (more
#: units than one block of partials merged on the workers).
SMALL = ["--memory-limit", "48M"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    with dask_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def landscape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 200,000 spans of the benchmarks' synthetic landscape in one framed protobuf file."""
    path = tmp_path_factory.mktemp("landscape") / "spans.binpb"
    assert write_landscape(path, 200_000) > 190_000
    return path


def _findings(out: Path, inputs: list[str], *options: str) -> str:
    args = ["scan", *inputs, "--format", "json", "--out", str(out), *options]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return (out / "findings.json").read_text()


@pytest.fixture(scope="module")
def sample_local(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _findings(tmp_path_factory.mktemp("local"), SAMPLE_ARGS, "--jobs", "1")


@pytest.fixture(scope="module")
def landscape_local(landscape: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _findings(tmp_path_factory.mktemp("local"), [str(landscape)])


def _ran(stream: list[dict[str, object]], kind: str) -> list[tuple[str, str]]:
    """(key, worker) of the tasks of one kind (read-piece, reduce-unit ...) the scheduler saw run."""
    return [(str(t["key"]), str(t["worker"])) for t in stream if str(t["key"]).startswith(kind)]


@pytest.mark.parametrize("engine", list(ENGINES))
def test_every_engine_gives_the_local_findings_of_the_sample(
    engine: str, cluster: DaskCluster, sample_local: str, tmp_path: Path
) -> None:
    options = ["--engine", engine] + (["--dask-scheduler", cluster.address] if engine == "dask" else [])
    with get_task_stream(cluster.client) as stream:
        findings = _findings(tmp_path, SAMPLE_ARGS, *options)
    assert findings == sample_local
    assert '"orchestrator"' in findings and '"hidden-orchestration"' in findings
    kinds = ("read-piece", "reduce-unit", "select-unit")
    ran = {worker for kind in kinds for _, worker in _ran(stream.data, kind)}
    assert ran <= set(cluster.workers()) and bool(ran) == (engine == "dask")


def test_inputs_and_shuffle_files_at_urls_give_the_local_findings(
    cluster: DaskCluster, sample_local: str, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    options = ["--engine", "dask", "--dask-scheduler", cluster.address, "--work-dir", work.as_uri()]
    findings = _findings(tmp_path / "out", [(SAMPLE / "traces").as_uri(), *SAMPLE_ARGS[1:]], *options)
    # Read through fsspec, every file is named by its URL; everything else is the local engine's.
    assert findings.replace("file://", "") == sample_local
    assert not list(work.iterdir())  # the shuffle files are gone


def test_without_a_scheduler_a_local_cluster_gives_the_local_findings_and_leaves_no_process(
    sample_local: str, tmp_path: Path
) -> None:
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    runner = CliRunner(env={"DASK_SCHEDULER_ADDRESS": None})
    args = ["scan", *SAMPLE_ARGS, "--format", "json", "--out", str(tmp_path), "--engine", "dask", "-j", "1"]
    result = runner.invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "findings.json").read_text() == sample_local
    # Only multiprocessing's resource tracker, which serves this interpreter until it exits, stays.
    started = [c for c in psutil.Process().children(recursive=True) if c.pid not in before]
    _, alive = psutil.wait_procs([c for c in started if not _resource_tracker(c)], timeout=30)
    assert not alive


def _resource_tracker(process: psutil.Process) -> bool:
    try:
        return "multiprocessing.resource_tracker" in " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return False


def test_records_kept_by_the_workers_give_the_local_findings(
    cluster: DaskCluster, sample_local: str, tmp_path: Path
) -> None:
    records = tmp_path / "records"
    options = ["--engine", "dask", "--dask-scheduler", cluster.address, "--keep-records", str(records)]
    assert _findings(tmp_path / "scan", SAMPLE_ARGS, *options) == sample_local
    manifest = json.loads((records / "manifest.json").read_text())
    assert len(list((records / "units").iterdir())) == manifest["units"] >= 1
    assert _findings(tmp_path / "again", ["--records", str(records), *SAMPLE_ARGS[1:]]) == sample_local


def test_a_generated_landscape_gives_the_local_findings_though_a_worker_is_killed_mid_scan(
    cluster: DaskCluster, landscape: Path, landscape_local: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "orchscan", "scan", str(landscape), "--out", str(out), *SMALL]
    command += ["--format", "json", "--engine", "dask", "--dask-scheduler", cluster.address]
    workers = set(cluster.workers())
    with get_task_stream(cluster.client) as stream:
        scan = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        victim = _holder_of_reduced_unit(cluster, scan)
        os.kill(cluster.worker_pid(victim), signal.SIGKILL)
        output, _ = scan.communicate(timeout=600)
    assert scan.returncode == 0, output.decode()
    assert (out / "findings.json").read_text() == landscape_local
    # The file was cut into runs and read by both workers, each a part of the units reduced.
    planned, read = _ran(stream.data, "plan-file"), _ran(stream.data, "read-piece")
    reduced = _ran(stream.data, "reduce-unit")
    assert len(planned) == 1 and len(read) >= 4 and {worker for _, worker in read} == workers
    assert len({key for key, _ in reduced}) >= 4 and workers <= {worker for _, worker in reduced}
    # The units' partials were merged by tasks (on the workers), a block of consecutive units each.
    units, folds = len({key for key, _ in reduced}), {key for key, _ in _ran(stream.data, "fold-partials")}
    assert units > FOLD_BLOCK and len(folds) == -(-units // FOLD_BLOCK)
    # The killed worker's reduced units were lost with it and reduced again elsewhere.
    keys = [key for key, _ in reduced]
    again, last = {key for key in keys if keys.count(key) > 1}, dict(reduced)
    assert again and all(last[key] != victim for key in again)


def _holder_of_reduced_unit(cluster: DaskCluster, scan: subprocess.Popen[bytes]) -> str:
    """The worker holding a reduced unit before any unit's records were selected."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and scan.poll() is None:
        held = cluster.client.has_what()
        keys = [str(key) for keys in held.values() for key in keys]
        if not any(key.startswith("select-unit") for key in keys):
            for worker, worker_keys in held.items():
                if any(str(key).startswith("reduce-unit") for key in worker_keys):
                    return str(worker)
        time.sleep(0.02)
    output = scan.communicate()[0].decode() if scan.poll() is not None else ""
    raise AssertionError(f"no reduced unit was seen on a worker before the selection\n{output}")


@contextmanager
def _allowed_failures(cluster: DaskCluster, allowed: int) -> Iterator[None]:
    """The running scheduler gives a task up once its workers died more than ``allowed`` times
    (``distributed.scheduler.allowed-failures``); its killed workers are back at the end."""

    def allow(dask_scheduler: Any, allowed: int) -> int:
        before: int = dask_scheduler.allowed_failures
        dask_scheduler.allowed_failures = allowed
        return before

    before = cluster.client.run_on_scheduler(allow, allowed=allowed)
    try:
        yield
    finally:
        cluster.client.run_on_scheduler(allow, allowed=before)
        cluster.client.wait_for_workers(2, timeout=120)


def test_a_task_whose_worker_dies_once_too_often_fails_the_scan_clearly(
    cluster: DaskCluster, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "orchscan", "scan", *SAMPLE_ARGS, "--out", str(out)]
    command += ["--engine", "dask", "--dask-scheduler", cluster.address]
    # The scheduler gives a task up the first time a worker dies under it.
    with _allowed_failures(cluster, 0):
        scan = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        victim = _reducing_worker(cluster, scan)
        os.kill(cluster.worker_pid(victim), signal.SIGKILL)
        output = scan.communicate(timeout=600)[0].decode()
    assert scan.returncode == 2, output
    assert (
        "orchscan: reducing the partitions: Dask gave up on a task after the workers running it died"
        in output
    )
    assert "Traceback" not in output and not out.exists()


def _reducing_worker(cluster: DaskCluster, scan: subprocess.Popen[bytes]) -> str:
    """A worker while it reduces a unit."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and scan.poll() is None:
        for worker, keys in cluster.client.processing().items():
            if any(str(key).startswith("reduce-unit") for key in keys):
                return str(worker)
        time.sleep(0.02)
    raise AssertionError(f"no unit was seen being reduced\n{scan.communicate()[0].decode()}")
