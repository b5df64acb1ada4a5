"""A synthetic landscape of about 300 services, as a span table or as a Collector-framed OTLP file.

Request shapes seen in real landscapes: orchestrators calling four services one after another,
each with its own database; gateways forwarding to one of many backends; composers reading five
services in parallel; scheduled jobs publishing events consumed by two services (one by parent,
one by span link); payments calling an uninstrumented provider; and leaf lookups. Ids and times
are vectorised with numpy, so millions of spans take seconds; :func:`write_otlp` writes any number
of them slice by slice, so the file can be far larger than memory.

:data:`MIX` draws every callee per trace, which stresses the analysis (flows with hundreds of
distinct steps). :data:`SAGA_MIX` is the landscape as reviewers know it: each orchestrator always
calls the same partners (sagas that compensate a declined payment, retry a shipment with an
idempotency key), two legacy orchestrators with planted pitfalls (a failure left uncompensated,
a write retried without a key), and a front end that records every request under one span name
without a route (product and home pages, cart, checkout). :func:`add_noise` then does to any
span table what collectors and clocks do to real traces: spans lost, spans delivered twice,
hosts whose clock is off.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
    "legacy": 2,
    "frontend": 2,
}

#: A slot named ``p<k>@<owner>`` is the owner's k-th partner: a backend fixed per owner service
#: rather than drawn per trace, as a real orchestrator always calls the same services.
PARTNER_POOL = "backend"


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
    #: The concrete URL path a client span records; ``{id}`` becomes an id unique to the trace.
    path: str | None = None
    status_code: int | None = None
    error: bool = False
    idempotency_key: bool = False


def _call(
    parent: int,
    caller: str,
    callee: str,
    method: str,
    route: str,
    at: float,
    ms: float,
    *,
    path: str | None = None,
    status_code: int | None = None,
    idempotency_key: bool = False,
) -> list[SpanShape]:
    """Client span in the caller, server span below it in the callee (indices parent+1, parent+2).

    A ``status_code`` of 400 or more fails both spans; ``path`` is the concrete path the client
    records (without one it records only the method, as :data:`MIX` does).
    """
    outcome = {
        "status_code": status_code,
        "error": status_code is not None and status_code >= 400,
        "idempotency_key": idempotency_key,
    }
    return [
        SpanShape(parent, caller, "client", method, at, ms, method=method, peer=callee, path=path, **outcome),
        SpanShape(
            -2,
            callee,
            "server",
            f"{method} {route}",
            at + 0.2,
            ms - 0.4,
            method=method,
            route=route,
            **outcome,
        ),
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


#: The steps of a saga: (method, route, concrete path) on partners p0..p4 of its owner.
_SAGA_STEPS = (
    ("POST", "/reservations", "/reservations"),
    ("POST", "/payments", "/payments"),
    ("GET", "/prices/{priceId}", "/prices/pr{id}"),
    ("POST", "/shipments", "/shipments"),
    ("POST", "/notifications", "/notifications"),
)


def _saga(owner: str = "orchestrator", outcome: str = "ok", *, at: float = 0.0) -> list[SpanShape]:
    """An orchestrator's POST /orders: its own INSERT, then reserve, pay, price, ship, notify in turn.

    ``outcome``: ``ok``; ``declined`` (the payment fails with 402 and the reservation is
    cancelled); ``stranded`` (shipping fails with 503 and nothing is undone); ``retried`` and
    ``retried-with-key`` (shipping answers 503 once and is retried, without or with an
    idempotency key).
    """
    failed = {"declined": (1, 402), "stranded": (3, 503)}.get(outcome)
    status = failed[1] if failed else 201
    shape = [
        SpanShape(
            -1,
            owner,
            "server",
            "POST /orders",
            at,
            300,
            method="POST",
            route="/orders",
            status_code=status,
            error=failed is not None,
        ),
        SpanShape(0, owner, "client", "INSERT", at + 2, 4, db="postgresql"),
    ]
    clock = at + 10
    for step, (method, route, path) in enumerate(_SAGA_STEPS):
        partner = f"p{step}@{owner}"
        code = failed[1] if failed and failed[0] == step else None
        retried = step == 3 and outcome.startswith("retried")
        keyed = outcome == "retried-with-key" and step == 3
        if retried:
            shape += _call(
                0, owner, partner, method, route, clock, 20, path=path, status_code=503, idempotency_key=keyed
            )
            clock += 30
        shape += _call(
            0, owner, partner, method, route, clock, 30, path=path, status_code=code, idempotency_key=keyed
        )
        clock += 40
        if code is not None:
            break
    if outcome == "declined":
        shape += _call(
            0,
            owner,
            "p0@" + owner,
            "DELETE",
            "/reservations/{reservationId}",
            clock,
            15,
            path="/reservations/rs{id}",
        )
    return shape


def _nested(shape: list[SpanShape], parent: int, at: int) -> list[SpanShape]:
    """``shape`` hung below span ``parent`` of an enclosing shape whose next index is ``at``."""
    return [
        replace(
            span, parent=parent if span.parent == -1 else span.parent if span.parent < 0 else span.parent + at
        )
        for span in shape
    ]


def _front_end(*calls: tuple[str, str, str, str]) -> list[SpanShape]:
    """One request to a front end that names every request alike ("HTTP request": no route, no
    path), making ``calls`` (partner slot, method, route, path) one after another."""
    method = "POST" if any(call[1] == "POST" for call in calls) else "GET"
    shape = [SpanShape(-1, "frontend", "server", "HTTP request", 0, 200, method=method)]
    for i, (slot, verb, route, path) in enumerate(calls):
        shape += _call(0, "frontend", slot, verb, route, 5 + 40 * i, 30, path=path)
    return shape


def _checkout() -> list[SpanShape]:
    """The front end's checkout: a call to an orchestrator, which runs its saga."""
    shape = _front_end()
    shape[0] = replace(shape[0], method="POST", ms=400)
    shape.append(
        SpanShape(0, "frontend", "client", "POST", 5, 320, method="POST", peer="orchestrator", path="/orders")
    )
    return shape + _nested(_saga(at=6), len(shape) - 1, len(shape))


