"""The scan's map and reduce over the inputs: read into partitions, reduce each, finish the landscape.

The straight line every scan follows, whatever the size of its input:

1. read the trace files (parsed in worker processes) and route their spans into partitions of
   whole traces, in memory or spilled to the work folder (:mod:`orchscan.collectors.traces.partition`);
2. bind the specs to the services seen while reading;
3. reduce each unit of partitions on its own, in the engine's workers;
4. merge the partials into the landscape (roles, edges, coverage, what to mine);
5. gather what each unit's heavy records hold of that selection, and finish the analysis.

Every stage stays within one memory budget (:class:`MemoryBudget`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import pyarrow.compute as pc

from orchscan.analyzer.pipeline import ScanResult, SpecContext, finish_analysis, plan_landscape
from orchscan.analyzer.thresholds import Thresholds
from orchscan.collectors.arazzo import DocumentedWorkflow
from orchscan.collectors.model.records import IngestReport, Notice, Skipped, SourceReport
from orchscan.collectors.openapi.model import SpecSet
from orchscan.collectors.traces.accounting import file_reports, merge_tallies
from orchscan.collectors.traces.ingest import InputReader
from orchscan.collectors.traces.partition import Partition, Partitions, PartitionStore, partition_count
from orchscan.collectors.traces.sources import TraceSource
from orchscan.engines.local import local_engine
from orchscan.engines.units import Engine, ReduceTask, UnitResult
from orchscan.records import (
    RecordsEngine,
    RecordsFolder,
    RecordsManifest,
    check_thresholds,
    reduction_thresholds,
    write_manifest,
    write_unit,
)

#: The default memory budget of a scan (``--memory-limit``).
DEFAULT_MEMORY_LIMIT = 1 << 30

#: Bytes of memory reducing one span takes at its peak (span table, call tables, marks and
#: partials together), measured on the benchmark landscapes; sizes the reduction units.
REDUCE_BYTES_PER_SPAN = 1500


#: Units are never smaller than this, whatever the budget: the fixed cost of a unit must not dominate.
MIN_UNIT_SPANS = 10_000


@dataclass(frozen=True)
class MemoryBudget:
    """How one memory limit is shared between the stages of a scan.

    Routed spans wait in memory up to ``input_bytes``, then spill to disk; each of ``jobs``
    workers reduces units of at most ``unit_spans`` spans; the heavy records workers keep
    between reduction and selection stay in memory up to ``heavy_bytes`` in all, then spill.
    """

    limit: int
    jobs: int

    @property
    def input_bytes(self) -> int:
        return self.limit * 3 // 10

    @property
    def unit_spans(self) -> int:
        return max(MIN_UNIT_SPANS, self.limit * 4 // 10 // self.jobs // REDUCE_BYTES_PER_SPAN)

    @property
    def heavy_bytes(self) -> int:
        return self.limit * 2 // 10


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``512M``, ``2G``, ``1.5GiB`` or a plain number of bytes."""
    found = _SIZE.match(text)
    if found is None:
        raise ValueError(f"not a size: {text!r} (examples: 512M, 2G, 1073741824)")
    number, unit = found.groups()
    return int(float(number) * 1024 ** "_kmgt".index(unit.lower() or "_"))


Progress = Callable[[int], None]


@dataclass(frozen=True)
class ReadAccount:
    """What was read: the input files, each input's detected format, what could not be used,
    what the readers repaired, and what was fetched from each live source."""

    files: tuple[Path, ...]
    formats: Mapping[str, str]
    skipped: tuple[Skipped, ...]
    notices: tuple[Notice, ...] = ()
    sources: tuple[SourceReport, ...] = ()

    @property
    def inputs(self) -> list[str]:
        """Every input as the reports name it: the files' paths, then the live sources."""
        return [path.as_posix() for path in self.files] + [source.source for source in self.sources]


