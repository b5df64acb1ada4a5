"""The scan's map and reduce over the inputs: read into partitions, reduce each, finish the landscape.

The straight line every scan follows, whatever the size of its input:

1. read the trace files (parsed in worker processes) and route their spans into partitions of
   whole traces, in memory or spilled to the work folder (:mod:`orchscan.collectors.traces.partition`);
2. bind the specs to the services seen while reading;
3. reduce each unit of partitions on its own, in the engine's workers;
4. merge the partials into the landscape (roles, edges, coverage, what to mine);
5. gather what each unit's heavy records hold of that selection, and finish the analysis.

Every stage stays within one memory budget (:class:`MemoryBudget`). The engine
(:data:`orchscan.engines.registry.ENGINES`) decides where steps 1 and 3 run: on this machine, or
on a Dask cluster whose workers read the inputs themselves (:mod:`orchscan.engines.dask`); the
landscape and the finished analysis are always this process's, through the same functions.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import pyarrow.compute as pc

from orchscan.analyzer.pipeline import (
    ScanResult,
    SpecContext,
    finish_analysis,
    merge_selected,
    mine_events,
    plan_landscape,
)
from orchscan.analyzer.thresholds import Thresholds
from orchscan.beside import beside
from orchscan.budget import MemoryBudget
from orchscan.collectors.arazzo import DocumentedWorkflow
from orchscan.collectors.memory_pool import release_freed_memory
from orchscan.collectors.model.records import IngestReport, Notice, Skipped, SourceReport
from orchscan.collectors.openapi.model import SpecSet
from orchscan.collectors.owners import OwnersFile
from orchscan.collectors.traces.accounting import file_reports, merge_tallies
from orchscan.collectors.traces.ingest import InputReader
from orchscan.collectors.traces.partition import Partitions, PartitionStore, partition_count
from orchscan.collectors.traces.sources import TraceSource
from orchscan.engines.dask.engine import dask_engine
from orchscan.engines.dask.inputs import is_url
from orchscan.engines.local import local_engine
from orchscan.engines.registry import ENGINES, LIVE_ON_DASK, EngineError
from orchscan.engines.units import Engine, ReduceTask, UnitResult, UnitsHandover
from orchscan.reading import scan_reader
from orchscan.records import (
    RecordsEngine,
    RecordsFolder,
    RecordsManifest,
    check_thresholds,
    reduction_thresholds,
    write_manifest,
    write_unit,
)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ReadAccount:
    """What was read: the input files (paths as given, or URLs), each input's detected format,
    what could not be used, what the readers repaired, and what was fetched from each live source."""

    files: tuple[str, ...]
    formats: Mapping[str, str]
    skipped: tuple[Skipped, ...]
    notices: tuple[Notice, ...] = ()
    sources: tuple[SourceReport, ...] = ()

    @property
    def inputs(self) -> list[str]:
        """Every input as the reports name it: the files' paths, then the live sources."""
        return [*self.files, *(source.source for source in self.sources)]


def read_partitioned(
    reader: InputReader, *, budget: MemoryBudget, work_dir: Path
) -> tuple[ReadAccount, Partitions, tuple[str, ...]]:
    """Read every input of ``reader`` (see :func:`orchscan.reading.scan_reader`) into partitions of
    whole traces; also the service and peer names seen."""
    size = sum(_estimated_bytes(path) for path in reader.files)
    size += sum(live.estimated_bytes() for live in reader.sources)
    store = PartitionStore(
        partition_count(size, budget.unit_spans), spill_bytes=budget.route_buffer_bytes, work_dir=work_dir
    )
    names: set[str] = set()
    for batch in reader.batches():
        store.add(batch)
        for column in ("service", "peer_service"):
            names.update(pc.unique(batch.column(column)).drop_null().to_pylist())
    partitions = store.finish()
    if partitions.spans == 0:
        raise reader.nothing_read()
    account = ReadAccount(
        tuple(path.as_posix() for path in reader.files),
        dict(reader.formats),
        tuple(reader.skipped),
        tuple(reader.notices),
        reader.source_reports(),
    )
    return account, partitions, tuple(sorted(names))


