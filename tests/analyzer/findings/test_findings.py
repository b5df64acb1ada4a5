"""The pitfall rules: each one fires on its pattern and stays silent on a near miss."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from factories import LandscapeBuilder, SpanHandle
from scans import context_of, mined_flows

from orchscan.analyzer.findings.rules import RULES, find_findings
from orchscan.analyzer.results import Finding, ServiceRole
from orchscan.analyzer.thresholds import FlowThresholds

OWNERS = ("orders", "mobile-bff", "returns")


def _findings(table: pa.Table, roles: tuple[ServiceRole, ...] = (), **thresholds: Any) -> list[Finding]:
    limits = FlowThresholds(**thresholds)
    flows, steps = mined_flows(table, owners=OWNERS, thresholds=limits)
    claimed = [flow for flow in flows if flow.verdict == "flow"]
    found = find_findings(claimed, steps, context_of(table), roles=roles, thresholds=limits)
    assert {f.rule for f in found} <= set(RULES)
    assert list(found) == sorted(found, key=Finding.sort_key)
    return list(found)


def _rules(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for finding in findings:
        out.setdefault(finding.rule, []).append(finding)
    return out


def _order(
    land: LandscapeBuilder, owner: str = "orders", *, queries: int = 1, status: int = 201
) -> SpanHandle:
    order = land.trace().request(owner, "POST /orders", ms=300, status_code=status)
    for i in range(queries):
        order.query(at=200 + 10 * i, ms=8)
    order.call("inventory", "POST /reservations", at=5, ms=20, status_code=201)
    order.call("payment", "POST /payments", at=30, ms=30, status_code=201)
    return order


def _role(name: str, hidden: bool) -> ServiceRole:
    return ServiceRole(
        name=name,
        role="orchestrator",
        hidden=hidden,
        fan_out=3,
        fan_in=1,
        requests=4,
        score=3.0,
        evidence=("calls 3 services per request",),
        example_traces=(),
    )


def _shipping_retried(land: LandscapeBuilder, *, key: bool, method: str = "POST") -> None:
    for _ in range(3):
        order = _order(land)
        order.call("shipping", f"{method} /shipments", at=70, ms=10, status_code=503, idempotency_key=key)
        order.call("shipping", f"{method} /shipments", at=100, ms=10, status_code=201, idempotency_key=key)


def test_hidden_orchestration_needs_the_hidden_flag() -> None:
    land = LandscapeBuilder()
    for _ in range(4):
        _order(land).call("shipping", "POST /shipments", at=70, ms=10)
    table = land.table()
    (finding,) = _rules(_findings(table, roles=(_role("orders", True),)))["hidden-orchestration"]
    assert (finding.service, finding.flow, finding.severity) == ("orders", "orders:POST /orders", "medium")
    assert "3 steps" in finding.message
    assert "hidden-orchestration" not in _rules(_findings(table, roles=(_role("orders", False),)))


def test_overloaded_orchestrator_on_heavy_own_work_only() -> None:
    heavy, light = LandscapeBuilder(), LandscapeBuilder()
    for _ in range(4):
        _order(heavy, queries=5).call("shipping", "POST /shipments", at=70, ms=10)
        _order(light, queries=1).call("shipping", "POST /shipments", at=70, ms=10)
    orchestrator = (_role("orders", True),)
    (finding,) = _rules(_findings(heavy.table(), roles=orchestrator))["overloaded-orchestrator"]
    assert "5.0 database calls per request" in finding.message
    assert (finding.subject, finding.flow) == (None, "orders:POST /orders")
    assert "overloaded-orchestrator" not in _rules(_findings(light.table(), roles=orchestrator))
    # A service that orchestrates nothing is no overloaded orchestrator, however much it queries.
    assert "overloaded-orchestrator" not in _rules(_findings(heavy.table()))


def test_missing_idempotency_on_a_retried_write_without_key() -> None:
    bare, keyed, put = LandscapeBuilder(), LandscapeBuilder(), LandscapeBuilder()
    _shipping_retried(bare, key=False)
    _shipping_retried(keyed, key=True)
    _shipping_retried(put, key=False, method="PUT")
    (finding,) = _rules(_findings(bare.table()))["missing-idempotency"]
    assert (finding.severity, finding.flow) == ("high", "orders:POST /orders")
    assert "step 3 (shipping POST /shipments)" in finding.message
    assert "3 requests retried it, up to 2 attempts, after status 503" in finding.evidence[0]
    assert "missing-idempotency" not in _rules(_findings(keyed.table()))
    assert "missing-idempotency" not in _rules(_findings(put.table()))


def test_uncompensated_failure_and_its_compensated_near_miss() -> None:
    left, undone = LandscapeBuilder(), LandscapeBuilder()
    for land in (left, undone):
        for _ in range(3):
            _order(land).call("shipping", "POST /shipments", at=70, ms=10)
    for _ in range(2):
        _order(left, status=503).call("shipping", "POST /shipments", at=70, ms=10, status_code=503)
        order = _order(undone, status=503)
        order.call("shipping", "POST /shipments", at=70, ms=10, status_code=503)
        order.call("payment", "POST /payments/{id}/refund", path="/payments/p-000001/refund", at=90, ms=5)
        order.call("inventory", "DELETE /reservations/{id}", path="/reservations/r-000001", at=100, ms=5)
    (finding,) = _rules(_findings(left.table()))["uncompensated-failure"]
    assert finding.message.startswith("When step 3 (shipping POST /shipments) fails, orders leaves step 1")
    assert len(finding.example_traces) == 2
    assert "uncompensated-failure" not in _rules(_findings(undone.table()))


def test_duplicated_flow_names_each_copy_and_its_drift() -> None:
    land = LandscapeBuilder()
    for _ in range(4):
        _order(land).call("shipping", "POST /shipments", at=70, ms=10)
    for _ in range(3):
        _order(land, "mobile-bff").call("shipping", "POST /shipments", at=70, ms=10)
    land.trace().request("returns", "POST /returns", ms=10).call("catalog", "GET /x", at=1, ms=2)
    (finding,) = _rules(_findings(land.table()))["duplicated-flow"]
    assert (finding.service, finding.flow) == ("mobile-bff", "mobile-bff:POST /orders")
    assert finding.message == "mobile-bff POST /orders is a copy of the flow behind orders POST /orders"
    # A different flow shares too little to count as a copy.
    solo = LandscapeBuilder()
    for _ in range(2):
        _order(solo).call("shipping", "POST /shipments", at=70, ms=10)
        other = solo.trace().request("mobile-bff", "GET /home", ms=100)
        for i, service in enumerate(("news", "weather", "inventory")):
            other.call(service, "GET /x", at=10 * i, ms=5)
    assert "duplicated-flow" not in _rules(_findings(solo.table()))


def _lost_context(land: LandscapeBuilder, *, nested: bool) -> None:
    """legacy's request calls users from a worker thread that lost the context: a new trace."""
    request = land.trace().request("legacy", "POST /invoices", ms=100)
    request.query(at=5, ms=5)
    orphan_trace = land.trace()
    orphan_trace.start_ns = request.trace.start_ns + (20 if nested else 500) * 1_000_000
    worker = orphan_trace.land.add_span(
        orphan_trace,
        parent=None,
        service="legacy",
        kind="client",
        name="GET",
        at=0,
        ms=10,
        http_method="GET",
        url_path="/users/7",
        server_address="users",
    )
    worker.land.add_span(
        orphan_trace,
        parent=worker,
        service="users",
        kind="server",
        name="GET /users/{id}",
        at=1,
        ms=8,
        http_method="GET",
        http_route="/users/{id}",
        url_path="/users/7",
        http_status_code=200,
    )


