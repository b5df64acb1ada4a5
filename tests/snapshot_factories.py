"""Two scans of the shop of :mod:`analysis_factories` a month apart, with one change of every kind."""

from __future__ import annotations

import dataclasses

from analysis_factories import shop_analysis

from orchscan.analyzer.changes.snapshot import ScanSnapshot, take_snapshot
from orchscan.analyzer.results import Analysis, Finding, Flow, OperationRef, RetryPolicy, Step

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
    flows = [_checkout(f) if f.owner == "checkout" else f for f in old.flows if f.owner != "product-page"]
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
