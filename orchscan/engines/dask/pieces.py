"""Inputs cut into pieces that workers read on their own, and the chunks of each part of a piece.

A large file is cut where its format allows: the Collector's size-prefixed protobuf between two
frames, JSON Lines between two lines; anything else (a JSON document, a bare protobuf request,
gzip) is read whole. Each run of a cut file is handed to the format's own ``split`` as a stream
of its own, so the readers' chunking stays the one implementation; a run's chunk positions count
from the run's start and are moved to where the run sits in the file (bytes for protobuf, line
numbers for JSON Lines), so every span and every skip the parsers report reads as it would from
the whole file. A cut is only made where ``split`` reads the rest of the file the same way: before
a frame whose head ``split`` takes for framed input, before a line that is a complete JSON value
followed by more content. A file with damage that ``split`` itself would report (a frame whose
size does not lead to the next, a cut-off end, an over-long line) is read whole, so that its
reports and the resynchronisation after the damage are exactly the local engine's. Small files
are grouped into pieces of about the same size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from orchscan.collectors.model.records import Chunk, Skipped
from orchscan.collectors.traces import jsonio
from orchscan.collectors.traces.detect import HEAD_BYTES, detect
from orchscan.collectors.traces.formats import otlp_frames
from orchscan.collectors.traces.ingest import stream_chunks
from orchscan.collectors.traces.registry import FORMATS
from orchscan.engines.dask.inputs import InputFile, open_file, open_range, open_raw

#: Formats whose inputs may be cut between size-prefixed frames, and between JSON Lines.
FRAMED = frozenset({"otlp-proto"})
LINES = frozenset({"otlp-json", "jaeger-json", "zipkin-json"})

#: A line longer than this is never cut before (the readers stream very long ones as documents).
MAX_CUT_LINE = 16 << 20
#: How far ``split_json`` looks past the first line for more content.
_LOOK_AHEAD = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Segment:
    """A whole input file, or a run of its frames or lines (``start`` to ``stop`` in bytes).

    ``fmt`` is the format planning found for a run (a whole file's is detected when it is read);
    ``first_line`` is the number of a JSON Lines run's first line.
    """

    file: InputFile
    fmt: str | None = None
    start: int = 0
    stop: int | None = None
    first_line: int = 1

    @property
    def size(self) -> int:
        """Bytes to read."""
        return self.file.size if self.stop is None else self.stop - self.start


def plan_file(file: InputFile, forced: str | None, piece_bytes: int) -> tuple[Segment, ...]:
    """The runs of about ``piece_bytes`` a large file is cut into; itself whole where it cannot be cut.

    Runs on a worker: only the file's frame headers (protobuf) or its lines (JSON Lines) are read.
    Anything unusual (unreadable, gzip, damage) leaves the file whole, for its reader to report.
    """
    whole = (Segment(file),)
    try:
        raw = open_raw(file.location)
    except OSError:
        return whole
    with raw:
        head = raw.read(HEAD_BYTES)
        if head[:2] == _GZIP_MAGIC or not head.strip():
            return whole
        fmt = forced or detect(head)
        starts: list[tuple[int, int]] | None = None
        if fmt in FRAMED and otlp_frames.framing(head) == otlp_frames.FRAMED:
            cuts = _frame_cuts(raw, file.size, piece_bytes)
            starts = None if cuts is None else [(offset, 1) for offset in cuts]
        elif fmt in LINES:
            starts = _line_cuts(raw, piece_bytes)
    if starts is None or len(starts) == 1:
        return whole
    stops = [offset for offset, _ in starts[1:]] + [file.size]
    return tuple(
        Segment(file, fmt, start, stop, line) for (start, line), stop in zip(starts, stops, strict=True)
    )


def _frame_cuts(raw: Any, size: int, piece_bytes: int) -> list[int] | None:
    """Offsets of frames to start runs at, about ``piece_bytes`` apart; None when a frame's size
    does not lead to the next frame or the end (damage ``split`` reports and resynchronises)."""
    cuts = [0]
    offset = 0
    while offset < size:
        raw.seek(offset)
        header = raw.read(otlp_frames.PREFIX.size + 1)
        if len(header) <= otlp_frames.PREFIX.size:
            return None
        (length,) = otlp_frames.PREFIX.unpack_from(header)
        end = offset + otlp_frames.PREFIX.size + length
        if not 0 < length <= otlp_frames.RECORD_BYTES or header[-1] != _RESOURCE_SPANS_TAG or end > size:
            return None
        if offset - cuts[-1] >= piece_bytes and _framed_from(raw, offset, size):
            cuts.append(offset)
        offset = end
    return cuts


#: The first byte of a frame's body (field 1 of a TracesData, length-delimited).
_RESOURCE_SPANS_TAG = 0x0A


def _framed_from(raw: Any, offset: int, size: int) -> bool:
    """Whether ``split`` reads a stream starting at ``offset`` as framed (it judges by this head)."""
    raw.seek(offset)
    return otlp_frames.framing(raw.read(min(HEAD_BYTES, size - offset))) == otlp_frames.FRAMED


def _line_cuts(raw: Any, piece_bytes: int) -> list[tuple[int, int]] | None:
    """(offset, line number) of lines to start runs at, about ``piece_bytes`` apart; only the
    start when the file is not JSON Lines, None when a line is longer than the readers take.

    ``split`` reads a run as JSON Lines when its first line is a JSON value ending in a newline
    and more follows: a run starts at such a line, the line after it is not blank, and it holds
    two lines at least.
    """
    raw.seek(0)
    first = raw.readline(jsonio.WHOLE_DOCUMENT_BYTES + 1)
    if not (first.endswith(b"\n") and raw.read(_LOOK_AHEAD).strip() and _is_json_value(first)):
        return [(0, 1)]
    raw.seek(0)
    cuts = [(0, 1)]
    candidate: tuple[int, int] | None = None
    offset, number = 0, 1
    for line in iter(raw.readline, b""):
        if len(line) > jsonio.RECORD_BYTES:
            return None
        if candidate is not None and line[:_LOOK_AHEAD].strip():
            cuts.append(candidate)
        candidate = None
        if (
            offset - cuts[-1][0] >= piece_bytes
            and number - cuts[-1][1] >= 2
            and line.endswith(b"\n")
            and len(line) <= MAX_CUT_LINE
            and _is_json_value(line)
        ):
            candidate = (offset, number)
        offset += len(line)
        number += 1
    return cuts


def _is_json_value(line: bytes) -> bool:
    try:
        jsonio.loads(line)
    except jsonio.JsonInputError:
        return False
    return True


def group_pieces(segments: Sequence[Segment], piece_bytes: int) -> list[tuple[Segment, ...]]:
    """Consecutive segments grouped into pieces of at most ``piece_bytes`` (a larger one alone)."""
    pieces: list[tuple[Segment, ...]] = []
    current: list[Segment] = []
    held = 0
    for segment in segments:
        if current and held + segment.size > piece_bytes:
            pieces.append(tuple(current))
            current, held = [], 0
        current.append(segment)
        held += segment.size
    if current:
        pieces.append(tuple(current))
    return pieces


def segment_chunks(segment: Segment, forced: str | None) -> Iterator[Chunk | Skipped | str]:
    """The format name first, then the segment's chunks and split-time skips, placed in the file."""
    if segment.stop is not None:
        yield from _run_chunks(segment, segment.stop)
        return
    try:
        stream = open_file(segment.file.location)
    except OSError as error:
        yield Skipped(segment.file.source, "file", f"cannot open: {error.strerror or error}")
        return
    # Exactly as the local engine reads a whole file.
    yield from stream_chunks(stream, segment.file.source, forced)


def _run_chunks(segment: Segment, stop: int) -> Iterator[Chunk | Skipped | str]:
    fmt = segment.fmt or ""
    framed = fmt in FRAMED
    shift = segment.start if framed else segment.first_line - 1
    source = segment.file.source
    yield fmt
    try:
        with open_range(segment.file.location, segment.start, stop) as stream:
            for item in FORMATS[fmt].split(stream, source):
                # Planning leaves damaged files whole; a run must read as clean framed or lines input.
                if isinstance(item, Skipped) or item.position < (0 if framed else 1):
                    raise RuntimeError(f"{source}: the run from byte {segment.start} is not read as {fmt}")
                yield dataclasses.replace(item, position=item.position + shift)
    except OSError as error:
        yield Skipped(source, "file", f"read failed part-way: {error}")
