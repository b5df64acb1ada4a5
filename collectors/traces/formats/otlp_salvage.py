"""Recover the intact part of a damaged OTLP protobuf message, span by span.

A truncated or corrupted ``ExportTraceServiceRequest`` fails to parse as a whole, yet everything
before the damage is usually intact: the message is a sequence of length-delimited
``ResourceSpans``, each a sequence of ``ScopeSpans``, each a sequence of ``Span``. Walking that
wire structure keeps every complete span that precedes the damage.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

_LENGTH_DELIMITED = 2
# Field numbers from trace.proto / trace_service.proto.
_RESOURCE_SPANS = 1
_RESOURCE, _SCOPE_SPANS = 1, 2
_SCOPE, _SPANS = 1, 2


@dataclass(frozen=True, slots=True)
class Salvage:
    """The intact part of a damaged message: where the damage that ends it starts (offset in the
    body), and the offsets of single spans skipped before it (their own framing was intact)."""

    request: ExportTraceServiceRequest
    spans: int
    damage_at: int
    bad_spans: tuple[int, ...] = ()


class _Damaged(Exception):
    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise _Damaged(pos)


def _fields(data: bytes, base: int) -> Iterator[tuple[int, bytes, int, bool]]:
    """(field number, payload, absolute offset, whole) of each length-delimited field, in order."""
    pos = 0
    while pos < len(data):
        tag, after_tag = _varint(data, pos)
        if tag & 7 != _LENGTH_DELIMITED:
            raise _Damaged(base + pos)
        length, start = _varint(data, after_tag)
        if start + length > len(data):
            # Truncated: hand out what is there, so that its complete leading spans are kept.
            yield tag >> 3, data[start:], base + start, False
            raise _Damaged(base + len(data))
        yield tag >> 3, data[start : start + length], base + start, True
        pos = start + length


def _parses(message: Message, data: bytes) -> bool:
    try:
        message.ParseFromString(data)
    except DecodeError:
        return False
    return True


def salvage(body: bytes) -> Salvage:
    """Keep every complete span of ``body`` up to the first damage that breaks its framing.

    A span whose own bytes are damaged but whose length is intact is skipped on its own (its
    offset listed); damage to the framing (a length, a tag) ends the salvage there.
    """
    request = ExportTraceServiceRequest()
    bad: list[int] = []
    try:
        for field, data, offset, _ in _fields(body, 0):
            if field == _RESOURCE_SPANS:
                _salvage_resource(data, offset, request.resource_spans.add(), bad)
    except _Damaged as damage:
        return Salvage(request, _count(request), damage.offset, tuple(bad))
    if bad:
        return Salvage(request, _count(request), -1, tuple(bad))
    # Every piece parsed on its own yet the whole did not: the damage is in the last piece.
    return Salvage(request, _count(request), len(body))


def _salvage_resource(data: bytes, base: int, target: ResourceSpans, bad: list[int]) -> None:
    whole = ResourceSpans()
    if _parses(whole, data):
        target.CopyFrom(whole)
        return
    for field, piece, offset, _ in _fields(data, base):
        if field == _RESOURCE and not _parses(target.resource, piece):
            raise _Damaged(offset)
        if field == _SCOPE_SPANS:
            _salvage_scope(piece, offset, target.scope_spans.add(), bad)


def _salvage_scope(data: bytes, base: int, target: ScopeSpans, bad: list[int]) -> None:
    whole = ScopeSpans()
    if _parses(whole, data):
        target.CopyFrom(whole)
        return
    for field, piece, offset, complete in _fields(data, base):
        if field == _SCOPE and not _parses(target.scope, piece):
            raise _Damaged(offset)
        if field == _SPANS:
            span = Span()
            if _parses(span, piece):
                target.spans.append(span)
            elif complete:
                bad.append(offset)  # its length was intact: the next span starts where it says
            else:
                raise _Damaged(offset)


def _count(request: ExportTraceServiceRequest) -> int:
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
