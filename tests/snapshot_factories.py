"""Scans of the shop of :mod:`analysis_factories`: two a month apart with one change of every kind,
and a weekly history of them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from analysis_factories import shop_analysis

from orchscan.analyzer.changes.diff import compare_scans
from orchscan.analyzer.changes.snapshot import ScanSnapshot, count_scan, take_snapshot
from orchscan.analyzer.results import Analysis, Finding, Flow, OperationRef, RetryPolicy, Step
from orchscan.reports.history.store import RecordedScan
from orchscan.reports.history.tracking import ScanHistory

#: The month's changes, as a reviewer would list them.
CHANGES = {
    "orchestrators added": ["web-gateway"],
    "orchestrators removed": ["legacy-checkout"],
    "orchestrators changed": ["order-saga"],
    "flows added": ["web-gateway:POST /orders"],
    "flows removed": ["product-page:GET /products/{id}"],
    "flows changed": ["checkout:POST /checkout"],
}
EMPTY = ScanSnapshot(None, None, 0, 0, 0, (), (), ())
MONDAY = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _checkout(flow: Flow) -> Flow:
    """Shipping now before payment, the coupon step gone, a fraud check added, retries reworked."""
    cart, reserve, quote, _coupon, pay, ship, publish = flow.steps
    assert pay.retries is not None
    fraud = Step(0, OperationRef("fraud", "POST /checks"), None, False, 1.0)
    steps = (
        cart,
        reserve,
        quote,
        dataclasses.replace(ship, retries=RetryPolicy(12, 2, (503,), 40.0, idempotency_key=False)),
        fraud,
        dataclasses.replace(pay, retries=dataclasses.replace(pay.retries, idempotency_key=True)),
        publish,
    )
    return dataclasses.replace(
        flow,
        steps=tuple(dataclasses.replace(s, index=i) for i, s in enumerate(steps, start=1)),
        failure=dataclasses.replace(flow.failure, compensations=()),
    )


def changed_shop() -> Analysis:
    """The shop a month later: every kind of change ``orchscan diff`` reports, at least once."""
    old = shop_analysis()
    gateway_flow = Flow(
        id="web-gateway:POST /orders",
        owner="web-gateway",
        entry=OperationRef("web-gateway", "POST /orders", "POST", "/orders"),
        requests=120,
        support=0.9,
        long_running=False,
        steps=(
            Step(1, OperationRef("cart", "GET /carts/{cartId}"), None, False, 1.0),
            Step(2, OperationRef("checkout", "POST /checkout"), None, False, 1.0),
        ),
    )
    services = []
    for service in old.services:
        if service.name == "legacy-checkout":
            continue
        if service.name == "web-gateway":
            service = dataclasses.replace(service, role="orchestrator", hidden=False, score=4.2)
        if service.name == "order-saga":
            service = dataclasses.replace(service, hidden=True)
        services.append(service)
    flows = [
        _checkout(f) if f.id == "checkout:POST /checkout" else f
        for f in old.flows
        if f.owner != "product-page"
    ]
    new_finding = Finding(
        rule="uncompensated-failure",
        severity="critical",
        service="web-gateway",
        flow=gateway_flow.id,
        message="When step 2 fails, web-gateway leaves step 1 in place: no compensating call was seen",
        evidence=("31 requests",),
        recommendation="Undo step 1 when step 2 fails.",
        subject=f"{gateway_flow.id} > checkout POST /checkout",
    )
    findings = [f for f in old.findings if f.service != "legacy-checkout"] + [new_finding]
    return dataclasses.replace(
        old,
        services=tuple(services),
        flows=tuple(sorted([*flows, gateway_flow], key=lambda f: f.id)),
        findings=tuple(sorted(findings, key=Finding.sort_key)),
    )


def month_of_changes() -> tuple[ScanSnapshot, ScanSnapshot]:
    """The shop's snapshot before and after the month."""
    return take_snapshot(shop_analysis()), take_snapshot(changed_shop())


def weekly_history(
    weeks: int, *, old: ScanSnapshot | None = None, new: ScanSnapshot | None = None
) -> ScanHistory:
    """``weeks`` weekly scans of the old shop, the last of the changed one, with more calls every week."""
    before, after = month_of_changes()
    before, after = old or before, new or after
    snapshots = [before if week < weeks - 1 else after for week in range(weeks)]
    snapshots = [dataclasses.replace(s, calls=s.calls + 1_500 * week) for week, s in enumerate(snapshots)]
    trend = tuple(
        RecordedScan(
            week + 1, MONDAY + timedelta(days=7 * week), "0.1.0", s.start_ns, s.end_ns, count_scan(s)
        )
        for week, s in enumerate(snapshots)
    )
    previous = trend[-2] if weeks > 1 else None
    diff = compare_scans(snapshots[-2], snapshots[-1]) if weeks > 1 else None
    return ScanHistory(trend[-1], previous, diff, trend)
