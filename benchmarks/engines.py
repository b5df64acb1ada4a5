"""The whole scan on the local engine and on Dask: wall time, peak memory of the client and workers,
and what each stage costs per span (the figures a cluster is sized from).

Generates the synthetic landscape of ``landscape.py`` into ``benchmarks/data/`` (reused when its
size matches), then runs, each as a fresh ``orchscan scan --format json`` process:

* ``local``: the local engine (``--engine local -j WORKERS``);
* ``dask``: ``--engine dask`` against a real cluster started here (one ``dask scheduler`` and
  WORKERS ``dask worker --nthreads 1`` processes on 127.0.0.1, fresh for every run, so that each
  worker's peak is its own); the scheduler's task stream gives every task's time and result size;
* ``dask-local``: ``--engine dask`` without a scheduler (a local cluster inside the scan).

``--costs`` instead runs every stage of the Dask engine in this one process, without Dask, and
prints its CPU seconds and the bytes it hands on per million spans: the per-partition costs a
cluster for a larger landscape is sized from (wall times on a shared machine hide them).

    python benchmarks/engines.py                      # 1,000,000 spans, 2 workers
    python benchmarks/engines.py --spans 200000 --repeat 2
    python benchmarks/engines.py --costs --unit-spans 250000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
DASK = Path(sys.executable).parent / "dask"
MB = 2**20


@dataclass
class Run:
    """One scan: its wall time, the client's and each worker's peak RSS, the process tree's peak."""

    label: str
    seconds: float = 0.0
    client_peak_mb: float = 0.0
    tree_peak_mb: float = 0.0
    worker_peaks_mb: list[float] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    nbytes: dict[str, int] = field(default_factory=dict)


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def scan(run: Run, command: list[str], client: Any = None) -> None:
    """Run one ``orchscan scan``; sample its peak (VmHWM) and its process tree's RSS every 50 ms,
    and with a cluster's ``client`` the size of every result held on the workers."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            if client is not None:
                for key, size in client.nbytes(summary=False).items():
                    run.nbytes[str(key)] = max(run.nbytes.get(str(key), 0), int(size))
            run.client_peak_mb = max(run.client_peak_mb, _status_kb(child.pid, "VmHWM") / 1024)
            tree = sum(_status_kb(pid, "VmRSS") for pid in _tree(child.pid))
            run.tree_peak_mb = max(run.tree_peak_mb, tree / 1024)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    run.seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{run.label} failed ({child.returncode}):\n{output.decode()[-3000:]}")


@contextmanager
def cluster(folder: Path, workers: int, memory: str) -> Iterator[tuple[str, Any]]:
    """A scheduler and ``workers`` single-threaded workers on 127.0.0.1, and an observer's client."""
    from distributed import Client

    folder.mkdir()
    scheduler_file = folder / "scheduler.json"
    log = (folder / "cluster.log").open("wb")
    common = ["--host", "127.0.0.1", "--no-dashboard"]
    processes = [
        subprocess.Popen(
            [str(DASK), "scheduler", *common, "--port", "0", "--scheduler-file", str(scheduler_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        while not scheduler_file.exists():
            time.sleep(0.1)
        time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        local = ["--nthreads", "1", "--local-directory", str(folder)]
        for _ in range(workers):
            processes.append(
                subprocess.Popen(
                    [str(DASK), "worker", address, *common, *local, "--memory-limit", memory],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        with Client(address, timeout=120, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=120)
            yield address, client
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=60)
        log.close()


def _worker_peak_mb() -> float:
    """This worker process's peak RSS since it started (run on each worker)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, path: Path, args: argparse.Namespace, folder: Path) -> Run:
    base = [sys.executable, "-m", "orchscan", "scan", str(path), "--format", "json", "--no-progress"]
    base += ["--out", str(folder / kind), "--memory-limit", args.memory_limit]
    run = Run(kind)
    if kind == "local":
        scan(run, [*base, "-j", str(args.workers)])
    elif kind == "dask-local":
        scan(run, [*base, "--engine", "dask", "-j", str(args.workers)])
    else:
        from distributed import get_task_stream

        with cluster(folder / "cluster", args.workers, args.worker_memory) as (address, client):
            with get_task_stream(client) as stream:
                scan(run, [*base, "--engine", "dask", "--dask-scheduler", address], client)
            run.worker_peaks_mb = sorted(client.run(_worker_peak_mb).values())
            run.tasks = stream.data
    return run


def stages(run: Run, spans: int) -> list[str]:
    """Per kind of task: how many, compute seconds in all and per million spans, result bytes."""
    kinds: dict[str, list[float]] = {}
    first = min((s["start"] for t in run.tasks for s in t["startstops"]), default=0.0)
    for task in run.tasks:
        kind = str(task["key"]).rsplit("-", 2)[0]
        entry = kinds.setdefault(kind, [0, 0.0, 0.0, float("inf"), 0.0])
        entry[0] += 1
        entry[2] += run.nbytes.get(str(task["key"]), 0)
        for step in task["startstops"]:
            if step["action"] == "compute":
                entry[1] += step["stop"] - step["start"]
            entry[3] = min(entry[3], step["start"] - first)
            entry[4] = max(entry[4], step["stop"] - first)
    lines = [f"  {'task':14} {'count':>5} {'compute s':>9} {'s/1M spans':>10} {'results MB':>10}  from-to s"]
    for kind, (count, seconds, nbytes, start, stop) in sorted(kinds.items(), key=lambda item: item[1][3]):
        lines.append(
            f"  {kind:14} {count:5.0f} {seconds:9.2f} {seconds / spans * 1e6:10.2f} {nbytes / MB:10.1f} "
            f"{start:5.1f}-{stop:5.1f}"
        )
    return lines


class _InProcess:
    """The Dask engine's reduce and select tasks run one after another here, timed in CPU seconds."""

    def __init__(self, units: list[Any], task: Any, costs: dict[str, float]) -> None:
        self._units, self._task, self._costs = units, task, costs
        self._reduced: list[Any] = []

    def reduce(self, on_progress: Any = None) -> list[Any]:
        from dask.sizeof import sizeof

        from orchscan.engines.dask.tasks import reduce_shuffled

        started = time.process_time()
        self._reduced = [reduce_shuffled(i, unit, self._task) for i, unit in enumerate(self._units)]
        self._costs["reduce units (workers)"] = time.process_time() - started
        self._costs["heavy records held (workers) MB"] = sum(sizeof(r[1]) for r in self._reduced) / MB
        self._costs["partials gathered (client) MB"] = sum(sizeof(r[0]) for r in self._reduced) / MB
        self._mark = time.process_time()
        return [reduced[0] for reduced in self._reduced]

    def select(self, selection: Any) -> list[Any]:
        from dask.sizeof import sizeof

        from orchscan.engines.dask.tasks import select_unit

        self._costs["plan the landscape (client)"] = time.process_time() - self._mark
        started = time.process_time()
        selected = [select_unit(reduced, selection) for reduced in self._reduced]
        self._costs["select records (workers)"] = time.process_time() - started
        self._costs["selected records gathered (client) MB"] = sum(sizeof(s) for s in selected) / MB
        self._mark = time.process_time()
        return selected


def costs(path: Path, unit_spans: int, piece_bytes: int) -> dict[str, float]:
    """CPU seconds and bytes of every stage, the map side's tasks run in this process."""
    from orchscan.analyzer.pipeline import SpecContext
    from orchscan.analyzer.thresholds import Thresholds
    from orchscan.collectors.traces.partition import partition_count
    from orchscan.engines.dask.inputs import list_inputs
    from orchscan.engines.dask.pieces import group_pieces, plan_file
    from orchscan.engines.dask.shuffle import shuffled_units
    from orchscan.engines.dask.tasks import read_piece
    from orchscan.engines.units import ReduceTask
    from orchscan.reports.registry import REPORTS, report_context
    from orchscan.runner import ReadAccount, finish_landscape

    found: dict[str, float] = {}
    (file,) = list_inputs([str(path)])
    with tempfile.TemporaryDirectory(prefix="orchscan-costs-") as folder:
        started = time.process_time()
        pieces = group_pieces(plan_file(file, None, piece_bytes), piece_bytes)
        count = partition_count(file.size, unit_spans)
        reads = [
            read_piece(i, p, count=count, folder=folder, spill_bytes=1 << 40, forced=None)
            for i, p in enumerate(pieces)
        ]
        found["read and shuffle (workers)"] = time.process_time() - started
        found["shuffle files MB"] = sum(f.stat().st_size for f in Path(folder).iterdir()) / MB
        units = shuffled_units([read.shuffled for read in reads], unit_spans)
        services = sorted(set().union(*(read.names for read in reads)))
        account = ReadAccount((file.source,), {file.source: "otlp-proto"}, ())
        context = SpecContext.of(None, services)
        task = ReduceTask(context.operations, Thresholds(), 0, Path(folder))
        engine = _InProcess(units, task, found)
        result = finish_landscape(engine, account, context, workflows=(), thresholds=Thresholds())
        found["finish the analysis (client)"] = time.process_time() - engine._mark
        started = time.process_time()
        context = report_context(result, None)
        REPORTS["json"](context)
        found["drafts and findings.json (client)"] = time.process_time() - started
    found["pieces"], found["units"] = len(pieces), len(units)
    return found


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of each engine")
    parser.add_argument("--memory-limit", default="1G", help="orchscan's --memory-limit")
    parser.add_argument("--worker-memory", default="2GB", help="each dask worker's --memory-limit")
    parser.add_argument("--runs", default="local,dask,dask-local", help="comma-separated runs")
    parser.add_argument("--repeat", type=int, default=1, help="run each this often, in turns")
    parser.add_argument("--costs", action="store_true", help="per-stage CPU and bytes, in-process")
    parser.add_argument("--unit-spans", type=int, default=250_000, help="units of --costs")
    parser.add_argument("--piece-mb", type=int, default=64, help="input pieces of --costs")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from landscape import FILE_VERSION, write_otlp

    DATA.mkdir(exist_ok=True)
    path = DATA / f"landscape-{args.spans}-{FILE_VERSION}.binpb"
    if not path.exists():
        started = time.perf_counter()
        written = write_otlp(path, args.spans)
        print(f"wrote {written:,} spans in {time.perf_counter() - started:.0f} s")
    size = path.stat().st_size / MB
    print(f"{path.relative_to(ROOT)}: {size:.0f} MB, {args.workers} workers, {os.cpu_count()} cores")
    if args.costs:
        sys.path.insert(0, str(ROOT))
        found = costs(path, args.unit_spans, args.piece_mb * MB)
        per = 1e6 / args.spans
        pieces, units = found.pop("pieces"), found.pop("units")
        print(f"{pieces:.0f} pieces, {units:.0f} units of <= {args.unit_spans:,} spans")
        for stage, value in found.items():
            unit = "MB" if stage.endswith("MB") else "CPU s"
            print(f"  {stage.removesuffix(' MB'):42} {value * per:9.2f} {unit} per 1M spans")
        return
    print(f"{'run':12} {'seconds':>8} {'client peak':>11} {'tree peak':>9}  worker peaks")
    findings: dict[str, str] = {}
    for _ in range(args.repeat):
        for kind in args.runs.split(","):
            with tempfile.TemporaryDirectory(prefix="orchscan-bench-") as tmp:
                run = measure(kind, path, args, Path(tmp))
                findings[kind] = (Path(tmp) / kind / "findings.json").read_text()
            workers = ", ".join(f"{peak:.0f}" for peak in run.worker_peaks_mb)
            peaks = f"{run.client_peak_mb:9.0f}MB {run.tree_peak_mb:7.0f}MB"
            print(f"{run.label:12} {run.seconds:8.1f} {peaks}  {workers}", flush=True)
            if run.tasks:
                print("\n".join(stages(run, args.spans)), flush=True)
    same = len(set(findings.values())) == 1
    print("findings.json identical across runs" if same else "findings.json DIFFER between runs")


if __name__ == "__main__":
    main()
