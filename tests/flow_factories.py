"""Span tables for flow tests, built in code the way HTTP instrumentation records calls.

A call writes a client span in the caller (concrete URL path, status code, caller's clock) and a
server span in the callee (route template, its own clock, shifted by ``skew_ms``)::

    land = Landscape()
    order = land.trace().request("orders", "POST /orders", ms=120)
    order.call("inventory", "POST /reservations", at=5, ms=20)
    order.call("inventory", "DELETE /reservations/{id}", path="/reservations/r-7", at=40, ms=5)
    table = land.table()

Times are milliseconds from the trace's start; traces start ten minutes apart.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from orchscan.collectors.model.spans import COLUMNS, SCHEMA

BASE_NS = 1_760_000_000_000_000_000
MS = 1_000_000
_SPACING_NS = 600_000 * MS


@dataclass
class Landscape:
    """Collects the spans of many traces."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    traces: int = 0

    def trace(self) -> Trace:
        """A new trace, starting after the previous one."""
        self.traces += 1
        return Trace(self, f"{next(self.ids):032x}", BASE_NS + self.traces * _SPACING_NS)

    def table(self) -> pa.Table:
        """The span table of everything built so far."""
        columns = {name: [row.get(name) for row in self.rows] for name in COLUMNS}
        columns["attributes"] = [[] for _ in self.rows]
        columns["idempotency_key"] = [bool(v) for v in columns["idempotency_key"]]
        return pa.Table.from_pydict(columns, schema=SCHEMA)

    def span(self, trace: Trace, parent: Span | None, **row: Any) -> Span:
        """Record one span from ``at``/``ms`` (trace-relative) and any span-table columns."""
        span_id = f"{next(self.ids):016x}"
        at, ms = row.pop("at"), row.pop("ms")
        start = trace.start_ns + round(at * MS)
        code = row.get("http_status_code")
        error = row.pop("error", None)
        if error is None:
            error = code is not None and code >= 500
        self.rows.append(
            {
                "trace_id": trace.trace_id,
                "span_id": span_id,
                "parent_span_id": parent.span_id if parent else None,
                "start_ns": start,
                "end_ns": start + round(ms * MS),
                "status": "error" if error else "unset",
                "source": "flow-factory",
                **row,
            }
        )
        return Span(self, trace, row["service"], span_id)


@dataclass
class Trace:
    """One trace: its id and the instant its clock starts."""

    land: Landscape
    trace_id: str
    start_ns: int

    def request(
        self,
        service: str,
        operation: str,
        *,
        at: float = 0.0,
        ms: float = 100.0,
        path: str | None = None,
        status: int = 200,
        address: str | None = None,
    ) -> Span:
        """A root server span: an entry request."""
        method, _, route = operation.partition(" ")
        return self.land.span(
            self,
            None,
            service=service,
            kind="server",
            name=operation,
            at=at,
            ms=ms,
            http_method=method,
            http_route=route,
            url_path=path or route,
            http_status_code=status,
            server_address=address,
        )


@dataclass(frozen=True)
class Span:
    """A recorded span from which calls and queries hang."""

    land: Landscape
    trace: Trace
    service: str
    span_id: str

    def call(
        self,
        callee: str,
        operation: str,
        *,
        at: float,
        ms: float,
        path: str | None = None,
        status: int = 200,
        message: str | None = None,
        idempotency_key: bool = False,
        instrumented: bool = True,
        skew_ms: float = 0.0,
        server_ms: float | None = None,
    ) -> Span:
        """An HTTP call: client span here, server span in ``callee`` (unless not instrumented)."""
        method, _, route = operation.partition(" ")
        client = self.land.span(
            self.trace,
            self,
            service=self.service,
            kind="client",
            name=method,
            at=at,
            ms=ms,
            http_method=method,
            url_path=path or route,
            http_status_code=status,
            server_address=callee,
            peer_service=callee,
            status_message=message,
            idempotency_key=idempotency_key,
        )
        if not instrumented:
            return client
        lag = min(0.5, ms / 10)
        return self.land.span(
            self.trace,
            client,
            service=callee,
            kind="server",
            name=operation,
            at=at + lag + skew_ms,
            ms=server_ms if server_ms is not None else ms - 2 * lag,
            http_method=method,
            http_route=route,
            url_path=path or route,
            http_status_code=status,
            idempotency_key=idempotency_key,
        )

    def query(self, *, at: float, ms: float, system: str = "postgresql", operation: str = "SELECT") -> Span:
        """A database call from this service's own client library."""
        return self.land.span(
            self.trace,
            self,
            service=self.service,
            kind="client",
            name=f"{operation} {system}",
            at=at,
            ms=ms,
            db_system=system,
            db_operation=operation,
        )
