"""Realistic ``Analysis`` objects built in code, for the report tests and the report benchmark.

* :func:`shop_analysis`: a web shop with an orchestrator that also does its own work (hidden), a
  gateway, a composer, choreography over a message broker, infrastructure and an external payment
  provider; flows with parallel groups, optional steps, retries, compensations, handoffs, a
  duplicated flow with drift, a parallelisation opportunity, an event-driven flow that fails and
  compensates, teams from every source, and findings of every rule;
* :func:`hostile_analysis`: the same landscape with every span-derived string replaced by an
  HTML/JS/DOT injection attempt (the report must display them as text and execute nothing);
* :func:`large_analysis`: a seeded 300-service landscape for readability and speed checks, with
  what real landscapes bring along: long service names, services that report raw paths carrying
  ids, a hundred OpenAPI specs that matched no service, undocumented traffic.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from orchscan.analyzer.landscape.ownership import with_teams
from orchscan.analyzer.results import (
    SEVERITIES,
    Analysis,
    Compensation,
    Duplicate,
    Edge,
    EvidenceCounts,
    FailureLogic,
    Finding,
    Flow,
    FragmentSummary,
    Handoff,
    InputFile,
    InputSummary,
    OperationRef,
    ParallelOpportunity,
    RetryPolicy,
    ServiceCoverage,
    ServiceRole,
    ServiceTeam,
    SkippedInput,
    Step,
    Uncompensated,
    UndocumentedCall,
    Variant,
)

T = TypeVar("T")

#: The pitfall rules of ``analyzer.findings`` (the shop landscape has one finding of each).
RULES = (
    "hidden-orchestration",
    "overloaded-orchestrator",
    "duplicated-flow",
    "missing-idempotency",
    "uncompensated-failure",
    "missing-trace-context",
    "unbounded-wait",
    "workflow-description",
    "cross-team-orchestration",
)

#: Injection attempts for the hostile landscape: HTML, script-context, attribute, template, DOT.
PAYLOADS = (
    "<script>window.__pwned=1</script>",
    '"><img src=x onerror="window.__pwned=1">',
    "</script><script>alert(1)</script>",
    "' onmouseover='window.__pwned=1' x='",
    '" [URL="javascript:window.__pwned=1"] x="',
    "<svg onload=window.__pwned=1>",
    "{{ 7*7 }}{% raw %}",
    "\\N\\G <!-- --> ]]>",
    "javascript:window.__pwned=1",
    "<iframe srcdoc='<script>parent.__pwned=1</script>'>",
)

#: Fields that carry orchscan's own vocabulary rather than span data.
_VOCABULARY_FIELDS = frozenset(
    ("role", "kind", "severity", "rule", "location", "format", "verdict", "source")
)

_TRACES = tuple(
    f"{i:032x}" for i in range(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x4BF92F3577B34DA6A3CE929D0E0E4736 + 40)
)


def _traces(start: int, count: int = 3) -> tuple[str, ...]:
    return tuple(sorted(_TRACES[start : start + count]))


def _op(service: str, method: str, route: str, operation_id: str | None = None) -> OperationRef:
    return OperationRef(service, f"{method} {route}", method, route, operation_id)


def _summary(services: int, spans: int, traces: int) -> InputSummary:
    return InputSummary(
        files=(
            InputFile("traces/shop-2024-05-01.otlp.json", "otlp-json", spans * 3 // 5, traces * 3 // 5),
            InputFile(
                "traces/shop-2024-05-02.binpb", "otlp-proto", spans - spans * 3 // 5, traces - traces * 3 // 5
            ),
        ),
        spans=spans,
        traces=traces,
        services=services,
        start_ns=1_714_521_600_000_000_000,
        end_ns=1_714_608_000_000_000_000,
        skipped=(
            SkippedInput(
                "traces/shop-2024-05-01.otlp.json", "line 4711", "malformed JSON: unexpected end", 1
            ),
            SkippedInput("traces/shop-2024-05-02.binpb", "message 12", "duplicate span id", 37),
        ),
        notices=("3 spans have no service.name; attributed to 'unknown_service'",),
        specs=("specs/payment.yaml", "specs/inventory.yaml", "specs/shipping.yaml"),
        openapi_match_rate=0.875,
        fragments=FragmentSummary(
            attached=41, kept=6, calls=9, services=(("checkout", 4), ("web-gateway", 2))
        ),
    )


def _shop_services() -> tuple[ServiceRole, ...]:
    def svc(
        name: str, role: str, fan_out: int, fan_in: int, requests: int, score: float, **kw: Any
    ) -> ServiceRole:
        return ServiceRole(
            name=name,
            role=role,
            hidden=kw.pop("hidden", False),
            fan_out=fan_out,
            fan_in=fan_in,
            requests=requests,
            score=score,
            evidence=kw.pop("evidence", ()),
            example_traces=kw.pop("example_traces", _traces(fan_out)),
            **kw,
        )

    services = (
        svc(
            "checkout",
            "orchestrator",
            6,
            1,
            4210,
            6.8,
            hidden=True,
            evidence=(
                "Calls 6 distinct services per request (median), more than 98 % of the landscape.",
                "Orders the calls: reserve-stock always precedes authorize-payment (4210 of 4210 requests).",
                "Writes its own table orders in postgres in 96 % of requests: "
                "business work beside coordination.",
                "Compensates failed payments by releasing reserved stock.",
            ),
            error_rate=0.021,
            calls_per_request=7.4,
            distinct_callees_per_request=6.0,
            parallel_share=0.31,
            write_share=0.62,
            db_calls_per_request=1.9,
            self_time_share=0.34,
            operations=("POST /checkout", "GET /checkout/{id}"),
        ),
        svc(
            "order-saga",
            "orchestrator",
            4,
            1,
            1180,
            4.1,
            evidence=(
                "Consumes order.placed and then calls 4 services in a fixed order.",
                "Runs for up to 3 days per order (waits for shipment events): a long-running process.",
            ),
            error_rate=0.004,
            calls_per_request=4.2,
            distinct_callees_per_request=4.0,
            operations=("order.placed process",),
        ),
        svc(
            "legacy-checkout",
            "orchestrator",
            4,
            1,
            310,
            3.6,
            evidence=("Drives the same cart, stock and payment sequence as checkout for mobile clients.",),
            error_rate=0.064,
            calls_per_request=4.9,
            distinct_callees_per_request=4.0,
            operations=("POST /v1/mobile/checkout",),
        ),
        svc(
            "web-gateway",
            "gateway",
            5,
            0,
            25_300,
            2.9,
            evidence=("Forwards each request to exactly one backend chosen by path prefix.",),
            error_rate=0.012,
            calls_per_request=1.0,
            distinct_callees_per_request=1.0,
            operations=("GET /api/*", "POST /api/*"),
        ),
        svc(
            "product-page",
            "composer",
            3,
            1,
            15_800,
            2.2,
            evidence=(
                "Calls catalog, reviews and recommendation in parallel and merges the answers; reads only.",
            ),
            calls_per_request=3.0,
            distinct_callees_per_request=3.0,
            parallel_share=1.0,
            operations=("GET /products/{id}",),
        ),
        svc(
            "notification",
            "choreography",
            1,
            2,
            5300,
            0.9,
            evidence=(
                "Reacts to order.placed and shipment.sent events; no service drives it synchronously.",
            ),
            operations=("order.placed process", "shipment.sent process"),
        ),
        svc("cart", "service", 1, 3, 9400, 0.1, operations=("GET /carts/{cartId}", "DELETE /carts/{cartId}")),
        svc(
            "inventory",
            "service",
            1,
            3,
            8900,
            0.0,
            operations=("POST /reservations", "DELETE /reservations/{reservationId}"),
        ),
        svc(
            "payment", "service", 1, 3, 5600, 0.0, error_rate=0.043, operations=("POST /payments/authorize",)
        ),
        svc("shipping", "service", 1, 3, 6100, -0.2, operations=("POST /quotes", "POST /shipments")),
        svc("catalog", "service", 1, 2, 22_000, -0.3, operations=("GET /products/{id}",)),
        svc("reviews", "service", 1, 1, 15_800, -0.4, operations=("GET /reviews",)),
        svc("recommendation", "service", 1, 1, 15_700, -0.4, operations=("GET /recommendations",)),
        svc("kafka", "infrastructure", 0, 4, 0, -1.0),
        svc("postgres", "infrastructure", 0, 5, 0, -1.0),
        svc("redis", "infrastructure", 0, 2, 0, -1.0),
        svc("stripe-api", "external", 0, 1, 0, -1.0),
    )
    return tuple(sorted(services, key=lambda s: (-s.score, s.name)))


def _shop_edges() -> tuple[Edge, ...]:
    rows = (
        ("web-gateway", "checkout", "sync", 4210, 12),
        ("web-gateway", "legacy-checkout", "sync", 310, 4),
        ("web-gateway", "product-page", "sync", 15_800, 90),
        ("web-gateway", "cart", "sync", 5190, 11),
        ("web-gateway", "catalog", "sync", 6200, 3),
        ("checkout", "cart", "sync", 4210, 2),
        ("checkout", "inventory", "sync", 4600, 25),
        ("checkout", "shipping", "sync", 7900, 40),
        ("checkout", "payment", "sync", 5050, 217),
        ("checkout", "kafka", "messaging", 4080, 0),
        ("checkout", "postgres", "infrastructure", 8000, 1),
        ("legacy-checkout", "cart", "sync", 310, 0),
        ("legacy-checkout", "inventory", "sync", 310, 9),
        ("legacy-checkout", "payment", "sync", 330, 20),
        ("legacy-checkout", "postgres", "infrastructure", 620, 0),
        ("kafka", "order-saga", "messaging", 1180, 0),
        ("kafka", "notification", "messaging", 5300, 7),
        ("order-saga", "inventory", "sync", 1180, 2),
        ("order-saga", "payment", "sync", 1180, 4),
        ("order-saga", "shipping", "sync", 1180, 5),
        ("order-saga", "kafka", "messaging", 1180, 0),
        ("order-saga", "postgres", "infrastructure", 2360, 0),
        ("product-page", "catalog", "sync", 15_800, 20),
        ("product-page", "reviews", "sync", 15_800, 31),
        ("product-page", "recommendation", "sync", 15_700, 55),
        ("product-page", "redis", "infrastructure", 15_800, 0),
        ("payment", "stripe-api", "sync", 5600, 240),
        ("cart", "redis", "infrastructure", 9400, 0),
        ("inventory", "postgres", "infrastructure", 8900, 0),
        ("shipping", "postgres", "infrastructure", 6100, 0),
        ("catalog", "postgres", "infrastructure", 22_000, 0),
        ("notification", "web-gateway", "sync", 40, 0),
    )
    edges = (
        Edge(
            caller, callee, kind, calls, errors, 4.0 + (calls % 17), 18.0 + (calls % 89), _traces(calls % 30)
        )
        for caller, callee, kind, calls, errors in rows
    )
    return tuple(sorted(edges, key=lambda e: (e.caller, e.callee, e.kind)))


_PAYMENT_RETRY = RetryPolicy(
    requests_with_retries=212,
    max_attempts=3,
    status_codes=(502, 503),
    median_delay_ms=200.0,
    idempotency_key=False,
)


def _checkout_flow() -> Flow:
    entry = _op("checkout", "POST", "/checkout", "placeOrder")
    get_cart = _op("cart", "GET", "/carts/{cartId}", "getCart")
    reserve = _op("inventory", "POST", "/reservations", "reserveStock")
    quote = _op("shipping", "POST", "/quotes", "quoteShipping")
    coupon = _op("cart", "POST", "/carts/{cartId}/coupon", "applyCoupon")
    authorize = _op("payment", "POST", "/payments/authorize", "authorizePayment")
    ship = _op("shipping", "POST", "/shipments", "createShipment")
    publish = OperationRef("kafka", "publish order.placed")
    steps = (
        Step(1, get_cart, None, False, 1.0, p50_ms=6.0),
        Step(2, reserve, 1, False, 1.0, p50_ms=14.0),
        Step(3, quote, 1, False, 1.0, p50_ms=21.0),
        Step(4, coupon, None, True, 0.18, p50_ms=5.0),
        Step(5, authorize, None, False, 0.99, retries=_PAYMENT_RETRY, p50_ms=180.0),
        Step(6, ship, None, False, 0.95, p50_ms=35.0),
        Step(7, publish, None, False, 0.95, p50_ms=2.0),
    )
    keys = tuple(s.operation.key for s in steps)
    return Flow(
        id="checkout:POST /checkout",
        owner="checkout",
        entry=entry,
        requests=4210,
        support=0.97,
        long_running=False,
        steps=steps,
        handoffs=(
            Handoff(
                0, "cartId", 1, "cartId", "path", 1.0, ("path parameter of the entry request, same value",)
            ),
            Handoff(
                1,
                "items[].sku",
                2,
                "items[].sku",
                "body",
                0.93,
                ("schema names match", "values equal in 3911 requests"),
            ),
            Handoff(1, "total", 5, "amount", "body", 0.71, ("values equal in 2987 requests",)),
            Handoff(2, "reservationId", 6, "reservationId", "body", 0.88, ("schema names match",)),
            Handoff(3, "quoteId", 6, "quoteId", "body", 0.9, ("schema names match",)),
        ),
        failure=FailureLogic(
            retries=((5, _PAYMENT_RETRY),),
            compensations=(
                Compensation(
                    5, 2, _op("inventory", "DELETE", "/reservations/{reservationId}", "releaseStock"), 198
                ),
            ),
            uncompensated=(Uncompensated(6, (2, 5), 61, _traces(7, 2)),),
            timeouts=("payment: client timeout 2 s (31 requests ended by it)",),
            failure_statuses=(402, 409, 503),
        ),
        variants=(
            Variant(tuple(k for k in keys if k != coupon.key), 3390, 0.805),
            Variant(keys, 610, 0.145),
            Variant(keys[:5], 148, 0.035),
            Variant(keys[:3], 62, 0.015),
        ),
        duplicates=(
            Duplicate(
                "legacy-checkout",
                _op("legacy-checkout", "POST", "/v1/mobile/checkout"),
                (
                    "skips shipping quote (step 3)",
                    "authorizes payment before reserving stock",
                    "no compensation when payment fails",
                ),
            ),
        ),
        example_traces=_traces(0, 5),
        inputs=("cartId", "customerId", "couponCode"),
        duration_p50_ms=310.0,
        duration_p95_ms=1240.0,
        duration_max_ms=4800.0,
        parallel_opportunities=(
            ParallelOpportunity(
                (6, 7),
                2.0,
                3.5,
                3990,
                (
                    "step 6 (shipping POST /shipments), step 7 (kafka publish order.placed) ran one after "
                    "another, each waiting for the previous one, in 3990 requests",
                    "no data handoff between them",
                    "each calls a different service (shipping, kafka): none can read what another wrote",
                ),
            ),
        ),
    )


def _events_flow() -> Flow:
    """The event chain checkout's orders start: order-saga and loyalty react to order.placed."""
    placed, completed = "order.placed", "order.completed"
    steps = (
        Step(
            1,
            OperationRef("loyalty", f"consume {placed}"),
            1,
            False,
            1.0,
            p50_ms=8.0,
            kind="message",
            topic=placed,
            caller="checkout",
        ),
        Step(
            2,
            OperationRef("order-saga", f"consume {placed}"),
            1,
            False,
            1.0,
            p50_ms=950.0,
            kind="message",
            topic=placed,
            caller="checkout",
        ),
        Step(
            3,
            _op("inventory", "POST", "/reservations/{reservationId}/commit", "commitStock"),
            None,
            False,
            0.99,
            p50_ms=12.0,
            caller="order-saga",
        ),
        Step(
            4,
            OperationRef("notification", f"consume {completed}"),
            None,
            False,
            0.99,
            p50_ms=30.0,
            kind="message",
            topic=completed,
            caller="order-saga",
        ),
    )
    key = [f"{s.caller} → {s.operation.service} {s.operation.key}" for s in steps]
    cancelled = OperationRef("kafka", "publish order.cancelled")
    return Flow(
        id="checkout:POST /checkout (events)",
        owner="checkout",
        entry=_op("checkout", "POST", "/checkout", "placeOrder"),
        requests=3990,
        support=0.99,
        long_running=False,
        steps=steps,
        failure=FailureLogic(
            compensations=(Compensation(3, 0, cancelled, 9, topic="order.cancelled"),),
            uncompensated=(Uncompensated(2, (0,), 3, _traces(30, 2)),),
            failed_steps=((2, 3), (3, 9)),
        ),
        variants=(
            Variant(tuple(key), 3978, 0.997),
            Variant((*key[:3], "checkout → kafka publish order.cancelled"), 9, 0.002),
            Variant(tuple(key[:2]), 3, 0.001),
        ),
        example_traces=_traces(24, 3),
        duration_p50_ms=1100.0,
        duration_p95_ms=2300.0,
        duration_max_ms=9100.0,
        kind="choreographed",
    )


