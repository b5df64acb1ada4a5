"""Failure logic: compensations versus side effects left in place, timeouts, statuses on failure."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from factories import LandscapeBuilder, SpanHandle
from scans import mined_flows

from orchscan.analyzer.flows.failures import with_step_indices
from orchscan.analyzer.results import Flow
from orchscan.collectors.traces.ingest import ingest


def _flow(table: pa.Table) -> Flow:
    (flow,) = mined_flows(table, owners=("orders",))[0]
    return flow


def _order(land: LandscapeBuilder, *, status: int = 201) -> SpanHandle:
    order = land.trace().request("orders", "POST /orders", ms=200, status_code=status)
    order.call("inventory", "POST /reservations", at=5, ms=20, status_code=201)
    return order


def _happy(land: LandscapeBuilder) -> None:
    order = _order(land)
    order.call("payment", "POST /payments", at=30, ms=30, status_code=201)
    order.call("shipping", "POST /shipments", at=70, ms=20, status_code=201)


def test_a_declined_payment_releases_the_reservation() -> None:
    land = LandscapeBuilder()
    for _ in range(6):
        _happy(land)
    for i in range(3):
        order = _order(land, status=402)
        order.call("payment", "POST /payments", at=30, ms=30, status_code=502)
        order.call(
            "inventory",
            "DELETE /reservations/{id}",
            path=f"/reservations/r-10{i}",
            at=65,
            ms=5,
            status_code=204,
        )
    flow = _flow(land.table())
    assert [s.operation.service for s in flow.steps] == ["inventory", "payment", "shipping"]
    (compensation,) = flow.failure.compensations
    assert (compensation.failed_step, compensation.undone_step, compensation.requests) == (2, 1, 3)
    assert compensation.operation.key == "DELETE /reservations/{id}"
    assert flow.failure.uncompensated == ()
    assert flow.failure.failure_statuses == (402,)
    # The compensating call only happens on failure: it is failure logic, not a step.
    assert "DELETE /reservations/{id}" not in {s.operation.key for s in flow.steps}


def test_a_late_failure_without_compensation_leaves_earlier_writes_in_place() -> None:
    land = LandscapeBuilder()
    for _ in range(6):
        _happy(land)
    for _ in range(4):
        order = _order(land, status=503)
        order.call("payment", "POST /payments", at=30, ms=30, status_code=201)
        order.call("shipping", "POST /shipments", at=70, ms=20, status_code=503)
    flow = _flow(land.table())
    (gap,) = flow.failure.uncompensated
    assert (gap.failed_step, gap.left_in_place, gap.requests) == (3, (1, 2), 4)
    assert len(gap.example_traces) == 4
    assert flow.failure.compensations == ()
    assert flow.failure.failure_statuses == (503,)


def test_a_compensated_step_is_not_left_in_place_but_the_other_one_is() -> None:
    land = LandscapeBuilder()
    for _ in range(4):
        _happy(land)
    for i in range(2):
        order = _order(land, status=503)
        order.call("payment", "POST /payments", at=30, ms=30, status_code=201)
        order.call("shipping", "POST /shipments", at=70, ms=20, status_code=503)
        order.call(
            "inventory", "POST /reservations/{id}/release", path=f"/reservations/r-20{i}/release", at=95, ms=5
        )
    flow = _flow(land.table())
    (compensation,) = flow.failure.compensations
    assert (compensation.failed_step, compensation.undone_step) == (3, 1)
    (gap,) = flow.failure.uncompensated
    assert gap.left_in_place == (2,)


def test_a_read_before_the_failure_is_no_side_effect() -> None:
    land = LandscapeBuilder()
    for _ in range(4):
        order = land.trace().request("orders", "POST /orders", ms=200)
        order.call("catalog", "GET /products/{id}", path="/products/17", at=5, ms=10)
        order.call("pricing", "GET /prices/{id}", path="/prices/17", at=20, ms=10)
        order.call("payment", "POST /payments", at=40, ms=10, status_code=500)
    flow = _flow(land.table())
    assert flow.failure.uncompensated == ()


def test_timeouts_from_messages_and_from_late_answers() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        _happy(land)
    for _ in range(2):
        order = _order(land, status=504)
        order.call(
            "payment", "POST /payments", at=30, ms=2000, status_code=504, message="context deadline exceeded"
        )
    order = _order(land, status=504)
    # The client gave up after 1 s, the payment service answered after 3 s.
    order.call("payment", "POST /payments", at=30, ms=1000, status_code=504, server_ms=3000)
    flow = _flow(land.table())
    (timeout,) = flow.failure.timeouts
    assert timeout.startswith("step 2 (payment POST /payments): 3 calls timed out")
    assert "2000 ms" in timeout


def test_errors_that_are_not_timeouts_are_not_reported_as_such() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        order = _order(land, status=502)
        order.call("payment", "POST /payments", at=30, ms=20, status_code=502, message="card declined")
        order.call("shipping", "POST /shipments", at=60, ms=20, status_code=201)
    assert _flow(land.table()).failure.timeouts == ()


def test_an_answered_error_whose_server_span_ends_late_is_no_timeout() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        order = _order(land, status=402)
        # The caller got its 402; the payment service's span closes later (work after the response).
        order.call("payment", "POST /payments", at=30, ms=20, status_code=402, server_ms=60)
    assert _flow(land.table()).failure.timeouts == ()


def test_a_proxy_that_gave_up_after_its_route_timeout(fixtures: Path) -> None:
    """OpenTelemetry Demo: Envoy's 15 s route timeout fired while the frontend was still working."""
    table = ingest([fixtures / "opentelemetry-demo" / "traces"], jobs=1).spans
    flows, _ = mined_flows(table, owners=("frontend-proxy",))
    by_entry = {f.entry.key: f for f in flows}
    (timeout,) = by_entry["POST /api/checkout"].failure.timeouts
    assert (
        timeout
        == "step 1 (frontend POST /api/checkout): 1 calls timed out, giving up after 15001 ms (median)"
    )
    assert by_entry["POST /api/cart"].failure.timeouts == ()


def test_a_step_that_recurs_in_a_flow_keeps_each_call_once() -> None:
    # A request cycling through the same three calls (A, B, C, A, B, C ...): the flow's step keys
    # recur, and each call must still appear once with one step index, not once per recurrence
    # (which made a trace of 100,000 such calls quadratic: minutes and gigabytes).
    land = LandscapeBuilder()
    for _ in range(3):
        root = land.trace().request("orders", "POST /orders", ms=2000)
        for i in range(300):
            root.call(("inventory", "payment", "shipping")[i % 3], "POST /x", at=1 + 6 * i, ms=5)
    flows, steps = mined_flows(land.table(), owners=("orders",))
    (flow,) = flows
    assert len(flow.steps) == 300
    indexed = with_step_indices(steps, flows)
    assert len(indexed) == len(steps.calls) == 900
    assert set(indexed.groupby("step")["step_index"].unique().map(tuple)) == {(1,), (2,), (3,)}
