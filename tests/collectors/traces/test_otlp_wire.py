"""Span attributes decoded from their wire bytes read exactly as the protobuf runtime reads them."""

from __future__ import annotations

from pathlib import Path
from random import Random
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind
from sdk_spans import BASE_NS, Recorder, encode, framed, write

from orchscan.collectors.model.spans import SEMANTIC_COLUMNS
from orchscan.collectors.traces.formats.otlp_spans import SpanBytesTracesData, decode_spans
from orchscan.collectors.traces.formats.otlp_wire import (
    AttributeBytes,
    MalformedAttribute,
    decode_attributes,
    gather,
    value_text,
)
from orchscan.collectors.traces.ingest import InputReader, ingest
from orchscan.collectors.traces.vocabulary import fills_a_column, normalize

# Every attribute type the SDK accepts, with the encodings the fast path must leave alone:
# keys and values longer than one varint byte can count, negative and 64-bit integers.
ATTRIBUTES: dict[str, Any] = {
    "http.request.method": "GET",
    "url.full": "https://shop.example:8443/orders/7?expand=items",
    "http.response.status_code": 201,
    "server.port": 8443,
    "retry.count": -3,
    "big.counter": 2**62 + 5,
    "cache.hit": True,
    "ratio": 0.25,
    "tags": ("a", "b"),
    "codes": (200, 404),
    "flags": (True, False),
    "weights": (1.5, 2.0),
    "empty": "",
    "unicode.ключ": "значение ✓",
    "long.value": "v" * 300,
    "k" * 200: "long key",
}


def _record(attributes: list[dict[str, Any]]) -> Any:
    recorder = Recorder()
    tracer = recorder.tracer("orders")
    for index, values in enumerate(attributes):
        tracer.start_span(f"span {index}", kind=SpanKind.SERVER, attributes=values, start_time=BASE_NS).end(
            end_time=BASE_NS + 1
        )
    spans = recorder.finished()
    recorder.shutdown()
    return encode(spans)


def _runtime_pairs(request: Any) -> list[tuple[str, str | None]]:
    """What the real KeyValue messages hold, as the span table keeps it."""
    return [
        (kv.key, value_text(kv.value))
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
        for kv in span.attributes
    ]


def _wire_pairs(request: Any) -> list[tuple[str, str | None]]:
    twin = SpanBytesTracesData.FromString(request.SerializeToString())
    encoded = [
        span for resource in twin.resource_spans for scope in resource.scope_spans for span in scope.spans
    ]
    keys, values = decode_attributes(decode_spans(encoded).attributes)
    return list(zip(keys.to_pylist(), values.to_pylist(), strict=True))


def test_every_sdk_attribute_type_decodes_as_the_runtime_reads_it() -> None:
    request = _record([ATTRIBUTES, {"http.request.method": "POST"}, {}])
    pairs = _wire_pairs(request)
    assert pairs == _runtime_pairs(request)
    assert dict(pairs)["big.counter"] == str(2**62 + 5) and dict(pairs)["retry.count"] == "-3"


_values = st.one_of(
    st.text(max_size=200),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=5), max_size=3).map(tuple),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3).map(tuple),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.text(min_size=1, max_size=150), _values, max_size=6), max_size=4))
def test_any_recorded_attributes_decode_as_the_runtime_reads_them(attributes: list[dict[str, Any]]) -> None:
    request = _record(attributes)
    assert _wire_pairs(request) == _runtime_pairs(request)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.dictionaries(st.sampled_from(sorted(ATTRIBUTES)), _values, max_size=8), min_size=1, max_size=4
    )
)
def test_columnar_vocabulary_agrees_with_the_per_span_one(
    tmp_path: Path, attributes: list[dict[str, Any]]
) -> None:
    request = _record(attributes)
    rows = ingest([write(tmp_path / "spans.pb", request.SerializeToString())], jobs=1).spans.to_pylist()
    spans = [s for r in request.resource_spans for sc in r.scope_spans for s in sc.spans]
    for row, span in zip(
        sorted(rows, key=lambda r: r["name"]), sorted(spans, key=lambda s: s.name), strict=True
    ):
        semantic, idempotent, rest = normalize({kv.key: value_text(kv.value) for kv in span.attributes})
        assert [row[name] for name in SEMANTIC_COLUMNS] == semantic
        assert row["idempotency_key"] == idempotent
        assert row["attributes"] == rest