def _saga_flow() -> Flow:
    entry = OperationRef("order-saga", "order.placed process")
    steps = (
        Step(
            1,
            _op("inventory", "POST", "/reservations/{reservationId}/commit", "commitStock"),
            None,
            False,
            1.0,
        ),
        Step(2, _op("payment", "POST", "/payments/{paymentId}/capture", "capturePayment"), None, False, 0.99),
        Step(3, _op("shipping", "GET", "/shipments/{shipmentId}"), None, False, 0.98),
        Step(4, OperationRef("kafka", "publish order.completed"), None, False, 0.98),
    )
    keys = tuple(s.operation.key for s in steps)
    return Flow(
        id="order-saga:order.placed process",
        owner="order-saga",
        entry=entry,
        requests=1180,
        support=0.98,
        long_running=True,
        steps=steps,
        handoffs=(Handoff(0, "paymentId", 2, "paymentId", "path", 0.95, ("message attribute payment.id",)),),
        failure=FailureLogic(
            compensations=(
                Compensation(2, 1, _op("inventory", "POST", "/reservations/{reservationId}/revert"), 9),
            ),
            failure_statuses=(404,),
        ),
        variants=(Variant(keys, 1160, 0.983), Variant(keys[:2], 20, 0.017)),
        example_traces=_traces(12, 3),
        inputs=("orderId", "paymentId"),
        duration_p50_ms=86_400_000.0,
        duration_p95_ms=172_800_000.0,
        duration_max_ms=259_200_000.0,
    )


