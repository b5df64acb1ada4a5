"""Spans routed into partitions of whole traces, held in memory or spilled to disk.

Everything about one request is decided inside its trace, so the scan reduces each partition on
its own. A span goes to the partition its trace id hashes to; a consumer span that links to
spans of other traces also goes, as a *stub*, to each partition those traces hash to, so that
the link can be resolved where its producer lives. Batches stay in memory until the store
holds ``spill_bytes``; then every partition's batches go to an Arrow IPC stream file of its own
in the work folder, and later batches are appended there.

Partitions are fine-grained (a power of two, chosen from the input's size) and grouped into
reduction units of at most a given number of spans when read back (:meth:`Partitions.units`):
concatenating whole-trace partitions keeps traces whole, so the grouping changes no result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from orchscan.collectors.model.integrity import drop_duplicates, id_hashes
from orchscan.collectors.model.spans import SCHEMA

#: Partitions are never fewer than this (so that both cores have work) nor more.
MIN_PARTITIONS, MAX_PARTITIONS = 8, 4096


def partition_count(input_bytes: int, unit_spans: int, *, bytes_per_span: int = 100) -> int:
    """How many partitions to route into: a power of two, enough for units of ``unit_spans``.

    ``bytes_per_span`` is a low estimate of the input's bytes per span (compressed inputs count
    their uncompressed estimate): overestimating the spans only makes partitions smaller, which
    the grouping into units absorbs.
    """
    estimate = max(input_bytes // bytes_per_span, 1)
    wanted = int(np.ceil(estimate / max(unit_spans, 1)))
    count = 1 << max(wanted - 1, 0).bit_length()
    return int(min(max(count, MIN_PARTITIONS), MAX_PARTITIONS))


def trace_buckets(trace_ids: pa.Array, count: int) -> np.ndarray:
    """The partition of each trace id: a stable hash of the id, modulo ``count``."""
    hashes = id_hashes(trace_ids, 32)
    if hashes is None:  # ids of unusual length: hash the text itself
        text = trace_ids.cast(pa.string()).fill_null("").to_numpy(zero_copy_only=False)
        hashes = pd.util.hash_array(text.astype(object))
    buckets: np.ndarray = (hashes % np.uint64(count)).astype(np.int64)
    return buckets


@dataclass
class _Buffer:
    """One partition's batches not yet written, and where they go when spilled."""

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
        self._held = 0
        self._writers: dict[tuple[str, int], ipc.RecordBatchStreamWriter] = {}
        self.spilled = False

    def add(self, batch: pa.RecordBatch) -> None:
        """Route one batch of spans (and stub copies of its linked consumers)."""
        if not batch.num_rows:
            return
        buckets = trace_buckets(batch.column("trace_id"), self.count)
        order = np.argsort(buckets, kind="stable")
        # One take per batch, then zero-copy slices: a take per partition costs a pass over
        # every column each time.
        ordered = take_rows(batch, order)
        bounds = np.searchsorted(buckets[order], np.arange(self.count + 1))
        for index in np.flatnonzero(np.diff(bounds)).tolist():
            part = ordered.slice(bounds[index], bounds[index + 1] - bounds[index])
            buffer = self._buffers[index]
            buffer.spans.append(part)
            buffer.span_rows += part.num_rows
        self._held += ordered.nbytes
        for bucket, stubs in self._stubs(batch):
            buffer = self._buffers[bucket]
            buffer.stubs.append(stubs)
            buffer.stub_rows += stubs.num_rows
            self._held += stubs.nbytes
        if self._held >= self._spill_bytes:
            self.spill()

    def _stubs(self, batch: pa.RecordBatch) -> Iterator[tuple[int, pa.RecordBatch]]:
        """For each partition some linked consumer of ``batch`` links into: those consumers."""
        links = batch.column("links")
        linked = pc.and_(
            pc.equal(batch.column("kind"), "consumer"),
            pc.greater(pc.list_value_length(links).fill_null(0), 0),
        ).fill_null(False)
        rows = np.flatnonzero(linked.to_numpy(zero_copy_only=False))
        if not len(rows):
            return
        targets = links.take(pa.array(rows))
        owner = rows[pc.list_parent_indices(targets).to_numpy()]
        flat = pc.list_flatten(targets)
        target = trace_buckets(pc.struct_field(flat, "trace_id"), self.count)
        # Sorted by partition, then row: one take for all of them, then a slice per partition
        # (a take per partition cost a pass over every column each time).
        pairs = np.unique(np.stack([target, owner], axis=1), axis=0)
        stubs = take_rows(batch, pairs[:, 1])
        starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]])
        for start, stop in zip(starts.tolist(), [*starts[1:].tolist(), len(pairs)], strict=True):
            yield int(pairs[start, 0]), stubs.slice(start, stop - start)

    def spill(self) -> None:
        """Write every partition's buffered batches to its file as one batch; later ones are appended.

        A buffer holds a slice of every batch routed since the last spill (at 10M spans, slices
        of about a hundred spans): written one by one, each paid the IPC format's cost per batch
        and column, which made the routing parent the read's slowest step.
        """
        self._work_dir.mkdir(parents=True, exist_ok=True)
        for index, buffer in enumerate(self._buffers):
            for kind, batches in (("spans", buffer.spans), ("stubs", buffer.stubs)):
                if batches:
                    combined = pa.Table.from_batches(batches, schema=SCHEMA).combine_chunks()
                    for batch in combined.to_batches():
                        self._writer(kind, index).write_batch(batch)
                    batches.clear()
        self._held = 0
        self.spilled = True

    def _writer(self, kind: str, index: int) -> ipc.RecordBatchStreamWriter:
        writer = self._writers.get((kind, index))
        if writer is None:
            writer = ipc.new_stream(str(self._path(kind, index)), SCHEMA)
            self._writers[(kind, index)] = writer
        return writer

    def _path(self, kind: str, index: int) -> Path:
        return self._work_dir / f"{kind}-{index:05d}.arrow"

    def finish(self) -> Partitions:
        """Close the files; the partitions, in memory or on disk, with their span counts."""
        if self.spilled:
            self.spill()
        for writer in self._writers.values():
            writer.close()
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


def take_rows(batch: pa.RecordBatch, rows: np.ndarray) -> pa.RecordBatch:
    """``batch.take(rows)``, column by column: the batch-wide take costs twenty times more here
    (145 ms against 7 ms for 29,000 spans of the span table's schema)."""
    indices = pa.array(rows)
    return pa.RecordBatch.from_arrays([column.take(indices) for column in batch.columns], schema=batch.schema)


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
        return pa.Table.from_batches(spans, SCHEMA), pa.Table.from_batches(stubs, SCHEMA)


@dataclass(frozen=True)
class Partitions:
    """All partitions of one read, in partition order."""

    parts: tuple[Partition, ...]

    @property
    def spans(self) -> int:
        """Spans routed (stub copies not counted)."""
        return sum(part.span_rows for part in self.parts)

    def units(self, unit_spans: int) -> list[tuple[Partition, ...]]:
        """Consecutive partitions grouped into units of at most ``unit_spans`` spans (one
        partition larger than that is a unit of its own); empty partitions are left out."""
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
