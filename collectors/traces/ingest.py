"""Read trace files into one span table: walk, decompress, detect, parse in parallel, check.

Files are streamed chunk by chunk; chunks are parsed in worker processes (protobuf and JSON
decoding are CPU-bound and hold the GIL), and at most a few chunks per worker are in flight, so
memory holds the growing span table plus a bounded window of raw input.
"""

from __future__ import annotations

import dataclasses
import io
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa

from orchscan.collectors.memory_pool import release_freed_memory
from orchscan.collectors.model.integrity import drop_duplicates, repair_parents
from orchscan.collectors.model.records import (
    Chunk,
    ChunkResult,
    Ingest,
    Notice,
    Skipped,
    SourceReport,
    merge_notices,
)
from orchscan.collectors.model.spans import SCHEMA, empty_table
from orchscan.collectors.traces.accounting import FileTally, file_reports, tally_files
from orchscan.collectors.traces.detect import HEAD_BYTES, describe_unrecognised, detect
from orchscan.collectors.traces.inputs import open_input, stream_end
from orchscan.collectors.traces.registry import FORMATS, parse_chunk
from orchscan.collectors.traces.sources import TraceSource
from orchscan.collectors.traces.worker_signals import QuietPool

#: File endings picked up when a directory is walked; files named explicitly are always read.
TRACE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".pb", ".binpb", ".bin", ".otlp", ".proto", ".gz")

ProgressCallback = Callable[[int], None]


class InputError(Exception):
    """Nothing usable could be read from the inputs."""


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named directly plus trace-looking files found below directories, sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.name.lower().endswith(TRACE_SUFFIXES) and not p.name.startswith(".")
            )
        else:
            files.append(path)
    return files


def _chunks(path: Path, source: str, forced: str | None) -> Iterator[Chunk | Skipped | str]:
    """Yield the detected format name first, then the file's chunks and split-time skips."""
    try:
        stream = open_input(path)
    except OSError as error:
        yield Skipped(source, "file", f"cannot open: {error.strerror or error}")
        return
    yield from stream_chunks(stream, source, forced)


def stream_chunks(stream: IO[bytes], source: str, forced: str | None) -> Iterator[Chunk | Skipped | str]:
    """An opened input's (see :func:`open_input`) format name, then its chunks and split-time
    skips; the stream is closed at the end."""
    with stream:
        try:
            head = stream.peek(HEAD_BYTES)[:HEAD_BYTES]  # type: ignore[attr-defined]
        except OSError as error:
            yield Skipped(source, "file", f"cannot read: {error}")
            return
        if not head.strip():
            yield stream_end(stream, source) or Skipped(source, "file", "empty file")
            return
        fmt = forced or detect(head)
        if fmt is None:
            yield Skipped(source, "file", describe_unrecognised(head))
            return
        yield fmt
        try:
            yield from FORMATS[fmt].split(stream, source)
        except OSError as error:
            yield Skipped(source, "file", f"read failed part-way: {error}")
        ended = stream_end(stream, source)
        if ended is not None:
            yield ended


def _executor(jobs: int) -> Executor | None:
    if jobs <= 1:
        return None
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    return QuietPool(jobs, context)


