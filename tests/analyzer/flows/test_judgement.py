"""Which mined entries are claimed as flows: enough evidence, and one request type per entry."""

from __future__ import annotations

from factories import LandscapeBuilder
from scans import mined_flows

from orchscan.analyzer.results import Flow
from orchscan.analyzer.thresholds import FlowThresholds


def _verdicts(flows: tuple[Flow, ...]) -> dict[str, str]:
    return {flow.id: flow.verdict for flow in flows}


def _front_end(land: LandscapeBuilder, *calls: tuple[str, str]) -> None:
    """A request the front end records only as "HTTP request", making ``calls`` one after another."""
    entry = land.trace().request("web", "HTTP request", ms=300)
    for i, (callee, operation) in enumerate(calls):
        entry.call(callee, operation, at=5 + 40 * i, ms=30)


PRODUCT = (("catalogue", "GET /items/{id}"), ("recommendations", "GET /recommendations"), ("ads", "GET /ads"))
CART = (("cart", "GET /cart"), ("catalogue", "GET /items/{id}"))
CHECKOUT = (("orders", "POST /orders"), ("cart", "DELETE /cart"))


def test_a_flow_needs_three_requests_and_two_steps() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        entry = land.trace().request("orders", "POST /orders", ms=100)
        entry.call("inventory", "POST /reservations", at=5, ms=20)
        entry.call("payment", "POST /payments", at=30, ms=20)
    for _ in range(2):
        land.trace().request("orders", "POST /refunds", ms=50).call("payment", "POST /refunds", at=5, ms=20)
    for _ in range(5):
        land.trace().request("orders", "GET /orders/{id}", ms=50).call(
            "users", "GET /users/{id}", at=5, ms=20
        )
    flows, _ = mined_flows(land.table(), owners=["orders"])
    assert _verdicts(flows) == {
        "orders:POST /orders": "flow",
        "orders:POST /refunds": "too-little-evidence",
        "orders:GET /orders/{id}": "too-little-evidence",
    }
    refunds = next(f for f in flows if f.id == "orders:POST /refunds")
    assert refunds.caveats == (
        "too little evidence: 2 requests with 1 step; a flow needs at least 3 requests and 2 steps",
    )
    lenient = FlowThresholds(evidence_min_requests=1, evidence_min_steps=1)
    assert set(_verdicts(mined_flows(land.table(), owners=["orders"], thresholds=lenient)[0]).values()) == {
        "flow"
    }


def test_a_mixed_entry_is_split_into_its_request_types() -> None:
    land = LandscapeBuilder()
    for _ in range(4):
        _front_end(land, *PRODUCT)
        _front_end(land, *CART)
        _front_end(land, *CHECKOUT)
    flows, steps = mined_flows(land.table(), owners=["web"])
    assert _verdicts(flows) == {
        "web:HTTP request via cart GET /cart": "flow",
        "web:HTTP request via catalogue GET /items/{id}": "flow",
        "web:HTTP request via orders POST /orders": "flow",
    }
    cart = next(f for f in flows if f.id == "web:HTTP request via cart GET /cart")
    assert [s.operation.key for s in cart.steps] == ["GET /cart", "GET /items/{id}"]
    assert not any(s.optional for s in cart.steps)
    assert cart.split_from == "HTTP request"
    assert cart.caveats == (
        "one request type of the mixed entry HTTP request (33% of its 12 requests), "
        "told apart by its first call",
    )
    assert set(steps.requests["flow_id"]) == {f.id for f in flows}


def test_an_entry_with_a_route_or_a_core_step_is_not_mixed() -> None:
    land = LandscapeBuilder()
    for _ in range(4):
        # Every request of the checkout starts with the cart: whatever follows, it is one flow.
        for tail in (("orders", "POST /orders"), ("pricing", "GET /quotes"), ("users", "GET /users/{id}")):
            entry = land.trace().request("web", "HTTP request", ms=300)
            entry.call("cart", "GET /cart", at=5, ms=30)
            entry.call(*tail, at=50, ms=30)
    flows, _ = mined_flows(land.table(), owners=["web"])
    assert _verdicts(flows) == {"web:HTTP request": "flow"}


def test_a_mixed_entry_without_a_request_type_of_enough_requests_stays_whole() -> None:
    land = LandscapeBuilder()
    for calls in (PRODUCT, CART, CHECKOUT, CART[::-1], CHECKOUT[::-1], PRODUCT[::-1]):
        _front_end(land, *calls)
    flows, _ = mined_flows(land.table(), owners=["web"])
    (flow,) = flows
    assert (flow.id, flow.verdict) == ("web:HTTP request", "mixed-entry")
    assert flow.caveats[0].startswith("mixed entry: its requests carry no route, path or RPC method")
    assert flow.caveats[1] == "no single request type has the 3 requests a flow needs"