_PRODUCT = ("p0@frontend", "GET", "/products/{productId}", "/products/pd{id}")
_CATALOGUE = ("p0@frontend", "GET", "/products", "/products")
_RECOMMENDATIONS = ("p1@frontend", "GET", "/recommendations", "/recommendations")
_ADS = ("p2@frontend", "GET", "/ads", "/ads")
_CART = ("p3@frontend", "GET", "/cart", "/cart")
_ADD_ITEM = ("p3@frontend", "POST", "/cart/items", "/cart/items")

#: Request shapes and the share of traces each makes up.
MIX: list[tuple[Callable[[], list[SpanShape]], float]] = [
    (_orchestration, 0.2),
    (_gateway, 0.3),
    (_composition, 0.1),
    (_events, 0.1),
    (_payment, 0.1),
    (_lookup, 0.2),
]

#: The landscape with stable flows, failure handling, planted pitfalls and a route-less front end.
SAGA_MIX: list[tuple[Callable[[], list[SpanShape]], float]] = [
    (lambda: _saga(), 0.14),
    (lambda: _saga(outcome="declined"), 0.02),
    (lambda: _saga(outcome="retried-with-key"), 0.02),
    (lambda: _saga("legacy"), 0.035),
    (lambda: _saga("legacy", "stranded"), 0.01),
    (lambda: _saga("legacy", "retried"), 0.005),
    (lambda: _front_end(_PRODUCT, _RECOMMENDATIONS, _ADS), 0.07),
    (lambda: _front_end(_CATALOGUE, _ADS), 0.05),
    (lambda: _front_end(_CART, _PRODUCT), 0.04),
    (lambda: _front_end(_ADD_ITEM), 0.02),
    (_checkout, 0.02),
    (_gateway, 0.25),
    (_composition, 0.1),
    (_events, 0.1),
    (_payment, 0.05),
    (_lookup, 0.07),
]