def test_malformed_attribute_bytes_are_rejected() -> None:
    with pytest.raises(MalformedAttribute):
        decode_attributes(AttributeBytes.of(pa.array([b"\x0a\x03k\xffy\x12\x03\x0a\x01v"])))
    with pytest.raises(MalformedAttribute):
        decode_attributes(AttributeBytes.of(pa.array([b"\x0a\x05key"])))


def test_invalid_utf8_in_an_attribute_damages_its_message_as_in_the_runtime(tmp_path: Path) -> None:
    good = _record([{"http.route": "/orders"}])
    bad = bytearray(_record([{"http.route": "/items"}]).SerializeToString())
    bad[bad.index(b"/items") + 1] = 0xFF
    frames = framed([good, good])
    body = bytes(bad)
    path = write(tmp_path / "bad.binpb", frames + len(body).to_bytes(4, "big") + body)
    result = ingest([path], jobs=1)
    assert result.spans["http_route"].to_pylist() == ["/orders"]
    damaged, duplicate = result.skipped
    # The span's own length is intact, so only that span is skipped.
    assert damaged.reason.startswith("invalid OTLP protobuf span") and damaged.reason.endswith("skipped")
    assert duplicate.reason == "duplicate span id (same trace); first copy kept"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(sorted(ATTRIBUTES)), _values, max_size=8), min_size=1, max_size=4
    )
)
def test_reading_only_the_values_that_fill_columns_gives_the_same_keys_and_those_values(
    attributes: list[dict[str, Any]],
) -> None:
    request = _record(attributes)
    twin = SpanBytesTracesData.FromString(request.SerializeToString())
    encoded = [span for r in twin.resource_spans for sc in r.scope_spans for span in sc.spans]
    decoded = decode_spans(encoded).attributes
    keys, values = decode_attributes(decoded)
    picked_keys, picked_values = decode_attributes(decoded, fills_a_column)
    assert picked_keys.dictionary_decode().to_pylist() == keys.to_pylist()
    wanted = fills_a_column(keys.to_pylist())
    assert picked_values.to_pylist() == [
        v if w else None for v, w in zip(values.to_pylist(), wanted, strict=True)
    ]


def test_invalid_utf8_in_an_attribute_no_column_keeps_damages_its_message_all_the_same(
    tmp_path: Path,
) -> None:
    good = _record([{"http.route": "/orders", "user_agent.original": "curl/8.5"}])
    bad = bytearray(
        _record([{"http.route": "/items", "user_agent.original": "curl/8.6"}]).SerializeToString()
    )
    bad[bad.index(b"curl/8.6") + 1] = 0xFF
    body = bytes(bad)
    path = write(tmp_path / "bad.binpb", framed([good]) + len(body).to_bytes(4, "big") + body)
    for keep in (True, False):
        reader = InputReader([path], jobs=1, keep_attributes=keep)
        table = pa.Table.from_batches(list(reader.batches()))
        assert table["http_route"].to_pylist() == ["/orders"]
        (damaged,) = reader.skipped
        assert damaged.reason.startswith("invalid OTLP protobuf span") and damaged.reason.endswith("skipped")
        assert table["attributes"].to_pylist() == (
            [[("user_agent.original", "curl/8.5")]] if keep else [None]
        )


_slices = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 12)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(_slices, st.sampled_from(["ordered", "empty ones anywhere", "reversed"]), st.randoms())
def test_gather_cuts_any_slices_out_of_the_bytes(
    gaps_and_lengths: list[tuple[int, int]], order: str, random: Random
) -> None:
    """In order without overlap (taken from a view of the bytes), also with empty slices out of
    place among them, or anyhow."""
    data = np.arange(2_000, dtype=np.int64).astype(np.uint8)
    begin, at = [], 0
    for gap, length in gaps_and_lengths:
        begin.append(at + gap if length or order != "empty ones anywhere" else random.randrange(2_000))
        at += gap + length
    step = -1 if order == "reversed" else 1
    starts = np.array(begin[::step], dtype=np.int64)
    lengths = np.array([length for _, length in gaps_and_lengths][::step], dtype=np.int64)
    expected = [bytes(data[s : s + n]) for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)]
    assert gather(data, starts, lengths).to_pylist() == expected
