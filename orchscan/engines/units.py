"""One unit of partitions, reduced: the function every engine runs per unit, and what it sends back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchscan.analyzer.reduction import PartitionHeavy, PartitionLight, reduce_partition
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


@dataclass(frozen=True)
class ReduceTask:
    """Everything a worker needs besides the units: fixed for the whole scan."""

    operations: Mapping[str, Sequence[Operation]]
    thresholds: Thresholds
    heavy_bytes: int
    work_dir: Path


def reduce_unit(unit: Sequence[Partition], task: ReduceTask) -> tuple[UnitResult, PartitionHeavy]:
    """Load one unit, check its spans and reduce it: the function every engine runs per unit."""
    spans, stubs = load_unit(unit)
    checked = check_spans(spans)
    del spans
    light, heavy = reduce_partition(
        checked.table, stubs, operations=task.operations, thresholds=task.thresholds
    )
    traces = total_traces(checked.table)
    return UnitResult(light, checked.skipped, checked.notices, checked.tallies, traces), heavy
