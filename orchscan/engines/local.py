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
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pyarrow as pa

from orchscan.analyzer.reduction import PartitionHeavy, SelectedRecords, Selection, select_records
from orchscan.collectors.memory_pool import release_freed_memory
from orchscan.collectors.side_threads import run_inline
from orchscan.collectors.traces.partition import Partition
from orchscan.collectors.traces.worker_signals import signals_blocked, take_default_actions
from orchscan.engines.units import ReduceTask, ResultsInBlocks, UnitResult, UnitsHandover, reduce_unit

#: How held heavy records are compressed when they go to disk (LZ4: a third of the pickle's
#: size, in about a millisecond per megabyte each way).
_CODEC = "lz4"

#: Units each worker has been sent and not yet answered. With one, a worker that answered
#: waited for the parent to read its partials and send the next unit, which at 10M spans, with
#: the parent merging blocks of partials, came to 2 s of each worker's 25. With two, the next
#: unit is waiting in its pipe; a worker is at most one unit ahead of the other at the end.
UNITS_IN_FLIGHT = 2


class _Held:
    """Heavy records a worker keeps until the selection, packed: pickled in memory up to a byte
    budget, then compressed on disk.

    Packed before the next unit is reduced rather than kept as frames: the packed bytes are
    counted exactly and go back to the system when freed, while live frames, made among each
    unit's temporaries, kept the heap from shrinking. Four units of 72,000 spans held 130 MB
    resident as frames, for 56 MB of pickles (18 MB compressed). The last unit's records are
    never packed: the selection comes next and reads them as they are (packing and unpacking
    nine units of a million spans cost the two workers 0.7 s of CPU).
    """

    def __init__(self, budget: int, work_dir: Path) -> None:
        self._budget = budget
        self._work_dir = work_dir
        self._live: tuple[int, PartitionHeavy] | None = None
        self._unpacked: list[tuple[int, PartitionHeavy, int]] = []
        #: Pickles in memory; files of compressed pickles, with each pickle's size.
        self._memory: dict[int, bytes] = {}
        self._files: dict[int, tuple[Path, int]] = {}
        #: Bytes held in memory: pickles, and unpacked records counted by their pickle's size.
        self._bytes = 0

    def keep(self, index: int, heavy: PartitionHeavy) -> None:
        """Hold a unit's records as they are, until another unit is reduced (see :meth:`pack`)."""
        self.pack()
        self._live = (index, heavy)

    def pack(self) -> None:
        """Pack the records held as they are: another unit is about to be reduced beside them."""
        if self._live is None:
            return
        index, heavy = self._live
        self._live = None
        pickled = pickle.dumps(heavy, protocol=pickle.HIGHEST_PROTOCOL)
        del heavy
        # In memory as pickled while the budget holds it: compressing took each worker 80 ms
        # of the reduction at 1M spans, to be undone before the selection.
        if self._bytes + len(pickled) <= self._budget:
            self._memory[index] = pickled
            self._bytes += len(pickled)
            return
        handle, name = tempfile.mkstemp(
            prefix=f"heavy-{index:05d}-", suffix=".pickle.lz4", dir=self._work_dir
        )
        with os.fdopen(handle, "wb") as out:
            out.write(pa.compress(pickled, codec=_CODEC, asbytes=True))
        self._files[index] = (Path(name), len(pickled))

    def unpack_ahead(self) -> None:
        """Unpack the records held in memory (as many bytes unpacked as pickled).

        Done once every unit is reduced: the workers would otherwise wait idle while the
        landscape is planned (0.2 s at 1M spans) and unpack once the selection comes (0.13 s
        of each worker's time).
        """
        while self._memory:
            index, pickled = self._memory.popitem()
            self._unpacked.append((index, _unpickled(pickled), len(pickled)))

    def selected(self, selection: Selection) -> Iterator[tuple[int, SelectedRecords]]:
        """What each unit's records hold of the selection; each unit's records are let go once
        selected from, so the landscape's mining does not peak on top of them."""
        if self._live is not None:
            (index, heavy), self._live = self._live, None
            yield index, select_records(heavy, selection)
            del heavy
        while self._unpacked:
            index, heavy, size = self._unpacked.pop()
            self._bytes -= size
            yield index, select_records(heavy, selection)
            del heavy
        while self._memory:
            index, pickled = self._memory.popitem()
            self._bytes -= len(pickled)
            yield index, select_records(_unpickled(pickled), selection)
        while self._files:
            index, (path, size) = self._files.popitem()
            pickled = pa.decompress(path.read_bytes(), decompressed_size=size, codec=_CODEC, asbytes=True)
            path.unlink()
            yield index, select_records(_unpickled(pickled), selection)


