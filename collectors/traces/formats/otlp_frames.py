"""Where OTLP protobuf messages start and end: bare requests, Collector frames, and resynchronisation.

A bare ``ExportTraceServiceRequest`` (what an OTLP/HTTP exporter POSTs) is a sequence of
``ResourceSpans`` fields (tag ``0x0a``, a varint length, the bytes); the Collector's file exporter
writes each request after its size as a 4-byte big-endian integer. Both are cut into chunks of
whole ``ResourceSpans`` fields (frames of consecutive fields, verbatim, so byte offsets stay
exact), so that no chunk holds much more than ``CHUNK_BYTES`` whatever the message size.

Damage is found by walking the fields: a frame whose fields do not end exactly at its declared
size, and after which no plausible frame follows, has a damaged size prefix. Reading then
resumes at the next plausible frame (a size followed by fields that end exactly there and are
followed by another plausible frame or the end of the input), and the bytes in between are
counted as skipped. The same search finds the next ``ResourceSpans`` field of a bare request
after a damaged length.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Generator, Iterator
from typing import IO

from orchscan.collectors.model.records import Chunk, FileExtent, Skipped
from orchscan.collectors.traces.inputs import plain_file

PREFIX = struct.Struct(">I")
#: Bytes of consecutive fields put into one chunk before it is handed to a worker.
CHUNK_BYTES = 4 << 20
#: Largest frame, or single ``ResourceSpans`` field of a bare request, held in memory. A bare
#: request's longer field is skipped (counted) without being held; a frame declaring more is taken
#: for a damaged size prefix. The Collector's frames are export batches, a few megabytes at most.
RECORD_BYTES = 64 << 20

_RESOURCE_SPANS_TAG = 0x0A
_LENGTH_DELIMITED = 2
# ResourceSpans fields: resource, scope_spans, schema_url, and the deprecated
# instrumentation_library_spans (1000); every one length-delimited.
_RESOURCE_SPANS_FIELDS = frozenset((1, 2, 3, 1000))
_READ_AHEAD = 1 << 20
# Bytes already used are forgotten in steps of this size, not frame by frame: each drop moves the
# bytes still held to the front of the buffer.
_COMPACT = 4 << 20

_TAG_BYTE = bytes((_RESOURCE_SPANS_TAG,))
# Bytes looked at to tell a framed stream from a bare request (as format detection does).
_HEAD = 1 << 16

BARE, FRAMED = "bare", "framed"


def _varint(data: bytes | bytearray, pos: int, end: int) -> tuple[int, int] | None:
    """The varint at ``pos`` and the position after it, or None when it runs past ``end`` or 10 bytes."""
    result = shift = 0
    while pos < end and shift < 70:
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return result, pos
        shift += 7
    return None


def _plausible_resource_spans(data: bytes | bytearray, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` reads as ResourceSpans fields (it may be cut short)."""
    pos = start
    while pos < end:
        tag = _varint(data, pos, end)
        if tag is None:
            return True  # cut short by the window
        if tag[0] & 7 != _LENGTH_DELIMITED or tag[0] >> 3 not in _RESOURCE_SPANS_FIELDS:
            return False
        length = _varint(data, tag[1], end)
        if length is None:
            return True
        pos = length[1] + length[0]
    return True


def _walk(data: bytes | bytearray, start: int, end: int, *, exact: bool) -> int:
    """Walk ResourceSpans fields from ``start``; return where the walk stopped.

    The walk stops at ``end``, at the first byte that is not a plausible field, or at a field
    running past ``end`` (its start is returned). With ``exact`` a field that runs past ``end``
    counts as damage; without it the window is merely cut short.
    """
    pos = start
    while pos < end:
        if data[pos] != _RESOURCE_SPANS_TAG:
            return pos
        length = _varint(data, pos + 1, end)
        if length is None:
            return pos
        body_end = length[1] + length[0]
        if not _plausible_resource_spans(data, length[1], min(body_end, end)):
            return pos
        if body_end > end:
            return pos if exact else end
        pos = body_end
    return pos


