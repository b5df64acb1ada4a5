"""Spans routed into partitions of whole traces, held in memory or spilled to disk.

Everything about one request is decided inside its trace, so the scan reduces each partition on
its own. A span goes to the partition its trace id hashes to; a consumer span that links to
spans of other traces also goes, as a *stub*, to each partition those traces hash to, so that
the link can be resolved where its producer lives. Batches stay in memory until the store
holds ``spill_bytes``; then every partition's batches go to an Arrow IPC stream file of its own
in the work folder, and later batches are appended there. Each file gathers small writes in a
buffer; all buffers together take at most a quarter of ``spill_bytes``, besides it.

Partitions are as many as units of a given number of spans need (chosen from the input's
size) and grouped into reduction units of at most that many spans when read back
(:meth:`Partitions.units`): concatenating whole-trace partitions keeps traces whole, so the
grouping changes no result.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from orchscan.collectors.model.integrity import drop_duplicates, id_hashes
from orchscan.collectors.model.spans import CODED, SCHEMA

#: Partitions are never fewer than this (so that both cores have work) nor more (a partition
#: number fits 16 bits).
MIN_PARTITIONS, MAX_PARTITIONS = 8, 4096


def partition_count(input_bytes: int, unit_spans: int, *, bytes_per_span: int = 100) -> int:
    """How many partitions to route into: enough for units of ``unit_spans``.

    ``bytes_per_span`` is a low estimate of the input's bytes per span (compressed inputs count
    their uncompressed estimate): overestimating the spans only makes partitions smaller. Not
    rounded up to a power of two: at 10M spans that made 128 partitions of 78,000 spans where
    the budget allows 143,000, and as no two fit a unit, 128 units each paid the reduction's
    fixed cost (about 70 ms of pandas work per unit); 96 units took 2 s less.
    """
    estimate = max(input_bytes // bytes_per_span, 1)
    wanted = int(np.ceil(estimate / max(unit_spans, 1)))
    return int(min(max(wanted, MIN_PARTITIONS), MAX_PARTITIONS))


def trace_buckets(trace_ids: pa.Array, count: int) -> np.ndarray:
    """The partition of each trace id: a stable hash of the id, modulo ``count``."""
    hashes = id_hashes(trace_ids, 32)
    if hashes is None:  # ids of unusual length: hash the text itself
        text = trace_ids.cast(pa.string()).fill_null("").to_numpy(zero_copy_only=False)
        hashes = pd.util.hash_array(text.astype(object))
    buckets: np.ndarray = (hashes % np.uint64(count)).astype(np.int64)
    return buckets


#: The schema of routed spans: the span table's with ``source`` dictionary-coded. Each batch
#: repeats one path in it; taken row by row into partitions and spilled as text, the path was
#: 54 bytes a span of the benchmark's files, a third of what routing wrote. Loading a partition
#: spells it out again (:meth:`Partition.load`).
ROUTED = SCHEMA.set(
    SCHEMA.get_field_index("source"), pa.field("source", CODED, nullable=SCHEMA.field("source").nullable)
)
_SOURCE = SCHEMA.get_field_index("source")


def _routed(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A span batch in the :data:`ROUTED` schema."""
    return batch.set_column(_SOURCE, ROUTED.field(_SOURCE), pc.dictionary_encode(batch.column(_SOURCE)))


def _span_table(batches: Sequence[pa.RecordBatch]) -> pa.Table:
    """Routed batches (or, from a shuffle, span batches) as a table of the span table's schema."""
    if not batches:
        return SCHEMA.empty_table()
    table = pa.Table.from_batches(batches)
    if table.schema.field(_SOURCE).type != CODED:
        return table
    return table.set_column(_SOURCE, SCHEMA.field(_SOURCE), table.column(_SOURCE).cast(pa.string()))


