"""Shuffle files: one read piece's partitions in one file, and a unit's partitions read back from them.

The spans a worker read are routed into partitions of whole traces (with the consumer stubs of
:class:`~orchscan.collectors.traces.partition.PartitionStore`); the piece's file holds, partition
after partition, the spans and then the stubs as Arrow IPC streams, so that every part stands on
its own and one partition range of the file is one contiguous read. A file per piece (not per
piece and partition) keeps the file count at the number of pieces on any cluster, as Spark's
shuffle does. The file name is unique per attempt: a task Dask retries never meets a half file
of the attempt before it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from orchscan.collectors.model.spans import SCHEMA
from orchscan.collectors.traces.partition import Partition, Partitions
from orchscan.engines.dask.inputs import is_url


@dataclass(frozen=True)
class PieceFile:
    """Where one piece's partitions are: ``bounds[p]`` holds partition ``p``'s spans from
    ``bounds[p, 0]`` to ``bounds[p, 1]`` and its stubs from there to ``bounds[p, 2]`` (bytes of
    the file); ``rows[p]`` counts its spans."""

    location: str
    bounds: np.ndarray
    rows: np.ndarray


def piece_location(folder: str, index: int) -> str:
    """A fresh file name for piece ``index`` in the shared folder."""
    return f"{folder}/piece-{index:06d}-{uuid.uuid4().hex[:12]}.arrow"


def write_partitions(partitions: Partitions, location: str) -> PieceFile:
    """Write every partition's spans and stubs to one file (see the module docstring)."""
    bounds = np.zeros((len(partitions.parts), 3), dtype=np.int64)
    offset = 0
    with _create(location) as out:
        for index, part in enumerate(partitions.parts):
            spans, stubs = part.load()
            bounds[index, 0] = offset
            offset += _write_stream(out, spans)
            bounds[index, 1] = offset
            offset += _write_stream(out, stubs)
            bounds[index, 2] = offset
    rows = np.array([part.span_rows for part in partitions.parts], dtype=np.int64)
    return PieceFile(location, bounds, rows)


def _write_stream(out: IO[bytes], table: pa.Table) -> int:
    if not table.num_rows:
        return 0
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, SCHEMA) as writer:
        writer.write_table(table)
    written = sink.getvalue()
    out.write(written)
    return int(written.size)


@dataclass(frozen=True)
class UnitSlice:
    """What one piece file holds of a unit: the bounds of each of the unit's partitions in it."""

    location: str
    bounds: np.ndarray


@dataclass(frozen=True)
class ShuffledUnit:
    """A unit of partitions as the shuffle files hold it: its partitions' span counts and the
    slices of every piece file with something of it, in piece order."""

    rows: tuple[int, ...]
    slices: tuple[UnitSlice, ...]

    @property
    def spans(self) -> int:
        """Spans in the unit (stub copies not counted)."""
        return sum(self.rows)


def shuffled_units(pieces: Sequence[PieceFile], unit_spans: int) -> list[ShuffledUnit]:
    """The pieces' partitions grouped into units as the local engine groups them."""
    rows = np.sum([piece.rows for piece in pieces], axis=0)
    # Partitions.units is the one grouping rule; placeholders carry the counts it decides by.
    parts = Partitions(tuple(Partition((), (), int(count)) for count in rows))
    index = {id(part): number for number, part in enumerate(parts.parts)}
    units = []
    for unit in parts.units(unit_spans):
        numbers = [index[id(part)] for part in unit]
        slices = []
        for piece in pieces:
            bounds = piece.bounds[numbers]
            if bounds[-1, 2] > bounds[0, 0]:
                slices.append(UnitSlice(piece.location, bounds))
        units.append(ShuffledUnit(tuple(int(rows[n]) for n in numbers), tuple(slices)))
    return units


def load_partitions(unit: ShuffledUnit) -> list[Partition]:
    """The unit's partitions, each with its batches from every piece in piece order."""
    spans: list[list[pa.RecordBatch]] = [[] for _ in unit.rows]
    stubs: list[list[pa.RecordBatch]] = [[] for _ in unit.rows]
    # The unit's partitions lie back to back in each file (partitions between them are empty).
    ranges = [(piece.location, int(piece.bounds[0, 0]), int(piece.bounds[-1, 2])) for piece in unit.slices]
    for piece, (_, start, _), data in zip(unit.slices, ranges, _read_ranges(ranges), strict=True):
        buffer = pa.py_buffer(data)
        for number, (spans_at, stubs_at, end) in enumerate(piece.bounds.tolist()):
            spans[number] += _batches(buffer, spans_at - start, stubs_at - spans_at)
            stubs[number] += _batches(buffer, stubs_at - start, end - stubs_at)
    return [
        Partition(tuple(spans[number]), tuple(stubs[number]), rows) for number, rows in enumerate(unit.rows)
    ]


def _batches(data: pa.Buffer, offset: int, length: int) -> list[pa.RecordBatch]:
    if not length:
        return []
    with ipc.open_stream(data.slice(offset, length)) as reader:
        return list(reader)


def _create(location: str) -> IO[bytes]:
    if not is_url(location):
        return open(location, "wb")
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(location)
    stream: IO[bytes] = fs.open(path, "wb")
    return stream


def _read_ranges(ranges: Sequence[tuple[str, int, int]]) -> list[bytes]:
    """The bytes of each (location, start, stop): a unit's slice of every piece file.

    A unit reads a slice of every piece, so on object storage latency would add up piece by
    piece: fsspec fetches the ranges of one file system together (concurrently where it can).
    """
    if not ranges or not is_url(ranges[0][0]):
        found = []
        for location, start, stop in ranges:
            with open(location, "rb") as stream:
                stream.seek(start)
                found.append(stream.read(stop - start))
        return found
    from fsspec.core import url_to_fs

    fs, _ = url_to_fs(ranges[0][0])
    paths = [url_to_fs(location)[1] for location, _, _ in ranges]
    found = fs.cat_ranges(
        paths, [start for _, start, _ in ranges], [stop for _, _, stop in ranges], on_error="raise"
    )
    return list(found)
