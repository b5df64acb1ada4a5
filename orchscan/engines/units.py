"""One unit of partitions, reduced: the function every engine runs per unit, and what it sends back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orchscan.analyzer.reduction import (
    PartitionHeavy,
    PartitionLight,
    SelectedRecords,
    Selection,
    reduce_partition,
)
from orchscan.analyzer.thresholds import Thresholds
from orchscan.collectors.model.records import Notice, Skipped
from orchscan.collectors.model.spans import total_traces
from orchscan.collectors.openapi.model import Operation
from orchscan.collectors.traces.accounting import FileTally, merge_tallies
from orchscan.collectors.traces.ingest import check_spans
from orchscan.collectors.traces.partition import Partition, load_unit


@dataclass(frozen=True)
class UnitResult:
    """What one reduced unit sends back: its partials and the account of its span checks."""

    light: PartitionLight
    skipped: tuple[Skipped, ...]
    notices: tuple[Notice, ...]
    tallies: dict[str, FileTally]
    traces: int


#: Units' partials are merged in blocks of this many consecutive units as soon as a block is
#: complete (see :class:`ResultsInBlocks`).
FOLD_BLOCK = 8


def fold_results(results: Sequence[UnitResult]) -> UnitResult:
    """Several units' partials and accounts as one (see :meth:`PartitionLight.merge`)."""
    return UnitResult(
        light=PartitionLight.merge([result.light for result in results]),
        skipped=tuple(skipped for result in results for skipped in result.skipped),
        notices=tuple(notice for result in results for notice in result.notices),
        tallies=merge_tallies(result.tallies for result in results),
        traces=sum(result.traces for result in results),
    )


class ResultsInBlocks:
    """Units' results as they arrive, merged level by level: each complete block of
    :data:`FOLD_BLOCK` consecutive units into one, each complete block of :data:`FOLD_BLOCK`
    such blocks into one again, and so on (blocks above the first level only where the scan has
    that many units). A scan holds a few partials per level, not one per unit or per block: the
    70 units of a 10M-span scan held 740 MB of partials before they were merged in blocks, and a
    scan of 1,280 units would have held 160 blocks (on the benchmark landscape, 9 MB each,
    pickled). Blocks are merged in unit order, whatever order the units finish in.
    """

    def __init__(self, units: int) -> None:
        self._units = units
        #: (level, first unit) -> the merged result of FOLD_BLOCK ** level units from there.
        self._held: dict[tuple[int, int], UnitResult] = {}

    def add(self, index: int, result: UnitResult) -> None:
        """Unit ``index``'s result; merges every block it completes."""
        level, first = 0, index
        self._held[(level, first)] = result
        while level == 0 or FOLD_BLOCK ** (level + 1) <= self._units:
            size = FOLD_BLOCK ** (level + 1)
            start = first - first % size
            members = [
                (level, member) for member in range(start, min(start + size, self._units), size // FOLD_BLOCK)
            ]
            if not all(member in self._held for member in members):
                return
            level, first = level + 1, start
            self._held[(level, first)] = fold_results([self._held.pop(member) for member in members])

    def results(self) -> list[UnitResult]:
        """Merged blocks and the units of incomplete blocks, in unit order."""
        return [self._held[key] for key in sorted(self._held, key=lambda key: key[1])]


#: Called with each reduced unit's index, partials and heavy records (to keep them as records).
UnitSink = Callable[[int, UnitResult, PartitionHeavy], None]


@dataclass(frozen=True)
class ReduceTask:
    """Everything a worker needs besides the units: fixed for the whole scan.

    ``heavy_bytes`` is how much heavy records the engine's workers keep in memory in all before
    they spill; ``keep``, when set, receives every reduced unit where it was reduced.
    """

    operations: Mapping[str, Sequence[Operation]]
    thresholds: Thresholds
    heavy_bytes: int
    work_dir: Path
    keep: UnitSink | None = None


class UnitsHandover:
    """Units of partitions handed to an engine once.

    The engine that takes them holds the only reference, so the routed spans they keep in memory
    are freed as soon as it lets go of them: each unit once reduced in this process, all of them
    once forked workers hold their own copies. The scan's peak is then the landscape's, not the
    landscape's on top of every routed span.
    """

    def __init__(self, units: list[tuple[Partition, ...]]) -> None:
        self._units: list[tuple[Partition, ...]] | None = units
        self.count = len(units)

    def take(self) -> list[tuple[Partition, ...]]:
        """The units; a second take is an error."""
        if self._units is None:
            raise RuntimeError("the units were handed over already")
        units, self._units = self._units, None
        return units


class Engine(Protocol):
    """Reduces units somewhere, keeps their heavy records, and answers the landscape's selection."""

    def reduce(self, on_progress: Callable[[int], None] | None = None) -> list[UnitResult]:
        """Every unit's partials in unit order, consecutive units' possibly merged (see
        :class:`ResultsInBlocks`); the heavy records stay with the engine."""

    def select(self, selection: Selection) -> list[SelectedRecords]:
        """What every unit's heavy records hold of the selection, in unit order. Asked once: the
        engine lets go of the heavy records (and of workers it started) once it has answered."""


def reduce_unit(index: int, unit: Sequence[Partition], task: ReduceTask) -> tuple[UnitResult, PartitionHeavy]:
    """Load one unit, check its spans and reduce it: the function every engine runs per unit."""
    spans, stubs = load_unit(unit)
    checked = check_spans(spans)
    del spans
    light, heavy = reduce_partition(
        checked.table,
        stubs,
        operations=task.operations,
        thresholds=task.thresholds,
        parents=checked.parents,
    )
    result = UnitResult(light, checked.skipped, checked.notices, checked.tallies, total_traces(checked.table))
    if task.keep is not None:
        task.keep(index, result, heavy)
    return result, heavy
