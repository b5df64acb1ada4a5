"""The client side of the Dask engine: the map side of a scan submitted to the cluster.

Reading: large files are planned on the workers (where to cut them), the segments grouped into
pieces, each piece read, routed and written to the shared folder by one task; only the pieces'
accounts come back. Reducing: one task per unit of partitions, its result held by Dask on the
worker that ran it; the units' partials are merged there too, in blocks of consecutive units,
and the client gathers the few merged ones, then, after the landscape is planned, what each
unit's heavy records hold of the selection. Task keys carry a token per scan,
so that scans sharing a cluster never share results.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchscan.analyzer.reduction import SelectedRecords, Selection
from orchscan.collectors.model.records import Notice, Skipped, merge_notices
from orchscan.collectors.traces.ingest import InputError
from orchscan.collectors.traces.partition import partition_count
from orchscan.engines.dask.cluster import Workers, dask_client, gathered, shared_folder, workers_of
from orchscan.engines.dask.inputs import InputFile, list_inputs
from orchscan.engines.dask.pieces import Segment, group_pieces, plan_file
from orchscan.engines.dask.shuffle import ShuffledUnit, shuffled_units
from orchscan.engines.dask.tasks import (
    PieceRead,
    folded_partials,
    given,
    read_piece,
    reduce_shuffled,
    select_unit,
    unit_partials,
)
from orchscan.engines.units import FOLD_BLOCK, ReduceTask, UnitResult

if TYPE_CHECKING:
    from distributed import Client, Future

Progress = Callable[[int], None]

#: Pieces are never larger than this (a task's parse and routing stay small) nor smaller than
#: the other (a task's fixed cost must not dominate), and there are about this many per thread.
MAX_PIECE_BYTES, MIN_PIECE_BYTES, PIECES_PER_THREAD = 64 << 20, 4 << 20, 4


@dataclass(frozen=True)
class Shuffled:
    """What reading gave: the inputs in order, each one's format, what was skipped and repaired,
    the service and peer names seen, and the units of partitions waiting in the shuffle files."""

    inputs: tuple[str, ...]
    formats: dict[str, str]
    skipped: tuple[Skipped, ...]
    notices: tuple[Notice, ...]
    services: tuple[str, ...]
    units: tuple[ShuffledUnit, ...]


class DaskEngine:
    """A scan's map side on one Dask client, its shuffle files in ``folder``."""

    def __init__(self, client: Client, folder: str) -> None:
        self._client = client
        self._folder = folder
        self._token = uuid.uuid4().hex[:8]
        self.workers: Workers = workers_of(client)

    def read(
        self,
        paths: Sequence[str],
        *,
        fmt: str | None,
        unit_spans: int,
        task_bytes: int,
        on_progress: Progress | None = None,
    ) -> Shuffled:
        """Read every input on the workers into shuffle files of ``unit_spans``-sized partitions.

        ``task_bytes`` is what one read task may hold of routed spans before it spills.
        """
        files = list_inputs(paths)
        if not files:
            raise InputError("no input files found")
        total = sum(file.size for file in files)
        spread = total // (PIECES_PER_THREAD * max(self.workers.total_threads, 1))
        piece_bytes = max(MIN_PIECE_BYTES, min(MAX_PIECE_BYTES, task_bytes, spread))
        pieces = group_pieces(self._segments(files, fmt, piece_bytes), piece_bytes)
        count = partition_count(sum(file.estimated_bytes for file in files), unit_spans)
        futures = [
            self._client.submit(
                read_piece,
                index,
                piece,
                count=count,
                folder=self._folder,
                spill_bytes=task_bytes,
                forced=fmt,
                key=f"read-piece-{self._token}-{index}",
            )
            for index, piece in enumerate(pieces)
        ]
        if on_progress is not None:
            sizes = {
                future.key: sum(s.size for s in piece) for future, piece in zip(futures, pieces, strict=True)
            }
            for done in _as_completed(futures):
                on_progress(sizes[done.key])
        reads: list[PieceRead] = gathered(self._client, futures, "reading the inputs")
        return _shuffled(files, reads, unit_spans)

    def _segments(self, files: Sequence[InputFile], fmt: str | None, piece_bytes: int) -> list[Segment]:
        """Every file as segments: large ones as their workers planned them, others whole."""
        planned = {
            index: self._client.submit(
                plan_file, file, fmt, piece_bytes, key=f"plan-file-{self._token}-{index}"
            )
            for index, file in enumerate(files)
            if file.size > piece_bytes
        }
        plans = dict(
            zip(planned, gathered(self._client, list(planned.values()), "planning the inputs"), strict=True)
        )
        segments: list[Segment] = []
        for index, file in enumerate(files):
            segments += plans.get(index, (Segment(file),))
        return segments

    @contextmanager
    def units(self, shuffled: Shuffled, task: ReduceTask) -> Iterator[DaskUnits]:
        """The units of ``shuffled`` to reduce with ``task``; their results are released afterwards."""
        units = DaskUnits(self._client, shuffled.units, task, self._token)
        try:
            yield units
        finally:
            units.release()