class InputReader:
    """Reads trace files chunk by chunk, parsed in worker processes, as span batches in input order.

    Live ``sources`` are read after the files, their answers through the same readers. What
    could not be used is collected on the way: ``skipped`` records, ``notices`` of values
    repaired while parsing, and each input's detected ``formats``. Without ``keep_attributes``
    the spans' ``attributes`` column is null (see :func:`parse_chunk`).

    At most ``2 * jobs`` chunks are in flight, across file ends: a folder of small files keeps
    every worker busy. :meth:`start` hands the workers a head start before :meth:`batches` is
    first called. Close the reader (or use it as a context manager) when it may be left before
    its batches are all read, so that its workers stop.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        sources: Sequence[TraceSource] = (),
        fmt: str | None = None,
        jobs: int | None = None,
        on_progress: ProgressCallback | None = None,
        keep_attributes: bool = True,
    ) -> None:
        self.files = expand_paths(paths)
        self.sources = tuple(sources)
        if not self.files and not self.sources:
            raise InputError("no input files found")
        self.skipped: list[Skipped] = []
        self.notices: list[Notice] = []
        self.formats: dict[str, str] = {}
        self._fmt = fmt
        self._jobs = jobs or os.cpu_count() or 1
        self._on_progress = on_progress
        self._parse = partial(_parse_lean, keep_attributes=keep_attributes)
        self._executor: Executor | None = None
        self._items = self._file_items()
        # Chunks handed to the workers, in input order, each with the file it came from; a
        # file's entry without a chunk marks its end.
        self._pending: deque[tuple[Path, Future[ChunkResult] | None]] = deque()
        self._in_flight = 0

    def start(self, ahead_bytes: int) -> None:
        """Start the workers on the first ``ahead_bytes`` of input chunks (at least a window's
        worth), which they parse while the caller goes on with other work."""
        executor = self._started()
        if executor is None:
            return
        handed = 0
        while handed < ahead_bytes or self._in_flight < 2 * self._jobs:
            chunk = self._hand_next(executor)
            if chunk is None:
                break
            handed += chunk.size

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Every span batch of every file, files in order, then of every live source."""
        executor = self._started()
        shared = _SharedColumns()
        try:
            for path, result in self._file_results(executor):
                self.skipped.extend(result.skipped)
                self.notices.extend(result.notices)
                if result.batch.num_rows:
                    yield shared.complete(result.batch, path.as_posix())
            for live in self.sources:
                self.formats[live.name] = live.format
                for result in _parse_source(live, self._parse, executor, self._jobs, self.skipped):
                    self.skipped.extend(result.skipped)
                    self.notices.extend(result.notices)
                    if result.batch.num_rows:
                        yield shared.complete(result.batch, live.name)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers; chunks not yet parsed are dropped."""
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)

    def __enter__(self) -> InputReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _started(self) -> Executor | None:
        if self._executor is None:
            self._executor = _executor(self._jobs)
        return self._executor

    def _file_items(self) -> Iterator[tuple[Path, Chunk | Skipped | str | None]]:
        """Every file's format, chunks and split-time skips, then None for its end."""
        for path in self.files:
            for item in _chunks(path, path.as_posix(), self._fmt):
                yield path, item
            yield path, None

    def _next_item(self) -> tuple[Path, Chunk | None] | None:
        """The files' next chunk (None at a file's end), formats and skips noted on the way;
        None when the files are read."""
        for path, item in self._items:
            if isinstance(item, str):
                self.formats[path.as_posix()] = item
            elif isinstance(item, Skipped):
                self.skipped.append(item)
            else:
                return path, item
        return None

    def _hand_next(self, executor: Executor) -> Chunk | None:
        """Hand the files' next chunk to the workers; None when there is none left."""
        while (found := self._next_item()) is not None:
            path, chunk = found
            self._pending.append((path, None if chunk is None else executor.submit(self._parse, chunk)))
            if chunk is not None:
                self._in_flight += 1
                return chunk
        return None

    def _file_results(self, executor: Executor | None) -> Iterator[tuple[Path, ChunkResult]]:
        """Each chunk's result with its file, in input order, at most ``2 * jobs`` in flight."""
        if executor is None:
            while (found := self._next_item()) is not None:
                path, chunk = found
                if chunk is None:
                    self._file_done(path)
                else:
                    yield path, self._parse(chunk)
            return
        while True:
            while self._in_flight < 2 * self._jobs and self._hand_next(executor) is not None:
                pass
            if not self._pending:
                return
            path, future = self._pending.popleft()
            if future is None:
                self._file_done(path)
            else:
                self._in_flight -= 1
                yield path, future.result()

    def _file_done(self, path: Path) -> None:
        if self._on_progress is not None:
            self._on_progress(_size(path))

    @property
    def inputs(self) -> list[str]:
        """Every input as the reports name it: the files' paths, then the live sources."""
        return [path.as_posix() for path in self.files] + [live.name for live in self.sources]

    def source_reports(self) -> tuple[SourceReport, ...]:
        """What was fetched from each live source; complete once :meth:`batches` is exhausted."""
        return tuple(live.report() for live in self.sources)

    def nothing_read(self) -> InputError:
        """The error for inputs that yielded no span at all, with the first reasons."""
        reasons = "; ".join(f"{s.file}: {s.reason}" for s in self.skipped[:5])
        live = f" and {len(self.sources)} live source(s)" if self.sources else ""
        read = f"{len(self.files)} file(s){live}"
        return InputError(f"no spans could be read from {read}" + (f" ({reasons})" if reasons else ""))


@dataclass(frozen=True)
class CheckedSpans:
    """Spans of whole traces after the checks, with what the checks skipped and noticed, and
    the per-file tallies of what is left."""

    table: pa.Table
    skipped: tuple[Skipped, ...]
    notices: tuple[Notice, ...]
    tallies: dict[str, FileTally]
    #: Row of each span's parent in ``table``, -1 for none (see ``parent_rows``).
    parents: np.ndarray


def check_spans(table: pa.Table) -> CheckedSpans:
    """Drop duplicate spans, cut parent cycles, report absent parents and tally every file.

    Every check looks within traces only, so it runs on any partition that keeps traces whole.
    """
    table, duplicates = drop_duplicates(table)
    table, notices, parents = repair_parents(table)
    return CheckedSpans(table, tuple(duplicates), tuple(notices), tally_files(table), parents)


