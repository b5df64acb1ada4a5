"""Fuzzing every reader with mutations of real records: no value a producer can write raises, loses
the records beside it, or goes uncounted.

Seeds are the real fixtures (OTLP/JSON from HotROD, Jaeger JSON from PetClinic, Zipkin from
zipkin-lens) and the OpenTelemetry SDK's own protobuf encoding. Each example mutates one span
record (a value replaced by any JSON value, a key removed, or, for protobuf, a field set to any
value of its type or a byte of the span flipped) and checks that parsing never raises, that every
other span's row is exactly as before, and that the mutated span either became a row or is one
skipped record at its own position.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from paths import FIXTURES
from sdk_spans import encode, record_landscape

from orchscan.collectors.model.records import Chunk, ChunkResult
from orchscan.collectors.traces.formats import jaeger, otlp_json, otlp_proto, zipkin
from orchscan.collectors.traces.limits import END_BEFORE_START, MALFORMED_FIELD

# Values a producer can write anywhere: wrong types, huge and negative numbers, long text.
_EDGE_NUMBERS = st.sampled_from([2**63 + 5, 2**64 - 1, 2**63 - 1, -1, -(2**63), 10**30, 1e300, -0.5, 0])
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    _EDGE_NUMBERS,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["x" * 600, "y" * 9000, "\x00\u202e", "2262-04-12", ""]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``node`` (the node itself included)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(record: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    """A copy of ``record`` with the value at ``path`` replaced by ``value`` (or removed)."""
    if not path:
        return value
    mutated = copy.deepcopy(record)
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return mutated


def _parse(parse: Callable[[Chunk], ChunkResult], fmt: str, document: Any) -> ChunkResult:
    return parse(Chunk(fmt, "seed.json", json.dumps(document).encode(), 0))


def _rows(result: ChunkResult) -> list[dict[str, Any]]:
    return result.batch.to_pylist()


def _check_others_untouched(
    base: list[dict[str, Any]], mutated: list[dict[str, Any]], index: int, result: ChunkResult, where: str
) -> None:
    """Every row but the mutated span's is as before; the mutated span is a row or one skip at its place."""
    others = base[:index] + base[index + 1 :]
    if len(mutated) == len(base):
        assert mutated[:index] + mutated[index + 1 :] == others
        assert result.skipped == ()
        # Repairs are counted for the mutated span only, and only when it needed one (a field
        # ignored as malformed may leave the row as it was).
        if mutated[index] == base[index]:
            assert {n.reason for n in result.notices} <= {MALFORMED_FIELD}
        if END_BEFORE_START in {n.reason for n in result.notices}:
            assert mutated[index]["end_ns"] == mutated[index]["start_ns"]
    else:
        assert mutated == others
        (skip,) = result.skipped
        assert skip.position.endswith(where) and skip.count == 1
    assert all(n.file == "seed.json" and n.count >= 1 for n in result.notices)


# --- OTLP/JSON -----------------------------------------------------------------------------------------

_OTLP_SEED = json.loads(
    (FIXTURES / "hotrod" / "traces" / "jaeger-ui_getTrace-response.otlp.json").read_text()
)
_OTLP_SPANS = [
    (r, s, p)
    for r, rs in enumerate(_OTLP_SEED["result"]["resourceSpans"])
    for s, scope in enumerate(rs["scopeSpans"])
    for p, _ in enumerate(scope["spans"])
]


@st.composite
def _otlp_mutation(draw: st.DrawFn) -> tuple[int, Any]:
    index = draw(st.integers(min_value=0, max_value=len(_OTLP_SPANS) - 1))
    r, s, p = _OTLP_SPANS[index]
    span = _OTLP_SEED["result"]["resourceSpans"][r]["scopeSpans"][s]["spans"][p]
    path = draw(st.sampled_from(_paths(span)))
    mutated = _mutate(span, path, draw(_VALUES), draw(st.booleans()) and bool(path))
    document = copy.deepcopy(_OTLP_SEED)
    document["result"]["resourceSpans"][r]["scopeSpans"][s]["spans"][p] = mutated
    return index, document