class DaskUnits:
    """Reduces units on the workers and keeps their results there until the selection."""

    def __init__(self, client: Client, units: Sequence[ShuffledUnit], task: ReduceTask, token: str) -> None:
        self._client = client
        self._units = units
        self._task = task
        self._token = token
        self._reduced: list[Future[Any]] = []

    def reduce(self, on_progress: Progress | None = None) -> list[UnitResult]:
        """Every unit's partials, in unit order; the heavy records stay on the workers."""
        # Sent once, not once per unit (it holds every documented operation), as a task of its
        # own rather than scattered data: a task's result is recomputed when its worker is lost.
        task = self._client.submit(given, self._task, key=f"reduce-task-{self._token}")
        self._reduced = [
            self._client.submit(reduce_shuffled, index, unit, task, key=f"reduce-unit-{self._token}-{index}")
            for index, unit in enumerate(self._units)
        ]
        partials = [
            self._client.submit(unit_partials, reduced, key=f"unit-partials-{self._token}-{index}")
            for index, reduced in enumerate(self._reduced)
        ]
        folded = self._folded(partials)
        if on_progress is not None:
            for _ in _as_completed(partials):
                on_progress(1)
        results: list[UnitResult] = gathered(self._client, folded, "reducing the partitions")
        return results

    def _folded(self, partials: list[Future[Any]]) -> list[Future[Any]]:
        """The units' partials merged on the workers, :data:`FOLD_BLOCK` consecutive ones per task
        and again over the merged ones, until at most that many are left for the client, in
        unit order: the client then holds a few units' partials however many units there are."""
        level = 0
        while len(partials) > FOLD_BLOCK:
            partials = [
                self._client.submit(
                    folded_partials,
                    *partials[first : first + FOLD_BLOCK],
                    key=f"fold-partials-{self._token}-{level}-{first}",
                )
                for first in range(0, len(partials), FOLD_BLOCK)
            ]
            level += 1
        return partials

    def select(self, selection: Selection) -> list[SelectedRecords]:
        """What every unit's heavy records hold of the selection, in unit order; the workers
        drop the units' results once it is gathered (the selection is asked once)."""
        chosen = self._client.submit(given, selection, key=f"selection-{self._token}")
        futures = [
            self._client.submit(select_unit, reduced, chosen, key=f"select-unit-{self._token}-{index}")
            for index, reduced in enumerate(self._reduced)
        ]
        selected: list[SelectedRecords] = gathered(self._client, futures, "selecting the records")
        del futures, chosen
        self.release()
        return selected

    def release(self) -> None:
        """Let the workers drop the units' results."""
        self._client.cancel(self._reduced)
        self._reduced = []


def _as_completed(futures: Sequence[Future[Any]]) -> Iterator[Future[Any]]:
    from distributed import as_completed

    yield from as_completed(futures)


def _shuffled(files: Sequence[InputFile], reads: Sequence[PieceRead], unit_spans: int) -> Shuffled:
    """The account of the whole read, and its units; no span at all is an InputError."""
    skipped = tuple(record for read in reads for record in read.skipped)
    units = shuffled_units([read.shuffled for read in reads], unit_spans)
    if not sum(unit.spans for unit in units):
        reasons = "; ".join(f"{s.file}: {s.reason}" for s in skipped[:5])
        raise InputError(
            f"no spans could be read from {len(files)} file(s)" + (f" ({reasons})" if reasons else "")
        )
    formats = {source: fmt for read in reads for source, fmt in read.formats.items()}
    notices = merge_notices([notice for read in reads for notice in read.notices])
    names = sorted(set().union(*(read.names for read in reads)))
    inputs = tuple(file.source for file in files)
    return Shuffled(inputs, formats, skipped, notices, tuple(names), tuple(units))


@contextmanager
def dask_engine(
    scheduler: str | None, *, workers: int, memory_limit: int, scratch: str, shared: str
) -> Iterator[DaskEngine]:
    """An engine on the cluster at ``scheduler`` (else a local cluster of ``workers`` processes of
    ``memory_limit`` bytes each, spilling into ``scratch``), its shuffle files below ``shared``."""
    with (
        dask_client(scheduler, workers=workers, memory_limit=memory_limit, scratch=scratch) as client,
        shared_folder(client, shared) as folder,
    ):
        yield DaskEngine(client, folder)
