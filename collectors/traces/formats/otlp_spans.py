"""Spans of OTLP protobuf decoded from their wire bytes, every span of a chunk at once.

Reading a span through the protobuf runtime costs a Python object per field read, about three
microseconds a span: two thirds of reading a chunk. So messages are parsed with a twin of
``TracesData`` whose ``ScopeSpans.spans`` is declared ``repeated bytes`` (the same wire
encoding): resources and scopes read as usual, and each span arrives still encoded. The spans of
a chunk are then walked in lock step with numpy, one field of every span per step, and the
fields the span table keeps are picked from the walk (for a field given twice, the last one, as
the runtime does). A span with events or links, which few spans have, is also parsed by the real
``Span`` message, which checks them as the runtime would.

Whatever the walk cannot vouch for (a malformed field, text that is not UTF-8, a known field with
another wire type, a status given twice) raises :class:`NeedsFullParse`: the caller then reads
the chunk with the real message types, which reject exactly what the runtime rejects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from orchscan.collectors.traces.formats.otlp_wire import (
    PADDING,
    AttributeBytes,
    NeedsFullParse,
    gather,
    read_varints,
)

# Wire types.
_VARINT, _FIXED64, _DELIMITED, _FIXED32 = 0, 1, 2, 5
# Zero bytes after the last span: a probe of ten bytes never leaves the buffer, nor one of the
# attribute decoder's, which reads the spans' attributes where they are.
_PADDING = max(16, PADDING)
_MAX_FIELD = (1 << 29) - 1
_UNKNOWN = -1

# Span fields (trace.proto) and the wire type each must have.
_TRACE_ID, _SPAN_ID, _TRACE_STATE, _PARENT_SPAN_ID, _NAME, _KIND = 1, 2, 3, 4, 5, 6
_START, _END, _ATTRIBUTES, _EVENTS, _LINKS, _STATUS = 7, 8, 9, 11, 13, 15
_SPAN_WIRE_OF = {
    _TRACE_ID: _DELIMITED,
    _SPAN_ID: _DELIMITED,
    _TRACE_STATE: _DELIMITED,
    _PARENT_SPAN_ID: _DELIMITED,
    _NAME: _DELIMITED,
    _KIND: _VARINT,
    _START: _FIXED64,
    _END: _FIXED64,
    _ATTRIBUTES: _DELIMITED,
    10: _VARINT,  # dropped_attributes_count
    _EVENTS: _DELIMITED,
    12: _VARINT,  # dropped_events_count
    _LINKS: _DELIMITED,
    14: _VARINT,  # dropped_links_count
    _STATUS: _DELIMITED,
    16: _FIXED32,  # flags
}
# Status fields; field 1 is reserved (a retired code) and read as an unknown field.
_MESSAGE, _CODE = 2, 3
_STATUS_WIRE_OF = {_MESSAGE: _DELIMITED, _CODE: _VARINT}


def _span_bytes_traces_data() -> Any:
    """``TracesData`` with ``ScopeSpans.spans`` left as encoded ``Span`` bytes."""
    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    proto = descriptor_pb2.FileDescriptorProto()
    trace_pb2.DESCRIPTOR.CopyToProto(proto)
    scope = next(message for message in proto.message_type if message.name == "ScopeSpans")
    spans = next(field for field in scope.field if field.name == "spans")
    spans.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    spans.ClearField("type_name")
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("opentelemetry.proto.trace.v1.TracesData")
    )


#: Parses an ``ExportTraceServiceRequest`` / ``TracesData`` body (both: field 1, ResourceSpans).
SpanBytesTracesData = _span_bytes_traces_data()


@dataclass(frozen=True)
class DecodedSpans:
    """The fields the span table keeps, one entry per span; absent fields read as the runtime's
    defaults (empty bytes, zero).

    ``attributes`` are every span's encoded ``KeyValue`` messages in order, ``attribute_counts``
    how many each span has; ``special`` the spans with events or links, parsed by the real message.
    """

    trace_ids: pa.Array
    span_ids: pa.Array
    parent_span_ids: pa.Array
    names: pa.Array
    kinds: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    status_codes: np.ndarray
    status_messages: pa.Array
    attributes: AttributeBytes
    attribute_counts: np.ndarray
    special: dict[int, Any]


def _wire_table(wire_of: dict[int, int]) -> np.ndarray:
    """The wire type each field number must have, by number; -1 for fields not known."""
    table = np.full(max(wire_of) + 2, _UNKNOWN, dtype=np.int64)
    for number, wire in wire_of.items():
        table[number] = wire
    return table


_SPAN_WIRE, _STATUS_WIRE = _wire_table(_SPAN_WIRE_OF), _wire_table(_STATUS_WIRE_OF)
_WIRE_TYPES = np.isin(np.arange(8), (_VARINT, _FIXED64, _DELIMITED, _FIXED32))


class _Picked:
    """What a walk keeps of some messages: the last occurrence of each singular field (as the
    runtime keeps it) with how often it occurred, and every occurrence of the repeated ones."""

    def __init__(self, count: int, singular: tuple[int, ...], repeated: tuple[int, ...]) -> None:
        self.begin = {number: np.zeros(count, dtype=np.int64) for number in singular}
        self.length = {number: np.zeros(count, dtype=np.int64) for number in singular}
        self.value = {number: np.zeros(count, dtype=np.uint64) for number in singular}
        self.seen = {number: np.zeros(count, dtype=np.int64) for number in singular}
        self._repeated: dict[int, list[tuple[np.ndarray, ...]]] = {number: [] for number in repeated}

    def take(
        self, rows: np.ndarray, number: np.ndarray, value: np.ndarray, begin: np.ndarray, length: np.ndarray
    ) -> None:
        """One step of a walk: field ``number`` of each message ``rows``."""
        for field, at in self.begin.items():
            hit = np.flatnonzero(number == field)
            if len(hit):
                where = rows[hit]
                at[where] = begin[hit]
                self.length[field][where] = length[hit]
                self.value[field][where] = value[hit]
                self.seen[field][where] += 1
        for field, parts in self._repeated.items():
            hit = np.flatnonzero(number == field)
            if len(hit):
                parts.append((rows[hit], begin[hit], length[hit]))

    def repeated(self, number: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every occurrence of field ``number``: message, start and length, in message then wire order."""
        parts = self._repeated[number]
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        rows, begin, length = (np.concatenate(column) for column in zip(*parts, strict=True))
        order = np.argsort(rows, kind="stable")
        return rows[order], begin[order], length[order]

    def once(self, number: int) -> None:
        """A message giving field ``number`` twice needs the runtime (message fields merge,
        a shadowed text is checked too)."""
        if (self.seen[number] > 1).any():
            raise NeedsFullParse(f"field {number} given twice")