def _product_flow() -> Flow:
    steps = (
        Step(1, _op("catalog", "GET", "/products/{id}", "getProduct"), 1, False, 1.0, p50_ms=9.0),
        Step(2, _op("reviews", "GET", "/reviews"), 1, False, 1.0, p50_ms=12.0),
        Step(3, _op("recommendation", "GET", "/recommendations"), 1, True, 0.99, p50_ms=25.0),
    )
    return Flow(
        id="product-page:GET /products/{id}",
        owner="product-page",
        entry=_op("product-page", "GET", "/products/{id}"),
        requests=15_800,
        support=1.0,
        long_running=False,
        steps=steps,
        handoffs=(
            Handoff(0, "id", 1, "id", "path", 1.0, ("same value",)),
            Handoff(0, "id", 2, "productId", "query", 0.97, ()),
        ),
        variants=(Variant(tuple(s.operation.key for s in steps), 15_800, 1.0),),
        example_traces=_traces(20, 2),
        duration_p50_ms=31.0,
        duration_p95_ms=80.0,
        duration_max_ms=900.0,
    )


def _shop_findings() -> tuple[Finding, ...]:
    checkout = "checkout:POST /checkout"
    findings = (
        Finding(
            "hidden-orchestration",
            "medium",
            "checkout",
            checkout,
            "checkout coordinates 6 services and also owns order persistence: the process is hidden in it.",
            ("fan-out 6, score 6.8", "writes orders in 96 % of requests"),
            "Make the process explicit: extract it into a workflow definition (see the Arazzo draft) "
            "or a dedicated orchestrator, and keep checkout's own domain logic separate.",
            _traces(0, 2),
        ),
        Finding(
            "overloaded-orchestrator",
            "medium",
            "checkout",
            checkout,
            "checkout spends 34 % of each request in its own work beside coordinating 6 services.",
            ("self time 34 % of request duration", "1.9 database calls per request"),
            "Move the order bookkeeping into an order service the flow calls like any other step.",
        ),
        Finding(
            "uncompensated-failure",
            "high",
            "checkout",
            checkout,
            "When createShipment fails, reserved stock and the authorized payment are left in place.",
            ("61 requests failed at step 6", "no call to inventory or payment followed"),
            "Add compensations for steps 2 and 5, or make step 6 retryable with an idempotency key.",
            _traces(7, 2),
            counts=EvidenceCounts(affected=61, cases=64, explained=2),
        ),
        Finding(
            "missing-idempotency",
            "high",
            "checkout",
            checkout,
            "POST /payments/authorize is retried without an idempotency key.",
            ("212 requests retried, up to 3 attempts", "no Idempotency-Key header observed"),
            "Send an Idempotency-Key header, or make the payment provider deduplicate by order id.",
            _traces(3, 2),
        ),
        Finding(
            "duplicated-flow",
            "medium",
            "legacy-checkout",
            checkout,
            "legacy-checkout drives the checkout flow with drifted order and failure handling.",
            ("same 4 of 7 operations", "payment before stock reservation"),
            "Route mobile checkout through the checkout flow and retire the copy.",
        ),
        Finding(
            "missing-trace-context",
            "medium",
            "notification",
            None,
            "Calls from notification to web-gateway start new traces: the trace context is not propagated.",
            ("40 root client spans nest inside notification requests",),
            "Instrument notification's HTTP client so it sends the traceparent header.",
        ),
        Finding(
            "unbounded-wait",
            "medium",
            "order-saga",
            "order-saga:order.placed process",
            "order-saga waits up to 3 days for shipment events and no timeout was ever seen.",
            ("p50 duration 1 d", "max 3 d"),
            "Give the wait an explicit deadline and an escalation path.",
        ),
        Finding(
            "workflow-description",
            "info",
            "checkout",
            checkout,
            "Seven steps pass data along (cartId, reservationId, quoteId): an explicit workflow pays off.",
            ("5 data handoffs",),
            "Start from the Arazzo draft in this report.",
        ),
    )
    return tuple(sorted(findings, key=Finding.sort_key))


