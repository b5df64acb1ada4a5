"""A synthetic landscape of about 300 services, as a span table or as a Collector-framed OTLP file.

Request shapes seen in real landscapes: orchestrators calling four services one after another,
each with its own database; gateways forwarding to one of many backends; composers reading five
services in parallel; scheduled jobs publishing events consumed by two services (one by parent,
one by span link); payments calling an uninstrumented provider; and leaf lookups. Ids and times
are vectorised with numpy, so millions of spans take seconds; :func:`write_otlp` writes any number
of them slice by slice, so the file can be far larger than memory.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from orchscan.collectors.model.spans import SCHEMA

BASE_NS = 1_754_000_000_000_000_000
INGEST_BATCH_SPANS = 13_000
MS = 1_000_000

#: Service pools: how many of each kind the landscape has (about 300 in all).
POOLS = {
    "orchestrator": 12,
    "gateway": 4,
    "composer": 6,
    "job": 8,
    "listener": 20,
    "backend": 250,
    "external": 6,
}


@dataclass(frozen=True)
class SpanShape:
    """One span of a request shape: its parent (index in the shape), who emits it and when."""

    parent: int
    slot: str
    kind: str
    name: str
    at: float
    ms: float
    method: str | None = None
    route: str | None = None
    db: str | None = None
    destination: str | None = None
    peer: str | None = None
    link_to: int | None = None


def _call(
    parent: int, caller: str, callee: str, method: str, route: str, at: float, ms: float
) -> list[SpanShape]:
    """Client span in the caller, server span below it in the callee (indices parent+1, parent+2)."""
    return [
        SpanShape(parent, caller, "client", method, at, ms, method=method, peer=callee),
        SpanShape(-2, callee, "server", f"{method} {route}", at + 0.2, ms - 0.4, method=method, route=route),
    ]


def _orchestration() -> list[SpanShape]:
    shape = [SpanShape(-1, "orchestrator", "server", "POST /orders", 0, 220, method="POST", route="/orders")]
    shape.append(SpanShape(0, "orchestrator", "client", "INSERT", 2, 4, db="postgresql"))
    for i, (method, route) in enumerate((("POST", "/a"), ("POST", "/b"), ("GET", "/c"), ("POST", "/d"))):
        at = 10 + 50 * i
        shape += _call(0, "orchestrator", f"backend{i}", method, route, at, 40)
        shape.append(
            SpanShape(len(shape) - 1, f"backend{i}", "client", "SELECT", at + 5, 10, db="postgresql")
        )
    return shape


def _gateway() -> list[SpanShape]:
    shape = [SpanShape(-1, "gateway", "server", "GET /api/items", 0, 30, method="GET", route="/api/items")]
    shape += _call(0, "gateway", "backend0", "GET", "/items/{id}", 1, 25)
    shape.append(SpanShape(2, "backend0", "client", "SELECT", 3, 8, db="postgresql"))
    return shape


def _composition() -> list[SpanShape]:
    shape = [SpanShape(-1, "composer", "server", "GET /page", 0, 60, method="GET", route="/page")]
    for i in range(5):
        shape += _call(0, "composer", f"backend{i}", "GET", f"/part{i}", 1 + 0.1 * i, 40)
    return shape


def _events() -> list[SpanShape]:
    return [
        SpanShape(-1, "job", "internal", "nightly run", 0, 20),
        SpanShape(0, "job", "producer", "publish", 2, 2, destination="events"),
        SpanShape(1, "listener0", "consumer", "process", 5, 10, destination="events"),
        SpanShape(2, "listener0", "client", "INSERT", 6, 3, db="postgresql"),
        SpanShape(-1, "listener1", "consumer", "process", 30, 10, destination="events", link_to=1),
    ]


def _payment() -> list[SpanShape]:
    shape = [SpanShape(-1, "backend0", "server", "POST /charges", 0, 80, method="POST", route="/charges")]
    shape.append(SpanShape(0, "backend0", "client", "POST", 5, 60, method="POST", peer="external0"))
    return shape


def _lookup() -> list[SpanShape]:
    return [
        SpanShape(-1, "backend0", "server", "GET /items/{id}", 0, 12, method="GET", route="/items/{id}"),
        SpanShape(0, "backend0", "internal", "load", 1, 10),
        SpanShape(1, "backend0", "client", "GET", 2, 3, db="redis"),
    ]


#: Request shapes and the share of traces each makes up.
MIX: list[tuple[Callable[[], list[SpanShape]], float]] = [
    (_orchestration, 0.2),
    (_gateway, 0.3),
    (_composition, 0.1),
    (_events, 0.1),
    (_payment, 0.1),
    (_lookup, 0.2),
]


def _resolve(shape: list[SpanShape]) -> list[SpanShape]:
    """Replace the ``-2`` placeholder of server spans by the preceding client span's index."""
    return [
        SpanShape(**{**span.__dict__, "parent": i - 1}) if span.parent == -2 else span
        for i, span in enumerate(shape)
    ]


