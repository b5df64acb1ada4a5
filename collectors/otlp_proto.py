"""OTLP protobuf traces: one ``ExportTraceServiceRequest``, or the Collector file exporter's stream.

The OpenTelemetry Collector's file exporter (``format: proto``) writes each message preceded by
its size as a 4-byte big-endian unsigned integer. A bare request (what an OTLP/HTTP exporter
POSTs) is a single message with no prefix. A damaged frame is skipped and reading resumes at the
next one, since the prefix says where it starts.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO, Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors.otlp_common import KIND_BY_NUMBER, STATUS_BY_NUMBER, bytes_id, paused_gc
from collectors.otlp_salvage import salvage
from collectors.records import Chunk, ChunkResult, Skipped
from collectors.spans import SpanRows
from collectors.vocabulary import normalize

NAME = "otlp-proto"

_PREFIX = struct.Struct(">I")
_CHUNK_BYTES = 4 << 20
# Field 1 (resource_spans), wire type 2 (length-delimited): the first byte of any non-empty
# ExportTraceServiceRequest / TracesData.
_FIRST_TAG = 0x0A


def is_framed(head: bytes) -> bool:
    """True when ``head`` starts with a size prefix followed by a TracesData message."""
    if len(head) < 5 or head[0] == _FIRST_TAG:
        return False
    return head[4] == _FIRST_TAG


def looks_like_otlp(head: bytes) -> bool:
    """Cheap content test used by format detection."""
    return bool(head) and (head[0] == _FIRST_TAG or is_framed(head))


def split(stream: IO[bytes], source: str) -> Iterator[Chunk | Skipped]:
    """Cut the input into chunks of whole frames (a bare request becomes one frame)."""
    head = stream.read(5)
    if not is_framed(head):
        body = head + stream.read()
        # A chunk's position is the file offset of its first byte; the bare request gets a
        # synthetic size prefix, so its chunk starts four bytes before the file does.
        yield Chunk(NAME, source, _PREFIX.pack(len(body)) + body, -4)
        return
    offset = 0
    chunk_start = 0
    parts: list[bytes] = []
    size = 0
    pending = head
    while True:
        prefix = pending[:4] if len(pending) >= 4 else pending + stream.read(4 - len(pending))
        body_start = pending[4:] if len(pending) > 4 else b""
        pending = b""
        if not prefix:
            break
        if len(prefix) < 4:
            yield Skipped(source, f"byte {offset}", f"truncated size prefix ({len(prefix)} of 4 bytes)")
            break
        (length,) = _PREFIX.unpack(prefix)
        body = body_start + stream.read(length - len(body_start))
        if len(body) < length:
            yield Skipped(
                source, f"byte {offset}", f"truncated message: {length} bytes declared, {len(body)} present"
            )
            break
        parts.append(prefix + body)
        size += 4 + length
        offset += 4 + length
        if size >= _CHUNK_BYTES:
            yield Chunk(NAME, source, b"".join(parts), chunk_start)
            parts, size, chunk_start = [], 0, offset
    if parts:
        yield Chunk(NAME, source, b"".join(parts), chunk_start)


def _any(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def parse(chunk: Chunk) -> ChunkResult:
    """Parse the frames of one chunk into spans."""
    with paused_gc():
        return _parse(chunk)


def _parse(chunk: Chunk) -> ChunkResult:
    rows = SpanRows()
    skipped: list[Skipped] = []
    payload = chunk.payload
    cursor = 0
    request = ExportTraceServiceRequest()
    while cursor < len(payload):
        (length,) = _PREFIX.unpack_from(payload, cursor)
        position = chunk.position + cursor
        body = payload[cursor + 4 : cursor + 4 + length]
        cursor += 4 + length
        try:
            request.ParseFromString(body)
        except DecodeError as error:
            rescued = salvage(body)
            where = position + 4 + rescued.damage_at
            skipped.append(
                Skipped(
                    chunk.source,
                    f"byte {where}",
                    f"invalid OTLP protobuf ({error}): message from byte {position + 4} damaged here; "
                    f"{rescued.spans} complete span(s) before the damage kept, "
                    "the rest of the message skipped",
                )
            )
            skipped.extend(_add_request(rescued.request, rows, chunk.source, position + 4))
            continue
        skipped.extend(_add_request(request, rows, chunk.source, position + 4))
    return ChunkResult(rows.to_batch(), tuple(skipped))


def _add_request(request: Any, rows: SpanRows, source: str, position: int) -> list[Skipped]:
    skipped = []
    append = rows.append
    for resource_spans in request.resource_spans:
        service = "unknown"
        namespace = instance = None
        for kv in resource_spans.resource.attributes:
            if kv.key == "service.name":
                service = str(_any(kv.value) or "unknown")
            elif kv.key == "service.namespace":
                namespace = str(_any(kv.value))
            elif kv.key == "service.instance.id":
                instance = str(_any(kv.value))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                trace_id = bytes_id(span.trace_id)
                span_id = bytes_id(span.span_id)
                if trace_id is None or span_id is None or len(trace_id) != 32 or len(span_id) != 16:
                    skipped.append(Skipped(source, f"byte {position}", "missing or invalid trace/span id"))
                    continue
                attributes = {}
                for kv in span.attributes:
                    value = kv.value
                    # Most attribute values are strings; only the others need the oneof lookup.
                    text = value.string_value
                    attributes[kv.key] = text if text else _any(value)
                semantic, idempotent, rest = normalize(attributes)
                links = (
                    [
                        {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()}
                        for link in span.links
                        if link.trace_id and link.span_id
                    ]
                    if span.links
                    else None
                )
                kind = span.kind
                code = span.status.code
                start = span.start_time_unix_nano
                append(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=bytes_id(span.parent_span_id),
                    service=service,
                    service_namespace=namespace,
                    service_instance=instance,
                    name=span.name,
                    kind=KIND_BY_NUMBER[kind] if 0 <= kind < len(KIND_BY_NUMBER) else "unspecified",
                    start_ns=start,
                    end_ns=max(span.end_time_unix_nano, start),
                    status=STATUS_BY_NUMBER[code] if 0 <= code < len(STATUS_BY_NUMBER) else "unset",
                    status_message=span.status.message or None,
                    semantic=semantic,
                    links=links or None,
                    idempotency_key=idempotent,
                    attributes=rest,
                    source=source,
                )
    return skipped
