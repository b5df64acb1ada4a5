"""Comparing two scans: what counts as a change, and what must not."""

from __future__ import annotations

import dataclasses

from analysis_factories import shop_analysis
from hypothesis import given
from hypothesis import strategies as st

from orchscan.analyzer.changes.diff import KeyChange, Reorder, compare_scans
from orchscan.analyzer.changes.snapshot import (
    CompensationState,
    FindingState,
    FlowState,
    RetryState,
    ScanSnapshot,
    ServiceState,
    StepState,
    take_snapshot,
)
from orchscan.analyzer.results import Analysis, Flow, RetryPolicy, ServiceRole, Step

CHECKOUT = "checkout:POST /checkout"


def _flow(analysis: Analysis, flow_id: str) -> Flow:
    return next(f for f in analysis.flows if f.id == flow_id)


def _with_flow(analysis: Analysis, flow: Flow) -> Analysis:
    return dataclasses.replace(analysis, flows=tuple(flow if f.id == flow.id else f for f in analysis.flows))


def _with_service(analysis: Analysis, name: str, **changes: object) -> Analysis:
    services = tuple(dataclasses.replace(s, **changes) if s.name == name else s for s in analysis.services)
    return dataclasses.replace(analysis, services=services)


def test_the_same_scan_twice_changes_nothing() -> None:
    snapshot = take_snapshot(shop_analysis())
    diff = compare_scans(snapshot, snapshot)
    assert diff.empty
    assert diff.new_findings_at_least("info") == ()


def test_counts_timings_scores_and_traces_are_not_changes() -> None:
    old = shop_analysis()
    flows = tuple(
        dataclasses.replace(f, requests=f.requests * 3, duration_p50_ms=1.0, example_traces=())
        for f in old.flows
    )
    services = tuple(
        dataclasses.replace(s, score=s.score + 0.7, requests=s.requests + 5) for s in old.services
    )
    findings = tuple(dataclasses.replace(f, evidence=("recounted",), example_traces=()) for f in old.findings)
    new = dataclasses.replace(old, flows=flows, services=services, findings=findings)
    assert compare_scans(take_snapshot(old), take_snapshot(new)).empty


def test_orchestrators_added_removed_and_turned_hidden() -> None:
    old = shop_analysis()
    orchestrators = [s.name for s in old.services if s.role == "orchestrator"]
    assert "checkout" in orchestrators
    explicit = next(s for s in old.services if s.role == "orchestrator" and not s.hidden)
    new = _with_service(old, "checkout", role="service", hidden=False)
    new = _with_service(new, explicit.name, hidden=True)
    newcomer = ServiceRole("fulfilment", "orchestrator", True, 4, 1, 90, 6.2, ("drives shipping",), ())
    new = dataclasses.replace(new, services=(*new.services, newcomer))
    gateway = next(s.name for s in old.services if s.role == "gateway")
    new = _with_service(new, gateway, role="orchestrator")

    diff = compare_scans(take_snapshot(old), take_snapshot(new))

    assert [(c.service, c.old.role if c.old else None) for c in diff.orchestrators_added] == sorted(
        [("fulfilment", None), (gateway, "gateway")]
    )
    assert [(c.service, c.new.role if c.new else None) for c in diff.orchestrators_removed] == [
        ("checkout", "service")
    ]
    assert [(c.service, c.changes) for c in diff.orchestrators_changed] == [(explicit.name, ("hidden",))]
    assert diff.orchestrators_removed[0].changes == ("role", "hidden")  # checkout was a hidden one


def test_a_service_that_disappears_takes_its_orchestrator_role_and_flows_with_it() -> None:
    old = shop_analysis()
    new = dataclasses.replace(
        old,
        services=tuple(s for s in old.services if s.name != "checkout"),
        flows=tuple(f for f in old.flows if f.owner != "checkout"),
    )
    diff = compare_scans(take_snapshot(old), take_snapshot(new))
    assert [(c.service, c.new) for c in diff.orchestrators_removed] == [("checkout", None)]
    assert [f.id for f in diff.flows_removed] == [CHECKOUT, f"{CHECKOUT} (events)"]
    assert diff.flows_added == () and diff.flows_changed == ()
    # The reverse comparison sees the same things the other way round.
    back = compare_scans(take_snapshot(new), take_snapshot(old))
    assert [c.service for c in back.orchestrators_added] == ["checkout"]
    assert back.flows_added == diff.flows_removed


