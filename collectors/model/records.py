"""Small records that travel beside the span table: what was read, what was skipped, why."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from orchscan.collectors.model.spans import total_services, total_traces


@dataclass(frozen=True, order=True, slots=True)
class Skipped:
    """Input that could not become spans. Skipping is data, never just a log line.

    ``position`` says where in the file: a byte offset for protobuf, a line number for JSON
    Lines, a path such as ``data[0].spans[3]`` inside a JSON document. ``count`` folds
    identical reasons at one position (e.g. 12 duplicate spans in one file).
    """

    file: str
    position: str
    reason: str
    count: int = 1


@dataclass(frozen=True, order=True, slots=True)
class Notice:
    """A defect that was repaired or tolerated; the spans involved were kept.

    Examples: spans whose parent is absent from the input (kept as roots of their fragment),
    parent links forming a cycle (the link was cut), an end time before the start (set to the
    start), a name longer than its cap (cut and marked).
    """

    file: str
    reason: str
    count: int


@dataclass(frozen=True, order=True, slots=True)
class FileReport:
    """What one input file contributed."""

    file: str
    format: str
    spans: int
    traces: int
    services: tuple[str, ...]
    start_ns: int | None
    end_ns: int | None


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What was fetched from one live source (a tracing backend's query API) for a time window.

    ``requests`` counts every HTTP request sent, retries included; ``retries`` the repeated
    ones; ``pages`` the search answers read; ``traces`` the distinct traces handed to the
    readers; ``errors`` the requests that failed for good (each also a :class:`Skipped`
    record); ``bytes`` the response bodies received, before decompression.
    """

    source: str
    format: str
    start_ns: int
    end_ns: int
    requests: int
    retries: int
    pages: int
    traces: int
    errors: int
    bytes: int


@dataclass(frozen=True, slots=True)
class FileExtent:
    """Where a chunk's bytes lie in a regular file, for the worker that parses it to read them.

    Handing a worker the bytes themselves cost the reading process a copy, a pickle and a pipe
    write of every byte of the input. ``held`` names the reading process's own open handle on
    the file where the system lets others open it (``/proc/PID/fd/N`` on Linux): tried before
    ``path``, it still reaches the file that was split after it was renamed or deleted.
    ``device`` and ``inode`` name that file, so that another one found instead is noticed. Each
    run is ``(start, end, prefixed)``: the bytes ``[start, end)``, preceded by their length as a
    4-byte big-endian size when ``prefixed`` (how the OTLP frame reader hands on runs of a bare
    request's fields).
    """

    path: str
    held: str | None
    device: int
    inode: int
    runs: tuple[tuple[int, int, bool], ...]


@dataclass(frozen=True, slots=True)
class Chunk:
    """A unit of parsing work: part of one file, small enough to hand to a worker process.

    Its bytes are ``payload``, or, with an ``extent``, still in the file (``payload`` empty).
    """

    format: str
    source: str
    payload: bytes
    position: int
    extent: FileExtent | None = None

    @property
    def size(self) -> int:
        """Bytes of input the chunk holds, in ``payload`` or in the file."""
        if self.extent is None:
            return len(self.payload)
        return sum(end - start for start, end, _ in self.extent.runs)


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """The spans parsed from one chunk, what had to be skipped in it and what was repaired."""

    batch: pa.RecordBatch
    skipped: tuple[Skipped, ...]
    notices: tuple[Notice, ...] = ()


@dataclass(frozen=True, slots=True)
class IngestReport:
    """The account of how the inputs were read, without the spans: per file, skipped, totals.

    ``services`` counts distinct services that emitted spans; ``sources`` says what was
    fetched from each live source (each also has an entry in ``files``).
    """

    files: tuple[FileReport, ...]
    skipped: tuple[Skipped, ...]
    notices: tuple[Notice, ...]
    spans: int
    traces: int
    services: int
    sources: tuple[SourceReport, ...] = ()


@dataclass(frozen=True, slots=True)
class Ingest:
    """Everything read from the inputs: the span table plus the account of how it was read.

    ``files`` has one entry per input file and per live source; ``sources`` adds what was
    fetched from each live source.
    """

    spans: pa.Table
    files: tuple[FileReport, ...]
    skipped: tuple[Skipped, ...]
    notices: tuple[Notice, ...]
    sources: tuple[SourceReport, ...] = ()

    @property
    def skipped_total(self) -> int:
        """Records skipped over all files."""
        return sum(record.count for record in self.skipped)

    def report(self) -> IngestReport:
        """The account of this ingest, with its totals."""
        return IngestReport(
            files=self.files,
            skipped=self.skipped,
            notices=self.notices,
            spans=self.spans.num_rows,
            traces=total_traces(self.spans),
            services=total_services(self.spans),
            sources=self.sources,
        )


def merge_notices(notices: list[Notice]) -> tuple[Notice, ...]:
    """One notice per file and reason, counts summed (chunks of one file report the same repairs)."""
    counts: dict[tuple[str, str], int] = {}
    for notice in notices:
        counts[(notice.file, notice.reason)] = counts.get((notice.file, notice.reason), 0) + notice.count
    return tuple(sorted(Notice(file, reason, count) for (file, reason), count in counts.items()))
