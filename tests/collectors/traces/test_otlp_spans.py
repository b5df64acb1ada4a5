"""Spans decoded in bulk from their wire bytes read exactly as the protobuf runtime reads them,
and whatever the runtime rejects is never read at all: the chunk goes to the runtime instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from sdk_spans import write

from orchscan.collectors.traces.formats.otlp_spans import decode_spans
from orchscan.collectors.traces.formats.otlp_wire import NeedsFullParse, decode_attributes, value_text
from orchscan.collectors.traces.ingest import ingest

_ids = st.one_of(st.just(b""), st.binary(min_size=8, max_size=8), st.binary(min_size=16, max_size=16))
_values = st.one_of(
    st.text(max_size=40).map(lambda text: AnyValue(string_value=text)),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(lambda number: AnyValue(int_value=number)),
    st.booleans().map(lambda flag: AnyValue(bool_value=flag)),
)


@st.composite
def _spans(draw: st.DrawFn) -> Span:
    """A span with any mix of the fields the runtime knows, as any exporter may write it."""
    span = Span(
        trace_id=draw(_ids),
        span_id=draw(_ids),
        parent_span_id=draw(_ids),
        name=draw(st.text(max_size=150)),
        trace_state=draw(st.text(max_size=20)),
        kind=draw(st.integers(min_value=-3, max_value=9)),
        start_time_unix_nano=draw(st.integers(min_value=0, max_value=2**64 - 1)),
        end_time_unix_nano=draw(st.integers(min_value=0, max_value=2**64 - 1)),
        dropped_attributes_count=draw(st.integers(min_value=0, max_value=2**32 - 1)),
        flags=draw(st.integers(min_value=0, max_value=2**32 - 1)),
    )
    keys = draw(st.lists(st.text(min_size=1, max_size=30), max_size=6))
    span.attributes.extend(KeyValue(key=key, value=draw(_values)) for key in keys)
    if draw(st.booleans()):
        span.status.CopyFrom(
            Status(code=draw(st.integers(min_value=-1, max_value=4)), message=draw(st.text(max_size=30)))
        )
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        span.links.add(trace_id=draw(_ids), span_id=draw(_ids))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        span.events.add(
            name=draw(st.text(max_size=10)),
            time_unix_nano=draw(st.integers(min_value=0, max_value=2**64 - 1)),
        )
    return span


def _as_runtime_reads(span: Span) -> tuple[Any, ...]:
    attributes = [(kv.key, value_text(kv.value)) for kv in span.attributes]
    links = [(link.trace_id, link.span_id) for link in span.links]
    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        span.kind,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        span.status.code,
        span.status.message,
        attributes,
        links,
    )


def _as_decoded(encoded: list[bytes]) -> list[tuple[Any, ...]]:
    spans = decode_spans(encoded)
    keys, values = decode_attributes(spans.attributes)
    pairs = list(zip(keys.to_pylist(), values.to_pylist(), strict=True))
    rows, at = [], 0
    for row in range(len(encoded)):
        count = int(spans.attribute_counts[row])
        special = spans.special.get(row)
        rows.append(
            (
                spans.trace_ids[row].as_py(),
                spans.span_ids[row].as_py(),
                spans.parent_span_ids[row].as_py(),
                spans.names[row].as_py(),
                int(spans.kinds[row]),
                int(spans.starts[row]),
                int(spans.ends[row]),
                int(spans.status_codes[row]),
                spans.status_messages[row].as_py(),
                pairs[at : at + count],
                [(link.trace_id, link.span_id) for link in special.links] if special else [],
            )
        )
        at += count
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_spans(), min_size=1, max_size=6))
def test_any_span_decodes_as_the_runtime_reads_it(spans: list[Span]) -> None:
    encoded = [span.SerializeToString() for span in spans]
    assert _as_decoded(encoded) == [_as_runtime_reads(Span.FromString(blob)) for blob in encoded]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_spans(), st.data())
def test_damaged_bytes_are_read_as_the_runtime_reads_them_or_not_at_all(
    span: Span, data: st.DataObject
) -> None:
    blob = bytearray(span.SerializeToString())
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        at = data.draw(st.integers(min_value=0, max_value=max(len(blob) - 1, 0)))
        damage = data.draw(st.sampled_from(("flip", "cut", "insert")))
        if damage == "flip" and blob:
            blob[at] = data.draw(st.integers(min_value=0, max_value=255))
        elif damage == "cut":
            del blob[at:]
        else:
            blob[at:at] = data.draw(st.binary(min_size=1, max_size=3))
    # A healthy span beside it must not change what is decided about the damaged one.
    encoded = [Span(name="healthy").SerializeToString(), bytes(blob)]
    try:
        expected = _as_runtime_reads(Span.FromString(bytes(blob)))
    except DecodeError:
        event("the runtime rejects it")
        with pytest.raises(NeedsFullParse):
            _as_decoded(encoded)
        return
    try:
        decoded = _as_decoded(encoded)
    except NeedsFullParse:
        event("the runtime reads it; left to the runtime")
        return  # the runtime reads the chunk instead: exact by construction
    event("decoded in bulk")
    assert decoded[1] == expected


def test_a_field_given_twice_reads_as_the_runtime_merges_it(tmp_path: Path) -> None:
    first = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="first", start_time_unix_nano=5)
    second = Span(span_id=b"\x03" * 8, start_time_unix_nano=7, end_time_unix_nano=9)
    # Concatenated messages merge: singular fields keep the last value given.
    merged = first.SerializeToString() + second.SerializeToString()
    assert _as_decoded([merged]) == [_as_runtime_reads(Span.FromString(merged))]
    # A name or status given twice is left to the runtime, and the file still reads as it reads.
    name = Span(name="second").SerializeToString()
    status = Span(status=Status(code=Status.STATUS_CODE_ERROR)).SerializeToString()
    status += Span(status=Status(message="declined")).SerializeToString()
    for twice in (merged + name, merged + status):
        with pytest.raises(NeedsFullParse):
            decode_spans([twice])
    twice = merged + name + status
    # TracesData > ResourceSpans (field 1) > ScopeSpans (field 2) > Span (field 2).
    body = _wrap(_wrap(_wrap(twice, 2), 2), 1)
    (row,) = ingest([write(tmp_path / "twice.pb", body)], jobs=1).spans.to_pylist()
    assert (row["name"], row["span_id"], row["start_ns"]) == ("second", "03" * 8, 7)
    assert (row["status"], row["status_message"]) == ("error", "declined")  # the statuses merged


def _wrap(payload: bytes, field: int) -> bytes:
    """``payload`` as length-delimited field ``field`` of an enclosing message."""
    length = len(payload)
    varint = bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            return bytes([field << 3 | 2]) + bytes(varint) + payload


def _invalid_utf8(span: Span, text: str) -> bytes:
    """``span`` encoded with ``text`` (which it must contain) made invalid UTF-8."""
    blob = bytearray(span.SerializeToString())
    blob[blob.index(text.encode())] = 0xFF
    return bytes(blob)


#: Damage the random mutations rarely hit, each rejected by the runtime.
HAND_MADE = {
    "name not UTF-8": _invalid_utf8(Span(name="checkout"), "checkout"),
    "trace state not UTF-8": _invalid_utf8(Span(name="a", trace_state="vendor=x"), "vendor=x"),
    "status message not UTF-8": _invalid_utf8(Span(status=Status(message="declined")), "declined"),
    "length of 2**64 - 1": b"\x2a" + b"\xff" * 9 + b"\x01" + b"name",
    "length past the end": b"\x2a\x05ab",
    # Read as a signed number, this length would lead back to its own tag, over and over.
    "length wrapping back to its tag": b"\x2a" + bytes.fromhex("f5ffffffffffffffff01"),
    "varint of eleven bytes": b"\x30" + b"\xff" * 10 + b"\x01",
    "field number 0": b"\x02\x01a",
    "end group without a start": b"\x2c",
}


@pytest.mark.parametrize("blob", HAND_MADE.values(), ids=HAND_MADE.keys())
def test_hand_made_damage_is_left_to_the_runtime(blob: bytes) -> None:
    with pytest.raises(DecodeError):
        Span.FromString(blob)
    with pytest.raises(NeedsFullParse):
        _as_decoded([Span(name="healthy").SerializeToString(), blob])


def test_a_known_field_of_another_wire_type_is_skipped_as_the_runtime_skips_it() -> None:
    # The real name and kind, then each again with another wire type: an unknown field each.
    blob = b"\x2a\x01x\x30\x02" + b"\x28\x07\x32\x02ab"
    assert _as_decoded([blob]) == [_as_runtime_reads(Span.FromString(blob))]
    assert _as_decoded([blob])[0][3:5] == ("x", 2)