def test_steps_added_removed_and_reordered() -> None:
    old = shop_analysis()
    flow = _flow(old, CHECKOUT)
    cart, reserve, quote, coupon, pay, ship, publish = flow.steps
    assert coupon.optional and pay.operation.service == "payment" and ship.operation.service == "shipping"
    # Shipping before payment, the optional coupon step gone, a fraud check added.
    fraud = dataclasses.replace(
        pay, operation=dataclasses.replace(pay.operation, service="fraud", key="POST /checks")
    )
    steps = [cart, reserve, quote, ship, fraud, pay, publish]
    steps = [dataclasses.replace(s, index=i) for i, s in enumerate(steps, start=1)]
    new = _with_flow(old, dataclasses.replace(flow, steps=tuple(steps)))

    change = compare_scans(take_snapshot(old), take_snapshot(new)).flows_changed[0]

    assert change.id == CHECKOUT and change.owner == "checkout"
    assert change.steps_added == ("fraud POST /checks",)
    assert change.steps_removed == ("cart POST /carts/{cartId}/coupon",)
    assert change.reordered is not None
    assert change.reordered.old.index("payment POST /payments/authorize") < change.reordered.old.index(
        "shipping POST /shipments"
    )
    assert change.reordered.new.index("payment POST /payments/authorize") > change.reordered.new.index(
        "shipping POST /shipments"
    )
    assert set(change.changes) >= {"steps added", "steps removed", "steps reordered"}


def _state(*stages: tuple[str, ...]) -> FlowState:
    steps: list[StepState] = []
    for group, keys in enumerate(stages, start=1):
        for key in keys:
            service, _, operation = key.partition(" ")
            steps.append(StepState(service, operation, False, group if len(keys) > 1 else None, None))
    return FlowState("o:GET /", "o", "GET /", 10, tuple(steps), ())


def _snapshot(*flows: FlowState, findings: tuple[FindingState, ...] = ()) -> ScanSnapshot:
    return ScanSnapshot(0, 1, 10, 2, 5, (ServiceState("o", "orchestrator", False, 5.0),), flows, findings)


def test_order_inside_a_parallel_group_is_no_reordering_but_leaving_the_group_is() -> None:
    old = _state(("a GET /x",), ("b GET /y", "c GET /z"), ("d POST /w",))
    swapped = _state(("a GET /x",), ("c GET /z", "b GET /y"), ("d POST /w",))
    assert compare_scans(_snapshot(old), _snapshot(swapped)).empty

    moved = _state(("c GET /z",), ("a GET /x",), ("b GET /y",), ("d POST /w",))
    change = compare_scans(_snapshot(old), _snapshot(moved)).flows_changed[0]
    assert change.reordered == Reorder(
        ("a GET /x", "b GET /y", "c GET /z", "d POST /w"), ("c GET /z", "a GET /x", "b GET /y", "d POST /w")
    )


def test_a_step_called_twice_is_compared_occurrence_by_occurrence() -> None:
    old = _state(("a GET /x",), ("b POST /y",), ("a GET /x",))
    fewer = _state(("a GET /x",), ("b POST /y",))
    change = compare_scans(_snapshot(old), _snapshot(fewer)).flows_changed[0]
    assert change.steps_removed == ("a GET /x",) and change.reordered is None
    assert compare_scans(_snapshot(old), _snapshot(old)).empty


