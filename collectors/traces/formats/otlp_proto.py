"""OTLP protobuf traces: one ``ExportTraceServiceRequest``, or the Collector file exporter's stream.

The OpenTelemetry Collector's file exporter (``format: proto``) writes each message preceded by
its size as a 4-byte big-endian unsigned integer. A bare request (what an OTLP/HTTP exporter
POSTs) is a single message with no prefix. Where messages start and end, and how reading
resumes after a damaged size prefix, is ``otlp_frames``' job; this module parses the frames.
"""

from __future__ import annotations

from collections import Counter
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
from orchscan.collectors.traces.formats.otlp_spans import DecodedSpans, SpanBytesTracesData, decode_spans
from orchscan.collectors.traces.formats.otlp_wire import NeedsFullParse, decode_attributes, value_text
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
from orchscan.collectors.traces.vocabulary import fills_a_column, normalize_columns

NAME = "otlp-proto"

_PREFIX = otlp_frames.PREFIX

#: Service, namespace, instance and Kubernetes namespace of a resource.
_Resource = tuple[str, str | None, str | None, str | None]
#: Spans, service, namespace, instance, message position, Kubernetes namespace of a run of spans.
_Group = tuple[int, str, str | None, str | None, int, str | None]


def sniff(head: bytes) -> int:
    """Sure when ``head`` walks as a bare request or a size-prefixed one, else no."""
    return SURE if otlp_frames.framing(head) else NO


def split(stream: IO[bytes], source: str) -> Iterator[Chunk | Skipped]:
    """Cut the input into chunks of whole frames or runs of ResourceSpans fields."""
    return otlp_frames.split(stream, source, NAME)


class _Collected:
    """A chunk's spans, still encoded, and the resource of each run of them.

    Parsing only gathers each span's bytes (see :mod:`otlp_spans`); all spans of the chunk are
    decoded together at the end.
    """

    __slots__ = ("groups", "resources", "spans", "tally")

    def __init__(self) -> None:
        self.spans: list[bytes] = []
        # Encoded resource -> its fields and the names cut reading them: exporters that send a
        # ResourceSpans per trace repeat one resource thousands of times in a chunk.
        self.resources: dict[bytes, tuple[_Resource, Counter[str]]] = {}
        # (spans, service, namespace, instance, message position, Kubernetes namespace) per run
        # of spans sharing them.
        self.groups: list[_Group] = []
        # Repairs counted while collecting (cut resource names, malformed links).
        self.tally = Tally()


def parse(chunk: Chunk, keep_attributes: bool = True) -> ChunkResult:
    """Parse the frames of one chunk into spans (read from its file first, when it names where);
    without ``keep_attributes`` the attributes that fill no column are checked, not kept."""
    extent = chunk.extent
    if extent is not None:
        try:
            chunk = otlp_frames.read_extent(chunk)
        except otlp_frames.ExtentChanged as error:
            first, last = extent.runs[0][0], extent.runs[-1][1]
            reason = f"bytes {first:,}-{last:,} could not be read again to be parsed: {error}"
            nothing = pa.RecordBatch.from_pylist([], schema=SCHEMA)
            return ChunkResult(nothing, (Skipped(chunk.source, f"byte {first}", reason),))
    with paused_gc():
        try:
            return _parse(chunk, SpanBytesTracesData, keep_attributes)
        except NeedsFullParse:
            # The twin let a span or attribute through that the bulk decoders do not vouch for;
            # the real message type finds which message is damaged and keeps what precedes it.
            return _parse(chunk, ExportTraceServiceRequest, keep_attributes)


def _parse(chunk: Chunk, message: Any, keep_attributes: bool) -> ChunkResult:
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
    batch, invalid = _to_batch(found, chunk.source, keep_attributes)
    return ChunkResult(
        cap_batch(batch, found.tally), tuple(skipped + invalid), found.tally.notices(chunk.source)
    )


def _resource_of(resource: Any, found: _Collected) -> _Resource:
    """A resource's fields, read once per distinct resource of the chunk; its cuts count each time."""
    key = resource.SerializeToString()
    known = found.resources.get(key)
    if known is None:
        cuts = Tally()
        known = found.resources[key] = (_resource(resource.attributes, cuts), cuts.counts)
    fields, counts = known
    for reason, count in counts.items():
        found.tally.note(reason, count)
    return fields