def _shop_ownership() -> tuple[ServiceTeam, ...]:
    def listed(service: str, team: str, pattern: str) -> ServiceTeam:
        return ServiceTeam(service, team, "owners-file", f"owners.yaml: team {team} lists {pattern!r}")

    def namespace(service: str, team: str, attribute: str, spans: int) -> ServiceTeam:
        return ServiceTeam(service, team, attribute, f"{attribute} {team!r} on {spans:,} spans")

    return (
        namespace("cart", "sales", "service.namespace", 9400),
        listed("checkout", "sales", "checkout"),
        namespace("inventory", "logistics", "k8s.namespace.name", 8800),
        listed("legacy-checkout", "sales", "*checkout"),
        listed("loyalty", "marketing", "loyalty"),
        listed("notification", "platform", "notification"),
        listed("order-saga", "sales", "order-saga"),
        listed("payment", "payments", "payment"),
        namespace("shipping", "logistics", "k8s.namespace.name", 6100),
    )


def _cross_team_finding() -> Finding:
    return Finding(
        "cross-team-orchestration",
        "medium",
        "checkout",
        "checkout:POST /checkout",
        "checkout (team sales) is a business service that drives services of 2 other teams "
        "(logistics, payments) in 1 flow(s): the flow's control sits in one team, its steps in others",
        ("team logistics: inventory, shipping", "team payments: payment"),
        "Give the flow an owner: describe it as a workflow all teams review.",
        _traces(0, 2),
        subject="other teams' services",
    )