def test_retries_idempotency_keys_and_compensations() -> None:
    old = shop_analysis()
    flow = _flow(old, CHECKOUT)
    policy = RetryPolicy(40, 3, (503,), 20.0, idempotency_key=False)

    def retry(step: Step) -> Step:
        if step.operation.key == "POST /payments/authorize":
            assert step.retries is not None
            return dataclasses.replace(step, retries=dataclasses.replace(step.retries, idempotency_key=True))
        if step.operation.key == "POST /shipments":
            return dataclasses.replace(step, retries=policy)
        return step

    failure = dataclasses.replace(flow.failure, compensations=())
    new = _with_flow(
        old, dataclasses.replace(flow, steps=tuple(retry(s) for s in flow.steps), failure=failure)
    )

    change = compare_scans(take_snapshot(old), take_snapshot(new)).flows_changed[0]

    assert change.retries_added == ("shipping POST /shipments",)
    assert change.retries_removed == ()
    assert change.idempotency == (KeyChange("payment POST /payments/authorize", False, True),)
    assert change.compensations_removed == (
        CompensationState(
            failed_step="payment POST /payments/authorize",
            undone_step="inventory POST /reservations",
            service="inventory",
            operation="DELETE /reservations/{reservationId}",
        ),
    )
    assert change.compensations_added == () and change.steps_added == () and change.reordered is None
    assert change.changes == ("retries added", "idempotency keys changed", "compensations removed")


def test_findings_are_matched_by_fingerprint_whatever_their_severity_or_message() -> None:
    old = shop_analysis()
    gone, *kept = old.findings
    raised = dataclasses.replace(kept[0], severity="critical", message="recounted over another window")
    added = dataclasses.replace(gone, service="fulfilment", severity="high")
    new = dataclasses.replace(old, findings=(raised, *kept[1:], added))

    diff = compare_scans(take_snapshot(old), take_snapshot(new))

    assert [f.fingerprint for f in diff.findings_new] == [added.fingerprint]
    assert [f.fingerprint for f in diff.findings_resolved] == [gone.fingerprint]
    assert diff.new_findings_at_least("high") == diff.findings_new
    assert diff.new_findings_at_least("critical") == ()


keys = st.sampled_from(["a GET /x", "b POST /y", "c PUT /z", "d DELETE /w", "e GET /v"])
stage_lists = st.lists(st.lists(keys, min_size=1, max_size=3, unique=True).map(tuple), max_size=5)
finding_states = st.builds(
    FindingState,
    fingerprint=st.sampled_from(["f1", "f2", "f3", "f4"]),
    rule=st.just("uncompensated-failure"),
    severity=st.sampled_from(["high", "medium", "info"]),
    service=st.just("o"),
    flow=st.none(),
    subject=st.none(),
    message=st.just("m"),
)
finding_sets = st.lists(finding_states, max_size=4, unique_by=lambda f: f.fingerprint).map(
    lambda items: tuple(sorted(items, key=FindingState.sort_key))
)


@given(stage_lists, stage_lists, finding_sets, finding_sets)
def test_swapping_the_scans_swaps_every_change(
    old_stages: list[tuple[str, ...]],
    new_stages: list[tuple[str, ...]],
    old_findings: tuple[FindingState, ...],
    new_findings: tuple[FindingState, ...],
) -> None:
    old = _snapshot(_state(*old_stages), findings=old_findings)
    new = _snapshot(_state(*new_stages), findings=new_findings)
    forward, backward = compare_scans(old, new), compare_scans(new, old)
    assert compare_scans(old, old).empty and compare_scans(new, new).empty
    assert forward.findings_new == backward.findings_resolved
    assert forward.findings_resolved == backward.findings_new
    assert len(forward.flows_changed) == len(backward.flows_changed) <= 1
    for there, back in zip(forward.flows_changed, backward.flows_changed, strict=True):
        assert (there.steps_added, there.steps_removed) == (back.steps_removed, back.steps_added)
        assert (there.reordered is None) == (back.reordered is None)
        if there.reordered and back.reordered:
            assert (there.reordered.old, there.reordered.new) == (back.reordered.new, back.reordered.old)


def test_retry_states_come_from_the_steps() -> None:
    snapshot = take_snapshot(shop_analysis())
    checkout = next(f for f in snapshot.flows if f.id == CHECKOUT)
    retried = {s.key: s.retry for s in checkout.steps if s.retry}
    assert retried == {"payment POST /payments/authorize": RetryState(max_attempts=3, idempotency_key=False)}