def test_missing_trace_context_when_outgoing_calls_start_new_traces() -> None:
    broken, apart = LandscapeBuilder(), LandscapeBuilder()
    for _ in range(3):
        _lost_context(broken, nested=True)
        _lost_context(apart, nested=False)
    (finding,) = _rules(_findings(broken.table()))["missing-trace-context"]
    assert finding.service == "legacy"
    assert "3 calls made while serving POST /invoices" in finding.message
    assert "users" in finding.evidence[1]
    # A traffic generator's root client spans serve no request of its own: not a lost context.
    assert "missing-trace-context" not in _rules(_findings(apart.table()))


def _orphan_callee(land: LandscapeBuilder, *, nested: bool) -> None:
    request = land.trace().request("billing", "POST /invoices", ms=100)
    request.call("users", "GET /users/{id}", path="/users/7", at=10, ms=20, instrumented=False)
    orphan = land.trace()
    orphan.start_ns = request.trace.start_ns + (12 if nested else 40) * 1_000_000
    orphan.request("users", "GET /users/{id}", path="/users/7", ms=15)


def test_missing_trace_context_when_a_callee_root_nests_in_an_unanswered_call() -> None:
    broken, apart = LandscapeBuilder(), LandscapeBuilder()
    for _ in range(2):
        _orphan_callee(broken, nested=True)
        _orphan_callee(apart, nested=False)
    (finding,) = _rules(_findings(broken.table()))["missing-trace-context"]
    assert finding.service == "billing"
    assert "2 root server spans of users" in finding.evidence[0]
    assert "missing-trace-context" not in _rules(_findings(apart.table()))


