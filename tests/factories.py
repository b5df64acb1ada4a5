"""Span tables built in code, for unit tests of the analyzer.

A :class:`LandscapeBuilder` collects traces; each trace starts with a request to some service and
grows by calls from span handles, with times in milliseconds from the trace's start::

    land = LandscapeBuilder()
    order = land.trace().request("orders", "POST /orders", ms=120)
    inventory = order.call("inventory", "POST /reservations", at=5, ms=20)
    inventory.query("postgresql", "INSERT", at=8, ms=4)
    order.publish("order-placed", at=30, ms=2).consume("shipping", at=40, ms=10)
    table = land.table()

Calls produce the pair real instrumentation writes (a client span in the caller, a server span in
the callee, nested a little inside it and shifted by the callee's clock skew); ``instrumented=False``
leaves only the client span, as for an uninstrumented peer or a callee whose spans were lost.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from orchscan.collectors.model.spans import COLUMNS, SCHEMA

#: Where the first trace starts (UTC ns) and how far apart traces start.
BASE_NS = 1_754_000_000_000_000_000
TRACE_SPACING_NS = 10_000_000_000
MS = 1_000_000

_HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def sequential(start: float, *durations: float, gap: float = 1.0) -> list[tuple[float, float]]:
    """``(at, ms)`` slots one after another, ``gap`` ms apart: calls that depend on each other."""
    slots, at = [], start
    for ms in durations:
        slots.append((at, ms))
        at += ms + gap
    return slots


def parallel(start: float, *durations: float, stagger: float = 0.2) -> list[tuple[float, float]]:
    """``(at, ms)`` slots that all overlap: calls fired together and awaited together."""
    return [(start + i * stagger, ms) for i, ms in enumerate(durations)]


def _operation_columns(operation: str, path: str | None = None) -> dict[str, Any]:
    """Semantic columns for ``METHOD /route``, ``pkg.Service/Method`` (gRPC) or a plain name."""
    head, _, rest = operation.partition(" ")
    if head in _HTTP_METHODS and rest.startswith("/"):
        return {"name": operation, "http_method": head, "http_route": rest, "url_path": path or rest}
    if "/" in operation and " " not in operation and not operation.startswith("/"):
        service, _, method = operation.partition("/")
        return {"name": operation, "rpc_system": "grpc", "rpc_service": service, "rpc_method": method}
    return {"name": operation}


def _failed(error: bool | None, status_code: int | None) -> bool:
    """A span's error status: as given, else what HTTP instrumentation sets for a 5xx answer."""
    if error is not None:
        return error
    return status_code is not None and status_code >= 500


