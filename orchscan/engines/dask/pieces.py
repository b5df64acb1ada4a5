"""Inputs cut into pieces that workers read on their own, and the chunks of each part of a piece.

A large file is cut where its format allows: the Collector's size-prefixed protobuf between two
frames, JSON Lines between two lines; anything else (a JSON document, a bare protobuf request,
gzip) is read whole. Each run of a cut file is handed to the format's own ``split`` as a stream
of its own, so the readers' chunking and error handling stay the one implementation; a run's
chunk positions count from the run's start and are moved to where the run sits in the file
(bytes for protobuf, line numbers for JSON Lines), so every span and skip reads as it would from
the whole file. A cut is only made where ``split`` reads the rest of the file the same way:
before a frame that announces itself as framed, before a line that is a complete JSON value
followed by more content. Small files are grouped into pieces of about the same size.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchscan.collectors.model.records import Chunk, Skipped
from orchscan.collectors.traces.detect import HEAD_BYTES, describe_unrecognised, detect
from orchscan.collectors.traces.formats.otlp_proto import is_framed
from orchscan.collectors.traces.ingest import _chunks as file_chunks
from orchscan.collectors.traces.jsonio import JsonInputError, loads
from orchscan.collectors.traces.registry import FORMATS
from orchscan.engines.dask.inputs import InputFile, is_url, open_file, open_range, open_raw

#: Formats whose inputs may be cut between size-prefixed frames, and between JSON Lines.
FRAMED = frozenset({"otlp-proto"})
LINES = frozenset({"otlp-json", "jaeger-json", "zipkin-json"})

#: A line longer than this is never cut before (the readers treat very long lines specially).
MAX_CUT_LINE = 16 << 20
#: How far ``split_json`` looks past the first line for more content.
_LOOK_AHEAD = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_POSITION = re.compile(r"^(byte|line) (\d+)")


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
    Anything unusual (unreadable, gzip, damage) leaves the rest uncut, for the reader to report.
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
        if fmt in FRAMED and is_framed(head):
            starts = [(offset, 1) for offset in _frame_cuts(raw, file.size, piece_bytes)]
        elif fmt in LINES:
            starts = _line_cuts(raw, piece_bytes)
        else:
            return whole
    if len(starts) == 1:
        return whole
    stops = [offset for offset, _ in starts[1:]] + [file.size]
    return tuple(
        Segment(file, fmt, start, stop, line) for (start, line), stop in zip(starts, stops, strict=True)
    )


def _frame_cuts(raw: Any, size: int, piece_bytes: int) -> list[int]:
    """Offsets of frames to start runs at: about ``piece_bytes`` apart, each one that ``split``
    takes for framed input. The walk stops at a frame that runs past the end (the last run's
    reader reports it)."""
    cuts = [0]
    offset = 0
    while offset + 5 <= size:
        raw.seek(offset)
        header = raw.read(5)
        if len(header) < 5:
            break
        length = int.from_bytes(header[:4], "big")
        if offset + 4 + length > size:
            break
        if offset - cuts[-1] >= piece_bytes and is_framed(header):
            cuts.append(offset)
        offset += 4 + length
    return cuts


def _line_cuts(raw: Any, piece_bytes: int) -> list[tuple[int, int]]:
    """(offset, line number) of lines to start runs at, about ``piece_bytes`` apart; only the
    start when the file is not JSON Lines (its first line is no JSON value or nothing follows).

    ``split`` reads a run as JSON Lines when its first line is a JSON value and more follows: a
    run starts at such a line, the line after it is not blank, and it holds two lines at least.
    """
    raw.seek(0)
    first = raw.readline()
    if not (raw.read(_LOOK_AHEAD).strip() and _is_json_value(first)):
        return [(0, 1)]
    raw.seek(0)
    cuts = [(0, 1)]
    candidate: tuple[int, int] | None = None
    offset, number = 0, 1
    for line in iter(raw.readline, b""):
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
        loads(line)
    except JsonInputError:
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
    if segment.stop is None:
        file = segment.file
        if is_url(file.location):
            yield from _url_chunks(file, forced)
        else:  # exactly as the local engine reads a file
            yield from file_chunks(Path(file.location), file.source, forced)
        return
    yield from _run_chunks(segment, segment.stop)


def _run_chunks(segment: Segment, stop: int) -> Iterator[Chunk | Skipped | str]:
    fmt = segment.fmt or ""
    framed = fmt in FRAMED
    shift = segment.start if framed else segment.first_line - 1
    source = segment.file.source
    yield fmt
    try:
        with open_range(segment.file.location, segment.start, stop) as stream:
            for item in FORMATS[fmt].split(stream, source):
                if isinstance(item, Skipped):
                    yield _shifted(item, shift)
                    continue
                if item.position < (0 if framed else 1):
                    # Planning cut where split would read the run differently: a bug, not bad input.
                    raise RuntimeError(f"{source}: the run from byte {segment.start} is not read as {fmt}")
                yield dataclasses.replace(item, position=item.position + shift)
    except OSError as error:
        yield Skipped(source, "file", f"read failed part-way: {error}")


def _shifted(skipped: Skipped, shift: int) -> Skipped:
    """A skip found in a run, at its position in the whole file."""
    found = _POSITION.match(skipped.position)
    if found is None or not shift:
        return skipped
    kind, number = found.groups()
    moved = f"{kind} {int(number) + shift}{skipped.position[found.end() :]}"
    return dataclasses.replace(skipped, position=moved)


def _url_chunks(file: InputFile, forced: str | None) -> Iterator[Chunk | Skipped | str]:
    """A whole file at a URL, read as the local engine reads a whole file at a path."""
    source = file.source
    try:
        stream = open_file(file.location)
    except OSError as error:
        yield Skipped(source, "file", f"cannot open: {error.strerror or error}")
        return
    with stream:
        try:
            head = stream.peek(HEAD_BYTES)[:HEAD_BYTES]  # type: ignore[attr-defined]
        except (OSError, EOFError) as error:
            yield Skipped(source, "file", f"cannot read: {error}")
            return
        if not head.strip():
            yield Skipped(source, "file", "empty file")
            return
        fmt = forced or detect(head)
        if fmt is None:
            yield Skipped(source, "file", describe_unrecognised(head))
            return
        yield fmt
        try:
            yield from FORMATS[fmt].split(stream, source)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            yield Skipped(source, "file", f"read failed part-way: {error}")