#: Gzip inputs are estimated at this many times their size (typical for trace exports).
_GZIP_RATIO = 8


def _estimated_bytes(path: Path) -> int:
    """The input's size, uncompressed as far as a quick look tells."""
    try:
        size = path.stat().st_size
        with path.open("rb") as stream:
            gzip = stream.read(2) == b"\x1f\x8b"
    except OSError:
        return 0
    return size * _GZIP_RATIO if gzip else size


def run_analysis(
    account: ReadAccount,
    units: UnitsHandover,
    services: Sequence[str],
    *,
    specs: SpecSet | None,
    service_map: Mapping[str, str] | None,
    workflows: Sequence[DocumentedWorkflow],
    thresholds: Thresholds,
    budget: MemoryBudget,
    work_dir: Path,
    keep_records: Path | None = None,
    on_progress: Progress | None = None,
    owners_file: OwnersFile | None = None,
) -> ScanResult:
    """Reduce the units of partitions in the local engine and finish the landscape.

    With ``keep_records`` every unit is also written there as records (see :mod:`orchscan.records`).
    """
    return _finish_with_engine(
        account,
        services,
        lambda task: local_engine(units, task, jobs=budget.jobs),
        units=units.count,
        specs=specs,
        service_map=service_map,
        workflows=workflows,
        thresholds=thresholds,
        keep_records=keep_records,
        heavy_bytes=budget.heavy_bytes,
        work_dir=work_dir,
        on_progress=on_progress,
        owners_file=owners_file,
        mined_requests=budget.mined_requests,
        jobs=budget.jobs,
    )


def _write_manifest(
    folder: Path, units: int, services: Sequence[str], account: ReadAccount, thresholds: Thresholds
) -> None:
    """The manifest of records kept by a scan (``--keep-records``), once every unit is written."""
    write_manifest(
        folder,
        RecordsManifest(
            units=units,
            services=tuple(services),
            files=account.files,
            formats=account.formats,
            skipped=account.skipped,
            notices=account.notices,
            thresholds=reduction_thresholds(thresholds),
        ),
    )


def finish_landscape(
    engine: Engine,
    account: ReadAccount,
    context: SpecContext,
    *,
    workflows: Sequence[DocumentedWorkflow],
    thresholds: Thresholds,
    on_progress: Progress | None = None,
    owners_file: OwnersFile | None = None,
    mined_requests: int | None = None,
    jobs: int = 1,
) -> ScanResult:
    """Reduce in ``engine``, plan the landscape, gather the selection and finish the analysis;
    flows are mined from at most ``mined_requests`` requests (see :class:`MemoryBudget`). With
    ``jobs`` above one, event-driven flows are mined in a child process beside the rest."""
    results = engine.reduce(on_progress)
    landscape = plan_landscape(
        [r.light for r in results],
        specs=context,
        thresholds=thresholds,
        owners_file=owners_file,
        mined_requests=mined_requests,
    )
    # The units' parts are freed once merged; the mining that follows must not peak on top of them.
    selected = merge_selected(engine.select(landscape.selection), landscape, thresholds=thresholds)
    release_freed_memory()
    with beside(partial(mine_events, landscape, selected, thresholds=thresholds), jobs=jobs) as events:
        return finish_analysis(
            landscape,
            selected,
            _report(account, results),
            specs=context,
            workflows=workflows,
            thresholds=thresholds,
            events=events.result,
        )


def scan_records(
    folder: Path,
    *,
    specs: SpecSet | None,
    service_map: Mapping[str, str] | None,
    workflows: Sequence[DocumentedWorkflow],
    thresholds: Thresholds,
    on_progress: Progress | None = None,
    owners_file: OwnersFile | None = None,
    mined_requests: int | None = None,
    jobs: int = 1,
) -> ScanResult:
    """The analysis from stored records alone (``scan --records``), without reading spans; flows
    are mined from at most ``mined_requests`` requests, in ``jobs`` processes (see
    :func:`finish_landscape`)."""
    records = RecordsFolder(folder)
    check_thresholds(records.manifest, thresholds)
    manifest = records.manifest
    account = ReadAccount(tuple(manifest.files), manifest.formats, manifest.skipped, manifest.notices)
    context = SpecContext.of(specs, manifest.services, service_map)
    return finish_landscape(
        RecordsEngine(records),
        account,
        context,
        workflows=workflows,
        thresholds=thresholds,
        on_progress=on_progress,
        owners_file=owners_file,
        mined_requests=mined_requests,
        jobs=jobs,
    )


