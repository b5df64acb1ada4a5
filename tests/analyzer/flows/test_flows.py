"""Flow mining: steps in order, variants, optional and parallel steps, retries folded, durations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from factories import LandscapeBuilder
from hypothesis import given, settings
from hypothesis import strategies as st
from scans import mined_flows, mined_steps

from orchscan.analyzer.flows.mining import mine_flows
from orchscan.analyzer.results import Flow
from orchscan.analyzer.thresholds import FlowThresholds
from orchscan.collectors.traces.ingest import ingest


def _flows(
    table: pa.Table, owners: tuple[str, ...] = (), *, tolerance_ms: float = 1.0, **thresholds: Any
) -> tuple[Flow, ...]:
    flows, _ = mined_flows(
        table, owners=owners, thresholds=FlowThresholds(**thresholds), tolerance_ms=tolerance_ms
    )
    return flows


def _keys(flow: Flow) -> list[str]:
    return [f"{s.operation.service} {s.operation.key}" for s in flow.steps]


def _checkout(land: LandscapeBuilder, *, loyalty: bool = False, skew_ms: float = 0.0) -> None:
    """orders POST /orders: reserve, pay, (award points), ship; the store work is the owner's own."""
    order = land.trace().request("orders", "POST /orders", ms=200, status_code=201)
    order.query(at=1, ms=3, operation="INSERT")
    order.call("inventory", "POST /reservations", at=5, ms=20, status_code=201, skew_ms=skew_ms)
    order.call("payment", "POST /payments", at=30, ms=40, status_code=201, skew_ms=-skew_ms)
    at = 75.0
    if loyalty:
        order.call("loyalty", "POST /points", at=at, ms=10, status_code=201)
        at += 15
    order.call("shipping", "POST /shipments", at=at, ms=30, status_code=201)


def test_main_flow_variants_and_optional_step() -> None:
    land = LandscapeBuilder()
    for _ in range(8):
        _checkout(land)
    for _ in range(2):
        _checkout(land, loyalty=True)
    (flow,) = _flows(land.table(), owners=("orders",))
    assert flow.id == "orders:POST /orders"
    assert flow.requests == 10
    assert _keys(flow) == [
        "inventory POST /reservations",
        "payment POST /payments",
        "loyalty POST /points",
        "shipping POST /shipments",
    ]
    assert [s.optional for s in flow.steps] == [False, False, True, False]
    assert flow.steps[2].support == pytest.approx(0.2)
    assert [(v.requests, len(v.steps)) for v in flow.variants] == [(8, 3), (2, 4)]
    assert flow.support == pytest.approx(0.8)
    assert all(s.parallel_group is None for s in flow.steps)
    # The database insert is the owner's own work, not a step.
    assert "postgresql" not in {s.operation.service for s in flow.steps}


def test_parallel_calls_share_a_group_whatever_order_they_start_in_and_despite_skew() -> None:
    land = LandscapeBuilder()
    for i in range(6):
        page = land.trace().request("storefront", "GET /page/{id}", path=f"/page/{i}", ms=100)
        first, second = ("catalog", "GET /products/{id}"), ("pricing", "GET /prices/{id}")
        if i % 2:
            first, second = second, first
        # Callee clocks are 40 ms off: only the callers' client spans tell what overlaps.
        page.call(*first, at=2, ms=30, skew_ms=40)
        page.call(*second, at=3, ms=30, skew_ms=-40)
        page.call("reviews", "GET /reviews/{id}", at=40, ms=10)
        page.call("audit", "POST /events", at=55, ms=5)
    (flow,) = _flows(land.table())
    assert len(flow.variants) == 1
    groups = {s.operation.service: s.parallel_group for s in flow.steps}
    assert groups["catalog"] == groups["pricing"] is not None
    assert groups["reviews"] is None and groups["audit"] is None
    assert [s.operation.service for s in flow.steps][2:] == ["reviews", "audit"]


def test_calls_that_touch_within_the_tolerance_stay_sequential() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        root = land.trace().request("orders", "POST /orders", ms=100)
        root.call("a", "GET /a", at=0, ms=10.5)
        root.call("b", "GET /b", at=10, ms=10)  # starts 0.5 ms before "a" ends: skew, not overlap
        root.call("c", "GET /c", at=25, ms=10)
    (flow,) = _flows(land.table())
    assert [s.parallel_group for s in flow.steps] == [None, None, None]
    (strict,) = _flows(land.table(), owners=("orders",), tolerance_ms=0.0)
    assert strict.steps[0].parallel_group == strict.steps[1].parallel_group == 1


def test_retries_of_a_failed_step_are_folded_into_one_step() -> None:
    land = LandscapeBuilder()
    for retried in (True, True, False, False):
        order = land.trace().request("orders", "POST /orders", ms=300, status_code=201)
        order.call("inventory", "POST /reservations", at=5, ms=20, status_code=201)
        at = 30.0
        if retried:
            order.call("shipping", "POST /shipments", at=at, ms=10, status_code=503)
            order.call("shipping", "POST /shipments", at=at + 30, ms=10, status_code=503)
            at += 60
        order.call("shipping", "POST /shipments", at=at, ms=10, status_code=201)
        order.call("notification", "POST /notifications", at=at + 20, ms=5, status_code=202)
    (flow,) = _flows(land.table())
    assert len(flow.variants) == 1
    assert _keys(flow) == [
        "inventory POST /reservations",
        "shipping POST /shipments",
        "notification POST /notifications",
    ]
    shipping = flow.steps[1]
    assert shipping.repeats == 1
    assert shipping.retries is not None
    assert (shipping.retries.requests_with_retries, shipping.retries.max_attempts) == (2, 3)
    assert shipping.retries.status_codes == (503,)
    assert shipping.retries.median_delay_ms == pytest.approx(20, abs=0.1)