def _resolve(shape: list[SpanShape]) -> list[SpanShape]:
    """Replace the ``-2`` placeholder of server spans by the preceding client span's index."""
    return [
        SpanShape(**{**span.__dict__, "parent": i - 1}) if span.parent == -2 else span
        for i, span in enumerate(shape)
    ]


def build_table(
    spans: int,
    seed: int = 7,
    first_trace: int = 0,
    mix: list[tuple[Callable[[], list[SpanShape]], float]] = MIX,
) -> pa.Table:
    """A span table of about ``spans`` rows drawn from ``mix``, ids and times vectorised.

    Trace numbers start at ``first_trace``, so slices built one after another never share ids.
    """
    rng = np.random.default_rng(seed)
    shapes = [(_resolve(make()), share) for make, share in mix]
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
    drawn, picked = {}, {}
    for slot in slots:
        if "@" not in slot:
            pool = pools[slot.rstrip("0123456789")]
            picked[slot] = rng.integers(0, len(pool), n)
            drawn[slot] = pool[picked[slot]]
    for slot in slots:
        if "@" in slot:
            drawn[slot] = _partners(slot, picked, pools[PARTNER_POOL])
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
        "url_path",
        "http_status_code",
        "db_system",
        "messaging_destination",
        "server_address",
    ):
        columns[name] = np.full(n * k, None, dtype=object)
    status = np.full(n * k, "unset", dtype=object)
    keyed = np.zeros(n * k, dtype=bool)
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
        if span.path:
            columns["url_path"][at] = _paths(span.path, trace_numbers[i::k])
        columns["http_status_code"][at] = span.status_code
        if span.error:
            status[at] = "error"
        keyed[at] = span.idempotency_key
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
        status=status,
        idempotency_key=keyed,
        messaging_system=np.where(columns["messaging_destination"] != None, "kafka", None),  # noqa: E711
        links=links,
        source=np.full(n * k, "synthetic", dtype=object),
    )
    return columns


def _paths(template: str, traces: np.ndarray) -> np.ndarray | str:
    """``template`` with ``{id}`` replaced by an identifier unique to each trace."""
    if "{id}" not in template:
        return template
    head, _, tail = template.partition("{id}")
    paths: np.ndarray = head + _ids(traces + 1, 8) + tail
    return paths


def _partners(slot: str, picked: dict[str, np.ndarray], pool: np.ndarray) -> np.ndarray:
    """The backends behind partner slot ``p<k>@<owner>``: the same for every trace of one owner."""
    number, _, owner = slot[1:].partition("@")
    salt = zlib.crc32(owner.encode())
    return pool[(picked[owner] * 37 + salt + 11 * int(number)) % len(pool)]


@dataclass(frozen=True)
class Noise:
    """What happens to real traces on their way to the trace store.

    ``dropped``: share of spans lost (head sampling of a service, collector queues overflowing);
    ``duplicated``: share of spans delivered twice (exporter retries); ``skewed``: share of
    services whose host clock is off, by ``skew_ms`` one way or the other.
    """

    dropped: float = 0.0
    duplicated: float = 0.0
    skewed: float = 0.0
    skew_ms: float = 0.0
    seed: int = 11


def add_noise(table: pa.Table, noise: Noise) -> pa.Table:
    """``table`` with ``noise`` applied: clocks shifted first, then spans lost, then some delivered twice."""
    rng = np.random.default_rng(noise.seed)
    if noise.skewed and noise.skew_ms:
        services = pc.unique(table["service"].cast(pa.string())).drop_null().sort().to_pylist()
        chosen = [name for name in services if rng.random() < noise.skewed]
        shift = {name: int(rng.choice((-1, 1)) * noise.skew_ms * MS) for name in chosen}
        offsets = np.zeros(table.num_rows, dtype=np.int64)
        service = np.asarray(table["service"].cast(pa.string()).to_pylist(), dtype=object)
        for name, by in shift.items():
            offsets[service == name] = by
        for column in ("start_ns", "end_ns"):
            moved = pa.array(table[column].to_numpy() + offsets, pa.int64())
            table = table.set_column(table.schema.get_field_index(column), column, moved)
    if noise.dropped:
        table = table.filter(pa.array(rng.random(table.num_rows) >= noise.dropped))
    if noise.duplicated:
        again = np.flatnonzero(rng.random(table.num_rows) < noise.duplicated)
        table = pa.concat_tables([table, table.take(pa.array(again, pa.int64()))])
    return table


