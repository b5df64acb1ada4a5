"""Spans recorded by the real OpenTelemetry SDK, and the OTLP encodings producers write from them.

Tests compare what orchscan reads against what the SDK recorded, so every expected id, time and
kind comes from the SDK's own ``ReadableSpan`` objects; only the semantic-column expectations are
written by hand, next to the attributes they come from.
"""

from __future__ import annotations

import base64
import gzip
import json
import struct
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict, MessageToJson
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

BASE_NS = 1_754_000_000_123_456_789

KIND_NAMES = {
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
    SpanKind.INTERNAL: "internal",
}
STATUS_NAMES = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}


@dataclass(frozen=True)
class Expectation:
    """What the span table must hold for one recorded span beyond what the SDK object says."""

    semantic: dict[str, Any]
    rest: dict[str, str]
    idempotency_key: bool = False


@dataclass
class Landscape:
    """Spans recorded from several services, each with the expectation for its semantic columns."""

    spans: list[ReadableSpan] = field(default_factory=list)
    expected: dict[tuple[str, str], Expectation] = field(default_factory=dict)


class Recorder:
    """One tracer provider per service, all exporting into one in-memory exporter."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self._providers: dict[str, TracerProvider] = {}

    def tracer(
        self,
        service: str,
        namespace: str | None = None,
        instance: str | None = None,
        k8s_namespace: str | None = None,
    ) -> trace.Tracer:
        """A tracer whose resource carries the service's name, namespace, instance id and
        Kubernetes namespace."""
        if service not in self._providers:
            attributes: dict[str, str] = {"service.name": service}
            if namespace:
                attributes["service.namespace"] = namespace
            if instance:
                attributes["service.instance.id"] = instance
            if k8s_namespace:
                attributes["k8s.namespace.name"] = k8s_namespace
            provider = TracerProvider(resource=Resource.create(attributes))
            provider.add_span_processor(SimpleSpanProcessor(self.exporter))
            self._providers[service] = provider
        return self._providers[service].get_tracer("orchscan.tests", "1.0")

    def finished(self) -> list[ReadableSpan]:
        """Every span ended so far, in end order."""
        return list(self.exporter.get_finished_spans())

    def shutdown(self) -> None:
        """Release the providers' processors."""
        for provider in self._providers.values():
            provider.shutdown()


@contextmanager
def _span(
    tracer: trace.Tracer,
    name: str,
    kind: SpanKind,
    start: int,
    end: int,
    attributes: dict[str, Any],
    parent: trace.Span | None = None,
    links: Sequence[Link] = (),
) -> Iterator[trace.Span]:
    context = trace.set_span_in_context(parent) if parent is not None else None
    span = tracer.start_span(
        name, context=context, kind=kind, attributes=attributes, links=links, start_time=start
    )
    try:
        yield span
    finally:
        span.end(end_time=end)