#: The most bytes a spill file gathers before a write. A batch goes out as its metadata, then
#: each column's buffers, most of them small: written one by one, spilling 177 MB took 132 ms
#: of CPU, most of it in the kernel; through buffers of 64 KB 82 ms, of 256 KB 64 ms.
SPILL_WRITE_BUFFER = 256 << 10

#: Buffers smaller than this are not worth having: with more files than the share below
#: allows this much for, spill files are written unbuffered.
MIN_SPILL_WRITE_BUFFER = 4 << 10

#: The share of the store's ``spill_bytes`` all files' buffers take at most, besides it.
SPILL_BUFFERS_SHARE = 0.25


#: Routed batches wait unsorted up to this many bytes (or the store's ``spill_bytes``, if
#: smaller), then are sorted into their partitions all at once (see :class:`_Unsorted`). The
#: sort holds them twice, so this bounds the copy where the budget's spill threshold is large.
SORT_BYTES = 64 << 20


@dataclass
class _Unsorted:
    """Batches in arrival order, with the partition of each of their rows.

    Sorting many batches at once keeps a partition's rows of them in one slice, written as it is
    when spilled. Sorted batch by batch, a partition held a slice of every batch routed since the
    last spill, each with its batch's dictionaries, and combining them for every spill cost the
    reading parent a third of its work: at 10M spans, its CPU time while reading went 20.7 ->
    14.5 s, and the read 32.4 -> 27.4 s.
    """

    batches: list[pa.RecordBatch] = field(default_factory=list)
    buckets: list[np.ndarray] = field(default_factory=list)
    nbytes: int = 0

    def add(self, batch: pa.RecordBatch, buckets: np.ndarray) -> None:
        self.batches.append(batch)
        self.buckets.append(buckets.astype(np.uint16))  # MAX_PARTITIONS fits
        self.nbytes += batch.nbytes

    def sorted_out(self, count: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        """Each partition's rows as one slice, rows in arrival order; this buffer is left empty."""
        if not self.batches:
            return
        table = pa.Table.from_batches(self.batches, schema=ROUTED)
        buckets = np.concatenate(self.buckets)
        self.batches, self.buckets, self.nbytes = [], [], 0
        order = np.argsort(buckets, kind="stable")  # 16-bit keys: numpy sorts them by radix
        ordered = take_rows(table, order)
        del table
        bounds = np.r_[0, np.cumsum(np.bincount(buckets, minlength=count))]
        for index in np.flatnonzero(np.diff(bounds)).tolist():
            yield index, ordered.slice(bounds[index], bounds[index + 1] - bounds[index])


@dataclass
class _Buffer:
    """One partition's sorted batches not yet written, and where they go when spilled."""

    spans: list[pa.RecordBatch] = field(default_factory=list)
    stubs: list[pa.RecordBatch] = field(default_factory=list)
    span_rows: int = 0
    stub_rows: int = 0


class PartitionStore:
    """Routes span batches into partitions of whole traces (see the module docstring)."""

    def __init__(self, count: int, *, spill_bytes: int, work_dir: Path) -> None:
        self.count = count
        self._spill_bytes = spill_bytes
        self._work_dir = work_dir
        self._buffers = [_Buffer() for _ in range(count)]
        self._spans, self._stubs = _Unsorted(), _Unsorted()
        self._held = 0
        # Each file's IPC writer and the buffered stream under it (closing the writer leaves it open).
        self._writers: dict[tuple[str, int], tuple[ipc.RecordBatchStreamWriter, pa.NativeFile]] = {}
        # Two files per partition: its spans and its stubs.
        share = min(int(spill_bytes * SPILL_BUFFERS_SHARE) // (2 * count), SPILL_WRITE_BUFFER)
        #: Bytes each spill file gathers before a write; 0 for none.
        self.write_buffer_bytes = share if share >= MIN_SPILL_WRITE_BUFFER else 0
        self.spilled = False

    def add(self, batch: pa.RecordBatch) -> None:
        """Route one batch of spans (and stub copies of its linked consumers)."""
        if not batch.num_rows:
            return
        batch = _routed(batch)
        self._spans.add(batch, trace_buckets(batch.column("trace_id"), self.count))
        stubs = self._linked_consumers(batch)
        if stubs is not None:
            self._stubs.add(*stubs)
        self._held += batch.nbytes + (stubs[0].nbytes if stubs is not None else 0)
        if self._spans.nbytes + self._stubs.nbytes >= min(SORT_BYTES, self._spill_bytes):
            self._sort()
        if self._held >= self._spill_bytes:
            self.spill()

    def _linked_consumers(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, np.ndarray] | None:
        """The consumers of ``batch`` that link to spans of other traces, a copy for each
        partition some link points into, and that partition; None when there are none."""
        links = batch.column("links")
        linked = pc.and_(
            pc.equal(batch.column("kind"), "consumer"),
            pc.greater(pc.list_value_length(links).fill_null(0), 0),
        ).fill_null(False)
        rows = np.flatnonzero(linked.to_numpy(zero_copy_only=False))
        if not len(rows):
            return None
        targets = links.take(pa.array(rows))
        owner = rows[pc.list_parent_indices(targets).to_numpy()]
        flat = pc.list_flatten(targets)
        target = trace_buckets(pc.struct_field(flat, "trace_id"), self.count)
        pairs = np.unique(np.stack([target, owner], axis=1), axis=0)
        return take_rows(batch, pairs[:, 1]), pairs[:, 0]

    def _sort(self) -> None:
        """Sort what waits unsorted into the partitions' buffers."""
        for index, part in self._spans.sorted_out(self.count):
            buffer = self._buffers[index]
            buffer.spans.append(part)
            buffer.span_rows += part.num_rows
        for index, part in self._stubs.sorted_out(self.count):
            buffer = self._buffers[index]
            buffer.stubs.append(part)
            buffer.stub_rows += part.num_rows

    def spill(self) -> None:
        """Write every partition's buffered batches to its file as one batch; later ones are appended."""
        self._sort()
        self._work_dir.mkdir(parents=True, exist_ok=True)
        for index, buffer in enumerate(self._buffers):
            for kind, batches in (("spans", buffer.spans), ("stubs", buffer.stubs)):
                if len(batches) > 1:  # sorted more than once since the last spill
                    batches[:] = pa.Table.from_batches(batches, schema=ROUTED).combine_chunks().to_batches()
                for batch in batches:
                    self._writer(kind, index).write_batch(batch)
                batches.clear()
        self._held = 0
        self.spilled = True

    def _writer(self, kind: str, index: int) -> ipc.RecordBatchStreamWriter:
        opened = self._writers.get((kind, index))
        if opened is None:
            path = str(self._path(kind, index))
            sink = pa.output_stream(path, compression=None, buffer_size=self.write_buffer_bytes or None)
            opened = self._writers[(kind, index)] = (ipc.new_stream(sink, ROUTED), sink)
        return opened[0]

    def _path(self, kind: str, index: int) -> Path:
        return self._work_dir / f"{kind}-{index:05d}.arrow"

    def finish(self) -> Partitions:
        """Close the files; the partitions, in memory or on disk, with their span counts."""
        if self.spilled:
            self.spill()
        else:
            self._sort()
        for writer, sink in self._writers.values():
            writer.close()
            sink.close()
        parts = []
        for index, buffer in enumerate(self._buffers):
            spans_file, stubs_file = self._path("spans", index), self._path("stubs", index)
            parts.append(
                Partition(
                    spans=tuple(buffer.spans),
                    stubs=tuple(buffer.stubs),
                    span_rows=buffer.span_rows,
                    files=tuple(p for p in (spans_file, stubs_file) if p.exists()),
                )
            )
        return Partitions(tuple(parts))


def take_rows(data: pa.RecordBatch | pa.Table, rows: np.ndarray) -> pa.RecordBatch:
    """``data.take(rows)`` column by column, as one batch: the batch-wide take costs twenty times
    more here (145 ms against 7 ms for 29,000 spans of the span table's schema). A table's
    chunks are taken from as they are: combining them first cost a third more."""
    indices = pa.array(rows)
    columns = [_one_array(column.take(indices)) for column in data.columns]
    return pa.RecordBatch.from_arrays(columns, schema=data.schema)


def _one_array(taken: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(taken, pa.ChunkedArray):
        return taken.chunk(0) if taken.num_chunks == 1 else taken.combine_chunks()
    return taken


@dataclass(frozen=True)
class Partition:
    """The spans of some whole traces and the linked consumers stubbed into them.

    In memory (``spans``/``stubs`` batches) or on disk (``files``: the IPC streams its batches
    were spilled to), or both when it was spilled part-way.
    """

    spans: tuple[pa.RecordBatch, ...]
    stubs: tuple[pa.RecordBatch, ...]
    span_rows: int
    files: tuple[Path, ...] = ()

    def load(self) -> tuple[pa.Table, pa.Table]:
        """The partition's spans and stubs as two tables."""
        spans, stubs = list(self.spans), list(self.stubs)
        for path in self.files:
            with ipc.open_stream(str(path)) as reader:
                (stubs if path.name.startswith("stubs-") else spans).extend(reader)
        return _span_table(spans), _span_table(stubs)


@dataclass(frozen=True)
class Partitions:
    """All partitions of one read, in partition order."""

    parts: tuple[Partition, ...]

    @property
    def spans(self) -> int:
        """Spans routed (stub copies not counted)."""
        return sum(part.span_rows for part in self.parts)

    def units(self, unit_spans: int, workers: int = 1) -> list[tuple[Partition, ...]]:
        """Consecutive partitions grouped into units of at most ``unit_spans`` spans (one
        partition larger than that is a unit of its own); empty partitions are left out.

        Where the units do not divide evenly among ``workers``, the last one is split among them
        as far as its partitions allow, so that the workers end together: nine units of 111,000
        spans on two workers left one reducing the ninth alone for 0.34 s.
        """
        units = self._grouped(unit_spans)
        if len(units) > workers > 1 and len(units) % workers:
            last = units.pop()
            pieces = min(workers, len(last))
            bounds = [round(piece * len(last) / pieces) for piece in range(pieces + 1)]
            units += [last[start:end] for start, end in itertools.pairwise(bounds)]
        return units

    def _grouped(self, unit_spans: int) -> list[tuple[Partition, ...]]:
        units: list[tuple[Partition, ...]] = []
        current: list[Partition] = []
        held = 0
        for part in self.parts:
            if not part.span_rows:
                continue
            if current and held + part.span_rows > unit_spans:
                units.append(tuple(current))
                current, held = [], 0
            current.append(part)
            held += part.span_rows
        if current:
            units.append(tuple(current))
        return units


def load_unit(unit: Sequence[Partition]) -> tuple[pa.Table, pa.Table]:
    """The spans and stubs of a unit of partitions, as two tables.

    The spans come as one chunk per partition: a partition holds a slice of every batch that was
    routed, so a unit of many partitions had over a thousand small chunks, and every column
    operation of the reduction paid for each (twice the CPU per span). Each partition is
    combined on its own, so that only one partition is ever held twice.
    A consumer linked into several partitions of the unit was stubbed into each: it is kept
    once, so that each of its links is resolved once.
    """
    if not unit:
        return SCHEMA.empty_table(), SCHEMA.empty_table()
    spans_parts, stubs_parts = [], []
    for part in unit:
        spans, stubs = part.load()
        spans_parts.append(spans.combine_chunks())
        stubs_parts.append(stubs)
        del spans
    spans = pa.concat_tables(spans_parts)
    stubs = pa.concat_tables(stubs_parts)
    if len(unit) > 1 and stubs.num_rows:
        stubs, _ = drop_duplicates(stubs)
    return spans, stubs