def build_table(spans: int, seed: int = 7, first_trace: int = 0) -> pa.Table:
    """A span table of about ``spans`` rows drawn from :data:`MIX`, ids and times vectorised.

    Trace numbers start at ``first_trace``, so slices built one after another never share ids.
    """
    rng = np.random.default_rng(seed)
    shapes = [(_resolve(make()), share) for make, share in MIX]
    mean = sum(len(shape) * share for shape, share in shapes)
    traces = int(spans / mean)
    pools = {kind: np.array([f"{kind}-{i:03d}" for i in range(n)], dtype=object) for kind, n in POOLS.items()}
    parts: list[dict[str, Any]] = []
    for shape, share in shapes:
        n = int(traces * share)
        parts.append(_expand(shape, n, first_trace, pools, rng))
        first_trace += n
    columns = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    rows = len(columns["trace_id"])
    arrays = []
    for field in SCHEMA:
        if field.name in columns:
            arrays.append(pa.array(columns[field.name], field.type, from_pandas=True))
        elif field.name == "idempotency_key":
            arrays.append(pa.array(np.zeros(rows, dtype=bool)))
        else:
            arrays.append(pa.nulls(rows, field.type))
    table = pa.Table.from_arrays(arrays, schema=SCHEMA)
    # In batches the size ingest hands over (4 MB of protobuf, about 13,000 spans), not one chunk.
    return pa.Table.from_batches(table.to_batches(max_chunksize=INGEST_BATCH_SPANS), schema=SCHEMA)


def _ids(numbers: np.ndarray, width: int) -> np.ndarray:
    return np.char.zfill(np.char.mod("%x", numbers), width).astype(object)