def shop_analysis() -> Analysis:
    """The shop landscape: every role, flow feature and finding rule a report must show."""
    services = _shop_services()
    ownership = _shop_ownership()
    flows = (_checkout_flow(), _events_flow(), _saga_flow(), _product_flow())
    return Analysis(
        input=_summary(len(services), 184_233, 23_410),
        services=services,
        edges=_shop_edges(),
        flows=tuple(
            sorted(
                with_teams(flows, {r.service: r.team for r in ownership}),
                key=lambda f: (f.owner, f.entry.key, f.id),
            )
        ),
        findings=tuple(sorted((*_shop_findings(), _cross_team_finding()), key=Finding.sort_key)),
        observed_flows=_observed_flows(),
        ownership=ownership,
    )


def _observed_flows() -> tuple[Flow, ...]:
    """An entry seen too rarely to be a flow, and a mixed entry no request type of which is one."""
    void = (Step(1, _op("payment", "POST", "/payments/{id}/void"), None, False, 1.0, p50_ms=11.0),)
    mixed = (
        Step(1, _op("catalog", "GET", "/products/{id}"), None, True, 0.4, p50_ms=9.0),
        Step(2, _op("cart", "GET", "/cart"), None, True, 0.3, p50_ms=7.0),
    )
    return (
        Flow(
            id="checkout:POST /orders/{id}/void",
            owner="checkout",
            entry=_op("checkout", "POST", "/orders/{id}/void"),
            requests=1,
            support=1.0,
            long_running=False,
            steps=void,
            verdict="too-little-evidence",
            caveats=(
                "too little evidence: 1 request with 1 step; a flow needs at least 3 requests and 2 steps",
            ),
        ),
        Flow(
            id="web:HTTP request",
            owner="web",
            entry=OperationRef("web", "HTTP request"),
            requests=5,
            support=0.2,
            long_running=False,
            steps=mixed,
            verdict="mixed-entry",
            caveats=(
                "mixed entry: its requests carry no route, path or RPC method, no step is in more than 40% "
                "of them (a core step is in 90%) and its most frequent variant covers 20%, so it hides "
                "several request types",
                "no single request type has the 3 requests a flow needs",
            ),
        ),
    )