def ingest(
    paths: Iterable[str | os.PathLike[str]],
    *,
    sources: Sequence[TraceSource] = (),
    fmt: str | None = None,
    jobs: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> Ingest:
    """Read every input into one span table, with per-file reports and skipped records.

    ``sources`` are live sources, read after the files through the same readers; ``fmt``
    forces a format (a key of ``FORMATS``) on files instead of detection; ``jobs`` is the
    number of worker processes (default: all cores); ``on_progress`` receives bytes of file
    input read. Raises :class:`InputError` when no input yields a single span.
    """
    reader = InputReader(paths, sources=sources, fmt=fmt, jobs=jobs, on_progress=on_progress)
    batches = list(reader.batches())
    table = pa.Table.from_batches(batches, schema=SCHEMA) if batches else empty_table()
    if table.num_rows == 0:
        raise reader.nothing_read()
    # Parsing leaves freed heap and pool pages resident; the checks' arrays would come on top.
    release_freed_memory()
    checked = check_spans(table)
    return Ingest(
        spans=checked.table,
        files=file_reports(checked.tallies, reader.inputs, reader.formats),
        skipped=tuple(sorted(reader.skipped + list(checked.skipped))),
        notices=merge_notices(reader.notices + list(checked.notices)),
        sources=reader.source_reports(),
    )


class _SharedColumns:
    """Columns whose every row is alike, backed by one shared buffer for all batches.

    A batch's ``source`` repeats one path, and most landscapes leave whole semantic columns
    empty (no RPC, no messaging); each batch would otherwise hold its own copy of them, which
    for a million spans is tens of megabytes of identical bytes. Slices of one array per value
    share its buffers, and the table keeps its schema.
    """

    __slots__ = ("_arrays",)

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, object], pa.Array] = {}

    def _slice(self, key: tuple[str, object], rows: int, make: Callable[[int], pa.Array]) -> pa.Array:
        array = self._arrays.get(key)
        if array is None or len(array) < rows:
            # Grown with headroom, so that batches of slightly varying size share one array.
            array = self._arrays[key] = make(max(rows, 2 * len(array) if array is not None else rows))
        return array.slice(0, rows)

    def complete(self, lean: pa.RecordBatch, source: str) -> pa.RecordBatch:
        """A span batch from a :func:`_parse_lean` batch: the columns it left out, as shared slices."""
        rows = lean.num_rows
        present = set(lean.schema.names)
        columns = []
        for field in SCHEMA:
            if field.name in present:
                columns.append(lean.column(field.name))
            elif field.name == "source":
                columns.append(
                    self._slice(("source", source), rows, lambda n: pa.array([source] * n, type=pa.string()))
                )
            else:
                columns.append(self._slice(("nulls", field.type), rows, partial(pa.nulls, type=field.type)))
        return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def _parse_lean(chunk: Chunk, keep_attributes: bool = True) -> ChunkResult:
    """Parse a chunk, leaving out the source column and every all-null column.

    The parent rebuilds those from shared buffers (:class:`_SharedColumns`), so they need not
    be pickled, sent and unpickled at all. A reader that fails on a chunk (a bug: readers skip
    bad records themselves) loses that chunk, counted as skipped, not the scan.
    """
    try:
        result = parse_chunk(chunk, keep_attributes)
    except Exception as error:
        reason = f"reader failed on this chunk ({type(error).__name__}: {error})"
        nothing = pa.record_batch([], schema=pa.schema([]))
        return ChunkResult(nothing, (Skipped(chunk.source, f"chunk at {chunk.position}", reason),))
    batch = result.batch
    keep = [
        index
        for index, (field, column) in enumerate(zip(SCHEMA, batch.columns, strict=True))
        if field.name != "source" and column.null_count < batch.num_rows
    ]
    return ChunkResult(batch.select(keep), result.skipped, result.notices)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _parse_source(
    live: TraceSource,
    parse: Callable[[Chunk], ChunkResult],
    executor: Executor | None,
    jobs: int,
    skipped: list[Skipped],
) -> Iterator[ChunkResult]:
    """Parse a live source's answers with their formats' readers, as the files' chunks are parsed.

    A reader's skip positions are within one answer, so each gets the request it answered prefixed.
    """
    pending: list[tuple[str, Future[ChunkResult]]] = []
    for item in live.payloads():
        if isinstance(item, Skipped):
            skipped.append(item)
            continue
        for chunk in FORMATS[item.format].split(io.BytesIO(item.data), live.name):
            if isinstance(chunk, Skipped):
                skipped.append(_within(chunk, item.where))
            elif executor is None:
                yield _located(parse(chunk), item.where)
            else:
                pending.append((item.where, executor.submit(parse, chunk)))
                if len(pending) >= 2 * jobs:
                    where, future = pending.pop(0)
                    yield _located(future.result(), where)
    for where, future in pending:
        yield _located(future.result(), where)


def _within(record: Skipped, where: str) -> Skipped:
    return dataclasses.replace(record, position=f"{where}: {record.position}")


def _located(result: ChunkResult, where: str) -> ChunkResult:
    if not result.skipped:
        return result
    return dataclasses.replace(result, skipped=tuple(_within(record, where) for record in result.skipped))


__all__ = [
    "CheckedSpans",
    "InputError",
    "InputReader",
    "Notice",
    "check_spans",
    "expand_paths",
    "ingest",
    "open_input",
    "stream_chunks",
]