def record_landscape() -> Landscape:
    """A checkout across frontend, checkout, payment and accounting, in old and new conventions."""
    rec = Recorder()
    land = Landscape()
    fe = rec.tracer("frontend", "shop", "fe-1")
    co = rec.tracer("checkout", "shop", "co-1")
    pay = rec.tracer("payment", "shop", "pay-1", k8s_namespace="payments")
    acc = rec.tracer("accounting", k8s_namespace="finance")
    t = BASE_NS

    def expect(
        service: str, name: str, semantic: dict[str, Any], rest: dict[str, str], idem: bool = False
    ) -> None:
        land.expected[(service, name)] = Expectation(semantic, rest, idem)

    server_attrs = {
        "http.request.method": "POST",
        "http.route": "/api/checkout",
        "url.path": "/api/checkout",
        "url.scheme": "https",
        "http.response.status_code": 200,
        "server.address": "shop.example",
        "server.port": 443,
        "http.request.header.idempotency-key": ("6f1c2a90-key",),
        "user_agent.original": "Mozilla/5.0 <script>alert('x')</script>",
    }
    expect(
        "frontend",
        "POST /api/checkout",
        {
            "http_method": "POST",
            "http_route": "/api/checkout",
            "url_path": "/api/checkout",
            "http_status_code": 200,
            "server_address": "shop.example",
            "server_port": 443,
        },
        {
            "http.request.header.idempotency-key": "6f1c2a90-key",
            "url.scheme": "https",
            "user_agent.original": "Mozilla/5.0 <script>alert('x')</script>",
        },
        idem=True,
    )
    with _span(fe, "POST /api/checkout", SpanKind.SERVER, t, t + 90_000_000, server_attrs) as root:
        # Old (pre-1.21) HTTP client conventions, lower-case method, full URL with query.
        client_attrs = {
            "http.method": "post",
            "http.url": "http://checkout:8080/orders?cart=42",
            "net.peer.name": "checkout",
            "net.peer.port": 8080,
            "peer.service": "checkout",
            "http.status_code": 201,
        }
        expect(
            "frontend",
            "POST",
            {
                "http_method": "POST",
                "url_path": "/orders",
                "http_status_code": 201,
                "server_address": "checkout",
                "server_port": 8080,
                "peer_service": "checkout",
            },
            {"http.url": "http://checkout:8080/orders?cart=42"},
        )
        with _span(fe, "POST", SpanKind.CLIENT, t + 1_000_000, t + 80_000_000, client_attrs, root) as call:
            orders_attrs = {
                "http.method": "POST",
                "http.target": "/orders?cart=42",
                "http.route": "/orders",
                "http.status_code": 201,
                "net.host.name": "checkout",
            }
            expect(
                "checkout",
                "POST /orders",
                {
                    "http_method": "POST",
                    "http_route": "/orders",
                    "url_path": "/orders",
                    "http_status_code": 201,
                },
                {"net.host.name": "checkout"},
            )
            with _span(
                co, "POST /orders", SpanKind.SERVER, t + 2_000_000, t + 79_000_000, orders_attrs, call
            ) as srv:
                old_db = {
                    "db.system": "postgresql",
                    "db.statement": "select * from carts where id = $1",
                    "db.name": "shop",
                }
                expect(
                    "checkout",
                    "SELECT carts",
                    {"db_system": "postgresql", "db_operation": "SELECT"},
                    {"db.statement": "select * from carts where id = $1", "db.name": "shop"},
                )
                with _span(co, "SELECT carts", SpanKind.CLIENT, t + 3_000_000, t + 9_000_000, old_db, srv):
                    pass
                new_db = {
                    "db.system.name": "postgresql",
                    "db.operation.name": "INSERT",
                    "db.query.text": "INSERT INTO orders VALUES ($1, $2)",
                    "db.collection.name": "orders",
                }
                expect(
                    "checkout",
                    "INSERT orders",
                    {"db_system": "postgresql", "db_operation": "INSERT"},
                    {"db.query.text": "INSERT INTO orders VALUES ($1, $2)", "db.collection.name": "orders"},
                )
                with _span(co, "INSERT orders", SpanKind.CLIENT, t + 10_000_000, t + 20_000_000, new_db, srv):
                    pass
                rpc = {
                    "rpc.system": "grpc",
                    "rpc.service": "oteldemo.PaymentService",
                    "rpc.method": "Charge",
                    "server.address": "payment",
                    "server.port": 50051,
                    "rpc.grpc.status_code": 2,
                }
                rpc_semantic = {
                    "rpc_system": "grpc",
                    "rpc_service": "oteldemo.PaymentService",
                    "rpc_method": "Charge",
                    "server_address": "payment",
                    "server_port": 50051,
                }
                expect(
                    "checkout", "oteldemo.PaymentService/Charge", rpc_semantic, {"rpc.grpc.status_code": "2"}
                )
                expect(
                    "payment", "oteldemo.PaymentService/Charge", rpc_semantic, {"rpc.grpc.status_code": "2"}
                )
                name = "oteldemo.PaymentService/Charge"
                with _span(co, name, SpanKind.CLIENT, t + 21_000_000, t + 40_000_000, rpc, srv) as charge:
                    with _span(
                        pay, name, SpanKind.SERVER, t + 22_000_000, t + 39_000_000, rpc, charge
                    ) as served:
                        served.add_event(
                            "exception", {"exception.type": "CardError", "exception.message": "declined"}
                        )
                        served.set_status(Status(StatusCode.ERROR, "card declined"))
                    charge.set_status(Status(StatusCode.ERROR, "card declined"))
                publish = {
                    "messaging.system": "kafka",
                    "messaging.destination.name": "orders",
                    "messaging.operation.type": "publish",
                    "messaging.kafka.message.key": "42",
                }
                expect(
                    "checkout",
                    "orders publish",
                    {
                        "messaging_system": "kafka",
                        "messaging_destination": "orders",
                        "messaging_operation": "publish",
                    },
                    {"messaging.kafka.message.key": "42"},
                )
                with _span(
                    co, "orders publish", SpanKind.PRODUCER, t + 41_000_000, t + 43_000_000, publish, srv
                ) as pub:
                    producer = pub.get_span_context()
                internal = {
                    "app.items": 3,
                    "app.total": 12.5,
                    "app.flags": (True, False),
                    "app.sizes": (1, 2, 3),
                    "app.note": '<img src=x onerror="alert(1)">',
                }
                expect(
                    "checkout",
                    "compute total",
                    {},
                    {
                        "app.items": "3",
                        "app.total": "12.5",
                        "app.flags": "true,false",
                        "app.sizes": "1,2,3",
                        "app.note": '<img src=x onerror="alert(1)">',
                    },
                )
                with _span(
                    co, "compute total", SpanKind.INTERNAL, t + 44_000_000, t + 45_000_000, internal, srv
                ) as calc:
                    calc.set_status(Status(StatusCode.OK))
    # A consumer in its own trace, linked to the producer (old messaging conventions).
    consume = {
        "messaging.system": "kafka",
        "messaging.destination": "orders",
        "messaging.operation": "process",
    }
    expect(
        "accounting",
        "orders process",
        {"messaging_system": "kafka", "messaging_destination": "orders", "messaging_operation": "process"},
        {},
    )
    link = Link(producer, {"messaging.message.id": "m-1"})
    with _span(
        acc, "orders process", SpanKind.CONSUMER, t + 50_000_000, t + 60_000_000, consume, links=[link]
    ):
        pass
    land.spans = rec.finished()
    rec.shutdown()
    return land