def _expand(
    shape: list[SpanShape], n: int, first_trace: int, pools: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, Any]:
    """``n`` traces of one shape: every span of the shape repeated per trace, services drawn per trace."""
    k = len(shape)
    trace_numbers = np.repeat(np.arange(first_trace, first_trace + n), k)
    trace_ids = _ids(trace_numbers + 1, 32)
    span_numbers = trace_numbers * 64 + np.tile(np.arange(k), n) + 1
    span_ids = _ids(span_numbers, 16)
    slots = sorted({span.slot for span in shape} | {span.peer for span in shape if span.peer})
    drawn = {}
    for slot in slots:
        pool = pools[slot.rstrip("0123456789")]
        drawn[slot] = pool[rng.integers(0, len(pool), n)]
    service = np.empty(n * k, dtype=object)
    peer = np.full(n * k, None, dtype=object)
    parent = np.full(n * k, None, dtype=object)
    links = np.full(n * k, None, dtype=object)
    offsets = rng.integers(0, 5 * MS, n)
    start = np.empty(n * k, dtype=np.int64)
    end = np.empty(n * k, dtype=np.int64)
    base = BASE_NS + np.arange(first_trace, first_trace + n, dtype=np.int64) * 10 * MS + offsets
    columns: dict[str, Any] = {}
    for name in (
        "kind",
        "name",
        "http_method",
        "http_route",
        "db_system",
        "messaging_destination",
        "server_address",
    ):
        columns[name] = np.full(n * k, None, dtype=object)
    for i, span in enumerate(shape):
        at = slice(i, n * k, k)
        service[at] = drawn[span.slot]
        jitter = rng.integers(0, MS // 2, n)
        start[at] = base + int(span.at * MS) + jitter
        end[at] = start[at] + int(span.ms * MS)
        if span.parent >= 0:
            parent[at] = span_ids[span.parent :: k]
        if span.peer:
            peer[at] = drawn[span.peer]
            columns["server_address"][at] = drawn[span.peer]
        if span.db:
            columns["server_address"][at] = drawn[span.slot] + "-db"
        if span.link_to is not None:
            links[at] = [
                [{"trace_id": t, "span_id": s}]
                for t, s in zip(trace_ids[span.link_to :: k], span_ids[span.link_to :: k], strict=True)
            ]
        columns["kind"][at] = span.kind
        columns["name"][at] = span.name
        columns["http_method"][at] = span.method
        columns["http_route"][at] = span.route
        columns["db_system"][at] = span.db
        columns["messaging_destination"][at] = span.destination
    # A linked consumer starts its own trace (same number as its producer's, other high bits).
    for i, span in enumerate(shape):
        if span.link_to is not None:
            trace_ids[i::k] = "f" + _ids(trace_numbers[i::k] + 1, 31)
    columns.update(
        trace_id=trace_ids,
        span_id=span_ids,
        parent_span_id=parent,
        service=service,
        peer_service=peer,
        start_ns=start,
        end_ns=end,
        status=np.full(n * k, "unset", dtype=object),
        messaging_system=np.where(columns["messaging_destination"] != None, "kafka", None),  # noqa: E711
        links=links,
        source=np.full(n * k, "synthetic", dtype=object),
    )
    return columns




#: Spans per generated slice: bounds the generator's memory whatever the file's size.
SLICE_SPANS = 500_000
_MIN_SLICE = 1_000
#: Spans per ``ExportTraceServiceRequest``, as a Collector batch processor sends them.
SPANS_PER_MESSAGE = 512

_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_ATTRIBUTES = (
    ("http_method", "http.request.method"),
    ("http_route", "http.route"),
    ("db_system", "db.system"),
    ("messaging_system", "messaging.system"),
    ("messaging_destination", "messaging.destination.name"),
    ("server_address", "server.address"),
    ("peer_service", "peer.service"),
)


def _string(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _messages(table: pa.Table) -> Iterator[bytes]:
    """The table's spans as serialised ``ExportTraceServiceRequest`` messages, one resource per service."""
    rows = table.to_pylist()
    for at in range(0, len(rows), SPANS_PER_MESSAGE):
        by_service: dict[str, list[dict[str, Any]]] = {}
        for row in rows[at : at + SPANS_PER_MESSAGE]:
            by_service.setdefault(row["service"], []).append(row)
        request = ExportTraceServiceRequest()
        for service, members in by_service.items():
            resource_spans = request.resource_spans.add()
            resource_spans.resource.attributes.append(_string("service.name", service))
            spans = resource_spans.scope_spans.add().spans
            for row in members:
                span: Span = spans.add()
                span.trace_id = bytes.fromhex(row["trace_id"])
                span.span_id = bytes.fromhex(row["span_id"])
                if row["parent_span_id"]:
                    span.parent_span_id = bytes.fromhex(row["parent_span_id"])
                span.name = row["name"]
                span.kind = _KINDS[row["kind"]]  # type: ignore[assignment]
                span.start_time_unix_nano, span.end_time_unix_nano = row["start_ns"], row["end_ns"]
                attributes = (_string(key, row[column]) for column, key in _ATTRIBUTES if row[column])
                span.attributes.extend(attributes)
                for link in row["links"] or ():
                    added = span.links.add()
                    added.trace_id = bytes.fromhex(link["trace_id"])
                    added.span_id = bytes.fromhex(link["span_id"])
        yield request.SerializeToString()


def write_otlp(path: Path, spans: int, seed: int = 7) -> int:
    """Write about ``spans`` spans in the Collector file exporter's framing; returns the span count."""
    written = 0
    traces = 0
    with path.open("wb") as out:
        # A slice draws whole traces of every shape, so the last few hundred spans are left out.
        while spans - written >= _MIN_SLICE:
            table = build_table(min(SLICE_SPANS, spans - written), seed=seed + traces, first_trace=traces)
            traces += len(set(table["trace_id"].to_pylist()))
            for message in _messages(table):
                out.write(struct.pack(">I", len(message)))
                out.write(message)
            written += table.num_rows
    return written