def _resource(attributes: Any, tally: Tally) -> _Resource:
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
    """Gather every span's bytes and the resource of each run of spans."""
    spans, groups = found.spans, found.groups
    # Salvaged and re-read messages are real ExportTraceServiceRequests: their spans are
    # encoded again, without unknown fields, which the bulk decoder would not vouch for.
    twin = isinstance(request, SpanBytesTracesData)
    for resource_spans in request.resource_spans:
        service, namespace, instance, k8s = _resource_of(resource_spans.resource, found)
        for scope_spans in resource_spans.scope_spans:
            encoded = scope_spans.spans
            groups.append((len(encoded), service, namespace, instance, position, k8s))
            spans.extend(encoded if twin else [_known_fields_only(span) for span in encoded])


def _known_fields_only(span: Any) -> bytes:
    span.DiscardUnknownFields()
    encoded: bytes = span.SerializeToString()
    return encoded


def _span_links(spans: DecodedSpans, tally: Tally) -> dict[int, list[dict[str, str]]]:
    """Row -> the links of each span that has any (most have none)."""
    return {row: _links(span.links, tally) for row, span in spans.special.items() if span.links}


def _links(raw: Any, tally: Tally) -> list[dict[str, str]]:
    """A span's links whose ids are whole; a link with an id of the wrong size is counted, not kept."""
    links = []
    for link in raw:
        if len(link.trace_id) == 16 and len(link.span_id) == 8 and any(link.trace_id) and any(link.span_id):
            links.append({"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()})
        elif link.trace_id or link.span_id:
            tally.note(MALFORMED_FIELD)
    return links


def _names(numbers: np.ndarray, names: tuple[str, ...], fallback: str) -> pa.DictionaryArray:
    """Enum numbers as their names (coded); numbers outside the enum read as ``fallback``."""
    index = numbers.astype(np.int32)
    index[(index < 0) | (index >= len(names))] = names.index(fallback)
    return pa.DictionaryArray.from_arrays(index, pa.array(names, type=pa.string()))


def _per_group(groups: list[_Group], field: int, sizes: list[int]) -> pa.DictionaryArray:
    """A resource attribute repeated for each span of its group, coded as the span table codes
    text (values in order of first appearance): a string per span cost a Python object each."""
    codes: dict[str, int] = {}
    per_group = np.full(len(groups), -1, dtype=np.int32)
    for at, (group, size) in enumerate(zip(groups, sizes, strict=True)):
        value = group[field]
        if size and value is not None:
            per_group[at] = codes.setdefault(str(value), len(codes))
    indices = np.repeat(per_group, sizes)
    return pa.DictionaryArray.from_arrays(
        pa.array(indices, mask=indices < 0), pa.array(list(codes), type=pa.string())
    )


def _to_batch(found: _Collected, source: str, keep_attributes: bool) -> tuple[pa.RecordBatch, list[Skipped]]:
    """Decode a chunk's spans into a span batch, dropping spans without valid ids."""
    rows = len(found.spans)
    if not rows:
        return pa.RecordBatch.from_pylist([], schema=SCHEMA), []
    spans = decode_spans(found.spans)
    links = _span_links(spans, found.tally)
    sizes = [group[0] for group in found.groups]
    trace_ids, span_ids = spans.trace_ids, spans.span_ids
    # OTLP times are unsigned 64-bit; the table holds int64 (up to the year 2262).
    raw_starts, raw_ends = spans.starts, spans.ends
    in_range = (raw_starts <= MAX_NANOS) & (raw_ends <= MAX_NANOS)
    starts = np.where(in_range, raw_starts, 0).astype(np.int64)
    ends = np.where(in_range, raw_ends, 0).astype(np.int64)
    backwards = ends < starts
    values_of = None if keep_attributes else fills_a_column
    keys, values = decode_attributes(spans.attributes, values_of)
    normalized = normalize_columns(spans.attribute_counts, keys, values, keep_attributes=keep_attributes)
    messages = spans.status_messages
    columns: dict[str, pa.Array] = {
        "trace_id": hex_ids(trace_ids),
        "span_id": hex_ids(span_ids),
        "parent_span_id": hex_ids(spans.parent_span_ids),
        "service": _per_group(found.groups, 1, sizes),
        "service_namespace": _per_group(found.groups, 2, sizes),
        "service_instance": _per_group(found.groups, 3, sizes),
        "k8s_namespace": _per_group(found.groups, 5, sizes),
        "name": spans.names,
        "kind": _names(spans.kinds, KIND_BY_NUMBER, "unspecified"),
        "start_ns": pa.array(starts),
        "end_ns": pa.array(np.maximum(ends, starts)),
        "status": _names(spans.status_codes, STATUS_BY_NUMBER, "unset"),
        "status_message": pc.if_else(pc.equal(messages, ""), None, messages),
        **normalized.semantic,
        "links": pa.array(
            [links.get(row) or None for row in range(rows)] if links else pa.nulls(rows),
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
