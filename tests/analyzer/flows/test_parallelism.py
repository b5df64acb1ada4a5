"""Parallelisation opportunities: independent sequential steps and what running them together saves."""

from __future__ import annotations

import dataclasses

import pytest
from factories import LandscapeBuilder
from hypothesis import given, settings
from hypothesis import strategies as st
from scans import mined_flows

from orchscan.analyzer.flows.parallelism import find_parallel_opportunities, with_parallel_opportunities
from orchscan.analyzer.flows.steps import StepCalls
from orchscan.analyzer.results import Compensation, Flow, Handoff, OperationRef
from orchscan.analyzer.thresholds import FlowThresholds


def _fulfil(
    land: LandscapeBuilder, durations: tuple[float, float, float], *, fail_first: bool = False
) -> None:
    """fulfil POST /fulfilments: three calls one after another to three services, 2 ms apart."""
    order = land.trace().request("fulfil", "POST /fulfilments", ms=sum(durations) + 20)
    at = 2.0
    targets = (("inventory", "POST /reservations"), ("labels", "POST /labels"), ("crm", "GET /customers/c-1"))
    for (callee, operation), ms in zip(targets, durations, strict=True):
        failed = fail_first and callee == "inventory"
        order.call(callee, operation, at=at, ms=ms, status_code=503 if failed else 200)
        at += ms + 2


def _mine(land: LandscapeBuilder, **thresholds: float) -> tuple[tuple[Flow, ...], StepCalls]:
    return mined_flows(land.table(), owners=["fulfil"], thresholds=FlowThresholds(**thresholds))  # type: ignore[arg-type]


def test_three_independent_steps_could_run_together_and_the_saving_is_measured_per_request() -> None:
    land = LandscapeBuilder()
    durations = [(30.0, 20.0, 10.0)] * 8 + [(60.0, 20.0, 10.0)] * 2
    for row in durations:
        _fulfil(land, row)
    flows, steps = _mine(land)
    (opportunity,) = find_parallel_opportunities(steps, flows)["fulfil:POST /fulfilments"]
    assert opportunity.steps == (1, 2, 3)
    assert opportunity.requests == 10
    # Summed less the longest: 30 ms in eight requests, 30 ms too when the first step takes 60 ms.
    assert opportunity.saving_p50_ms == pytest.approx(30.0, abs=0.01)
    assert opportunity.saving_p95_ms == pytest.approx(30.0, abs=0.01)
    assert any("different service (inventory, labels, crm)" in line for line in opportunity.evidence)
    assert "no data handoff" in opportunity.evidence[1]
    assert "no OpenAPI description of crm, inventory, labels" in opportunity.evidence[1]


def test_the_p95_saving_follows_the_slow_requests() -> None:
    land = LandscapeBuilder()
    for i in range(20):
        _fulfil(land, (30.0, 20.0 + (40.0 if i >= 18 else 0.0), 10.0))
    flows, steps = _mine(land)
    (opportunity,) = find_parallel_opportunities(steps, flows)["fulfil:POST /fulfilments"]
    # 30 ms saved in 18 requests; 40 ms in the two whose second step took 60 ms (30 + 10).
    assert opportunity.saving_p50_ms == pytest.approx(30.0, abs=0.01)
    assert 30.0 < opportunity.saving_p95_ms <= 40.0 + 0.01