def _unpickled(pickled: bytes) -> PartitionHeavy:
    heavy: PartitionHeavy = pickle.loads(pickled)
    return heavy


Progress = Callable[[int], None]
#: A worker process and the parent's end of its pipe.
Worker = tuple[multiprocessing.process.BaseProcess, Connection]


class LocalEngine:
    """Reduces units in ``jobs`` processes (see the module docstring)."""

    def __init__(self, units: UnitsHandover, task: ReduceTask, *, jobs: int) -> None:
        self._units: list[tuple[Partition, ...]] = units.take()
        self._spilled = [path for unit in self._units for part in unit for path in part.files]
        self._remover: threading.Thread | None = None
        self._count = units.count
        self._task = task
        self._jobs = max(1, min(jobs, self._count))
        self._held = _Held(task.heavy_bytes, task.work_dir)
        self._workers: list[Worker] = []
        self._owner: dict[int, int] = {}
        self._unpacking: set[int] = set()

    def reduce(self, on_progress: Progress | None = None) -> list[UnitResult]:
        """Every unit's partials in unit order, merged in blocks as they arrive (see
        :class:`ResultsInBlocks`); the heavy records stay behind."""
        results = ResultsInBlocks(self._count)
        if self._jobs == 1:
            for index in range(self._count):
                unit, self._units[index] = self._units[index], ()
                self._held.pack()
                result, heavy = reduce_unit(index, unit, self._task)
                self._held.keep(index, heavy)
                del unit, heavy
                release_freed_memory()
                results.add(index, result)
                if on_progress is not None:
                    on_progress(1)
            self._remove_spilled()
            return results.results()
        # Workers are forked with every page the parent holds resident, freed ones included.
        release_freed_memory()
        self._start()
        # The forked workers hold their own copies of the routed spans.
        self._units.clear()
        release_freed_memory()
        pending = list(range(self._count))
        busy: dict[int, list[int]] = {worker: [] for worker in range(len(self._workers))}
        for _ in range(UNITS_IN_FLIGHT):
            for worker in busy:
                self._send(worker, pending, busy)
        while any(busy.values()):
            worker, message = self._receive(busy)
            index = busy[worker].pop(0)  # a worker reduces its units in the order it was sent them
            self._owner[index] = worker
            self._send(worker, pending, busy)
            results.add(index, message)
            if on_progress is not None:
                on_progress(1)
        self._remove_spilled()
        return results.results()

    def select(self, selection: Selection) -> list[SelectedRecords]:
        """What every unit's heavy records hold of the selection, in unit order.

        The selection is the engine's last task: each worker ends once it has answered, and
        the records are let go. Idle workers kept until the end of the scan held 420 MB each
        at 1M spans while the landscape mined its flows, a third of the scan's peak.
        """
        selected: dict[int, SelectedRecords] = dict(self._held.selected(selection))
        # Every worker marks its records at once and sends each unit's as soon as it is marked
        # (then an empty answer): a worker holding all of them, and their pickle, was the peak
        # of a 10M-span scan. Answers are read as they come.
        for worker in range(len(self._workers)):
            _tell(worker, self._workers, ("select", selection))
        waiting = set(range(len(self._workers)))
        while waiting:
            ready = multiprocessing.connection.wait([self._workers[w][1] for w in waiting])
            for worker in [w for w in waiting if self._workers[w][1] in ready]:
                answer = _answer(worker, self._workers)
                if not answer:
                    waiting.discard(worker)
                selected.update(answer)
        self.close()
        return [selected[i] for i in range(self._count)]

    def _remove_spilled(self) -> None:
        """Delete the spilled partitions, now reduced, beside the landscape's work.

        Deleting the files of 10M spans (1.4 GB) took the scan's last second when the work
        folder went; the landscape keeps one core busy and leaves the other idle meanwhile.
        """
        files, self._spilled = self._spilled, []
        if files:
            self._remover = threading.Thread(target=_unlink_all, args=(files,), daemon=True)
            self._remover.start()

    def close(self) -> None:
        """Stop the workers (also after an error) and wait for spilled partitions to be deleted."""
        if self._remover is not None:
            self._remover.join()
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
            # The worker closes the parent's ends it inherits, its own among them: holding one,
            # it would wait for a message forever once the parent is gone.
            parents = (*(connection for _, connection in self._workers), parent)
            process = context.Process(  # type: ignore[attr-defined]
                target=_work, args=(child, parents, self._units, self._task, per_worker), daemon=True
            )
            # A signal that comes while the worker starts is raised once it is recorded, so
            # that stopping the workers stops it too.
            with signals_blocked():
                process.start()
                child.close()
                self._workers.append((process, parent))

    def _send(self, worker: int, pending: list[int], busy: dict[int, list[int]]) -> None:
        if pending:
            index = pending.pop(0)
            _tell(worker, self._workers, ("reduce", index))
            busy[worker].append(index)
        elif worker not in self._unpacking:
            # No unit is left for it: once its own are reduced, the worker unpacks its records
            # while the others end and the landscape is planned (see _Held.unpack_ahead).
            _tell(worker, self._workers, ("unpack", None))
            self._unpacking.add(worker)

    def _receive(self, busy: dict[int, list[int]]) -> tuple[int, UnitResult]:
        working = [worker for worker, units in busy.items() if units]
        ready = multiprocessing.connection.wait([self._workers[w][1] for w in working])
        for worker in working:
            if self._workers[worker][1] in ready:
                (result,) = _answer(worker, self._workers)
                return worker, result
        raise RuntimeError("no worker answered")  # wait() returned only connections of busy workers


