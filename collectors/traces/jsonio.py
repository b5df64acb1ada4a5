"""Splitting JSON inputs into parse chunks: small documents whole, large ones streamed, JSON Lines in batches.

A document up to ``WHOLE_DOCUMENT_BYTES`` is one chunk, decoded at once with orjson (the fastest
path). A larger one is streamed with ijson's C parser (yajl2_c): its records (an OTLP
``resourceSpans`` entry, a Jaeger trace, a Zipkin span or trace) are cut out one by one and
gathered into chunks of about ``CHUNK_BYTES``, so a document of any size is read in bounded
memory. A record larger than ``RECORD_BYTES`` cannot be cut and ends the document with a counted
skip. A document that is damaged part-way keeps the records before the damage, whichever way it
was read.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Callable, Iterator
from typing import IO, Any

import ijson
import orjson

from orchscan.collectors.model.records import Chunk, ChunkResult, Skipped
from orchscan.collectors.model.spans import SpanRows
from orchscan.collectors.traces.formats.otlp_common import paused_gc
from orchscan.collectors.traces.limits import Tally, cap_batch

#: A document up to this size is decoded whole; a larger one is streamed record by record.
WHOLE_DOCUMENT_BYTES = 64 << 20
#: Serialized records gathered into one chunk of a streamed document, and lines of JSON Lines.
CHUNK_BYTES = 8 << 20
#: Largest single record of a streamed document, or line of JSON Lines, held in memory.
RECORD_BYTES = 256 << 20
# Lines per chunk for JSON Lines input; large enough to amortise process hand-off.
_LINES_PER_CHUNK = 256
_PIECE = 1 << 20
# Bytes of a document searched for its list of records.
_HEAD = 1 << 16

#: Position of a chunk cut from a streamed document: its payload is a JSON array of
#: ``[path, record]`` pairs. (0 is a whole document, a positive number the first line of JSON Lines.)
PARTS = -1


class JsonInputError(ValueError):
    """A whole JSON input (or one line of it) could not be decoded."""


def loads(payload: bytes) -> Any:
    """Decode JSON, tolerating invalid UTF-8 and lone surrogate escapes by replacing them.

    orjson rejects both outright; span names and attributes copied from user input occasionally
    contain them (a string cut inside an emoji), and losing a whole file for one character would
    be worse than a replacement character.
    """
    repairs = {"utf-8": _replace_invalid_utf8, "surrogate": _replace_lone_surrogates}
    while True:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as error:
            message = str(error).lower()
            repair = next((repairs.pop(key) for key in list(repairs) if key in message), None)
            if repair is None:
                raise JsonInputError(str(error)) from None
            payload = repair(payload)


def _replace_invalid_utf8(payload: bytes) -> bytes:
    return payload.decode("utf-8", errors="replace").encode()


def _replace_lone_surrogates(payload: bytes) -> bytes:
    return _LONE_SURROGATE.sub(rb"\\ufffd", payload)


# A \u escape of a high surrogate not followed by a low one, or a low one not after a high one.
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def is_json_lines(head: bytes) -> bool:
    """True when the first line is a complete JSON value and more content follows it."""
    stripped = head.lstrip()
    newline = stripped.find(b"\n")
    if newline < 0 or not stripped[newline:].strip():
        return False
    try:
        orjson.loads(stripped[:newline])
    except orjson.JSONDecodeError:
        return False
    return True


#: Where a streamed document's records are: the ijson prefix of the record items and the path
#: that names the i-th record in skips, from the document's head; None when it has no such list.
RecordPath = Callable[[bytes], tuple[str, str] | None]
#: Whether a chunk may be cut between two consecutive records (Zipkin keeps a trace's spans together).
CutBetween = Callable[[Any, Any], bool]


def split_json(
    stream: IO[bytes], fmt: str, source: str, records: RecordPath, cut: CutBetween | None = None
) -> Iterator[Chunk | Skipped]:
    """Yield a small document whole, a large one in chunks of records, JSON Lines in batches of lines.

    A chunk's position is 0 for a whole document, ``PARTS`` for records of a streamed one and the
    first line number (1-based) of the batch for JSON Lines, so that defects are reported by
    path or line. The first line is read whole (up to ``RECORD_BYTES``): Collector lines hold a
    full export batch and easily exceed any fixed head size.
    """
    first = stream.readline(WHOLE_DOCUMENT_BYTES + 1)
    if len(first) > WHOLE_DOCUMENT_BYTES:
        # One line this long is no JSON Lines batch: a large document written on one line.
        yield from _stream_document(_Chained(first, stream), fmt, source, records(first[:_HEAD]), cut)
        return
    following = stream.read(_PIECE)
    if first.endswith(b"\n") and following.strip() and _is_json_value(first):
        yield from _split_lines(first + following, stream, fmt, source)
        return
    head = first + following
    document = head + stream.read(max(WHOLE_DOCUMENT_BYTES + 1 - len(head), 0))
    if len(document) <= WHOLE_DOCUMENT_BYTES:
        yield Chunk(fmt, source, document, 0)
        return
    yield from _stream_document(_Chained(document, stream), fmt, source, records(document[:_HEAD]), cut)


def _is_json_value(line: bytes) -> bool:
    try:
        loads(line)
    except JsonInputError:
        return False
    return True


def _split_lines(head: bytes, stream: IO[bytes], fmt: str, source: str) -> Iterator[Chunk | Skipped]:
    first_line = 1
    batch: list[bytes] = []
    size = 0
    line_number = 0
    pending = head
    skipping = False
    while True:
        more = stream.read(_PIECE)
        pending += more
        lines = pending.split(b"\n")
        pending = lines.pop() if more else b""
        for line in lines:
            line_number += 1
            if skipping:
                # The rest of an over-long line: its start was counted.
                skipping = False
                continue
            if len(line) > RECORD_BYTES:
                yield Skipped(
                    source, f"line {line_number}", f"line longer than {RECORD_BYTES:,} bytes: skipped"
                )
                continue
            batch.append(line)
            size += len(line)
            if len(batch) >= _LINES_PER_CHUNK or size >= CHUNK_BYTES:
                yield Chunk(fmt, source, b"\n".join(batch), first_line)
                first_line = line_number + 1
                batch, size = [], 0
        if len(pending) > RECORD_BYTES and not skipping:
            yield Skipped(
                source, f"line {line_number + 1}", f"line longer than {RECORD_BYTES:,} bytes: skipped"
            )
            skipping, pending = True, b""
        elif skipping:
            pending = b""
        if not more:
            break
    if batch:
        yield Chunk(fmt, source, b"\n".join(batch), first_line)


# A number token of 19 digits or more: the only ones that can exceed 64 bits. Searched once per
# piece (several ms per MB); most documents hold such digits only inside strings.
_WIDE_CANDIDATE = re.compile(rb"[:\[,]\s*-?\d{19}")
_TAIL_WINDOW = 4096
# Held-back tails start at a separator, so a number ending a piece is followed by one (or the end).
_WIDE_NUMBER = re.compile(rb"(?<=[:\[,])(\s*)(-?\d{19,})(?=\s*(?:[,\]}]|\Z))")
# What a piece may have cut: a number token with the separator before it, or a backslash run.
_HELD_TAIL = re.compile(rb"(?:[:\[,]?\s*-?\d*|\\+)\Z")
_ESCAPED_QUOTE = re.compile(rb'(?<!\\)(?:\\\\)*\\"')
_INT64 = range(-(2**63), 2**63)


class _Chained:
    """The bytes already read, then the rest of the stream, repaired to valid UTF-8 on the way.

    ijson (like any strict parser) stops at invalid UTF-8; orjson's path replaces the bad bytes,
    and so does this one, piece by piece (a piece of pure ASCII passes untouched).
    """

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head: bytes | None = head
        self._offset = 0
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.consumed = 0
        self._marked = 0
        self._carry = b""
        self._in_string = False
        #: Bytes that may be read between two marks before ``_RecordTooLarge`` is raised.
        self.limit: int | None = None

    def mark(self) -> None:
        """Note that a record ended here (the limit counts from the last mark)."""
        self._marked = self.consumed

    def read(self, size: int = -1) -> bytes:
        """The next piece (``size`` is only honoured as 0, which parsers use to probe the type)."""
        if size == 0:
            return b""
        while True:
            if self.limit is not None and self.consumed - self._marked > self.limit:
                raise _RecordTooLarge
            if self._head is not None and self._offset < len(self._head):
                piece = self._head[self._offset : self._offset + _PIECE]
                self._offset += len(piece)
            else:
                self._head = None  # no longer held
                piece = self._stream.read(_PIECE)
            self.consumed += len(piece)
            end = not piece
            if not (piece.isascii() and not self._decoder.getstate()[0]):
                piece = self._decoder.decode(piece, final=end).encode()
            out = self._wide_numbers(piece, end)
            # An empty answer means the end to a parser: a piece held back whole is not one.
            if out or end:
                return out

    def _wide_numbers(self, piece: bytes, final: bool) -> bytes:
        """The piece with integers beyond 64 bits written as floats.

        yajl stops at an integer it cannot hold ("integer overflow"), which would lose the rest
        of the document; orjson, which reads small documents, takes such a number as a float,
        and so does this. Only number tokens of 19 digits or more outside strings are touched
        (strings are followed by counting unescaped quotes); a number, separator or backslash
        run cut by the piece's end waits for the next piece.
        """
        piece = self._carry + piece
        self._carry = b""
        if not final:
            # Anchored at the end, so searched only near it (a search from the start costs
            # about 100 ms per megabyte).
            tail = _HELD_TAIL.search(piece, max(len(piece) - _TAIL_WINDOW, 0))
            if tail is not None and tail.start() < len(piece):
                piece, self._carry = piece[: tail.start()], piece[tail.start() :]
        if not _WIDE_CANDIDATE.search(piece):
            self._in_string ^= _quotes(piece) & 1 == 1
            return piece
        out = []
        pos = 0
        for match in _WIDE_NUMBER.finditer(piece):
            self._in_string ^= _quotes(piece[pos : match.start()]) & 1 == 1
            out.append(piece[pos : match.start()])
            digits = match.group(2)
            wide = not self._in_string and int(digits) not in _INT64
            out.append(match.group(1) + digits + b".0" if wide else match.group(0))
            pos = match.end()
        self._in_string ^= _quotes(piece[pos:]) & 1 == 1
        out.append(piece[pos:])
        return b"".join(out)


def _quotes(text: bytes) -> int:
    """Unescaped double quotes in ``text`` (which never ends inside a backslash run)."""
    count = text.count(b'"')
    return count - len(_ESCAPED_QUOTE.findall(text)) if count and b"\\" in text else count


def _stream_document(
    stream: _Chained, fmt: str, source: str, found: tuple[str, str] | None, cut: CutBetween | None
) -> Iterator[Chunk | Skipped]:
    """Cut a large document into chunks of its records, gathered up to ``CHUNK_BYTES``."""
    if found is None:
        yield Skipped(
            source,
            "document",
            f"a document larger than {WHOLE_DOCUMENT_BYTES:,} bytes is read record by record, "
            "and no list of records was found near its start",
        )
        return
    parts: list[bytes] = []
    size = 0
    previous: Any = None
    for item in stream_records(stream, source, *found):
        if isinstance(item, Skipped):
            yield item
            continue
        _, record, encoded = item
        # A format may keep records together (Zipkin: a trace's spans), but never beyond a record's limit.
        if size >= CHUNK_BYTES and (cut is None or cut(previous, record) or size >= RECORD_BYTES):
            yield Chunk(fmt, source, b"[" + b",".join(parts) + b"]", PARTS)
            parts, size = [], 0
        parts.append(encoded)
        size += len(encoded)
        previous = record
    if parts:
        yield Chunk(fmt, source, b"[" + b",".join(parts) + b"]", PARTS)


class _RecordTooLarge(Exception):
    """A record grew beyond ``RECORD_BYTES`` while being read."""


def stream_records(
    stream: _Chained, source: str, prefix: str, label: str
) -> Iterator[tuple[str, Any, bytes] | Skipped]:
    """Each record under ``prefix`` as (path, value, its ``[path, value]`` JSON), then any damage.

    Records completed before damage (truncation, malformed JSON) are all handed out; the damage
    is one skip. A record that grows beyond ``RECORD_BYTES`` ends the document the same way.
    """
    index = 0
    stream.limit = RECORD_BYTES
    try:
        for record in ijson.items(stream, prefix, use_float=True, buf_size=_PIECE):
            stream.mark()
            path = label.format(index)
            encoded = _encode(path, record)
            if encoded is None:
                yield Skipped(source, path, "record nested too deeply to be read (over 254 levels)")
            else:
                yield path, record, encoded
            index += 1
        return
    except ijson.JSONError as error:
        damage = f"malformed JSON ({_first_line(error)})"
    except _RecordTooLarge:
        damage = f"a single record exceeds {RECORD_BYTES:,} bytes"
    yield Skipped(
        source,
        label.format(index),
        f"{damage} after {stream.consumed:,} bytes: the {index:,} record(s) before it were read, "
        "the rest of the document skipped",
    )


def _encode(path: str, record: Any) -> bytes | None:
    """A record as JSON the worker's orjson reads back, or None when there is no such text.

    orjson refuses integers beyond 64 bits, which ijson reads exactly: those records take the
    standard library's encoder (the reader then judges the value, e.g. a time out of range).
    """
    try:
        return orjson.dumps([path, record])
    except orjson.JSONEncodeError:
        pass
    try:
        encoded = json.dumps([path, record]).encode()
        orjson.loads(encoded)
    except (ValueError, RecursionError):
        return None
    return encoded


def _first_line(error: Exception) -> str:
    text = error.args[0] if error.args else str(error)
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(error).__name__


def find_record_path(head: bytes, containers: frozenset[str], label: str) -> tuple[str, str] | None:
    """The ijson prefix of the items of the first list named one of ``containers`` (``""`` names a
    top-level list), with ``label`` ("{container}[{{}}]") telling how its i-th item is named."""
    try:
        for prefix, event, _ in ijson.parse(io.BytesIO(head)):
            if event == "start_array" and prefix.rsplit(".", 1)[-1] in containers:
                name = prefix if prefix else ""
                return (f"{prefix}.item" if prefix else "item"), label.replace("{container}", name)
    except ijson.JSONError:
        pass
    return None


def documents(chunk: Chunk) -> Iterator[tuple[str, Any] | Skipped]:
    """Decode a whole-document or JSON Lines chunk into (position, document) pairs, skipping bad lines."""
    if chunk.position == 0:
        try:
            yield "document", loads(chunk.payload)
        except JsonInputError as error:
            yield Skipped(chunk.source, "document", f"malformed JSON: {error}")
        return
    for offset, line in enumerate(chunk.payload.split(b"\n")):
        if not line.strip():
            continue
        position = f"line {chunk.position + offset}"
        try:
            yield position, loads(line)
        except JsonInputError as error:
            yield Skipped(chunk.source, position, f"malformed JSON: {error}")


#: Adds the spans of one decoded JSON document to the rows; returns what it had to skip.
DocumentReader = Callable[[Any, SpanRows, str, str, Tally], list[Skipped]]
#: Adds the spans of a streamed document's records, given as (path, record) pairs.
PartsReader = Callable[[list[tuple[str, Any]], SpanRows, str, Tally], list[Skipped]]


def parse_documents(
    chunk: Chunk,
    read_document: DocumentReader,
    read_parts: PartsReader,
    records: RecordPath,
    keep_attributes: bool = True,
) -> ChunkResult:
    """Parse a JSON chunk with one format's readers: documents, lines, or a streamed document's
    parts; without ``keep_attributes`` the attributes that fill no column are left out.

    A whole document that does not decode (cut short, damaged) is streamed instead, so that the
    records before the damage are kept.
    """
    with paused_gc():
        rows = SpanRows()
        tally = Tally()
        skipped: list[Skipped] = []
        if chunk.position == PARTS:
            skipped += read_parts(
                [(path, record) for path, record in orjson.loads(chunk.payload)], rows, chunk.source, tally
            )
        else:
            for item in documents(chunk):
                if isinstance(item, Skipped) and item.position == "document":
                    skipped += _salvage(chunk, item, read_parts, records, rows, tally)
                elif isinstance(item, Skipped):
                    skipped.append(item)
                else:
                    skipped += read_document(item[1], rows, chunk.source, item[0], tally)
        batch = cap_batch(rows.to_batch(keep_attributes), tally)
        return ChunkResult(batch, tuple(skipped), tally.notices(chunk.source))


def _salvage(
    chunk: Chunk, damage: Skipped, read_parts: PartsReader, records: RecordPath, rows: SpanRows, tally: Tally
) -> list[Skipped]:
    """The records of a damaged whole document that precede its damage, read as parts."""
    found = records(chunk.payload[:_HEAD])
    if found is None:
        return [damage]
    parts: list[tuple[str, Any]] = []
    skipped: list[Skipped] = []
    for item in stream_records(_Chained(chunk.payload, io.BytesIO()), chunk.source, *found):
        if isinstance(item, Skipped):
            skipped.append(item)
        else:
            parts.append(item[:2])
    if not parts:
        return [damage]
    return read_parts(parts, rows, chunk.source, tally) + skipped