def framing(head: bytes) -> str | None:
    """``BARE`` or ``FRAMED`` when ``head`` starts a request of that kind, else None."""
    if head[:1] == _TAG_BYTE and _walk(head, 0, len(head), exact=False) == len(head):
        return BARE
    if len(head) >= 5 and head[4] == _RESOURCE_SPANS_TAG:
        (size,) = PREFIX.unpack_from(head)
        end = min(len(head), 4 + size)
        if size and _walk(head, 4, end, exact=4 + size <= len(head)) == end:
            return FRAMED
    return None


class _Window:
    """A stream's bytes from an absolute offset on, read ahead on demand and dropped when used."""

    __slots__ = ("base", "data", "eof", "file", "stream")

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.data = bytearray()
        self.base = 0
        self.eof = False
        #: The regular file the stream reads as stored, from its start (see :func:`plain_file`).
        self.file = plain_file(stream) if hasattr(os, "pread") else None

    @property
    def end(self) -> int:
        """Absolute offset just past the bytes held."""
        return self.base + len(self.data)

    def fill(self, end: int) -> bool:
        """Hold bytes up to absolute offset ``end``; False when the input ends before it."""
        while self.end < end and not self.eof:
            more = self.stream.read(max(end - self.end, _READ_AHEAD))
            if not more:
                self.eof = True
            self.data += more
        return self.end >= end

    def get(self, start: int, end: int) -> bytes:
        """The bytes between two absolute offsets (both held)."""
        return bytes(self.data[start - self.base : end - self.base])

    def jump(self, offset: int) -> None:
        """Go on reading at absolute offset ``offset`` (of a seekable stream), forgetting what is held."""
        self.stream.seek(offset)
        self.data.clear()
        self.base = offset
        self.eof = False

    def drop(self, upto: int) -> None:
        """Allow the bytes before absolute offset ``upto`` to be forgotten."""
        upto = min(upto, self.end)
        if upto - self.base >= _COMPACT or upto == self.end:
            del self.data[: upto - self.base]
            self.base = upto


def _exact_field(data: bytes | bytearray, pos: int, end: int) -> int | None:
    """End of the ResourceSpans field at ``pos`` when its inner fields end exactly with it, else None."""
    if pos >= end or data[pos] != _RESOURCE_SPANS_TAG:
        return None
    length = _varint(data, pos + 1, end)
    if length is None or length[1] + length[0] > end:
        return None
    field_end = length[1] + length[0]
    inner = length[1]
    while inner < field_end:
        tag = _varint(data, inner, field_end)
        if tag is None or tag[0] & 7 != _LENGTH_DELIMITED or tag[0] >> 3 not in _RESOURCE_SPANS_FIELDS:
            return None
        size = _varint(data, tag[1], field_end)
        if size is None:
            return None
        inner = size[1] + size[0]
    return field_end if inner == field_end else None


class ExtentChanged(Exception):
    """A chunk's file is no longer what was split: replaced, or cut short."""


def read_extent(chunk: Chunk) -> Chunk:
    """The chunk with the bytes its :class:`FileExtent` names read from the file.

    Raises :class:`ExtentChanged` when the file that was split can no longer be opened (another
    file took its path, say), or no longer holds every byte (the bytes would not be the ones
    that were split).
    """
    extent = chunk.extent
    if extent is None:
        return chunk
    handle = _open_split_file(extent)
    try:
        parts = []
        for start, end, prefixed in extent.runs:
            data = os.pread(handle, end - start, start)
            if len(data) < end - start:
                raise ExtentChanged(f"it was cut short at byte {start + len(data)} while it was read")
            parts.append(PREFIX.pack(len(data)) + data if prefixed else data)
    finally:
        os.close(handle)
    return Chunk(chunk.format, chunk.source, b"".join(parts), chunk.position)


def _open_split_file(extent: FileExtent) -> int:
    """A handle on the file that was split: through the reading process's own handle, else its path."""
    for name in (extent.held, extent.path):
        if name is None:
            continue
        try:
            handle = os.open(name, os.O_RDONLY)
        except OSError:
            continue
        status = os.fstat(handle)
        if (status.st_dev, status.st_ino) == (extent.device, extent.inode):
            return handle
        os.close(handle)
    raise ExtentChanged("it can no longer be opened, or another file took its place, while it was read")