def test_otlp_json_seed_reads_whole() -> None:
    result = _parse(otlp_json.parse, otlp_json.NAME, _OTLP_SEED)
    assert result.skipped == () and result.batch.num_rows == len(_OTLP_SPANS) == 40


@_SETTINGS
@given(_otlp_mutation())
def test_otlp_json_mutated_span_is_kept_or_counted_alone(mutation: tuple[int, Any]) -> None:
    index, document = mutation
    base = _rows(_parse(otlp_json.parse, otlp_json.NAME, _OTLP_SEED))
    result = _parse(otlp_json.parse, otlp_json.NAME, document)
    r, s, p = _OTLP_SPANS[index]
    _check_others_untouched(
        base, _rows(result), index, result, f"resourceSpans[{r}].scopeSpans[{s}].spans[{p}]"
    )


# --- Jaeger JSON ----------------------------------------------------------------------------------------

_JAEGER_SEED = json.loads(
    (FIXTURES / "spring-petclinic" / "traces" / "testTraceNormal.jaeger.json").read_text()
)


@st.composite
def _jaeger_mutation(draw: st.DrawFn) -> tuple[int, Any]:
    index = draw(st.integers(min_value=0, max_value=len(_JAEGER_SEED["spans"]) - 1))
    span = _JAEGER_SEED["spans"][index]
    path = draw(st.sampled_from(_paths(span)))
    document = copy.deepcopy(_JAEGER_SEED)
    document["spans"][index] = _mutate(span, path, draw(_VALUES), draw(st.booleans()) and bool(path))
    return index, document


def test_jaeger_seed_reads_whole() -> None:
    result = _parse(jaeger.parse, jaeger.NAME, _JAEGER_SEED)
    assert result.skipped == () and result.batch.num_rows == len(_JAEGER_SEED["spans"])


@_SETTINGS
@given(_jaeger_mutation())
def test_jaeger_mutated_span_is_kept_or_counted_alone(mutation: tuple[int, Any]) -> None:
    index, document = mutation
    base = _rows(_parse(jaeger.parse, jaeger.NAME, _JAEGER_SEED))
    result = _parse(jaeger.parse, jaeger.NAME, document)
    _check_others_untouched(base, _rows(result), index, result, f"spans[{index}]")


# --- Zipkin JSON ----------------------------------------------------------------------------------------

# Every record has its own id (no parts to merge, no shared halves), so each record is one row.
_ZIPKIN_SEED = json.loads((FIXTURES / "zipkin-lens-testdata" / "traces" / "messaging-kafka.json").read_text())
# Parent ids may point at a shared half, and a mutated record may become one: compared without them.
_ZIPKIN_IGNORED = ("parent_span_id",)


def _zipkin_key(row: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in row.items() if k not in _ZIPKIN_IGNORED}, sort_keys=True, default=str)


@st.composite
def _zipkin_mutation(draw: st.DrawFn) -> tuple[int, Any]:
    index = draw(st.integers(min_value=0, max_value=len(_ZIPKIN_SEED) - 1))
    span = _ZIPKIN_SEED[index]
    path = draw(st.sampled_from(_paths(span)))
    document = copy.deepcopy(_ZIPKIN_SEED)
    document[index] = _mutate(span, path, draw(_VALUES), draw(st.booleans()) and bool(path))
    return index, document


def test_zipkin_seed_reads_whole() -> None:
    result = _parse(zipkin.parse, zipkin.NAME, _ZIPKIN_SEED)
    assert result.skipped == () and result.batch.num_rows == len(_ZIPKIN_SEED) == 28


