"""OTLP protobuf traces: one ``ExportTraceServiceRequest``, or the Collector file exporter's stream.

The OpenTelemetry Collector's file exporter (``format: proto``) writes each message preceded by
its size as a 4-byte big-endian unsigned integer. A bare request (what an OTLP/HTTP exporter
POSTs) is a single message with no prefix. Where messages start and end, and how reading
resumes after a damaged size prefix, is ``otlp_frames``' job; this module parses the frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from orchscan.collectors.model.records import Chunk, ChunkResult, Skipped
from orchscan.collectors.model.spans import COLUMNS, SCHEMA, hex_ids, source_column, span_batch
from orchscan.collectors.traces.formats import otlp_frames
from orchscan.collectors.traces.formats.otlp_common import KIND_BY_NUMBER, STATUS_BY_NUMBER, paused_gc
from orchscan.collectors.traces.formats.otlp_salvage import salvage
from orchscan.collectors.traces.formats.otlp_wire import (
    LiteTracesData,
    MalformedAttribute,
    decode_attributes,
    value_text,
)
from orchscan.collectors.traces.limits import (
    END_BEFORE_START,
    MALFORMED_FIELD,
    MAX_NANOS,
    OUT_OF_RANGE,
    Tally,
    cap_batch,
    cap_name,
)
from orchscan.collectors.traces.sniffing import NO, SURE
from orchscan.collectors.traces.vocabulary import normalize_columns

NAME = "otlp-proto"

_PREFIX = otlp_frames.PREFIX

#: Spans, service, namespace, instance, message position, Kubernetes namespace of a run of spans.
_Group = tuple[int, str, str | None, str | None, int, str | None]


def sniff(head: bytes) -> int:
    """Sure when ``head`` walks as a bare request or a size-prefixed one, else no."""
    return SURE if otlp_frames.framing(head) else NO


def split(stream: IO[bytes], source: str) -> Iterator[Chunk | Skipped]:
    """Cut the input into chunks of whole frames or runs of ResourceSpans fields."""
    return otlp_frames.split(stream, source, NAME)


class _Collected:
    """Raw span fields of one chunk, one flat list per field, turned into columns at the end.

    The per-span loop only appends protobuf values to lists bound as locals; everything that
    can be done per column (hex ids, enum names, the attribute vocabulary) is done once per
    chunk by Arrow and numpy.
    """

    __slots__ = (
        "attributes",
        "codes",
        "counts",
        "ends",
        "groups",
        "kinds",
        "links",
        "messages",
        "names",
        "parents",
        "span_ids",
        "starts",
        "tally",
        "trace_ids",
    )

    def __init__(self) -> None:
        self.trace_ids: list[bytes] = []
        self.span_ids: list[bytes] = []
        self.parents: list[bytes] = []
        self.names: list[str] = []
        self.kinds: list[int] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.codes: list[int] = []
        self.messages: list[str] = []
        self.counts: list[int] = []
        # Every span's attributes back to back, each still an encoded KeyValue.
        self.attributes: list[bytes] = []
        # Row -> its links; most spans have none.
        self.links: dict[int, list[dict[str, str]]] = {}
        # (spans, service, namespace, instance, message position, Kubernetes namespace) per run
        # of spans sharing them.
        self.groups: list[_Group] = []
        # Repairs counted while collecting (cut resource names, malformed links).
        self.tally = Tally()


def parse(chunk: Chunk) -> ChunkResult:
    """Parse the frames of one chunk into spans."""
    with paused_gc():
        try:
            return _parse(chunk, LiteTracesData)
        except MalformedAttribute:
            # The lenient twin let a broken attribute through; the real message type finds
            # which message is damaged and keeps what precedes the damage.
            return _parse(chunk, ExportTraceServiceRequest)


def _parse(chunk: Chunk, message: Any) -> ChunkResult:
    found = _Collected()
    skipped: list[Skipped] = []
    payload = chunk.payload
    cursor = 0
    while cursor < len(payload):
        (length,) = _PREFIX.unpack_from(payload, cursor)
        position = chunk.position + cursor
        body = payload[cursor + 4 : cursor + 4 + length]
        cursor += 4 + length
        # A fresh message per frame: re-parsing into one message keeps growing its upb arena.
        request = message()
        try:
            request.ParseFromString(body)
        except DecodeError as error:
            rescued = salvage(body)
            skipped += [
                Skipped(
                    chunk.source,
                    f"byte {position + 4 + at}",
                    f"invalid OTLP protobuf span ({error}): skipped",
                )
                for at in rescued.bad_spans
            ]
            if rescued.damage_at >= 0:
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
            _collect(rescued.request, found, position + 4)
            continue
        _collect(request, found, position + 4)
    batch, invalid = _to_batch(found, chunk.source)
    return ChunkResult(
        cap_batch(batch, found.tally), tuple(skipped + invalid), found.tally.notices(chunk.source)
    )


def _resource(attributes: Any, tally: Tally) -> tuple[str, str | None, str | None, str | None]:
    """Service, namespace, instance and Kubernetes namespace of a resource, cut once: they repeat
    on all its spans."""
    service = "unknown"
    namespace = instance = k8s = None
    for kv in attributes:
        if kv.key == "service.name":
            service = cap_name(value_text(kv.value) or "unknown", tally)
        elif kv.key == "service.namespace":
            namespace = cap_name(str(value_text(kv.value)), tally)
        elif kv.key == "service.instance.id":
            instance = cap_name(str(value_text(kv.value)), tally)
        elif kv.key == "k8s.namespace.name":
            k8s = cap_name(str(value_text(kv.value)), tally)
    return service, namespace, instance, k8s


def _collect(request: Any, found: _Collected, position: int) -> None:
    """Copy every span's raw fields into the chunk's lists: the one per-span Python loop."""
    trace_ids, span_ids, parents = found.trace_ids, found.span_ids, found.parents
    names, kinds, starts, ends = found.names, found.kinds, found.starts, found.ends
    codes, messages, counts = found.codes, found.messages, found.counts
    encoded, links, groups = found.attributes.extend, found.links, found.groups
    # Salvaged messages are real ExportTraceServiceRequests; their attributes are re-encoded.
    lite = isinstance(request, LiteTracesData)
    for resource_spans in request.resource_spans:
        service, namespace, instance, k8s = _resource(resource_spans.resource.attributes, found.tally)
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            groups.append((len(spans), service, namespace, instance, position, k8s))
            for span in spans:
                trace_ids.append(span.trace_id)
                span_ids.append(span.span_id)
                parents.append(span.parent_span_id)
                names.append(span.name)
                kinds.append(span.kind)
                starts.append(span.start_time_unix_nano)
                ends.append(span.end_time_unix_nano)
                status = span.status
                codes.append(status.code)
                messages.append(status.message)
                attributes = span.attributes
                counts.append(len(attributes))
                encoded(attributes if lite else [kv.SerializeToString() for kv in attributes])
                if span.links:
                    links[len(names) - 1] = _links(span.links, found.tally)


def _links(raw: Any, tally: Tally) -> list[dict[str, str]]:
    """A span's links whose ids are whole; a link with an id of the wrong size is counted, not kept."""
    links = []
    for link in raw:
        if len(link.trace_id) == 16 and len(link.span_id) == 8 and any(link.trace_id) and any(link.span_id):
            links.append({"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()})
        elif link.trace_id or link.span_id:
            tally.note(MALFORMED_FIELD)
    return links


def _names(numbers: list[int], names: tuple[str, ...], fallback: str) -> pa.DictionaryArray:
    """Enum numbers as their names (coded); numbers outside the enum read as ``fallback``."""
    index = np.array(numbers, dtype=np.int32)
    index[(index < 0) | (index >= len(names))] = names.index(fallback)
    return pa.DictionaryArray.from_arrays(index, pa.array(names, type=pa.string()))


def _per_group(groups: list[_Group], field: int, sizes: list[int]) -> pa.Array:
    """A resource attribute repeated for each span of its group."""
    return pa.array(
        np.repeat(np.array([group[field] for group in groups], dtype=object), sizes), type=pa.string()
    )


def _to_batch(found: _Collected, source: str) -> tuple[pa.RecordBatch, list[Skipped]]:
    """Turn a chunk's raw lists into a span batch, dropping spans without valid ids."""
    rows = len(found.names)
    if not rows:
        return pa.RecordBatch.from_pylist([], schema=SCHEMA), []
    sizes = [group[0] for group in found.groups]
    trace_ids = pa.array(found.trace_ids, type=pa.binary())
    span_ids = pa.array(found.span_ids, type=pa.binary())
    # OTLP times are unsigned 64-bit; the table holds int64 (up to the year 2262).
    raw_starts = np.array(found.starts, dtype=np.uint64)
    raw_ends = np.array(found.ends, dtype=np.uint64)
    in_range = (raw_starts <= MAX_NANOS) & (raw_ends <= MAX_NANOS)
    starts = np.where(in_range, raw_starts, 0).astype(np.int64)
    ends = np.where(in_range, raw_ends, 0).astype(np.int64)
    backwards = ends < starts
    normalized = normalize_columns(
        np.array(found.counts, dtype=np.int64), *decode_attributes(found.attributes)
    )
    messages = pa.array(found.messages, type=pa.string())
    columns: dict[str, pa.Array] = {
        "trace_id": hex_ids(trace_ids),
        "span_id": hex_ids(span_ids),
        "parent_span_id": hex_ids(pa.array(found.parents, type=pa.binary())),
        "service": _per_group(found.groups, 1, sizes),
        "service_namespace": _per_group(found.groups, 2, sizes),
        "service_instance": _per_group(found.groups, 3, sizes),
        "k8s_namespace": _per_group(found.groups, 5, sizes),
        "name": pa.array(found.names, type=pa.string()),
        "kind": _names(found.kinds, KIND_BY_NUMBER, "unspecified"),
        "start_ns": pa.array(starts),
        "end_ns": pa.array(np.maximum(ends, starts)),
        "status": _names(found.codes, STATUS_BY_NUMBER, "unset"),
        "status_message": pc.if_else(pc.equal(messages, ""), None, messages),
        **normalized.semantic,
        "links": pa.array(
            [found.links.get(row) or None for row in range(rows)] if found.links else pa.nulls(rows),
            type=COLUMNS["links"][0],
        ),
        "idempotency_key": pa.array(normalized.idempotency_key),
        "attributes": normalized.attributes,
        "source": source_column(source, rows),
    }
    batch = span_batch(columns)
    ids_ok = np.asarray(
        pc.and_(
            pc.and_(pc.equal(pc.binary_length(trace_ids), 16), pc.equal(pc.binary_length(span_ids), 8)),
            pc.and_(pc.is_valid(columns["trace_id"]), pc.is_valid(columns["span_id"])),
        )
    )
    valid = ids_ok & in_range
    found.tally.note(END_BEFORE_START, int(np.count_nonzero(backwards & valid)))
    if valid.all():
        return batch, []
    at = np.repeat([group[4] for group in found.groups], sizes)
    invalid = []
    for reason, mask in (("missing or invalid trace/span id", ~ids_ok), (OUT_OF_RANGE, ids_ok & ~in_range)):
        where, count = np.unique(at[mask], return_counts=True)
        invalid += [
            Skipped(source, f"byte {position}", reason, int(n))
            for position, n in zip(where.tolist(), count.tolist(), strict=True)
        ]
    return batch.filter(pa.array(valid)), invalid