#: Spans per generated slice: bounds the generator's memory whatever the file's size.
SLICE_SPANS = 500_000
_MIN_SLICE = 1_000
#: Changes whenever :func:`write_otlp` writes other bytes, so that benchmarks do not reuse a file
#: written before: 2 since spans carry what SDK instrumentations record besides the span table.
FILE_VERSION = "v2"
#: Spans per ``ExportTraceServiceRequest``: a Collector's batch processor sends 8,192 (its
#: ``send_batch_size``), gathered from the services' SDKs, which export up to 512 spans of one
#: resource at a time.
SPANS_PER_MESSAGE = 8_192
SPANS_PER_EXPORT = 512

_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
#: Span table columns written as the attributes that feed them (see ``collectors/traces/vocabulary.py``).
_ATTRIBUTES = (
    ("http_method", "http.request.method"),
    ("http_route", "http.route"),
    ("db_system", "db.system"),
    ("messaging_system", "messaging.system"),
    ("messaging_destination", "messaging.destination.name"),
    ("server_address", "server.address"),
    ("peer_service", "peer.service"),
)
#: The instrumentation scope (name, version) that records each kind of span, as the Java agent names them.
_SCOPES = {
    "http-server": ("io.opentelemetry.spring-webmvc-6.0", "2.10.0-alpha"),
    "http-client": ("io.opentelemetry.java-http-client", "2.10.0-alpha"),
    "database": ("io.opentelemetry.jdbc", "2.10.0-alpha"),
    "messaging": ("io.opentelemetry.kafka-clients-2.6", "2.10.0-alpha"),
    "internal": ("io.opentelemetry.opentelemetry-instrumentation-annotations-1.16", "2.10.0-alpha"),
}
_SPAN_STATUS_ERROR = 2
#: ``Span.flags``: the W3C trace flags (sampled) and whether the parent's context came from another process.
_FLAGS_LOCAL_PARENT, _FLAGS_REMOTE_PARENT = 0x101, 0x301
_PORTS = {"postgresql": 5432, "redis": 6379}
_BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
_HTTP_CLIENT = "Java-http-client/21.0.5"


def _string(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _integer(key: str, value: int) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(int_value=value))


def _encoded(*attributes: KeyValue) -> bytes:
    """Attributes as the bytes of a ``Span`` holding only them: merged into a span, they append."""
    return Span(attributes=attributes).SerializeToString()


def _resource(service: str) -> list[KeyValue]:
    """What an OpenTelemetry SDK says of the process behind ``service`` (no namespace: the
    landscape's services have no teams, whose spans would tell them apart)."""
    number = zlib.crc32(service.encode())
    return [
        _string("service.name", service),
        _string("service.version", f"1.{number % 40}.{number % 7}"),
        _string("service.instance.id", f"{number:08x}-5b1e-4f7a-9c1d-{number * 2654435761 % 16**12:012x}"),
        _string("telemetry.sdk.name", "opentelemetry"),
        _string("telemetry.sdk.language", "java"),
        _string("telemetry.sdk.version", "1.44.1"),
        _string("telemetry.distro.name", "opentelemetry-java-instrumentation"),
        _string("telemetry.distro.version", "2.10.0"),
        _string("deployment.environment.name", "production"),
        _string("host.name", f"{service}-{number % 9000 + 1000:x}"),
        _string("host.arch", "amd64"),
        _string("os.type", "linux"),
        _integer("process.pid", number % 30000 + 1),
        _string("process.runtime.name", "OpenJDK Runtime Environment"),
        _string("process.runtime.version", "21.0.5+11-LTS"),
        _string("k8s.pod.name", f"{service}-7d9f{number % 100000:05d}-x2k4q"),
        _string("k8s.deployment.name", service),
        _string("container.id", f"{number * 0x9E3779B97F4A7C15 % 16**16:016x}{number:08x}"),
    ]