@_SETTINGS
@given(_zipkin_mutation())
def test_zipkin_mutated_span_is_kept_or_counted_alone(mutation: tuple[int, Any]) -> None:
    index, document = mutation
    base = _parse(zipkin.parse, zipkin.NAME, _ZIPKIN_SEED)
    result = _parse(zipkin.parse, zipkin.NAME, document)
    rows = _rows(result)
    original = _ZIPKIN_SEED[index]
    mine = [r for r in _rows(base) if r["span_id"][-len(original["id"]) :] == original["id"]]
    others = Counter(_zipkin_key(r) for r in _rows(base)) - Counter(_zipkin_key(r) for r in mine)
    found = Counter(_zipkin_key(r) for r in rows)
    assert found & others == others  # every other record's row is there, unchanged
    # The mutated record is a row, or counted (a list in its place: each of its items).
    assert len(rows) == len(_ZIPKIN_SEED) or (len(rows) == len(_ZIPKIN_SEED) - 1 and result.skipped)
    assert all(s.position.startswith(f"[{index}]") for s in result.skipped)


# --- OTLP protobuf --------------------------------------------------------------------------------------

_PROTO_SEED = encode(record_landscape().spans)
_PROTO_SPANS = [
    (r, s, p)
    for r, rs in enumerate(_PROTO_SEED.resource_spans)
    for s, scope in enumerate(rs.scope_spans)
    for p, _ in enumerate(scope.spans)
]
_UINT64 = st.one_of(st.integers(min_value=0, max_value=2**64 - 1), st.sampled_from([2**63 + 5, 2**63 - 1, 0]))


def _any_value(depth: int = 2) -> st.SearchStrategy[AnyValue]:
    scalars = st.one_of(
        st.text(max_size=10).map(lambda v: AnyValue(string_value=v)),
        st.sampled_from(["x" * 600, "y" * 9000]).map(lambda v: AnyValue(string_value=v)),
        st.integers(min_value=-(2**63), max_value=2**63 - 1).map(lambda v: AnyValue(int_value=v)),
        st.floats().map(lambda v: AnyValue(double_value=v)),
        st.booleans().map(lambda v: AnyValue(bool_value=v)),
        st.binary(max_size=8).map(lambda v: AnyValue(bytes_value=v)),
        st.just(AnyValue()),
    )
    if depth == 0:
        return scalars

    def array(values: list[AnyValue]) -> AnyValue:
        value = AnyValue()
        value.array_value.values.extend(values)
        return value

    return st.one_of(scalars, st.lists(_any_value(depth - 1), max_size=3).map(array))


def _set_field(span: Any, field: str, value: Any) -> None:
    if field == "attribute":
        span.attributes.append(KeyValue(key=value[0], value=value[1]))
    elif field == "link":
        link = span.links.add()
        link.trace_id, link.span_id = value
    elif field == "status":
        span.status.code = value
    else:
        setattr(span, field, value)


_FIELDS = {
    "start_time_unix_nano": _UINT64,
    "end_time_unix_nano": _UINT64,
    "trace_id": st.binary(max_size=20),
    "span_id": st.binary(max_size=12),
    "parent_span_id": st.binary(max_size=12),
    "name": st.one_of(st.text(max_size=12), st.sampled_from(["n" * 600])),
    "kind": st.integers(min_value=-(2**31), max_value=2**31 - 1),
    "status": st.integers(min_value=-(2**31), max_value=2**31 - 1),
    "attribute": st.tuples(st.one_of(st.text(max_size=12), st.just("k" * 700)), _any_value()),
    "link": st.tuples(st.binary(max_size=20), st.binary(max_size=12)),
}


