"""What Dask runs on the workers: plan a file, read a piece into the shuffle, reduce a unit, select.

Plain functions of plain data, importable by every worker (each runs orchscan's own code, so
workers need orchscan installed in the client's version). Only :class:`PieceRead`,
``UnitResult`` and ``SelectedRecords`` travel back to the client; a unit's heavy records stay
in the worker's memory as the result of its reduction, spilled to disk by Dask under pressure
and recomputed from the shuffle files if the worker is lost.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pyarrow.compute as pc

from orchscan.analyzer.reduction import PartitionHeavy, SelectedRecords, Selection, select_records
from orchscan.collectors.memory_pool import use_scan_allocators
from orchscan.collectors.model.records import Notice, Skipped
from orchscan.collectors.traces.partition import PartitionStore
from orchscan.collectors.traces.registry import parse_chunk
from orchscan.engines.dask.pieces import Segment, plan_file, segment_chunks
from orchscan.engines.dask.shuffle import (
    PieceFile,
    ShuffledUnit,
    load_partitions,
    piece_location,
    write_partitions,
)
from orchscan.engines.units import ReduceTask, UnitResult, fold_results, reduce_unit

T = TypeVar("T")

__all__ = ["given", "plan_file", "read_piece", "reduce_shuffled", "select_unit", "unit_partials"]


@dataclass(frozen=True)
class PieceRead:
    """What reading one piece gave: its shuffle file, each file's format, what was skipped and
    what the readers repaired, and the service and peer names its spans carry (specs are bound
    to them)."""

    shuffled: PieceFile
    formats: dict[str, str]
    skipped: tuple[Skipped, ...]
    notices: tuple[Notice, ...]
    names: frozenset[str]


def read_piece(
    index: int, segments: Sequence[Segment], *, count: int, folder: str, spill_bytes: int, forced: str | None
) -> PieceRead:
    """Parse a piece's segments, route their spans into ``count`` partitions, write its shuffle file.

    Routed batches wait in memory up to ``spill_bytes``, then spill to the worker's temporary folder.
    """
    use_scan_allocators()
    formats: dict[str, str] = {}
    skipped: list[Skipped] = []
    notices: list[Notice] = []
    names: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="orchscan-route-") as spill:
        store = PartitionStore(count, spill_bytes=spill_bytes, work_dir=Path(spill))
        for segment in segments:
            for item in segment_chunks(segment, forced):
                if isinstance(item, str):
                    formats[segment.file.source] = item
                elif isinstance(item, Skipped):
                    skipped.append(item)
                else:
                    result = parse_chunk(item, keep_attributes=False)  # as the local scan reads
                    skipped.extend(result.skipped)
                    notices.extend(result.notices)
                    if result.batch.num_rows:
                        store.add(result.batch)
                        for column in ("service", "peer_service"):
                            names.update(pc.unique(result.batch.column(column)).drop_null().to_pylist())
        shuffled = write_partitions(store.finish(), piece_location(folder, index))
    return PieceRead(shuffled, formats, tuple(skipped), tuple(notices), frozenset(names))


def given(value: T) -> T:
    """The value itself: what the scan hands every task once (recomputed, not lost, with a worker)."""
    return value


def reduce_shuffled(index: int, unit: ShuffledUnit, task: ReduceTask) -> tuple[UnitResult, PartitionHeavy]:
    """Load unit ``index``'s partitions from the shuffle files and reduce it as every engine does."""
    use_scan_allocators()
    return reduce_unit(index, load_partitions(unit), task)


def unit_partials(reduced: tuple[UnitResult, PartitionHeavy]) -> UnitResult:
    """The part of a reduced unit the client gathers."""
    return reduced[0]


def folded_partials(*results: UnitResult) -> UnitResult:
    """Consecutive units' partials merged on a worker, so that the client gathers a few."""
    use_scan_allocators()
    return fold_results(results)


def select_unit(reduced: tuple[UnitResult, PartitionHeavy], selection: Selection) -> SelectedRecords:
    """What a reduced unit's heavy records hold of the landscape's selection."""
    return select_records(reduced[1], selection)