def _report(account: ReadAccount, results: Sequence[UnitResult]) -> IngestReport:
    """The account of the whole read: per file, what was skipped and noticed, and the totals."""
    tallies = merge_tallies(r.tallies for r in results)
    services = set().union(*(t.services for t in tallies.values())) if tallies else set()
    return IngestReport(
        files=file_reports(tallies, account.inputs, account.formats),
        skipped=_folded_skipped([*account.skipped, *(s for r in results for s in r.skipped)]),
        notices=_folded_notices([*account.notices, *(n for r in results for n in r.notices)]),
        spans=sum(t.spans for t in tallies.values()),
        traces=sum(r.traces for r in results),
        services=len(services),
        sources=account.sources,
    )


def _folded_skipped(records: Iterable[Skipped]) -> tuple[Skipped, ...]:
    """Records of the same file, position and reason from several units, as one with their count."""
    counts: dict[tuple[str, str, str], int] = {}
    for record in records:
        key = (record.file, record.position, record.reason)
        counts[key] = counts.get(key, 0) + record.count
    return tuple(Skipped(*key, count) for key, count in sorted(counts.items()))


def _folded_notices(records: Iterable[Notice]) -> tuple[Notice, ...]:
    """Notices of the same file and reason from several units, as one with their count."""
    counts: dict[tuple[str, str], int] = {}
    for record in records:
        counts[(record.file, record.reason)] = counts.get((record.file, record.reason), 0) + record.count
    return tuple(Notice(*key, count) for key, count in sorted(counts.items()))


@contextmanager
def work_folder(parent: str | None) -> Iterator[Path]:
    """A fresh folder for spilled partitions and records, removed when the scan ends.

    Inside ``parent`` (``--work-dir``) when given, else in the system's temporary folder.
    """
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="orchscan-", dir=parent) as folder:
        yield Path(folder)


def scan_traces(
    paths: Iterable[str],
    *,
    sources: Sequence[TraceSource] = (),
    fmt: str | None,
    budget: MemoryBudget,
    work_dir: str | None,
    specs: SpecSet | None,
    service_map: Mapping[str, str] | None,
    workflows: Sequence[DocumentedWorkflow],
    thresholds: Thresholds,
    keep_records: Path | None = None,
    progress: ScanProgress | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    owners_file: OwnersFile | None = None,
    reader: InputReader | None = None,
) -> ScanResult:
    """The whole analysis of the files at ``paths`` and the live ``sources`` on ``engine`` (see the
    module docstring); with ``keep_records``, every reduced unit is kept there as records.
    ``scheduler`` is the Dask scheduler's address for the dask engine (None: a local cluster).
    ``reader`` is the :func:`orchscan.reading.scan_reader` of those inputs when the caller opened
    it already (to give its workers a head start); local engine only."""
    paths = tuple(paths)
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if engine == "dask":
        if sources:
            raise EngineError(LIVE_ON_DASK.format(source=sources[0].name))
        finish = partial(
            _finish_with_engine,
            specs=specs,
            service_map=service_map,
            workflows=workflows,
            thresholds=thresholds,
            keep_records=keep_records,
            owners_file=owners_file,
            mined_requests=budget.mined_requests,
            jobs=budget.jobs,
        )
        return _scan_on_dask(paths, fmt, budget, work_dir, scheduler, finish, progress)
    urls = [path for path in paths if is_url(path)]
    if urls:
        raise EngineError(f"{urls[0]}: inputs at URLs are read by the workers of --engine dask")
    if reader is None:
        reader = scan_reader(
            paths, sources=sources, fmt=fmt, jobs=budget.jobs, on_progress=progress.read if progress else None
        )
    with work_folder(work_dir) as folder, reader:
        account, partitions, services = read_partitioned(reader, budget=budget, work_dir=folder)
        units = UnitsHandover(partitions.units(budget.unit_spans, budget.jobs))
        del partitions  # the engine frees the routed spans once it no longer needs them
        if progress is not None:
            progress.reduce_start(units.count)
        return run_analysis(
            account,
            units,
            services,
            specs=specs,
            service_map=service_map,
            workflows=workflows,
            thresholds=thresholds,
            budget=budget,
            work_dir=folder,
            keep_records=keep_records,
            on_progress=progress.reduced if progress else None,
            owners_file=owners_file,
        )