def test_a_successful_repeat_is_a_loop_not_a_retry() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        root = land.trace().request("quotes", "GET /quote", ms=200)
        root.call("customer", "GET /customer", at=0, ms=10)
        for i in range(4):
            root.call("route", "GET /route", at=20 + 15 * i, ms=10)
        root.call("pricing", "GET /price", at=90, ms=10)
    (flow,) = _flows(land.table())
    route = flow.steps[1]
    assert (route.operation.service, route.repeats, route.retries, route.parallel_group) == (
        "route",
        4,
        None,
        None,
    )


def test_long_running_flows_by_total_duration_or_by_a_long_wait() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        fast = land.trace().request("orders", "POST /orders", ms=100)
        for i, service in enumerate(("a", "b", "c")):
            fast.call(service, "POST /x", at=10 + 20 * i, ms=10)
        slow = land.trace().request("returns", "POST /returns", ms=50, status_code=202)
        slow.call("approvals", "POST /approvals", at=5, ms=10)
        slow.call("approvals", "GET /approvals/{id}", path="/approvals/a-000001", at=90_000, ms=10)
        slow.call("payment", "POST /refunds", at=90_020, ms=10)
    flows = {f.owner: f for f in _flows(land.table())}
    assert not flows["orders"].long_running
    assert flows["returns"].long_running
    assert flows["returns"].duration_p50_ms == pytest.approx(90_030, rel=1e-3)
    assert (
        flows["returns"].duration_max_ms
        >= flows["returns"].duration_p95_ms
        >= flows["returns"].duration_p50_ms
    )
    # The wait alone (90 s) makes it long-running even below the total threshold.
    assert _flows(land.table(), long_running_s=85)[1].long_running
    assert not _flows(land.table(), long_running_s=100)[1].long_running


def test_which_services_are_mined() -> None:
    land = LandscapeBuilder()
    for _ in range(2):
        hub = land.trace().request("hub", "GET /hub", ms=100)
        for i, service in enumerate(("a", "b", "c")):
            hub.call(service, "GET /x", at=5 + 20 * i, ms=10)
        proxy = land.trace().request("proxy", "GET /p", ms=50)
        proxy.call("a", "GET /x", at=5, ms=10)
        proxy.call("b", "GET /x", at=20, ms=10)
        named = land.trace().request("owner", "POST /one", ms=50)
        named.call("a", "GET /x", at=5, ms=10)
    table = land.table()
    assert {f.owner for f in _flows(table)} == {"hub"}
    assert {f.owner for f in _flows(table, owners=("owner",))} == {"hub", "owner"}
    assert {f.owner for f in _flows(table, min_steps=2)} == {"hub", "proxy"}
    # Parallel calls are not dependent ones: a fan-out alone does not make a coordinator.
    fan = land.trace().request("composer", "GET /page", ms=50)
    for service in ("a", "b", "c"):
        fan.call(service, "GET /x", at=5, ms=10)
    assert "composer" not in {f.owner for f in _flows(land.table())}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=12), st.integers(min_value=1, max_value=5))
def test_raising_the_step_threshold_never_adds_flows(loyalty: list[bool], min_steps: int) -> None:
    land = LandscapeBuilder()
    for flag in loyalty:
        _checkout(land, loyalty=flag)
        proxy = land.trace().request("proxy", "GET /p", ms=50)
        proxy.call("a", "GET /x", at=5, ms=10)
    table = land.table()
    low = mine_flows(mined_steps(table, thresholds=FlowThresholds(min_steps=min_steps)))
    high = mine_flows(mined_steps(table, thresholds=FlowThresholds(min_steps=min_steps + 1)))
    assert {f.id for f in high} <= {f.id for f in low}
    for flow in low:
        assert sum(v.requests for v in flow.variants) == flow.requests
        assert [s.index for s in flow.steps] == list(range(1, len(flow.steps) + 1))


@pytest.mark.parametrize(
    ("capture", "route_parallel"),
    [
        ("jaeger-skills_n_plus_one_full_concurrent.otlp.json", True),
        ("jaeger-skills_n_plus_one_full_serial.otlp.json", False),
        ("jaeger-ui_getTrace-response.otlp.json", True),
    ],
)
def test_hotrod_dispatch_flow(fixtures: Path, capture: str, route_parallel: bool) -> None:
    table = ingest([fixtures / "hotrod" / "traces" / capture], jobs=1).spans
    flows = _flows(table, owners=("frontend",))
    assert [f.id for f in flows] == ["frontend:GET /dispatch"]
    (flow,) = flows
    assert [(s.operation.service, s.repeats) for s in flow.steps] == [
        ("customer", 1),
        ("driver", 1),
        ("route", 10),
    ]
    assert flow.steps[1].operation.key == "driver.DriverService/FindNearest"
    assert flow.steps[0].parallel_group is None and flow.steps[1].parallel_group is None
    assert (flow.steps[2].parallel_group is not None) is route_parallel
    assert not any(s.optional for s in flow.steps)
    assert not flow.long_running
    assert 600 < flow.duration_p50_ms < 1200
    # mysql and redis are the customer's and driver's own stores, never frontend steps.
    assert {s.operation.service for s in flow.steps}.isdisjoint({"mysql", "redis-manual"})