def _rewrite(value: T, rename: Callable[[str], str]) -> T:
    """Apply ``rename`` to every span-derived string inside a result, keeping the vocabulary."""
    if isinstance(value, str):
        return rename(value)  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(_rewrite(v, rename) for v in value)  # type: ignore[return-value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _rewrite(getattr(value, f.name), rename)
            for f in dataclasses.fields(value)
            if f.name not in _VOCABULARY_FIELDS
        }
        return dataclasses.replace(value, **changes)
    return value


def hostile_analysis() -> Analysis:
    """The shop landscape with an injection attempt appended to every span-derived string.

    Trace ids stay hex (collectors normalise them); the same original string always maps to the
    same hostile one, so edges still point at services and flows at their owners.
    """
    mapping: dict[str, str] = {}

    def rename(text: str) -> str:
        if len(text) == 32 and all(c in "0123456789abcdef" for c in text):
            return text
        if text not in mapping:
            mapping[text] = text + PAYLOADS[len(mapping) % len(PAYLOADS)]
        return mapping[text]

    return _rewrite(shop_analysis(), rename)


def large_analysis(services: int = 300, *, seed: int = 7) -> Analysis:
    """A seeded landscape of ``services`` services with orchestrators, flows and findings.

    Every ninth service has a long name; :func:`_untidy` adds the raw paths, notices, coverage
    and extra edges from a second random stream, so the landscape's shape stays the same.
    """
    rng = random.Random(seed)
    roles = ["orchestrator"] * (services // 30) + ["gateway"] * 3 + ["composer"] * (services // 40)
    roles += ["choreography"] * (services // 50) + ["infrastructure"] * 8 + ["external"] * 4
    roles += ["service"] * (services - len(roles))
    names = [
        f"{role[:4]}-{word}-{i:03d}" + ("-settlement-worker" if i % 9 == 4 else "")
        for i, (role, word) in enumerate(zip(roles, _words(rng, services), strict=True))
    ]
    by_role: dict[str, list[str]] = {}
    for name, role in zip(names, roles, strict=True):
        by_role.setdefault(role, []).append(name)
    plain = by_role["service"]
    edges: dict[tuple[str, str], Edge] = {}

    def connect(caller: str, callee: str, kind: str) -> None:
        calls = rng.randint(20, 50_000)
        edges[(caller, callee)] = Edge(
            caller,
            callee,
            kind,
            calls,
            calls * rng.randint(0, 5) // 100,
            rng.uniform(1, 40),
            rng.uniform(40, 900),
            _traces(rng.randint(0, 30), 2),
        )

    for name in by_role["gateway"]:
        for callee in rng.sample(by_role["orchestrator"] + by_role["composer"] + plain, 25):
            connect(name, callee, "sync")
    flows: list[Flow] = []
    for name in by_role["orchestrator"] + by_role["composer"]:
        callees = rng.sample(plain, rng.randint(4, 12))
        for callee in callees:
            connect(name, callee, "sync")
        connect(name, rng.choice(by_role["infrastructure"]), "messaging")
        steps = tuple(
            Step(
                i + 1,
                _op(callee, "POST", f"/{callee}/op{i}"),
                1 if i in (1, 2) else None,
                i == 3,
                0.2 if i == 3 else 1.0,
            )
            for i, callee in enumerate(callees)
        )
        flows.append(
            Flow(
                id=f"{name}:POST /run",
                owner=name,
                entry=_op(name, "POST", "/run"),
                requests=rng.randint(100, 9000),
                support=0.9,
                long_running=False,
                steps=steps,
                variants=(Variant(tuple(s.operation.key for s in steps), 90, 0.9),),
                example_traces=_traces(rng.randint(0, 30), 2),
            )
        )
    for name in plain + by_role["choreography"]:
        for callee in rng.sample(plain + by_role["infrastructure"], rng.randint(0, 3)):
            if callee != name:
                kind = "infrastructure" if callee in by_role["infrastructure"] else "sync"
                connect(name, callee, kind)
        if rng.random() < 0.05:
            connect(name, rng.choice(by_role["external"]), "sync")
    fan_out: dict[str, set[str]] = {}
    fan_in: dict[str, set[str]] = {}
    for caller, callee in edges:
        fan_out.setdefault(caller, set()).add(callee)
        fan_in.setdefault(callee, set()).add(caller)
    roles_out = tuple(
        ServiceRole(
            name,
            role,
            role == "orchestrator" and rng.random() < 0.5,
            len(fan_out.get(name, ())),
            len(fan_in.get(name, ())),
            rng.randint(0, 100_000),
            round(len(fan_out.get(name, ())) / 2 - 1 + rng.random(), 2),
            (f"Calls {len(fan_out.get(name, ()))} distinct services.",) if role == "orchestrator" else (),
            _traces(rng.randint(0, 30), 2),
            error_rate=rng.random() / 20,
            operations=("POST /run",) if role in ("orchestrator", "composer") else ("GET /items",),
        )
        for name, role in zip(names, roles, strict=True)
    )
    findings = tuple(
        Finding(
            RULES[i % len(RULES)],
            SEVERITIES[i % len(SEVERITIES)],
            flow.owner,
            flow.id,
            f"{flow.owner} coordinates {len(flow.steps)} services.",
            (f"fan-out {len(flow.steps)}",),
            "Make the process explicit.",
        )
        for i, flow in enumerate(flows)
    )
    return _untidy(
        Analysis(
            input=_summary(services, 25_000_000, 1_200_000),
            services=tuple(sorted(roles_out, key=lambda s: (-s.score, s.name))),
            edges=tuple(sorted(edges.values(), key=lambda e: (e.caller, e.callee, e.kind))),
            flows=tuple(sorted(flows, key=lambda f: (f.owner, f.entry.key))),
            findings=tuple(sorted(findings, key=Finding.sort_key)),
        ),
        random.Random(seed + 1),
    )


def _untidy(analysis: Analysis, rng: random.Random) -> Analysis:
    """Add what a real landscape brings: raw paths with ids, spec notices, undocumented traffic.

    One plain service in six reports its operations by concrete path (``GET /prices/p-022``,
    one per id it served); a hundred specs matched no traced service; a tenth of the edges more
    connect plain services with one another.
    """
    plain = [s.name for s in analysis.services if s.role == "service"]
    raw = set(plain[::6])
    services = []
    coverage = []
    for service in analysis.services:
        if service.name in raw:
            resource = service.name.split("-")[1]
            ids = rng.sample(range(1000), rng.randint(20, 150))
            paths = tuple(f"GET /{resource}s/{resource[0]}-{i:03d}" for i in sorted(ids))
            service = dataclasses.replace(service, operations=(f"POST /{resource}s", *paths))
            undocumented = tuple(
                UndocumentedCall("GET", f"/{resource}s/{{}}/{part}", rng.randint(1, 900))
                for part in ("history", "audit", "export", "preview", "lines")[: rng.randint(1, 5)]
            )
            coverage.append(
                ServiceCoverage(
                    service.name,
                    "server",
                    1000,
                    1000 - sum(u.count for u in undocumented) // 2,
                    undocumented,
                    (f"DELETE /{resource}s/{{id}}",),
                )
            )
        services.append(service)
    existing = {(e.caller, e.callee) for e in analysis.edges}
    extra = []
    for caller, callee in zip(
        rng.sample(plain, len(analysis.edges) // 10),
        rng.sample(plain, len(analysis.edges) // 10),
        strict=True,
    ):
        if caller != callee and (caller, callee) not in existing:
            calls = rng.randint(20, 20_000)
            extra.append(
                Edge(caller, callee, "sync", calls, calls // 50, 3.0, rng.uniform(40, 900), _traces(3, 2))
            )
    notices = tuple(
        f"specs/team-{i:03d}/openapi.yaml: OpenAPI spec matched no traced service" for i in range(103)
    )
    notices += (
        "traces/shop-2024-05-01.otlp.json: parent span missing; attached to the trace root (412 spans)",
        "traces/shop-2024-05-02.binpb: parent span missing; attached to the trace root (97 spans)",
    )
    out = Counter(e.caller for e in extra)
    into = Counter(e.callee for e in extra)
    services = [
        dataclasses.replace(s, fan_out=s.fan_out + out[s.name], fan_in=s.fan_in + into[s.name])
        for s in services
    ]
    return dataclasses.replace(
        analysis,
        input=dataclasses.replace(analysis.input, notices=analysis.input.notices + notices),
        services=tuple(services),
        edges=tuple(sorted(analysis.edges + tuple(extra), key=lambda e: (e.caller, e.callee, e.kind))),
        coverage=tuple(sorted(coverage, key=lambda c: c.service)),
    )


def _words(rng: random.Random, count: int) -> list[str]:
    stems = (
        "order",
        "billing",
        "ledger",
        "stock",
        "price",
        "fraud",
        "user",
        "search",
        "media",
        "audit",
        "tax",
        "quote",
    )
    return [rng.choice(stems) for _ in range(count)]