@dataclass
class LandscapeBuilder:
    """Collects spans of many traces and turns them into a span table.

    ``skew_ms`` shifts every span a service emits, as a wrong clock on its hosts would;
    ``namespaces`` and ``k8s_namespaces`` are the ``service.namespace`` and Kubernetes namespace
    its spans carry.
    """

    skew_ms: Mapping[str, float] = field(default_factory=dict)
    namespaces: Mapping[str, str] = field(default_factory=dict)
    k8s_namespaces: Mapping[str, str] = field(default_factory=dict)
    _rows: list[dict[str, Any]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _traces: int = 0

    def trace(self) -> TraceBuilder:
        """A new trace with a fresh id, starting after the previous one."""
        self._traces += 1
        return TraceBuilder(self, f"{next(self._ids):032x}", BASE_NS + self._traces * TRACE_SPACING_NS)

    def table(self) -> pa.Table:
        """The span table of everything built so far."""
        columns = {name: [row.get(name) for row in self._rows] for name in COLUMNS}
        columns["attributes"] = [[] for _ in self._rows]
        columns["idempotency_key"] = [bool(value) for value in columns["idempotency_key"]]
        return pa.Table.from_pydict(columns, schema=SCHEMA)

    def add_span(
        self,
        trace: TraceBuilder,
        *,
        service: str,
        kind: str,
        at: float,
        ms: float,
        parent: SpanHandle | None,
        error: bool = False,
        **columns: Any,
    ) -> SpanHandle:
        """Record one span; ``columns`` fills any other span-table column."""
        span_id = f"{next(self._ids):016x}"
        start = trace.start_ns + round((at + self.skew_ms.get(service, 0.0)) * MS)
        row: dict[str, Any] = {
            "trace_id": trace.trace_id,
            "span_id": span_id,
            "parent_span_id": parent.span_id if parent else None,
            "service": service,
            "kind": kind,
            "start_ns": start,
            "end_ns": start + round(ms * MS),
            "status": "error" if error else "unset",
            "source": "factory",
            "service_namespace": self.namespaces.get(service),
            "k8s_namespace": self.k8s_namespaces.get(service),
            **columns,
        }
        row.setdefault("name", kind)
        self._rows.append(row)
        return SpanHandle(self, trace, service, span_id, at, ms)


@dataclass
class TraceBuilder:
    """One trace: its id and where its clock starts."""

    land: LandscapeBuilder
    trace_id: str
    start_ns: int

    def request(
        self,
        service: str,
        operation: str = "GET /",
        *,
        at: float = 0.0,
        ms: float = 100.0,
        error: bool | None = None,
        status_code: int | None = None,
        path: str | None = None,
        address: str | None = None,
    ) -> SpanHandle:
        """The trace's root: a server span as an instrumented entry point emits it.

        ``path`` is the concrete URL path (default: the route itself); ``error`` defaults to a
        5xx ``status_code``, as HTTP instrumentation sets a server span's status.
        """
        op = _operation_columns(operation, path)
        return self.land.add_span(
            self,
            service=service,
            kind="server",
            at=at,
            ms=ms,
            parent=None,
            error=_failed(error, status_code),
            http_status_code=status_code,
            server_address=address,
            **op,
        )

    def consume(
        self,
        service: str,
        destination: str,
        *,
        link: SpanHandle | None = None,
        at: float = 0.0,
        ms: float = 20.0,
        system: str = "kafka",
    ) -> SpanHandle:
        """A root consumer span, tied to its producer by a span link when one is given."""
        links = [{"trace_id": link.trace.trace_id, "span_id": link.span_id}] if link else None
        return self.land.add_span(
            self,
            service=service,
            kind="consumer",
            at=at,
            ms=ms,
            parent=None,
            name=f"{destination} process",
            messaging_system=system,
            messaging_destination=destination,
            messaging_operation="process",
            links=links,
        )

    def background(
        self, service: str, name: str = "job", *, at: float = 0.0, ms: float = 100.0
    ) -> SpanHandle:
        """A root internal span: work a service starts by itself (a scheduler, a load generator)."""
        return self.land.add_span(
            self, service=service, kind="internal", at=at, ms=ms, parent=None, name=name
        )


@dataclass(frozen=True)
class SpanHandle:
    """A recorded span, from which nested work and calls are added (times relative to the trace)."""

    land: LandscapeBuilder
    trace: TraceBuilder
    service: str
    span_id: str
    at: float
    ms: float

    def call(
        self,
        service: str,
        operation: str = "GET /",
        *,
        at: float,
        ms: float,
        error: bool | None = None,
        status_code: int | None = None,
        path: str | None = None,
        message: str | None = None,
        instrumented: bool = True,
        peer: bool = True,
        idempotency_key: bool = False,
        skew_ms: float = 0.0,
        server_ms: float | None = None,
    ) -> SpanHandle:
        """Call another service: client span here, server span there; returns the callee's span.

        Without ``instrumented`` only the client span exists (returned); ``peer`` says whether it
        names the callee in ``peer.service`` (otherwise only ``server.address`` does). ``path``
        is the concrete URL path (default: the route), ``message`` the client span's status
        message, ``skew_ms`` this callee's clock offset for this call and ``server_ms`` the
        server span's own duration (default: nested just inside the client span).
        """
        op = _operation_columns(operation, path)
        failed = _failed(error, status_code)
        client = self.land.add_span(
            self.trace,
            service=self.service,
            kind="client",
            at=at,
            ms=ms,
            parent=self,
            error=failed,
            name=op.get("http_method", op["name"]),
            http_method=op.get("http_method"),
            url_path=op.get("url_path"),
            rpc_system=op.get("rpc_system"),
            rpc_service=op.get("rpc_service"),
            rpc_method=op.get("rpc_method"),
            http_status_code=status_code,
            server_address=service,
            peer_service=service if peer else None,
            status_message=message,
            idempotency_key=idempotency_key,
        )
        if not instrumented:
            return client
        lag = min(0.5, ms / 10)
        return self.land.add_span(
            self.trace,
            service=service,
            kind="server",
            at=at + lag + skew_ms,
            ms=server_ms if server_ms is not None else ms - 2 * lag,
            parent=client,
            error=failed,
            http_status_code=status_code,
            idempotency_key=idempotency_key,
            **op,
        )

    def query(
        self,
        system: str = "postgresql",
        operation: str = "SELECT",
        *,
        at: float,
        ms: float,
        error: bool = False,
        host: str | None = None,
    ) -> SpanHandle:
        """A database or cache call from this service's own client library (host: ``<service>-<system>``)."""
        return self.land.add_span(
            self.trace,
            service=self.service,
            kind="client",
            at=at,
            ms=ms,
            parent=self,
            error=error,
            name=f"{operation} {system}",
            db_system=system,
            db_operation=operation,
            server_address=host or f"{self.service}-{system}",
        )

    def store(
        self, pseudo_service: str, operation: str, *, at: float, ms: float, error: bool = False
    ) -> SpanHandle:
        """A store reported under a service name of its own (HotROD's ``mysql``): a client span only."""
        return self.land.add_span(
            self.trace,
            service=pseudo_service,
            kind="client",
            at=at,
            ms=ms,
            parent=self,
            error=error,
            name=operation,
        )

    def publish(self, destination: str, *, at: float, ms: float = 2.0, system: str = "kafka") -> SpanHandle:
        """Send a message: a producer span here; consumers hang below it or link to it."""
        return self.land.add_span(
            self.trace,
            service=self.service,
            kind="producer",
            at=at,
            ms=ms,
            parent=self,
            name=f"{destination} publish",
            messaging_system=system,
            messaging_destination=destination,
            messaging_operation="publish",
        )

    def consume(self, service: str, *, at: float, ms: float = 20.0) -> SpanHandle:
        """A consumer span of another service as the child of this producer span."""
        return self.land.add_span(
            self.trace,
            service=service,
            kind="consumer",
            at=at,
            ms=ms,
            parent=self,
            name="process",
            messaging_system="kafka",
            messaging_operation="process",
        )

    def internal(self, name: str, *, at: float, ms: float) -> SpanHandle:
        """An in-process span (a handler, a repository method) below this one."""
        return self.land.add_span(
            self.trace, service=self.service, kind="internal", at=at, ms=ms, parent=self, name=name
        )

    def calls(
        self, targets: Sequence[tuple[str, str]], slots: Sequence[tuple[float, float]]
    ) -> list[SpanHandle]:
        """Several calls at the given ``(at, ms)`` slots (see :func:`sequential`, :func:`parallel`)."""
        return [
            self.call(service, operation, at=at, ms=ms)
            for (service, operation), (at, ms) in zip(targets, slots, strict=True)
        ]


def rename_services(table: pa.Table, mapping: Mapping[str, str]) -> pa.Table:
    """The same spans with services renamed (peer names too, so uninstrumented peers follow)."""
    keys, values = list(mapping), list(mapping.values())

    def renamed(column: str) -> pa.Array:
        data = table[column].combine_chunks()
        index = pc.index_in(data, value_set=pa.array(keys, pa.string()))
        return pc.if_else(pc.is_null(index), data, pc.take(pa.array(values, pa.string()), index))

    for column in ("service", "peer_service", "server_address"):
        table = table.set_column(table.schema.get_field_index(column), column, renamed(column))
    return table


def with_copies(table: pa.Table, copies: int = 2) -> pa.Table:
    """Every trace repeated ``copies`` times under fresh trace ids (span ids and links follow)."""
    parts = [table]
    for copy in range(1, copies):
        prefix = f"{copy:04x}"

        def fresh(ids: pa.ChunkedArray, prefix: str = prefix) -> pa.Array:
            return pc.binary_join_element_wise(pa.scalar(prefix), pc.utf8_slice_codeunits(ids, 4), "")

        part = table.set_column(0, "trace_id", fresh(table["trace_id"]))
        links = table["links"].combine_chunks()
        flat = pc.list_flatten(links)
        if len(flat):
            moved = pa.StructArray.from_arrays(
                [fresh(pc.struct_field(flat, "trace_id")), pc.struct_field(flat, "span_id")],
                names=["trace_id", "span_id"],
            )
            links = pa.ListArray.from_arrays(links.offsets, moved, mask=pc.is_null(links))
            part = part.set_column(
                part.schema.get_field_index("links"), "links", links.cast(SCHEMA.field("links").type)
            )
        parts.append(part)
    return pa.concat_tables(parts)


@dataclass(frozen=True)
class ShopMix:
    """How many requests of each pattern :func:`build_shop` records."""

    orders: int = 3
    order_lookups: int = 3
    checkouts: int = 3
    routed: int = 3
    homes: int = 3
    restocks: int = 3


#: The role every service of :func:`build_shop` plays, and whether an orchestrator is hidden.
SHOP_ROLES: dict[str, tuple[str, bool]] = {
    "orders": ("orchestrator", True),
    "checkout": ("orchestrator", False),
    "gateway": ("gateway", False),
    "bff": ("composer", False),
    "warehouse": ("choreography", False),
    "procurement": ("choreography", False),
    "accounting": ("choreography", False),
    "catalogue": ("service", False),
    "users": ("service", False),
    "cart": ("service", False),
    "recommendations": ("service", False),
    "pricing": ("service", False),
    "inventory": ("service", False),
    "payment": ("service", False),
    "shipping": ("service", False),
    "notification": ("service", False),
    "orders-postgresql": ("infrastructure", False),
    "inventory-postgresql": ("infrastructure", False),
    "shipping-postgresql": ("infrastructure", False),
    "catalogue-postgresql": ("infrastructure", False),
    "users-postgresql": ("infrastructure", False),
    "cart-redis": ("infrastructure", False),
    "procurement-postgresql": ("infrastructure", False),
    "legacy-mainframe": ("infrastructure", False),
    "kafka": ("infrastructure", False),
    "stripe": ("external", False),
}


def place_order(trace: TraceBuilder, *, at: float = 0.0, lost_payment_spans: bool = False) -> SpanHandle:
    """A request to orders POST /orders at the root of its trace (see :func:`run_order`)."""
    order = trace.request("orders", "POST /orders", at=at, ms=200)
    run_order(order, lost_payment_spans=lost_payment_spans)
    return order


def run_order(order: SpanHandle, *, lost_payment_spans: bool = False) -> None:
    """What orders does for POST /orders: its own INSERT, then reserve, charge, ship, notify in turn."""
    at = order.at
    order.query("postgresql", "INSERT", at=at + 2, ms=5)
    inventory = order.call("inventory", "POST /reservations", at=at + 10, ms=30)
    inventory.query("postgresql", "UPDATE", at=at + 15, ms=10)
    inventory.store("legacy-mainframe", "CHECK STOCK", at=at + 27, ms=5)
    payment = order.call("payment", "POST /charges", at=at + 45, ms=50, instrumented=not lost_payment_spans)
    if not lost_payment_spans:
        payment.call("stripe", "POST /v1/charges", at=at + 50, ms=40, instrumented=False)
    shipping = order.call("shipping", "POST /shipments", at=at + 100, ms=30)
    shipping.query("postgresql", "INSERT", at=at + 105, ms=10)
    order.call("notification", "POST /emails", at=at + 135, ms=20)
    order.query("postgresql", "UPDATE", at=at + 160, ms=5)


def build_shop(land: LandscapeBuilder, mix: ShopMix = ShopMix()) -> LandscapeBuilder:
    """A shop with one of each pattern (see :data:`SHOP_ROLES`); returns ``land`` for chaining."""
    for i in range(mix.orders):
        place_order(land.trace(), lost_payment_spans=i == 1)
    for _ in range(mix.order_lookups):
        lookup = land.trace().request("orders", "GET /orders/{id}", ms=20)
        lookup.query("postgresql", "SELECT", at=2, ms=8)
    for _ in range(mix.checkouts):
        checkout = land.trace().request("checkout", "POST /checkout", ms=300)
        cart = checkout.call("cart", "GET /cart", at=2, ms=10)
        cart.query("redis", "GET", at=4, ms=2)
        checkout.call("pricing", "pricing.Pricing/Quote", at=14, ms=10)
        run_order(checkout.call("orders", "POST /orders", at=30, ms=200))
    for route in range(mix.routed):
        for path, backend, operation in (
            ("GET /api/catalogue", "catalogue", "GET /items"),
            ("GET /api/users/{id}", "users", "GET /users/{id}"),
            ("GET /api/cart", "cart", "GET /cart"),
            ("GET /api/recommendations", "recommendations", "GET /recommendations"),
            ("GET /api/prices", "pricing", "pricing.Pricing/Quote"),
        ):
            entry = land.trace().request("gateway", path, at=route, ms=40)
            _answer(entry.call(backend, operation, at=1, ms=30))
    for _ in range(mix.homes):
        home = land.trace().request("bff", "GET /home", ms=60)
        targets = [
            ("catalogue", "GET /items"),
            ("recommendations", "GET /recommendations"),
            ("cart", "GET /cart"),
            ("users", "GET /users/{id}"),
        ]
        for callee in home.calls(targets, parallel(2, 40, 30, 20, 35)):
            _answer(callee)
    for _ in range(mix.restocks):
        job = land.trace().background("warehouse", "restock check", ms=30)
        stock_low = job.publish("stock-low", at=5)
        purchase = stock_low.consume("procurement", at=10, ms=30)
        purchase.query("postgresql", "INSERT", at=12, ms=5)
        ordered = purchase.publish("purchase-ordered", at=20)
        booking = land.trace().consume("accounting", "purchase-ordered", link=ordered, ms=15)
        booking.publish("ledger-updated", at=5)
    return land


def _answer(callee: SpanHandle) -> None:
    """Backends answer from their own store."""
    stores = {"catalogue": "postgresql", "users": "postgresql", "cart": "redis"}
    if callee.service in stores:
        callee.query(
            stores[callee.service],
            "SELECT" if stores[callee.service] != "redis" else "GET",
            at=callee.at + 1,
            ms=callee.ms / 3,
        )