def _unlink_all(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


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
    connection: Connection,
    parents: Sequence[Connection],
    units: Sequence[Sequence[Partition]],
    task: ReduceTask,
    held: _Held,
) -> None:
    """A worker's loop: reduce the units it is sent, then answer the selection and end; end
    quietly too when the parent is gone (its connection closed)."""
    # Ctrl-C and SIGTERM end a worker quietly: the parent reports the interruption and stops the rest.
    take_default_actions()
    # One worker per core: side work in threads would only contend with the other workers.
    run_inline()
    for inherited in parents:
        inherited.close()
    try:
        kind, payload = _message(connection)
        while kind == "reduce":
            held.pack()
            result, heavy = reduce_unit(payload, units[payload], task)
            held.keep(payload, heavy)
            del heavy
            _reply(connection, ("ok", [result]))
            kind, payload = _message(connection)
        if kind == "unpack":
            held.unpack_ahead()
            kind, payload = _message(connection)
        if kind == "select":
            for selected in held.selected(payload):
                _reply(connection, ("ok", [selected]))
            _reply(connection, ("ok", []))
    except _ParentGone:
        return
    except Exception:
        with suppress(_ParentGone):
            _reply(connection, ("error", traceback.format_exc()))


class _ParentGone(Exception):
    """The parent closed its end (it was killed): nobody is left to answer."""


def _reply(connection: Connection, message: tuple[str, Any]) -> None:
    try:
        connection.send(message)
    except (BrokenPipeError, ConnectionResetError) as error:
        raise _ParentGone from error


def _message(connection: Connection) -> tuple[str, Any]:
    """The parent's next message; a connection the parent closed (it is gone) says "stop"."""
    try:
        kind, payload = connection.recv()
    except EOFError:
        return "stop", None
    return kind, payload


@contextmanager
def local_engine(units: UnitsHandover, task: ReduceTask, *, jobs: int) -> Iterator[LocalEngine]:
    """A local engine whose workers are stopped when the block ends."""
    engine = LocalEngine(units, task, jobs=jobs)
    try:
        yield engine
    finally:
        engine.close()