def _flow_with(flow: Flow, **changes: object) -> Flow:
    return dataclasses.replace(flow, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def mined() -> tuple[Flow, StepCalls]:
    land = LandscapeBuilder()
    for _ in range(5):
        _fulfil(land, (30.0, 20.0, 10.0))
    (flow,), steps = _mine(land)
    return flow, steps


def test_a_data_handoff_orders_the_steps(mined: tuple[Flow, StepCalls]) -> None:
    flow, steps = mined
    handoff = Handoff(2, "labelId", 3, "labelId", "body", 0.6, ("schema",))
    found = find_parallel_opportunities(steps, [_flow_with(flow, handoffs=(handoff,))])
    # Steps 2 and 3 are tied; 1 and 2 still are not.
    assert [o.steps for o in found[flow.id]] == [(1, 2)]


def test_a_compensation_orders_the_steps(mined: tuple[Flow, StepCalls]) -> None:
    flow, steps = mined
    undo = Compensation(2, 1, OperationRef("inventory", "DELETE /reservations/{id}", "DELETE"), 3)
    changed = _flow_with(flow, failure=dataclasses.replace(flow.failure, compensations=(undo,)))
    assert [o.steps for o in find_parallel_opportunities(steps, [changed])[flow.id]] == [(2, 3)]


def test_an_optional_step_ends_a_run(mined: tuple[Flow, StepCalls]) -> None:
    flow, steps = mined
    optional = tuple(dataclasses.replace(s, optional=s.index == 2) for s in flow.steps)
    assert find_parallel_opportunities(steps, [_flow_with(flow, steps=optional)]) == {}


@pytest.mark.parametrize(("polls", "expected"), [(1, [(1, 2)]), (3, [])])
def test_a_polled_read_holds_back_what_follows(polls: int, expected: list[tuple[int, ...]]) -> None:
    land = LandscapeBuilder()
    for _ in range(4):
        order = land.trace().request("fulfil", "POST /fulfilments", ms=200)
        at = 2.0
        for _ in range(polls):
            order.call("jobs", "GET /jobs/{id}", path="/jobs/job-0001", at=at, ms=10)
            at += 20
        order.call("labels", "POST /labels", at=at, ms=20)
    flows, steps = _mine(land)
    assert flows[0].steps[0].repeats == polls
    assert [
        o.steps for o in find_parallel_opportunities(steps, flows).get("fulfil:POST /fulfilments", ())
    ] == expected


def test_two_steps_on_one_service_with_a_write_stay_in_order() -> None:
    land = LandscapeBuilder()
    for _ in range(4):
        order = land.trace().request("fulfil", "POST /fulfilments", ms=100)
        order.call("inventory", "POST /reservations", at=2, ms=20)
        order.call("inventory", "GET /stock", at=25, ms=20)
        order.call("labels", "POST /labels", at=50, ms=20)
    flows, steps = _mine(land)
    (opportunity,) = find_parallel_opportunities(steps, flows)["fulfil:POST /fulfilments"]
    # GET /stock may read what POST /reservations wrote; the label is free to go along with it.
    assert opportunity.steps == (2, 3)
    assert "each calls a different service" in opportunity.evidence[2]


def test_two_reads_of_one_service_may_run_together() -> None:
    land = LandscapeBuilder()
    for _ in range(4):
        order = land.trace().request("quote", "GET /quotes", ms=100)
        order.call("catalog", "GET /items/i-1", at=2, ms=20)
        order.call("catalog", "GET /prices/i-1", at=25, ms=20)
        order.call("tax", "GET /rates", at=50, ms=20)
    flows, steps = mined_flows(land.table(), owners=["quote"])
    (opportunity,) = find_parallel_opportunities(steps, flows)["quote:GET /quotes"]
    assert opportunity.steps == (1, 2, 3)
    assert "the steps on catalog only read it" in opportunity.evidence[2]


def test_a_step_that_failed_for_good_guards_the_writes_after_it() -> None:
    land = LandscapeBuilder()
    for i in range(6):
        _fulfil(land, (30.0, 20.0, 10.0), fail_first=i == 0)
    flows, steps = _mine(land)
    found = find_parallel_opportunities(steps, flows)
    # The failed reservation kept the label from being written; the read of step 3 is free.
    assert [o.steps for o in found["fulfil:POST /fulfilments"]] == [(2, 3)]


def test_steps_already_in_parallel_join_a_run_as_one_block() -> None:
    land = LandscapeBuilder()
    for _ in range(4):
        page = land.trace().request("bff", "GET /home", ms=120)
        page.call("catalog", "GET /items", at=2, ms=30)
        page.call("users", "GET /users/u-1", at=2.2, ms=20)
        page.call("recommendations", "GET /recommendations", at=40, ms=10)
    flows, steps = mined_flows(land.table(), owners=["bff"])
    (flow,) = flows
    assert [s.parallel_group for s in flow.steps] == [1, 1, None]
    (opportunity,) = find_parallel_opportunities(steps, flows)["bff:GET /home"]
    assert opportunity.steps == (1, 2, 3)
    # The group's block lasts 30 ms (from 2 to 32); adding the 10 ms step saves 10 ms.
    assert opportunity.saving_p50_ms == pytest.approx(10.0, abs=0.05)


def test_thresholds_decide_what_is_worth_reporting() -> None:
    land = LandscapeBuilder()
    for _ in range(3):
        _fulfil(land, (30.0, 20.0, 10.0))
    flows, steps = _mine(land)
    assert find_parallel_opportunities(steps, flows)
    assert (
        find_parallel_opportunities(steps, flows, thresholds=FlowThresholds(parallel_min_saving_ms=31)) == {}
    )
    assert find_parallel_opportunities(steps, flows, thresholds=FlowThresholds(evidence_min_requests=4)) == {}


@settings(max_examples=15, deadline=None)
@given(durations=st.lists(st.tuples(*(st.floats(5, 200) for _ in range(3))), min_size=3, max_size=12))
def test_the_saving_never_exceeds_the_time_the_steps_took(
    durations: list[tuple[float, float, float]],
) -> None:
    land = LandscapeBuilder()
    for row in durations:
        _fulfil(land, row)
    flows, steps = _mine(land, parallel_min_saving_ms=0.0)
    (flow,) = with_parallel_opportunities(steps, flows, thresholds=FlowThresholds(parallel_min_saving_ms=0.0))
    (opportunity,) = flow.parallel_opportunities
    sums = sorted(sum(row) - max(row) for row in durations)
    assert sums[0] - 0.01 <= opportunity.saving_p50_ms <= opportunity.saving_p95_ms <= sums[-1] + 0.01