def _scope(row: dict[str, Any]) -> str:
    if row["db_system"]:
        return "database"
    if row["messaging_destination"]:
        return "messaging"
    if row["kind"] == "server":
        return "http-server"
    return "http-client" if row["kind"] == "client" else "internal"


class _SpanDetails:
    """The attributes an instrumentation records besides those the span table holds, as bytes to
    merge into each span (distinct combinations encoded once), and the span's status."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], bytes] = {}

    def __call__(self, row: dict[str, Any], span: Span) -> None:
        scope = _scope(row)
        number = int(row["span_id"][-6:], 16)
        if scope in ("http-server", "http-client"):
            root = row["parent_span_id"] is None
            span.MergeFromString(self._once((scope, row["service"], root, number % 200), self._http))
            status = row["http_status_code"]
            if status is not None:
                span.attributes.append(_integer("http.response.status_code", status))
            if row["url_path"]:
                if scope == "http-client":
                    address = row["server_address"] or row["peer_service"] or "localhost"
                    span.attributes.append(_string("url.full", f"http://{address}:8080{row['url_path']}"))
                else:
                    span.attributes.append(_string("url.path", row["url_path"]))
            if row["idempotency_key"]:
                key_value = span.attributes.add(key="http.request.header.idempotency-key")
                key_value.value.array_value.values.add(string_value=f"{row['trace_id'][:8]}-{number:06x}")
        elif scope == "database":
            key = (row["service"], row["db_system"], row["name"], number % 200)
            span.MergeFromString(self._once(key, self._database))
        elif scope == "messaging":
            span.MergeFromString(self._once((row["kind"], number % 200), self._messaging))
            span.attributes.append(_string("messaging.message.id", f"{row['trace_id'][-12:]}-{number:06x}"))
        if row["status"] == "error":
            span.status.code = _SPAN_STATUS_ERROR  # type: ignore[assignment]
            if row["http_status_code"] is not None:
                span.status.message = f"HTTP {row['http_status_code']}"

    def _once(self, key: tuple[Any, ...], encode: Callable[..., bytes]) -> bytes:
        """The bytes ``encode(*key)`` gives, encoded once per key."""
        found = self._cache.get((encode.__name__, *key))
        if found is None:
            found = self._cache[(encode.__name__, *key)] = encode(*key)
        return found

    @staticmethod
    def _http(scope: str, service: str, root: bool, thread: int) -> bytes:
        details = [
            _string("network.protocol.version", "1.1"),
            _integer("thread.id", 40 + thread),
            _string("thread.name", f"http-nio-8080-exec-{thread}"),
        ]
        if scope == "http-server":
            number = zlib.crc32(service.encode())
            client = f"10.{number % 256}.{thread}.{number // 256 % 256}"
            details += [
                _string("url.scheme", "http"),
                _string("client.address", client),
                _string("network.peer.address", client),
                _integer("network.peer.port", 40000 + thread * 17),
                _string("user_agent.original", _BROWSER if root else _HTTP_CLIENT),
            ]
        else:
            details.append(_integer("server.port", 8080))
        return _encoded(*details)

    @staticmethod
    def _database(service: str, system: str, verb: str, thread: int) -> bytes:
        table = service.replace("-", "_")
        statement = {
            "INSERT": f"INSERT INTO {table} (id, customer_id, status, created_at) VALUES (?, ?, ?, ?)",
            "SELECT": f"SELECT id, customer_id, status, created_at FROM {table} WHERE id = ?",
        }.get(verb, f"{verb} {table}:?")
        port = _PORTS.get(system, 5432)
        return _encoded(
            _string("db.namespace", table),
            _string("db.query.text", statement),
            _string("db.connection_string", f"{system}://{service}-db:{port}"),
            _integer("server.port", port),
            _integer("thread.id", 40 + thread),
            _string("thread.name", f"http-nio-8080-exec-{thread}"),
        )

    @staticmethod
    def _messaging(kind: str, thread: int) -> bytes:
        return _encoded(
            _string("messaging.operation.type", "publish" if kind == "producer" else "process"),
            _string("messaging.client.id", f"consumer-shop-{thread % 8}"),
            _integer("messaging.kafka.message.offset", 1000 + thread),
            _integer("thread.id", 40 + thread),
            _string("thread.name", f"kafka-listener-{thread % 8}"),
        )


def _messages(table: pa.Table, spans_per_message: int = SPANS_PER_MESSAGE) -> Iterator[bytes]:
    """The table's spans as serialised ``ExportTraceServiceRequest`` messages, as a Collector
    batches what the services' SDKs export: per message a resource per service and SDK export, a
    scope per instrumentation, and per span the attributes, status and flags the instrumentation
    records (about 420 bytes a span, as in the real traces of ``tests/fixtures``)."""
    rows = table.to_pylist()
    details = _SpanDetails()
    resources: dict[str, list[KeyValue]] = {}
    for at in range(0, len(rows), spans_per_message):
        by_scope: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for row in rows[at : at + spans_per_message]:
            by_scope.setdefault(row["service"], {}).setdefault(_scope(row), []).append(row)
        request = ExportTraceServiceRequest()
        for service, scopes in by_scope.items():
            if service not in resources:
                resources[service] = _resource(service)
            exported = [(scope, row) for scope, members in scopes.items() for row in members]
            for first in range(0, len(exported), SPANS_PER_EXPORT):
                resource_spans = request.resource_spans.add()
                resource_spans.resource.attributes.extend(resources[service])
                resource_spans.schema_url = "https://opentelemetry.io/schemas/1.27.0"
                last_scope = None
                for scope, row in exported[first : first + SPANS_PER_EXPORT]:
                    if scope != last_scope:
                        scope_spans = resource_spans.scope_spans.add()
                        scope_spans.scope.name, scope_spans.scope.version = _SCOPES[scope]
                        last_scope = scope
                    span: Span = scope_spans.spans.add()
                    span.trace_id = bytes.fromhex(row["trace_id"])
                    span.span_id = bytes.fromhex(row["span_id"])
                    if row["parent_span_id"]:
                        span.parent_span_id = bytes.fromhex(row["parent_span_id"])
                    remote = row["kind"] in ("server", "consumer") and row["parent_span_id"]
                    span.flags = _FLAGS_REMOTE_PARENT if remote else _FLAGS_LOCAL_PARENT
                    span.name = row["name"]
                    span.kind = _KINDS[row["kind"]]  # type: ignore[assignment]
                    span.start_time_unix_nano, span.end_time_unix_nano = row["start_ns"], row["end_ns"]
                    span.attributes.extend(_string(key, row[col]) for col, key in _ATTRIBUTES if row[col])
                    details(row, span)
                    for link in row["links"] or ():
                        added = span.links.add()
                        added.trace_id = bytes.fromhex(link["trace_id"])
                        added.span_id = bytes.fromhex(link["span_id"])
        yield request.SerializeToString()


def write_otlp(path: Path, spans: int, seed: int = 7, spans_per_message: int = SPANS_PER_MESSAGE) -> int:
    """Write about ``spans`` spans in the Collector file exporter's framing; returns the span count."""
    written = 0
    traces = 0
    with path.open("wb") as out:
        # A slice draws whole traces of every shape, so the last few hundred spans are left out.
        while spans - written >= _MIN_SLICE:
            table = build_table(min(SLICE_SPANS, spans - written), seed=seed + traces, first_trace=traces)
            traces += len(set(table["trace_id"].to_pylist()))
            for message in _messages(table, spans_per_message):
                out.write(struct.pack(">I", len(message)))
                out.write(message)
            written += table.num_rows
    return written
