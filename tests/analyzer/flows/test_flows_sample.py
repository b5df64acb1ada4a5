"""Flows, handoffs, failure logic and pitfalls of the recorded sample landscape, against expected.json.

The sample was recorded from real services instrumented with the OpenTelemetry SDK (see
sample_traces/README.md). Every expected flow, handoff, compensation, retry policy, leftover and
pitfall must be found, and no high-severity finding may point anywhere the landscape has none.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest
from paths import SAMPLE
from scans import context_of, mined_flows, roles_of

from orchscan.analyzer.findings.rules import find_findings
from orchscan.analyzer.flows.handoffs import normalise
from orchscan.analyzer.flows.steps import StepCalls
from orchscan.analyzer.requests.calls import CallTables, build_call_tables
from orchscan.analyzer.results import Finding, Flow, ServiceRole
from orchscan.analyzer.specs.operations import index_operations
from orchscan.analyzer.thresholds import FlowThresholds
from orchscan.collectors.openapi import bind_specs, load_specs
from orchscan.collectors.traces.ingest import ingest

EXPECTED: dict[str, Any] = json.loads((SAMPLE / "expected.json").read_text())
# The approval desk waits 75 s in the committed recording, above the default long-running threshold.
THRESHOLDS = FlowThresholds()
# The expected pitfalls, by the rule that reports each kind.
RULE_OF = {
    "retry-without-idempotency-key": "missing-idempotency",
    "uncompensated-failure": "uncompensated-failure",
    "duplicate-flow": "duplicated-flow",
    "drifted-duplicate-flow": "duplicated-flow",
    "broken-context-propagation": "missing-trace-context",
    "long-running-flow": "unbounded-wait",
}


@dataclass(frozen=True)
class Scan:
    """Everything the flow stage produced on the sample."""

    tables: CallTables
    roles: tuple[ServiceRole, ...]
    flows: dict[str, Flow]
    steps: StepCalls
    findings: tuple[Finding, ...]


@pytest.fixture(scope="module")
def scan() -> Scan:
    table: pa.Table = ingest([SAMPLE / "traces" / "shop.otlp.pb.gz"], jobs=1).spans
    tables = build_call_tables(table)
    roles = roles_of(tables)
    owners = {r.name for r in roles if r.role == "orchestrator"}
    loaded = load_specs([SAMPLE / "openapi"])
    services = set(table["service"].to_pylist()) | {"approvals"}
    specs = index_operations(loaded.specs, bind_specs(loaded.specs, services))
    flows, steps = mined_flows(table, owners=owners, specs=specs, thresholds=THRESHOLDS)
    findings = find_findings(flows, steps, context_of(table), roles=roles, specs=specs, thresholds=THRESHOLDS)
    return Scan(tables, roles, {f"{f.owner} {f.entry.key}": f for f in flows}, steps, findings)


def _template(key: str) -> str:
    """Path parameters compare by position: the uninstrumented approval desk names its own."""
    return re.sub(r"\{[^}]*\}", "{}", key)


def _key(flow: Flow, index: int) -> str:
    step = flow.steps[index - 1]
    return f"{step.operation.service} {step.operation.key}"


def _index(flow: Flow, expected_step: str) -> int:
    """The position of an expected step (``service METHOD /route``) in the mined flow."""
    service, _, key = expected_step.partition(" ")
    for step in flow.steps:
        known = step.operation.service == service or (
            service == "approvals" and "approvals" in step.operation.key
        )
        if known and _template(step.operation.key) == _template(key):
            return step.index
    raise AssertionError(
        f"{expected_step} is not a step of {flow.id}: {[_key(flow, s.index) for s in flow.steps]}"
    )


EXPECTED_FLOWS = {flow["entry"]: flow for flow in EXPECTED["flows"]}


@pytest.mark.parametrize("entry", sorted(EXPECTED_FLOWS))
def test_expected_flow_and_its_steps(scan: Scan, entry: str) -> None:
    expected = EXPECTED_FLOWS[entry]
    flow = scan.flows[entry]
    assert flow.owner == expected["orchestrator"]
    assert [_index(flow, step) for step in expected["steps"]] == list(range(1, len(expected["steps"]) + 1))
    assert len(flow.steps) == len(expected["steps"])
    assert flow.long_running is expected.get("long_running", False)
    assert flow.entry.key == entry.partition(" ")[2]
    assert not any(step.optional for step in flow.steps)


@pytest.mark.parametrize("entry", sorted(EXPECTED_FLOWS))
def test_expected_handoffs(scan: Scan, entry: str) -> None:
    flow = scan.flows[entry]
    for expected in EXPECTED_FLOWS[entry]["handoffs"]:
        source, target = _index(flow, expected["from"]), _index(flow, expected["to"])
        names = {normalise(expected["field"])}
        found = [
            h
            for h in flow.handoffs
            if (h.from_step, h.to_step) == (source, target) and normalise(h.parameter) in names
        ]
        assert found, f"{expected} not among {flow.handoffs}"
        assert found[0].confidence >= 0.5 and found[0].evidence


@pytest.mark.parametrize("entry", sorted(EXPECTED_FLOWS))
def test_expected_failure_logic(scan: Scan, entry: str) -> None:
    expected, flow = EXPECTED_FLOWS[entry], scan.flows[entry]
    failure = flow.failure
    for compensation in expected["compensations"]:
        failed = _index(flow, compensation["on"].split(" -> ")[0])
        service, _, key = compensation["undo"].partition(" ")
        matches = [
            c
            for c in failure.compensations
            if c.failed_step == failed and (c.operation.service, c.operation.key) == (service, key)
        ]
        assert matches, f"{compensation} not among {failure.compensations}"
        assert compensation["entry_status"] in failure.failure_statuses
    undoing = {(c.failed_step, c.operation.service, c.operation.key) for c in failure.compensations}
    assert len(undoing) == len(expected["compensations"])
    assert dict(failure.retries).keys() == {_index(flow, r["step"]) for r in expected["retries"]}
    for retry in expected["retries"]:
        policy = dict(failure.retries)[_index(flow, retry["step"])]
        assert retry["on"] in policy.status_codes
        assert policy.max_attempts == retry["max_attempts"]
        assert policy.idempotency_key is retry["idempotency_key"]
    leftovers = {(u.failed_step, u.left_in_place) for u in failure.uncompensated}
    assert leftovers == {
        (_index(flow, u["failing_step"]), tuple(sorted(_index(flow, s) for s in u["left_behind"])))
        for u in expected["uncompensated"]
    }


def test_duplicates_and_their_drift(scan: Scan) -> None:
    original = scan.flows["orders POST /orders"]
    drift = {d.owner: d.differences for d in original.duplicates}
    assert set(drift) == {"mobile-bff", "partner-api"}
    # Same steps in the same order; the mobile copy handles shipping failures better.
    assert set(drift["mobile-bff"]) == {
        "mobile-bff retries shipping with an idempotency key",
        "mobile-bff also calls inventory DELETE /reservations/{reservationId} "
        "to undo inventory when shipping fails",
        "mobile-bff also calls payment POST /refunds to undo payment when shipping fails",
    }
    partner = " / ".join(drift["partner-api"])
    assert "partner-api calls payment before inventory" in partner
    assert "partner-api never calls notification" in partner
    assert "partner-api does not retry shipping" in partner


@pytest.mark.parametrize(
    "pitfall", EXPECTED["pitfalls"], ids=[p["kind"] + ":" + p["service"] for p in EXPECTED["pitfalls"]]
)
def test_expected_pitfalls_are_found(scan: Scan, pitfall: dict[str, Any]) -> None:
    rule = RULE_OF[pitfall["kind"]]
    found = [f for f in scan.findings if f.rule == rule and f.service == pitfall["service"]]
    assert found, f"no {rule} finding for {pitfall['service']}"
    finding = found[0]
    if "step" in pitfall:
        assert pitfall["step"] in finding.message
    if pitfall["kind"] == "drifted-duplicate-flow":
        assert "drifted copy of the flow behind orders POST /orders" in finding.message
        for drift in pitfall["drift"]:
            assert drift in finding.message


def test_no_high_severity_false_positive(scan: Scan) -> None:
    expected = {(RULE_OF[p["kind"]], p["service"]) for p in EXPECTED["pitfalls"]}
    severe = {(f.rule, f.service) for f in scan.findings if f.severity in ("critical", "high")}
    assert severe <= expected
    # The legacy service's lost context is reported once, on the service whose calls lost it.
    lost = [f for f in scan.findings if f.rule == "missing-trace-context"]
    assert [f.service for f in lost] == ["legacy-billing"]
    assert "450 calls" in lost[0].message


def test_only_coordinators_have_flows(scan: Scan) -> None:
    assert {flow.owner for flow in scan.flows.values()} == {f["orchestrator"] for f in EXPECTED["flows"]}