def hex_trace_id(span: ReadableSpan) -> str:
    """The span's trace id as the span table writes it."""
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def hex_span_id(span: ReadableSpan) -> str:
    """The span's id as the span table writes it."""
    assert span.context is not None
    return format(span.context.span_id, "016x")


def expected_core(span: ReadableSpan) -> dict[str, Any]:
    """The span table's non-attribute columns for one SDK span, derived from the SDK object."""
    resource = span.resource.attributes
    return {
        "trace_id": hex_trace_id(span),
        "span_id": hex_span_id(span),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "service": resource.get("service.name"),
        "service_namespace": resource.get("service.namespace"),
        "service_instance": resource.get("service.instance.id"),
        "k8s_namespace": resource.get("k8s.namespace.name"),
        "name": span.name,
        "kind": KIND_NAMES[span.kind],
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": STATUS_NAMES[span.status.status_code],
        "status_message": span.status.description or None,
        "links": [
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
            }
            for link in span.links
        ]
        or None,
    }


# --- encodings -------------------------------------------------------------------------------------


def encode(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The SDK's own OTLP encoding of ``spans`` (what every OTLP exporter sends)."""
    return encode_spans(spans)


def batches(spans: Sequence[ReadableSpan], size: int) -> list[ExportTraceServiceRequest]:
    """One request per ``size`` spans, as a batching span processor would export them."""
    return [encode(spans[i : i + size]) for i in range(0, len(spans), size)]


def framed(requests: Iterable[ExportTraceServiceRequest]) -> bytes:
    """The Collector file exporter's proto stream: each message preceded by its 4-byte big-endian size."""
    out = bytearray()
    for request in requests:
        body = request.SerializeToString()
        out += struct.pack(">I", len(body)) + body
    return bytes(out)


def protobuf_json(request: ExportTraceServiceRequest) -> str:
    """protobuf's generic JSON mapping: base64 ids, enum names, camelCase field names."""
    return str(MessageToJson(request))


_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex()
            if key in _ID_FIELDS and isinstance(value, str)
            else _hex_ids(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON as the specification and the Collector write it: hex ids, integer enums."""
    return _hex_ids(MessageToDict(request, use_integers_for_enums=True))  # type: ignore[no-any-return]


def otlp_json_lines(requests: Iterable[ExportTraceServiceRequest]) -> bytes:
    """The Collector file exporter's JSON output: one compact TracesData per line."""
    return b"".join(json.dumps(otlp_json(r), separators=(",", ":")).encode() + b"\n" for r in requests)


def write(path: Path, payload: bytes | str, *, compress: bool = False) -> Path:
    """Write ``payload`` to ``path``, gzip-compressed when asked."""
    data = payload.encode() if isinstance(payload, str) else payload
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def assert_matches_landscape(rows: list[dict[str, Any]], land: Landscape) -> None:
    """Every SDK span appears exactly once in ``rows`` with every column as recorded."""
    from orchscan.collectors.model.spans import SEMANTIC_COLUMNS

    by_id = {(row["trace_id"], row["span_id"]): row for row in rows}
    assert len(by_id) == len(rows) == len(land.spans)
    for span in land.spans:
        row = by_id[(hex_trace_id(span), hex_span_id(span))]
        core = expected_core(span)
        assert {key: row[key] for key in core} == core, span.name
        expectation = land.expected[(core["service"], span.name)]
        semantic = {column: row[column] for column in SEMANTIC_COLUMNS if row[column] is not None}
        assert semantic == expectation.semantic, span.name
        assert dict(row["attributes"]) == expectation.rest, span.name
        assert row["idempotency_key"] is expectation.idempotency_key, span.name
