"""Splitting JSON inputs into parse chunks: one document, or JSON Lines in batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO, Any

import orjson

from orchscan.collectors.model.records import Chunk, ChunkResult, Skipped
from orchscan.collectors.model.spans import SpanRows
from orchscan.collectors.traces.formats.otlp_common import paused_gc

# Lines per chunk for JSON Lines input; large enough to amortise process hand-off.
_LINES_PER_CHUNK = 256
_BYTES_PER_CHUNK = 8 << 20


class JsonInputError(ValueError):
    """A whole JSON input (or one line of it) could not be decoded."""


def loads(payload: bytes) -> Any:
    """Decode JSON, tolerating invalid UTF-8 by replacing the bad bytes.

    orjson rejects invalid UTF-8 outright; span names and attributes copied from user input
    occasionally contain it, and losing a whole file for one byte would be worse than a
    replacement character.
    """
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        if "utf-8" not in str(error).lower():
            raise JsonInputError(str(error)) from None
    try:
        return orjson.loads(payload.decode("utf-8", errors="replace"))
    except orjson.JSONDecodeError as error:
        raise JsonInputError(str(error)) from None


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


def split_json(stream: IO[bytes], fmt: str, source: str) -> Iterator[Chunk | Skipped]:
    """Yield the whole document, or batches of lines when the input is JSON Lines.

    A chunk's position is 0 for a single document and the first line number (1-based) of the
    batch for JSON Lines, so that per-line defects can be reported by line. The first line is
    read whole: Collector lines hold a full export batch and easily exceed any fixed head size.
    """
    first = stream.readline()
    following = stream.read(1 << 20)
    if following.strip() and _is_json_value(first):
        yield from _split_lines(first + following, stream, fmt, source)
        return
    yield Chunk(fmt, source, first + following + stream.read(), 0)


def _is_json_value(line: bytes) -> bool:
    try:
        loads(line)
    except JsonInputError:
        return False
    return True


def _split_lines(head: bytes, stream: IO[bytes], fmt: str, source: str) -> Iterator[Chunk]:
    first_line = 1
    batch: list[bytes] = []
    size = 0
    line_number = 0
    pending = head
    while True:
        more = stream.read(1 << 20)
        pending += more
        lines = pending.split(b"\n")
        pending = lines.pop() if more else b""
        for line in lines:
            line_number += 1
            batch.append(line)
            size += len(line)
            if len(batch) >= _LINES_PER_CHUNK or size >= _BYTES_PER_CHUNK:
                yield Chunk(fmt, source, b"\n".join(batch), first_line)
                first_line = line_number + 1
                batch, size = [], 0
        if not more:
            break
    if batch:
        yield Chunk(fmt, source, b"\n".join(batch), first_line)


def documents(chunk: Chunk) -> Iterator[tuple[str, Any] | Skipped]:
    """Decode a chunk into (position, document) pairs, skipping undecodable lines."""
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
DocumentReader = Callable[[Any, SpanRows, str, str], list[Skipped]]


def parse_documents(chunk: Chunk, read_document: DocumentReader) -> ChunkResult:
    """Parse a JSON chunk document by document with one format's document reader."""
    with paused_gc():
        rows = SpanRows()
        skipped: list[Skipped] = []
        for item in documents(chunk):
            if isinstance(item, Skipped):
                skipped.append(item)
                continue
            position, document = item
            skipped.extend(read_document(document, rows, chunk.source, position))
        return ChunkResult(rows.to_batch(), tuple(skipped))