def decode_spans(encoded: Sequence[bytes]) -> DecodedSpans:
    """Decode a chunk's encoded ``Span`` messages in bulk (see the module docstring)."""
    count = len(encoded)
    data, begin, end = _padded(encoded)
    span = _Picked(
        count,
        (_TRACE_ID, _SPAN_ID, _PARENT_SPAN_ID, _NAME, _KIND, _START, _END, _STATUS),
        (_TRACE_STATE, _ATTRIBUTES, _EVENTS, _LINKS),
    )
    _walk(data, begin, end, _SPAN_WIRE, span)
    span.once(_NAME)
    span.once(_STATUS)
    _, state_begin, state_length = span.repeated(_TRACE_STATE)
    _text(gather(data, state_begin, state_length))  # checked as the runtime checks it, not kept
    status_begin = span.begin[_STATUS]
    status = _Picked(count, (_MESSAGE, _CODE), ())
    _walk(data, status_begin, status_begin + span.length[_STATUS], _STATUS_WIRE, status)
    status.once(_MESSAGE)
    attribute_rows, attribute_begin, attribute_length = span.repeated(_ATTRIBUTES)
    special = np.unique(np.concatenate([span.repeated(_EVENTS)[0], span.repeated(_LINKS)[0]]))
    return DecodedSpans(
        trace_ids=_kept(data, span, _TRACE_ID),
        span_ids=_kept(data, span, _SPAN_ID),
        parent_span_ids=_kept(data, span, _PARENT_SPAN_ID),
        names=_text(_kept(data, span, _NAME)),
        kinds=_enum(span.value[_KIND]),
        starts=span.value[_START],
        ends=span.value[_END],
        status_codes=_enum(status.value[_CODE]),
        status_messages=_text(_kept(data, status, _MESSAGE)),
        attributes=AttributeBytes(data, attribute_begin, attribute_begin + attribute_length),
        attribute_counts=np.bincount(attribute_rows, minlength=count).astype(np.int64),
        special={row: _real_span(encoded[row]) for row in special.tolist()},
    )