def read_partitioned(
    paths: Iterable[str],
    *,
    sources: Sequence[TraceSource] = (),
    fmt: str | None,
    jobs: int,
    budget: MemoryBudget,
    work_dir: Path,
    on_progress: Progress | None = None,
) -> tuple[ReadAccount, Partitions, tuple[str, ...]]:
    """Read every input into partitions of whole traces; also the service and peer names seen."""
    reader = InputReader(paths, sources=sources, fmt=fmt, jobs=jobs, on_progress=on_progress)
    size = sum(_estimated_bytes(path) for path in reader.files)
    size += sum(live.estimated_bytes() for live in reader.sources)
    store = PartitionStore(
        partition_count(size, budget.unit_spans), spill_bytes=budget.input_bytes, work_dir=work_dir
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
        tuple(reader.files),
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
    units: Sequence[Sequence[Partition]],
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
) -> ScanResult:
    """Reduce the units of partitions in the local engine and finish the landscape.

    With ``keep_records`` every unit is also written there as records (see :mod:`orchscan.records`).
    """
    context = SpecContext.of(specs, services, service_map)
    keep = partial(write_unit, keep_records) if keep_records is not None else None
    task = ReduceTask(context.operations, thresholds, budget.heavy_bytes, work_dir, keep)
    with local_engine(units, task, jobs=budget.jobs) as engine:
        result = finish_landscape(
            engine, account, context, workflows=workflows, thresholds=thresholds, on_progress=on_progress
        )
    if keep_records is not None:
        write_manifest(
            keep_records,
            RecordsManifest(
                units=len(units),
                services=tuple(services),
                files=tuple(path.as_posix() for path in account.files),
                formats=account.formats,
                skipped=account.skipped,
                notices=account.notices,
                thresholds=reduction_thresholds(thresholds),
            ),
        )
    return result


def finish_landscape(
    engine: Engine,
    account: ReadAccount,
    context: SpecContext,
    *,
    workflows: Sequence[DocumentedWorkflow],
    thresholds: Thresholds,
    on_progress: Progress | None = None,
) -> ScanResult:
    """Reduce in ``engine``, plan the landscape, gather the selection and finish the analysis."""
    results = engine.reduce(on_progress)
    landscape = plan_landscape([r.light for r in results], specs=context, thresholds=thresholds)
    selected = engine.select(landscape.selection)
    return finish_analysis(
        landscape,
        selected,
        _report(account, results),
        specs=context,
        workflows=workflows,
        thresholds=thresholds,
    )


def scan_records(
    folder: Path,
    *,
    specs: SpecSet | None,
    service_map: Mapping[str, str] | None,
    workflows: Sequence[DocumentedWorkflow],
    thresholds: Thresholds,
    on_progress: Progress | None = None,
) -> ScanResult:
    """The analysis from stored records alone (``scan --records``), without reading spans."""
    records = RecordsFolder(folder)
    check_thresholds(records.manifest, thresholds)
    manifest = records.manifest
    account = ReadAccount(
        tuple(Path(file) for file in manifest.files), manifest.formats, manifest.skipped, manifest.notices
    )
    context = SpecContext.of(specs, manifest.services, service_map)
    return finish_landscape(
        RecordsEngine(records),
        account,
        context,
        workflows=workflows,
        thresholds=thresholds,
        on_progress=on_progress,
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
) -> ScanResult:
    """The whole analysis of the files at ``paths`` and the live ``sources`` (see the module
    docstring); with ``keep_records``, every reduced unit is kept there as records."""
    with work_folder(work_dir) as folder:
        account, partitions, services = read_partitioned(
            paths,
            sources=sources,
            fmt=fmt,
            jobs=budget.jobs,
            budget=budget,
            work_dir=folder,
            on_progress=progress.read if progress else None,
        )
        units = partitions.units(budget.unit_spans)
        if progress is not None:
            progress.reduce_start(len(units))
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
        )


class ScanProgress(Protocol):
    """Where a long scan reports how far it got."""

    def read(self, size: int) -> None:
        """``size`` more bytes of input were read."""

    def reduce_start(self, units: int) -> None:
        """Reading is done; ``units`` units are to be reduced."""

    def reduced(self, units: int) -> None:
        """``units`` more units were reduced."""
