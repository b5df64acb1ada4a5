"""The local engine: reduce units of whole traces in worker processes, keep their heavy records there.

The map-reduce of a scan, on one machine. Worker processes are forked once the input is routed
into partitions, so partitions held in memory reach them without being copied or pickled.
Each unit of partitions is reduced where a free worker takes it; only its small partials come
back. The heavy records (every request with its marked calls) stay with the worker that made
them, on disk once the worker holds more than its share of the memory budget, until the
landscape's selection asks for the part it needs: that part is all that crosses to the parent.

With one job everything runs in this process, through the same functions.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from pathlib import Path

import pandas as pd

from orchscan.analyzer.reduction import PartitionHeavy, SelectedRecords, Selection, select_records
from orchscan.collectors.memory_pool import release_freed_memory
from orchscan.collectors.traces.partition import Partition
from orchscan.collectors.traces.worker_signals import signals_blocked, take_default_actions
from orchscan.engines.units import ReduceTask, ResultsInBlocks, UnitResult, UnitsHandover, reduce_unit


class _Held:
    """Heavy records a worker keeps until the selection: in memory up to a byte budget, then on disk."""

    def __init__(self, budget: int, work_dir: Path) -> None:
        self._budget = budget
        self._work_dir = work_dir
        self._memory: dict[int, PartitionHeavy] = {}
        self._files: dict[int, Path] = {}
        self._bytes = 0

    def keep(self, index: int, heavy: PartitionHeavy) -> None:
        size = _size(heavy)
        if self._bytes + size <= self._budget:
            self._memory[index] = heavy
            self._bytes += size
            return
        handle, name = tempfile.mkstemp(prefix=f"heavy-{index:05d}-", suffix=".pickle", dir=self._work_dir)
        with os.fdopen(handle, "wb") as out:
            pickle.dump(heavy, out, protocol=pickle.HIGHEST_PROTOCOL)
        self._files[index] = Path(name)

    def selected(self, selection: Selection) -> Iterator[tuple[int, SelectedRecords]]:
        for index, heavy in self._memory.items():
            yield index, select_records(heavy, selection)
        for index, path in self._files.items():
            with path.open("rb") as stream:
                heavy = pickle.load(stream)
            path.unlink()
            yield index, select_records(heavy, selection)


def _size(heavy: PartitionHeavy) -> int:
    """Bytes the heavy records hold, text included: counting only the pointers of text columns
    (``deep=False``) took a tenth of their size, and a worker held gigabytes it meant to spill."""
    frames = [
        value
        for part in (heavy.steps, heavy.context, heavy.chains)
        for value in vars(part).values()
        if isinstance(value, pd.DataFrame)
    ]
    return sum(int(frame.memory_usage(deep=True).sum()) for frame in frames)


Progress = Callable[[int], None]
#: A worker process and the parent's end of its pipe.
Worker = tuple[multiprocessing.process.BaseProcess, Connection]


class LocalEngine:
    """Reduces units in ``jobs`` processes (see the module docstring)."""

    def __init__(self, units: UnitsHandover, task: ReduceTask, *, jobs: int) -> None:
        self._units: list[tuple[Partition, ...]] = units.take()
        self._count = units.count
        self._task = task
        self._jobs = max(1, min(jobs, self._count))
        self._held = _Held(task.heavy_bytes, task.work_dir)
        self._workers: list[Worker] = []
        self._owner: dict[int, int] = {}

    def reduce(self, on_progress: Progress | None = None) -> list[UnitResult]:
        """Every unit's partials in unit order, merged in blocks as they arrive (see
        :class:`ResultsInBlocks`); the heavy records stay behind."""
        results = ResultsInBlocks(self._count)
        if self._jobs == 1:
            for index in range(self._count):
                unit, self._units[index] = self._units[index], ()
                result, heavy = reduce_unit(index, unit, self._task)
                del unit
                release_freed_memory()
                self._held.keep(index, heavy)
                results.add(index, result)
                if on_progress is not None:
                    on_progress(1)
            return results.results()
        # Workers are forked with every page the parent holds resident, freed ones included.
        release_freed_memory()
        self._start()
        # The forked workers hold their own copies of the routed spans.
        self._units.clear()
        release_freed_memory()
        pending = list(range(self._count))
        busy: dict[int, int] = {}
        for worker in range(len(self._workers)):
            self._send(worker, pending, busy)
        while busy:
            worker, message = self._receive(busy)
            index = busy.pop(worker)
            self._owner[index] = worker
            # The worker takes its next unit before the parent merges a block of partials, which
            # at 10M spans takes seconds the worker would otherwise wait.
            self._send(worker, pending, busy)
            results.add(index, message)
            if on_progress is not None:
                on_progress(1)
        return results.results()

    def select(self, selection: Selection) -> list[SelectedRecords]:
        """What every unit's heavy records hold of the selection, in unit order."""
        selected: dict[int, SelectedRecords] = dict(self._held.selected(selection))
        # Every worker marks its records at once; answers are read as they come.
        for worker in range(len(self._workers)):
            _tell(worker, self._workers, ("select", selection))
        waiting = set(range(len(self._workers)))
        while waiting:
            ready = multiprocessing.connection.wait([self._workers[w][1] for w in waiting])
            for worker in [w for w in waiting if self._workers[w][1] in ready]:
                waiting.discard(worker)
                selected.update(_answer(worker, self._workers))
        return [selected[i] for i in range(self._count)]

    def close(self) -> None:
        """Stop the workers (also after an error)."""
        for process, connection in self._workers:
            if process.is_alive():
                with suppress(OSError):
                    connection.send(("stop", None))
            connection.close()
        for process, _ in self._workers:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        self._workers.clear()

    def _start(self) -> None:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        per_worker = _Held(self._task.heavy_bytes // self._jobs, self._task.work_dir)
        for _ in range(self._jobs):
            parent, child = context.Pipe()
            process = context.Process(  # type: ignore[attr-defined]
                target=_work, args=(child, self._units, self._task, per_worker), daemon=True
            )
            with signals_blocked():
                process.start()
            child.close()
            self._workers.append((process, parent))

    def _send(self, worker: int, pending: list[int], busy: dict[int, int]) -> None:
        if pending:
            index = pending.pop(0)
            _tell(worker, self._workers, ("reduce", index))
            busy[worker] = index

    def _receive(self, busy: dict[int, int]) -> tuple[int, UnitResult]:
        ready = multiprocessing.connection.wait([self._workers[w][1] for w in busy])
        for worker in busy:
            if self._workers[worker][1] in ready:
                (result,) = _answer(worker, self._workers)
                return worker, result
        raise RuntimeError("no worker answered")  # wait() returned only connections of busy workers


class WorkerError(RuntimeError):
    """A worker process failed; the message carries its traceback.

    ``signum`` is the signal that ended the worker, if one did: a signal to the whole process
    group ends the workers too, and the command reports that as the interruption it is.
    """

    def __init__(self, message: str, signum: int | None = None) -> None:
        super().__init__(message)
        self.signum = signum


def _tell(worker: int, workers: Sequence[Worker], message: tuple[str, object]) -> None:
    process, connection = workers[worker]
    try:
        connection.send(message)
    except OSError:
        raise _ended(worker, process) from None


def _answer(worker: int, workers: Sequence[Worker]) -> list:  # type: ignore[type-arg]
    process, connection = workers[worker]
    try:
        kind, payload = connection.recv()
    except (EOFError, OSError):
        raise _ended(worker, process) from None
    if kind == "error":
        raise WorkerError(f"worker {worker} failed:\n{payload}")
    return payload  # type: ignore[no-any-return]


def _ended(worker: int, process: multiprocessing.process.BaseProcess) -> WorkerError:
    """Why a worker's connection broke: the signal that ended it, if one did."""
    process.join(timeout=1)
    code = process.exitcode
    if code is not None and code < 0:
        return WorkerError(f"worker {worker} was ended by {signal.Signals(-code).name}", -code)
    return WorkerError(f"worker {worker} ended unexpectedly")


def _work(
    connection: Connection, units: Sequence[Sequence[Partition]], task: ReduceTask, held: _Held
) -> None:
    """A worker's loop: reduce the units it is sent, then answer the selection."""
    # Ctrl-C and SIGTERM end a worker quietly: the parent reports the interruption and stops the rest.
    take_default_actions()
    try:
        while True:
            kind, payload = connection.recv()
            if kind == "reduce":
                result, heavy = reduce_unit(payload, units[payload], task)
                held.keep(payload, heavy)
                connection.send(("ok", [result]))
            elif kind == "select":
                connection.send(("ok", list(held.selected(payload))))
            else:
                return
    except Exception:
        connection.send(("error", traceback.format_exc()))


@contextmanager
def local_engine(units: UnitsHandover, task: ReduceTask, *, jobs: int) -> Iterator[LocalEngine]:
    """A local engine whose workers are stopped when the block ends."""
    engine = LocalEngine(units, task, jobs=jobs)
    try:
        yield engine
    finally:
        engine.close()