def _polling(land: LandscapeBuilder, *, timeout: bool) -> None:
    case = land.trace().request("returns", "POST /returns", ms=20, status_code=202)
    case.call("approvals", "POST /approvals", at=25, ms=10, status_code=201)
    at = 40.0
    for _ in range(9):
        case.call("approvals", "GET /approvals/{id}", path="/approvals/a-000042", at=at, ms=10)
        at += 10_000
    if timeout:
        case.call(
            "approvals",
            "GET /approvals/{id}",
            path="/approvals/a-000042",
            at=at,
            ms=30_000,
            status_code=504,
            message="Read timed out",
        )
        at += 30_000
    case.call("payment", "POST /refunds", at=at, ms=10, status_code=201)


def test_unbounded_wait_on_a_long_polling_step_without_timeout() -> None:
    unbounded, bounded = LandscapeBuilder(), LandscapeBuilder()
    for _ in range(3):
        _polling(unbounded, timeout=False)
        _polling(bounded, timeout=True)
    (finding,) = _rules(_findings(unbounded.table()))["unbounded-wait"]
    assert finding.message.startswith("the flow is held 80 s (p95) at step 2 (approvals GET /approvals/{id})")
    assert "unbounded-wait" not in _rules(_findings(bounded.table()))
    assert "unbounded-wait" not in _rules(_findings(unbounded.table(), long_running_s=120))


def test_workflow_description_pays_off_from_three_linked_steps() -> None:
    chained, short = LandscapeBuilder(), LandscapeBuilder()
    for i in range(3):
        for land, links in ((chained, 2), (short, 1)):
            order = land.trace().request("orders", "POST /orders", ms=300)
            order.call("carts", "POST /carts", at=5, ms=10, status_code=201)
            order.call("carts", "GET /carts/{id}", path=f"/carts/c-{i:05d}", at=20, ms=10)
            second = f"/carts/c-{i:05d}/items" if links == 2 else "/carts/items"
            order.call("carts", "POST /carts/{id}/items", path=second, at=35, ms=10)
    (finding,) = _rules(_findings(chained.table()))["workflow-description"]
    assert finding.severity == "info"
    assert "chains 3 steps" in finding.message
    assert "workflow-description" not in _rules(_findings(short.table()))
