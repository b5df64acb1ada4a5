"""Invariants of flow mining over random landscapes (Hypothesis)."""

from __future__ import annotations

from factories import LandscapeBuilder
from hypothesis import given, settings
from hypothesis import strategies as st
from scans import mined_flows

from orchscan.analyzer.thresholds import FlowThresholds

_CALLEES = ("inventory", "payment", "shipping", "notification", "pricing", "users")

# A request: its owner (one of three) and the callees it calls one after another.
requests = st.lists(
    st.tuples(
        st.sampled_from(("orders", "mobile-bff", "partner-api")),
        st.lists(st.sampled_from(_CALLEES), max_size=5),
    ),
    min_size=1,
    max_size=25,
)


def _landscape(spec: list[tuple[str, list[str]]]) -> LandscapeBuilder:
    land = LandscapeBuilder()
    for owner, callees in spec:
        request = land.trace().request(owner, f"POST /{owner}/checkout", ms=400, status_code=201)
        for position, callee in enumerate(callees):
            request.call(callee, f"POST /{callee}", at=5.0 + 30 * position, ms=20, status_code=201)
    return land


@settings(max_examples=40, deadline=None)
@given(requests, st.integers(min_value=1, max_value=5))
def test_raising_the_step_threshold_never_adds_flows(
    spec: list[tuple[str, list[str]]], min_steps: int
) -> None:
    table = _landscape(spec).table()
    lower, _ = mined_flows(table, thresholds=FlowThresholds(min_steps=min_steps))
    higher, _ = mined_flows(table, thresholds=FlowThresholds(min_steps=min_steps + 1))
    assert {f.id for f in higher} <= {f.id for f in lower}


@settings(max_examples=40, deadline=None)
@given(requests)
def test_variants_account_for_every_mined_request(spec: list[tuple[str, list[str]]]) -> None:
    table = _landscape(spec).table()
    flows, _ = mined_flows(table, thresholds=FlowThresholds(min_steps=1))
    for flow in flows:
        assert sum(v.requests for v in flow.variants) == flow.requests
        assert abs(sum(v.support for v in flow.variants) - 1.0) < 1e-9
        assert flow.support == max(v.support for v in flow.variants)
        assert [s.index for s in flow.steps] == list(range(1, len(flow.steps) + 1))