def _scan_on_dask(
    paths: Sequence[str],
    fmt: str | None,
    budget: MemoryBudget,
    work_dir: str | None,
    scheduler: str | None,
    finish: Callable[..., ScanResult],
    progress: ScanProgress | None,
) -> ScanResult:
    """The scan with its map side on a Dask cluster: the workers read, shuffle and reduce.

    ``finish`` is :func:`_finish_with_engine` with the scan's specs and thresholds. The budget holds
    for each worker: units and read tasks are sized from the smaller of ``--memory-limit`` and the
    smallest worker's own memory limit, shared by its threads; a local cluster's workers get
    ``--memory-limit`` each (every one holds its own interpreter, nothing is shared by forking).
    The shuffle files go below ``--work-dir`` when it is a URL, else to the local work folder
    (which workers on other machines must share).
    """
    remote = work_dir if work_dir and is_url(work_dir) else None
    with (
        work_folder(None if remote else work_dir) as folder,
        dask_engine(
            scheduler,
            workers=budget.jobs,
            memory_limit=budget.limit,
            scratch=str(folder),
            shared=remote or str(folder),
        ) as engine,
    ):
        workers = engine.workers
        worker = MemoryBudget(min(budget.limit, workers.memory or budget.limit), workers.threads)
        shuffled = engine.read(
            paths,
            fmt=fmt,
            unit_spans=worker.unit_spans,
            task_bytes=worker.input_bytes // workers.threads,
            on_progress=progress.read if progress else None,
        )
        if progress is not None:
            progress.reduce_start(len(shuffled.units))
        account = ReadAccount(shuffled.inputs, shuffled.formats, shuffled.skipped, shuffled.notices)
        result: ScanResult = finish(
            account,
            shuffled.services,
            partial(engine.units, shuffled),
            units=len(shuffled.units),
            heavy_bytes=worker.heavy_bytes,
            work_dir=folder,
            on_progress=progress.reduced if progress else None,
        )
        return result


def _finish_with_engine(
    account: ReadAccount,
    services: Sequence[str],
    open_units: Callable[[ReduceTask], AbstractContextManager[Engine]],
    *,
    units: int,
    specs: SpecSet | None,
    service_map: Mapping[str, str] | None,
    workflows: Sequence[DocumentedWorkflow],
    thresholds: Thresholds,
    keep_records: Path | None,
    heavy_bytes: int,
    work_dir: Path,
    on_progress: Progress | None,
    owners_file: OwnersFile | None = None,
    mined_requests: int | None = None,
    jobs: int = 1,
) -> ScanResult:
    """Bind the specs, reduce the units in the engine ``open_units`` opens and finish the landscape
    in ``jobs`` processes; with ``keep_records`` (on a cluster, a folder every worker sees) every
    unit is kept there."""
    context = SpecContext.of(specs, services, service_map)
    keep = partial(write_unit, keep_records) if keep_records is not None else None
    task = ReduceTask(context.operations, thresholds, heavy_bytes, work_dir, keep)
    with open_units(task) as engine:
        result = finish_landscape(
            engine,
            account,
            context,
            workflows=workflows,
            thresholds=thresholds,
            on_progress=on_progress,
            owners_file=owners_file,
            mined_requests=mined_requests,
            jobs=jobs,
        )
    if keep_records is not None:
        _write_manifest(keep_records, units, services, account, thresholds)
    return result


class ScanProgress(Protocol):
    """Where a long scan reports how far it got."""

    def read(self, size: int) -> None:
        """``size`` more bytes of input were read."""

    def reduce_start(self, units: int) -> None:
        """Reading is done; ``units`` units are to be reduced."""

    def reduced(self, units: int) -> None:
        """``units`` more units were reduced."""