def _wire(request: ExportTraceServiceRequest, damaged: int | None, flip: tuple[int, int]) -> bytes:
    """The request's wire bytes, built field by field, with one span's bytes changed in place."""

    def field(tag: int, body: bytes) -> bytes:
        size = len(body)
        varint = bytearray()
        while True:
            byte = size & 0x7F
            size >>= 7
            varint.append(byte | (0x80 if size else 0))
            if not size:
                return bytes((tag,)) + bytes(varint) + body

    out = b""
    index = 0
    for rs in request.resource_spans:
        scopes = b""
        for scope in rs.scope_spans:
            spans = field(0x0A, scope.scope.SerializeToString())
            for span in scope.spans:
                body = bytearray(span.SerializeToString())
                if index == damaged:
                    at = flip[0] % len(body)
                    body[at] ^= flip[1] or 1
                spans += field(0x12, bytes(body))
                index += 1
            scopes += field(0x12, spans)
        out += field(0x0A, field(0x0A, rs.resource.SerializeToString()) + scopes)
    return out


@st.composite
def _proto_mutation(draw: st.DrawFn) -> tuple[int, bytes]:
    index = draw(st.integers(min_value=0, max_value=len(_PROTO_SPANS) - 1))
    request = ExportTraceServiceRequest()
    request.CopyFrom(_PROTO_SEED)
    if draw(st.booleans()):
        r, s, p = _PROTO_SPANS[index]
        field = draw(st.sampled_from(sorted(_FIELDS)))
        _set_field(request.resource_spans[r].scope_spans[s].spans[p], field, draw(_FIELDS[field]))
        return index, _wire(request, None, (0, 0))
    flip = (draw(st.integers(min_value=0, max_value=10_000)), draw(st.integers(min_value=1, max_value=255)))
    return index, _wire(request, index, flip)


def _span_at(request: ExportTraceServiceRequest, index: int) -> Any:
    r, s, p = _PROTO_SPANS[index]
    return request.resource_spans[r].scope_spans[s].spans[p]


def _parse_proto(body: bytes) -> ChunkResult:
    return otlp_proto.parse(Chunk(otlp_proto.NAME, "seed.pb", len(body).to_bytes(4, "big") + body, -4))


def test_proto_seed_reads_whole_through_the_hand_built_wire() -> None:
    body = _wire(_PROTO_SEED, None, (0, 0))
    assert ExportTraceServiceRequest.FromString(body) == _PROTO_SEED
    result = _parse_proto(body)
    assert result.skipped == () and result.batch.num_rows == len(_PROTO_SPANS)


@_SETTINGS
@given(_proto_mutation())
def test_proto_mutated_span_is_kept_or_counted_alone(mutation: tuple[int, bytes]) -> None:
    index, body = mutation
    base = _rows(_parse_proto(_wire(_PROTO_SEED, None, (0, 0))))
    result = _parse_proto(body)
    rows = _rows(result)
    others = base[:index] + base[index + 1 :]
    if len(rows) == len(base):
        assert rows[:index] + rows[index + 1 :] == others
        assert result.skipped == ()
        # An end before the start is repaired and counted exactly when the span has one.
        span = _span_at(ExportTraceServiceRequest.FromString(body), index)
        backwards = span.end_time_unix_nano < span.start_time_unix_nano
        assert ((END_BEFORE_START, 1) in [(n.reason, n.count) for n in result.notices]) == backwards
        if rows[index] == base[index]:
            assert {n.reason for n in result.notices} <= {MALFORMED_FIELD}
    else:
        assert rows == others
        assert sum(s.count for s in result.skipped) == 1
        assert all(s.position.startswith("byte ") for s in result.skipped)


@pytest.mark.parametrize(
    ("reader", "fmt"),
    [(otlp_json.parse, otlp_json.NAME), (jaeger.parse, jaeger.NAME), (zipkin.parse, zipkin.NAME)],
)
@_SETTINGS
@given(document=_VALUES)
def test_any_json_document_is_read_or_refused_without_raising(
    reader: Callable[[Chunk], ChunkResult], fmt: str, document: Any
) -> None:
    result = _parse(reader, fmt, document)
    # Random values never spell a whole span; whatever was refused is said, for this file.
    assert result.batch.num_rows == 0
    assert all(s.file == "seed.json" and s.reason for s in result.skipped)