def _padded(encoded: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The messages back to back and :data:`_PADDING` zero bytes, and where each starts and
    ends: joined once, where an Arrow array of them and its padded copy took two copies."""
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    ends = np.cumsum(lengths)
    data = np.frombuffer(b"".join((*encoded, bytes(_PADDING))), dtype=np.uint8)
    return data, ends - lengths, ends


def _real_span(blob: bytes) -> Any:
    try:
        return trace_pb2.Span.FromString(blob)
    except DecodeError as error:
        raise NeedsFullParse(f"span with events or links: {error}") from None


def _walk(data: np.ndarray, begin: np.ndarray, end: np.ndarray, wire_of: np.ndarray, picked: _Picked) -> None:
    """Walk the messages ``data[begin:end]`` one field of every message per step, into ``picked``.

    ``wire_of`` gives the wire type each known field must have; the runtime keeps a known field
    of another wire type as an unknown field, and unknown fields are skipped.
    """
    cursor = begin.copy()
    active = np.flatnonzero(cursor < end)
    while len(active):
        at, stop = cursor[active], end[active]
        tag, at = _varints(data, at, stop)
        number, wire = (tag >> np.uint64(3)).astype(np.int64), (tag & np.uint64(7)).astype(np.int64)
        if ((number == 0) | (number > _MAX_FIELD)).any():
            raise NeedsFullParse("invalid field number")
        if not _WIRE_TYPES[wire].all():
            raise NeedsFullParse("group or unknown wire type")
        expected = wire_of[np.minimum(number, len(wire_of) - 1)]
        number[(expected != _UNKNOWN) & (expected != wire)] = _UNKNOWN
        value = np.zeros(len(active), dtype=np.uint64)
        start = np.zeros(len(active), dtype=np.int64)
        length = np.zeros(len(active), dtype=np.int64)
        varint = np.flatnonzero(wire == _VARINT)
        if len(varint):
            value[varint], at[varint] = _varints(data, at[varint], stop[varint])
        for kind, width in ((_FIXED64, 8), (_FIXED32, 4)):
            fixed = np.flatnonzero(wire == kind)
            if len(fixed):
                value[fixed] = _fixed(data, at[fixed], width)
                at[fixed] += width
        delimited = np.flatnonzero(wire == _DELIMITED)
        if len(delimited):
            size, after = _varints(data, at[delimited], stop[delimited])
            if (size > (stop[delimited] - after).astype(np.uint64)).any():
                raise NeedsFullParse("field runs past the end of its message")
            start[delimited], length[delimited] = after, size.astype(np.int64)
            at[delimited] = after + length[delimited]
        if (at > stop).any():
            raise NeedsFullParse("field runs past the end of its message")
        picked.take(active, number, value, start, length)
        cursor[active] = at
        active = active[at < stop]


def _varints(data: np.ndarray, at: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The varint at each position and the position after it."""
    value, after, whole = read_varints(data, at, stop)
    if not whole.all():
        raise NeedsFullParse("varint longer than ten bytes or past the end of its message")
    return value, after


def _fixed(data: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """Little-endian unsigned integers of ``width`` bytes at each position.

    Read through a view of ``data`` holding an integer at every byte (0.7 ms for 120,000 of
    them, against 3 ms gathering their bytes one by one).
    """
    starting_anywhere = np.ndarray(
        shape=(len(data) - width + 1,), dtype=f"<u{width}", buffer=np.ascontiguousarray(data), strides=(1,)
    )
    values: np.ndarray = starting_anywhere[at].astype(np.uint64)
    return values


def _enum(values: np.ndarray) -> np.ndarray:
    """Enum values as the runtime keeps them: the varint's low 32 bits, signed."""
    enum: np.ndarray = values.astype(np.uint32).view(np.int32)
    return enum


def _kept(data: np.ndarray, picked: _Picked, number: int) -> pa.Array:
    """A length-delimited field's bytes per message (empty where absent)."""
    return gather(data, picked.begin[number], picked.length[number])


def _text(values: pa.Array) -> pa.Array:
    try:
        return values.cast(pa.string())
    except pa.ArrowInvalid as error:
        raise NeedsFullParse(f"text is not valid UTF-8: {error}") from None
