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
from orchscan.collectors.traces.accounting import FileTally
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
        """Every unit's partials, in unit order; the heavy records stay with the engine."""

    def select(self, selection: Selection) -> list[SelectedRecords]:
        """What every unit's heavy records hold of the selection, in unit order."""


def reduce_unit(index: int, unit: Sequence[Partition], task: ReduceTask) -> tuple[UnitResult, PartitionHeavy]:
    """Load one unit, check its spans and reduce it: the function every engine runs per unit."""
    spans, stubs = load_unit(unit)
    checked = check_spans(spans)
    del spans
    light, heavy = reduce_partition(
        checked.table, stubs, operations=task.operations, thresholds=task.thresholds
    )
    result = UnitResult(light, checked.skipped, checked.notices, checked.tallies, total_traces(checked.table))
    if task.keep is not None:
        task.keep(index, result, heavy)
    return result, heavy
