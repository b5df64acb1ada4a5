"""Spans cut off by a lost parent: put back into their service's request, or kept as fragments."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from factories import LandscapeBuilder, SpanHandle, TraceBuilder
from scans import mined_flows

from orchscan.analyzer.pipeline import analyze
from orchscan.analyzer.requests.calls import build_call_tables
from orchscan.analyzer.results import FragmentSummary
from orchscan.collectors.model.records import Ingest


def _order(trace: TraceBuilder, *, via_handler: bool = True) -> tuple[SpanHandle, SpanHandle]:
    """orders POST /orders calling inventory, payment and shipping from an in-process handler span."""
    order = trace.request("orders", "POST /orders", ms=200)
    handler = order.internal("handle order", at=1, ms=190) if via_handler else order
    handler.call("inventory", "POST /reservations", at=10, ms=30)
    handler.call("payment", "POST /charges", at=50, ms=40)
    handler.call("shipping", "POST /shipments", at=100, ms=30)
    return order, handler


def _without(table: pa.Table, span_ids: list[str]) -> pa.Table:
    """The table without the given spans, as if they had been sampled away."""
    return table.filter(pc.invert(pc.is_in(table["span_id"], pa.array(span_ids, pa.string()))))


def test_calls_below_a_lost_span_are_put_back_into_their_request() -> None:
    land = LandscapeBuilder()
    handlers = [_order(land.trace())[1] for _ in range(4)]
    table = _without(land.table(), [handlers[0].span_id])
    tables = build_call_tables(table)
    # The handler's three client spans lost their parent; orders' one request holds them all.
    assert tables.fragments["attached"].tolist() == [True] * 3
    assert set(tables.requests.loc[tables.requests["service"] == "orders", "operation"]) == {"POST /orders"}
    flows, _ = mined_flows(table, owners=["orders"])
    assert [(f.id, f.requests, len(f.steps)) for f in flows] == [("orders:POST /orders", 4, 3)]


def test_calls_of_a_lost_request_stay_fragments_that_are_never_flows() -> None:
    land = LandscapeBuilder()
    orders = [_order(land.trace(), via_handler=False)[0] for _ in range(4)]
    lost = _without(land.table(), [orders[0].span_id, orders[1].span_id])
    tables = build_call_tables(lost)
    # Each lost request leaves three client spans without a request to go to.
    assert len(tables.fragments) == 6 and not tables.fragments["attached"].any()
    assert set(tables.requests.loc[tables.requests["service"] == "orders", "operation"]) == {"POST /orders"}
    flows, _ = mined_flows(lost, owners=["orders"])
    assert [(f.id, f.requests) for f in flows] == [("orders:POST /orders", 2)]
    # Their calls are still calls between the services.
    assert (tables.calls["caller"] == "orders").sum() == 4 * 3
    summary = analyze(Ingest(lost, (), (), ())).analysis.input.fragments
    assert summary == FragmentSummary(attached=0, kept=6, calls=6, services=(("orders", 6),))


def test_a_fragment_two_requests_could_hold_is_kept() -> None:
    land = LandscapeBuilder()
    trace = land.trace()
    outer = trace.request("orders", "POST /orders", ms=300)
    # orders is called back within its own request (a webhook): two requests of orders overlap.
    inner = outer.call("billing", "POST /invoices", at=5, ms=250).call("orders", "POST /hooks", at=10, ms=200)
    handler = inner.internal("handle hook", at=20, ms=100)
    handler.call("ledger", "POST /entries", at=30, ms=20)
    tables = build_call_tables(_without(land.table(), [handler.span_id]))
    assert tables.fragments["attached"].tolist() == [False]


def test_a_fragment_outside_every_request_of_its_service_is_kept() -> None:
    land = LandscapeBuilder()
    trace = land.trace()
    order = trace.request("orders", "POST /orders", ms=50)
    late = order.internal("after the response", at=60, ms=40)
    late.call("audit", "POST /events", at=70, ms=10)
    table = _without(land.table(), [late.span_id])
    assert build_call_tables(table).fragments["attached"].tolist() == [False]
    # Within the tolerance it belongs to the request after all.
    assert build_call_tables(table, fragment_tolerance_ms=100).fragments["attached"].tolist() == [True]