def split(stream: IO[bytes], source: str, fmt: str) -> Iterator[Chunk | Skipped]:
    """Cut a bare request or a framed stream into chunks of whole frames or ResourceSpans fields."""
    window = _Window(stream)
    window.fill(_HEAD)
    splitter = _Splitter(window, source, fmt)
    if framing(window.get(0, window.end)) == FRAMED:
        yield from splitter.framed()
    else:
        yield from splitter.bare()
    yield from splitter.flush()


class _Splitter:
    """The cutting state of one input: its window and the frames gathered for the next chunk.

    The chunks of a regular file read as stored name where their bytes lie in it (see
    :class:`FileExtent`), for the worker to read; other inputs' chunks carry their bytes.
    """

    def __init__(self, window: _Window, source: str, fmt: str) -> None:
        self.window = window
        self.source = source
        self.fmt = fmt
        self.parts: list[bytes] = []
        self.runs: list[tuple[int, int, bool]] = []
        self.size = 0
        self.position = 0

    def add(self, start: int, end: int, *, framed: bool) -> Iterator[Chunk]:
        """Gather the held bytes ``[start, end)``: a whole frame, or a run of ResourceSpans fields.

        A chunk's position is the offset of its first frame's size prefix; a run of fields gets a
        synthetic prefix, so its position lies four bytes before the run.
        """
        if not self.parts and not self.runs:
            self.position = start if framed else start - PREFIX.size
        if self.window.file is not None:
            self.runs.append((start, end, not framed))
            self.size += end - start + (0 if framed else PREFIX.size)
        else:
            body = self.window.get(start, end)
            self.parts.append(body if framed else PREFIX.pack(len(body)) + body)
            self.size += len(self.parts[-1])
        if self.size >= CHUNK_BYTES:
            yield from self.flush()

    def flush(self) -> Iterator[Chunk]:
        """Hand out the gathered frames as one chunk."""
        if self.runs and self.window.file is not None:
            extent = FileExtent(*self.window.file, runs=tuple(self.runs))
            yield Chunk(self.fmt, self.source, b"", self.position, extent)
        elif self.parts:
            yield Chunk(self.fmt, self.source, b"".join(self.parts), self.position)
        self.parts, self.runs, self.size = [], [], 0

    def bare(self) -> Iterator[Chunk | Skipped]:
        """A bare request: ResourceSpans fields to the end of the input, in runs of ``CHUNK_BYTES``."""
        window = self.window
        pos = run = 0
        while window.fill(pos + 1):
            window.fill(pos + 11)
            length = None
            if window.data[pos - window.base] == _RESOURCE_SPANS_TAG:
                length = _varint(window.data, pos - window.base + 1, len(window.data))
            if length is None:
                yield from self.run(run, pos)
                pos = run = yield from self.resync(pos, self._field_at, "damaged ResourceSpans field")
                continue
            field_end = window.base + length[1] + length[0]
            if field_end - pos > RECORD_BYTES:
                yield from self.run(run, pos)
                yield Skipped(
                    self.source,
                    f"byte {pos}",
                    f"ResourceSpans field of {field_end - pos:,} bytes exceeds the record limit of "
                    f"{RECORD_BYTES:,} bytes: skipped",
                )
                pos = run = self.skip_to(field_end)
                continue
            if not window.fill(field_end):
                # Cut short: the worker keeps the complete spans of the partial field and says so.
                yield from self.run(run, window.end)
                return
            pos = field_end
            if pos - run >= CHUNK_BYTES:
                yield from self.run(run, pos)
                run = pos
        yield from self.run(run, pos)

    def run(self, start: int, end: int) -> Iterator[Chunk]:
        """Gather a run of fields and forget the bytes before its end."""
        if end > start:
            yield from self.add(start, end, framed=False)
        self.window.drop(end)

    def truncated(self, pos: int, declared_end: int) -> Skipped:
        """The skip that accounts for a message the input ends inside of."""
        return Skipped(
            self.source,
            f"byte {pos}",
            f"truncated message: {declared_end - pos:,} bytes declared, {self.window.end - pos:,} present "
            "(the complete ResourceSpans before the cut are kept)",
        )

    def skip_to(self, offset: int) -> int:
        """Read up to ``offset`` without holding the bytes; the offset reached."""
        window = self.window
        window.drop(min(offset, window.end))
        while window.end < offset and window.fill(min(offset, window.end + _READ_AHEAD)):
            window.drop(min(offset, window.end))
        window.drop(min(offset, window.end))
        return window.base

    def framed(self) -> Iterator[Chunk | Skipped]:
        """The Collector's framing: a 4-byte size, then a request of that size, repeated."""
        window = self.window
        pos = 0
        while True:
            if window.file is not None:
                checked = yield from self.in_place(pos)
                if checked != pos:
                    window.jump(checked)
                    pos = checked
            if not window.fill(pos + 1):
                break
            if not window.fill(pos + PREFIX.size):
                yield Skipped(
                    self.source, f"byte {pos}", f"truncated size prefix ({window.end - pos} of 4 bytes)"
                )
                window.drop(window.end)
                return
            (size,) = PREFIX.unpack_from(window.data, pos - window.base)
            body, end = pos + PREFIX.size, pos + PREFIX.size + size
            if size > RECORD_BYTES:
                pos = yield from self.resync(pos, self._frame_at, "damaged size prefix")
                continue
            if not window.fill(end):
                held = len(window.data)
                if _walk(window.data, body - window.base, held, exact=False) == held:
                    # The last message is cut short. A partial field goes to the worker, which keeps
                    # its complete spans and says so; a cut between fields is said here.
                    if _walk(window.data, body - window.base, held, exact=True) == held:
                        yield self.truncated(pos, end)
                    yield from self.run(body, window.end)
                    return
                pos = yield from self.resync(pos, self._frame_at, "damaged size prefix")
                continue
            if self._header_at(end):
                # The common case, checked cheaply: another frame (or the end) follows. A frame
                # damaged inside is salvaged by the worker.
                yield from self.frame(pos, end)
                pos = end
                continue
            stop = _walk(window.data, body - window.base, end - window.base, exact=True) + window.base
            if stop == end:
                yield from self.frame(pos, end)
                pos = end
            elif self._frame_at(end) is not None:
                # The size is right but the message is damaged inside: the worker salvages it.
                yield from self.add(pos, end, framed=True)
                window.drop(end)
                pos = end
            else:
                # The size is wrong: keep the intact fields, then look for the next frame.
                yield from self.run(body, stop)
                pos = yield from self.resync(stop, self._frame_at, "damaged size prefix")

    def in_place(self, pos: int) -> Generator[Chunk, None, int]:
        """Gather the frames of a regular file from ``pos`` on by reading only their size prefixes
        (their bodies are the workers' to read), as long as each is followed by a plausible frame
        or the end, exactly as :meth:`framed` checks them; return where a frame needs more than
        that (or the end). Reading every byte here cost the reading process more than cutting.
        """
        handle = self.window.stream.fileno()
        prefix = os.pread(handle, PREFIX.size, pos)
        if len(prefix) < PREFIX.size:
            return pos
        size = int(PREFIX.unpack(prefix)[0])
        while size <= RECORD_BYTES and PREFIX.size + size <= CHUNK_BYTES:
            end = pos + PREFIX.size + size
            # The frame's last byte (so the input holds all of it), then the next frame's header.
            after = os.pread(handle, PREFIX.size + 2, end - 1)
            if not after:
                return pos
            if len(after) == 1:  # the input ends with this frame
                yield from self.add(pos, end, framed=True)
                return end
            if len(after) < PREFIX.size + 2:
                return pos
            following = int(PREFIX.unpack_from(after, 1)[0])
            if not 0 < following <= RECORD_BYTES or after[-1] != _RESOURCE_SPANS_TAG:
                return pos
            yield from self.add(pos, end, framed=True)
            pos, size = end, following
        return pos

    def frame(self, pos: int, end: int) -> Iterator[Chunk]:
        """Gather one intact frame; a large one is cut into runs of its fields."""
        window = self.window
        if end - pos <= CHUNK_BYTES:
            yield from self.add(pos, end, framed=True)
        else:
            run = field = pos + PREFIX.size
            while field < end:
                length = _varint(window.data, field - window.base + 1, end - window.base)
                assert length is not None  # the frame walked exactly
                field = window.base + length[1] + length[0]
                if field - run >= CHUNK_BYTES:
                    yield from self.add(run, field, framed=False)
                    run = field
            if field > run:
                yield from self.add(run, field, framed=False)
        window.drop(end)

    def _header_at(self, pos: int) -> bool:
        """Whether the input ends at ``pos`` or a size prefix and a first field tag start there."""
        window = self.window
        if not window.fill(pos + PREFIX.size + 1):
            return pos == window.end
        (size,) = PREFIX.unpack_from(window.data, pos - window.base)
        return (
            0 < size <= RECORD_BYTES and window.data[pos - window.base + PREFIX.size] == _RESOURCE_SPANS_TAG
        )

    def _frame_at(self, pos: int) -> int | None:
        """End of a plausible frame at ``pos``: fields ending exactly at its size, then a frame or the end."""
        window = self.window
        if not window.fill(pos + PREFIX.size + 1):
            return None
        (size,) = PREFIX.unpack_from(window.data, pos - window.base)
        end = pos + PREFIX.size + size
        if (
            not 0 < size <= RECORD_BYTES
            or window.data[pos - window.base + PREFIX.size] != _RESOURCE_SPANS_TAG
        ):
            return None
        if (
            not window.fill(end)
            or _walk(window.data, pos - window.base + PREFIX.size, end - window.base, exact=True)
            != end - window.base
        ):
            return None
        if window.fill(end + PREFIX.size + 1):
            following = window.data[end - window.base + PREFIX.size] == _RESOURCE_SPANS_TAG
            return end if following else None
        return end if window.end == end else None

    def _field_at(self, pos: int) -> int | None:
        """End of a plausible ResourceSpans field at ``pos``, followed by another or the end."""
        window = self.window
        window.fill(pos + 11)
        length = _varint(window.data, pos - window.base + 1, len(window.data)) if pos < window.end else None
        if length is None or window.data[pos - window.base] != _RESOURCE_SPANS_TAG:
            return None
        end = window.base + length[1] + length[0]
        if end - pos > RECORD_BYTES or not window.fill(end):
            return None
        if _exact_field(window.data, pos - window.base, end - window.base) is None:
            return None
        if window.fill(end + 1):
            return end if window.data[end - window.base] == _RESOURCE_SPANS_TAG else None
        return end

    def resync(
        self, damaged: int, plausible: Callable[[int], int | None], what: str
    ) -> Generator[Skipped, None, int]:
        """Find the next offset after ``damaged`` where ``plausible`` holds; count the bytes between.

        Returns that offset, or the end of the input when no plausible start follows. Only the
        bytes from the search position on are held (plus what a candidate declares).
        """
        window = self.window
        # A frame's first field tag sits four bytes after its start; a field's at its start.
        lead = PREFIX.size if plausible == self._frame_at else 0
        search = damaged + 1
        resume: int | None = None
        while resume is None:
            window.fill(search + lead + 1)
            found = window.data.find(_TAG_BYTE, max(search + lead - window.base, 0))
            if found >= 0:
                candidate = found + window.base - lead
                if plausible(candidate) is not None:
                    resume = candidate
                search = candidate + 1
            elif window.eof:
                break
            else:
                search = max(search, window.end - lead)
                window.drop(search)
                window.fill(window.end + _READ_AHEAD)
        end = resume if resume is not None else window.end
        yield Skipped(
            self.source,
            f"byte {damaged}",
            f"invalid OTLP protobuf ({what}): {end - damaged:,} bytes skipped"
            + (
                f", reading resumed at the next plausible start at byte {end}"
                if resume is not None
                else " (to the end of the input)"
            ),
        )
        window.drop(end)
        return end
