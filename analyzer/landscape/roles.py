"""Hub ranking and role classification: who orchestrates, routes, composes or reacts.

*Hubs.* What makes an orchestrator conspicuous is not how many services it calls in aggregate (an
API gateway calls every backend, one per request) nor fan-in balanced with fan-out (a pure
orchestrator is called by few), but how many distinct services one request of it depends on. So
every service is scored by the distinct downstream services per request of its busiest-calling
entry operation, as a robust z-score against the landscape (median and MAD over the services that
handle requests), which adapts "conspicuous" to the landscape's size and habits.

*Roles,* most specific first (thresholds in :class:`RoleThresholds`):

* ``infrastructure``: only ever called as a store, cache or broker, and calls nobody;
* ``external``: called, but never emitted a span (uninstrumented peer);
* ``orchestrator``: a conspicuous hub with an entry operation that calls several services per
  request, mostly one after another, writing through some of them (or calling many); ``hidden``
  when the service also does its own work (database calls, self time);
* ``external`` as well: a traffic source that only starts requests (root client spans or
  background work), is never called and sends no messages;
* ``gateway``: one downstream call per request, many distinct downstreams in aggregate;
* ``composer``: an entry operation calling several services per request, mostly in parallel, mostly
  reads;
* ``choreography``: takes part through events (consumes or publishes messages);
* ``service``: everything else.

A claim rests on evidence: the entry operation (or service) behind it must have been seen in
``evidence_min_requests`` requests, and an entry operation that hides several request types (a
*mixed entry*: no route, no core callee) claims no coordination; either is said in the
evidence of the service's role.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from orchscan.analyzer.landscape.behaviour import Behaviour, ServiceBehaviour
from orchscan.analyzer.results import ServiceRole
from orchscan.analyzer.thresholds import DEFAULT_ROLE_THRESHOLDS, RoleThresholds

#: Scales a median absolute deviation to the standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Hub:
    """A service's per-request fan-out and how conspicuous it is in this landscape.

    ``operation`` is the entry operation with the most distinct downstream services per request
    (None when the service handles no requests). ``score`` is the robust z-score of
    ``callees_per_request`` against ``median`` with scale ``spread``.
    """

    service: str
    operation: str | None
    callees_per_request: float
    score: float
    median: float
    spread: float


def _eligible(service: ServiceBehaviour, thresholds: RoleThresholds) -> list[Behaviour]:
    """Entry operations frequent enough to judge the service by."""
    total = service.overall.requests
    return [
        op for op in service.operations if total and op.requests / total >= thresholds.min_operation_share
    ]


def _is_infrastructure(service: ServiceBehaviour, thresholds: RoleThresholds) -> bool:
    return (
        service.received_infrastructure > 0
        and service.received_infrastructure >= thresholds.infrastructure_min_share * service.received
        and not service.callees
    )


def find_hubs(
    services: Sequence[ServiceBehaviour], *, thresholds: RoleThresholds = DEFAULT_ROLE_THRESHOLDS
) -> tuple[Hub, ...]:
    """Rank services by distinct downstream services per request; most conspicuous first."""
    best: list[tuple[str, Behaviour | None]] = []
    for service in services:
        operations = _eligible(service, thresholds)
        top = max(operations, key=lambda op: (op.distinct_callees_per_request, op.requests), default=None)
        best.append((service.name, top))
    # The landscape is the services that do business work: stores and uninstrumented peers would
    # only pull the median towards zero.
    landscape = [
        op.distinct_callees_per_request
        for service, (_, op) in zip(services, best, strict=True)
        if op is not None and not _is_infrastructure(service, thresholds)
    ]
    median = float(np.median(landscape)) if landscape else 0.0
    mad = float(np.median(np.abs(np.asarray(landscape) - median))) if landscape else 0.0
    spread = max(MAD_TO_SIGMA * mad, thresholds.min_spread)
    hubs = []
    for name, op in best:
        value = op.distinct_callees_per_request if op else 0.0
        hubs.append(
            Hub(
                name, op.operation if op else None, value, round((value - median) / spread, 3), median, spread
            )
        )
    return tuple(sorted(hubs, key=lambda hub: (-hub.score, hub.service)))


def classify_behaviours(
    services: Sequence[ServiceBehaviour], *, thresholds: RoleThresholds = DEFAULT_ROLE_THRESHOLDS
) -> tuple[ServiceRole, ...]:
    """The role of every measured service, sorted by ``(-score, name)``."""
    hubs = {hub.service: hub for hub in find_hubs(services, thresholds=thresholds)}
    roles = [_classify(service, hubs[service.name], thresholds) for service in services]
    return tuple(sorted(roles, key=lambda role: (-role.score, role.name)))


def _z(hub: Hub, op: Behaviour) -> float:
    return (op.distinct_callees_per_request - hub.median) / hub.spread


def is_mixed(op: Behaviour, t: RoleThresholds) -> bool:
    """An entry operation known only by its span's name whose requests share no core callee."""
    return op.route_less and op.forwarding_requests > 0 and op.core_callee_share < t.core_callee_share


def _orchestrates(op: Behaviour, hub: Hub, t: RoleThresholds) -> bool:
    callees = op.distinct_callees_per_request
    return (
        _z(hub, op) >= t.hub_z
        and callees >= t.orchestrator_min_callees
        and op.sequential_share >= t.orchestrator_min_sequential
        and (op.writes > 0 or callees >= t.orchestrator_min_callees_without_writes)
    )


def _composes(op: Behaviour, t: RoleThresholds) -> bool:
    return (
        op.distinct_callees_per_request >= t.composer_min_callees
        and op.sequential_share <= t.composer_max_sequential
        and op.write_share <= t.composer_max_write_share
    )


def _is_gateway(service: ServiceBehaviour, t: RoleThresholds) -> bool:
    overall = service.overall
    return (
        overall.requests >= t.evidence_min_requests
        and overall.distinct_callees_per_request <= t.gateway_max_callees_per_request
        and overall.forwarding_requests >= t.gateway_min_forward_share * overall.requests
        and len(service.callees) >= t.gateway_min_fan_out
    )


def _is_traffic_source(service: ServiceBehaviour) -> bool:
    """A client outside the landscape: it starts requests itself and nobody ever calls it."""
    overall = service.overall
    return overall.requests > 0 and not overall.served and not service.received and not overall.event_requests


def _is_choreography(service: ServiceBehaviour, t: RoleThresholds) -> bool:
    overall = service.overall
    return (
        overall.event_requests >= t.evidence_min_requests
        and overall.event_requests >= t.choreography_min_event_share * overall.requests
    )


def _classify(service: ServiceBehaviour, hub: Hub, t: RoleThresholds) -> ServiceRole:
    operations = _eligible(service, t)
    by_fan_out = sorted(
        operations, key=lambda op: (-op.distinct_callees_per_request, -op.requests, op.operation)
    )
    if _is_infrastructure(service, t):
        return _role(service, hub, "infrastructure", [_store_sentence(service)], ())
    if not service.emits_spans:
        return _role(service, hub, "external", [_external_sentence(service)], ())
    # Only operations with enough requests of one kind may carry a claim of coordination.
    judged = [op for op in by_fan_out if op.requests >= t.evidence_min_requests and not is_mixed(op, t)]
    caveats = _caveats(by_fan_out, hub, t)
    orchestrating = [op for op in judged if _orchestrates(op, hub, t)]
    if orchestrating:
        hidden, work = _own_work(service, orchestrating[0], t)
        evidence = [_fan_out_sentence(op) for op in orchestrating]
        evidence += [work, _hub_sentence(hub), *caveats]
        return _role(service, hub, "orchestrator", evidence, orchestrating, hidden=hidden)
    if _is_traffic_source(service):
        return _role(service, hub, "external", [_source_sentence(service)], ())
    if _is_gateway(service, t):
        return _role(service, hub, "gateway", [_gateway_sentence(service), _hub_sentence(hub), *caveats], ())
    composing = [op for op in judged if _composes(op, t)]
    if composing:
        evidence = [_fan_out_sentence(op) for op in composing] + [_hub_sentence(hub), *caveats]
        return _role(service, hub, "composer", evidence, composing)
    if _is_choreography(service, t):
        return _role(service, hub, "choreography", [_event_sentence(service), *caveats], ())
    evidence = [_service_sentence(service), _hub_sentence(hub), *caveats]
    return _role(service, hub, "service", evidence, ())


def _caveats(operations: Sequence[Behaviour], hub: Hub, t: RoleThresholds) -> list[str]:
    """Why operations that look like coordination claim none: a mixed entry, or too few requests."""
    found = []
    for op in operations:
        if not (_orchestrates(op, hub, t) or _composes(op, t)):
            continue
        if op.requests < t.evidence_min_requests:
            found.append(
                f"too little evidence to judge {op.operation}: it calls "
                f"{_services(op.distinct_callees_per_request)} per request, but was seen in only "
                f"{op.requests} request{'s' if op.requests != 1 else ''} ({t.evidence_min_requests} needed)"
            )
        elif is_mixed(op, t):
            found.append(
                f"{op.operation} is a mixed entry: its requests carry no route, path or RPC method, and "
                f"no service is called by more than {op.core_callee_share:.0%} of those that call any, so "
                "it hides several request types and claims no coordination (its flows are split by "
                "their first call)"
            )
    return found


def _role(
    service: ServiceBehaviour,
    hub: Hub,
    role: str,
    evidence: list[str],
    deciding: Sequence[Behaviour],
    *,
    hidden: bool = False,
) -> ServiceRole:
    """The record; figures come from the deciding operation when there is one."""
    basis = deciding[0] if deciding else service.overall
    operations = [op.operation for op in deciding] or [op.operation for op in service.operations]
    return ServiceRole(
        name=service.name,
        role=role,
        hidden=hidden,
        fan_out=len(service.callees),
        fan_in=len(service.callers),
        requests=service.overall.requests,
        score=hub.score,
        evidence=tuple(evidence),
        example_traces=basis.example_traces,
        error_rate=round(service.overall.error_rate, 4),
        calls_per_request=round(basis.calls_per_request, 3),
        distinct_callees_per_request=round(basis.distinct_callees_per_request, 3),
        parallel_share=round(1.0 - basis.sequential_share, 4) if basis.multi_callee_requests else 0.0,
        write_share=round(basis.write_share, 4),
        db_calls_per_request=round(basis.db_calls_per_request, 3),
        self_time_share=round(basis.self_time_share, 4),
        operations=tuple(op for op in operations if op is not None),
    )


def _own_work(service: ServiceBehaviour, op: Behaviour, t: RoleThresholds) -> tuple[bool, str]:
    """Whether an orchestrator also does business work of its own, and the sentence saying so."""
    db = max(op.db_calls_per_request, service.overall.db_calls_per_request)
    stores = f" ({', '.join(service.stores)})" if service.stores else ""
    figures = f"{db:.1f} own database/cache calls per request{stores}, {op.self_time_share:.0%} self time"
    if db >= t.hidden_min_db_calls or op.self_time_share >= t.hidden_min_self_time:
        return True, f"hidden orchestration: besides coordinating it does its own work ({figures})"
    return False, f"explicit coordination layer: little work of its own ({figures})"


def _fan_out_sentence(op: Behaviour) -> str:
    names = f" ({', '.join(op.callees)})" if op.callees else ""
    sentence = (
        f"per {op.operation} request it calls {_services(op.distinct_callees_per_request)}{names} "
        f"in {_number(op.calls_per_request)} calls"
    )
    if op.multi_callee_requests:
        sentence += f", {op.sequential_share:.0%} of them one after another"
    known = (op.reads + op.writes) / op.requests
    if known:
        sentence += f"; {_number(op.writes / op.requests)} of {_number(known)} write"
    if op.unknown_methods:
        sentence += f" ({_number(op.unknown_methods / op.requests)} RPC calls of unknown effect)"
    return (
        sentence + f"; {op.db_calls_per_request:.1f} own database calls per request ({op.requests} requests)"
    )


def _number(value: float) -> str:
    """``4`` for a whole number, ``2.5`` otherwise: averages read like counts when they are."""
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _services(count: float) -> str:
    return f"{_number(count)} service" + ("" if _number(count) == "1" else "s")


def _hub_sentence(hub: Hub) -> str:
    return (
        f"{_number(hub.callees_per_request)} distinct services per request against a landscape median of "
        f"{_number(hub.median)} (robust z {hub.score:.1f})"
    )


def _gateway_sentence(service: ServiceBehaviour) -> str:
    overall = service.overall
    return (
        f"per request it calls {_services(overall.distinct_callees_per_request)}, but "
        f"{len(service.callees)} distinct services in all ({', '.join(service.callees)}); "
        f"{overall.forwarding_requests} of {overall.requests} requests forwarded"
    )


def _event_sentence(service: ServiceBehaviour) -> str:
    overall = service.overall
    parts = [f"{overall.event_requests} of {overall.requests} requests take part in events"]
    if overall.consumed:
        parts.append(f"{overall.consumed} message deliveries consumed")
    if overall.publishes_per_request:
        topics = f" to {', '.join(service.destinations)}" if service.destinations else ""
        parts.append(f"{overall.publishes_per_request:.1f} messages published per request{topics}")
    return "; ".join(parts)


def _store_sentence(service: ServiceBehaviour) -> str:
    return (
        f"only called as a store, cache or broker ({service.received_infrastructure} calls"
        f" from {', '.join(service.store_users) or 'nobody'}) and calls nobody"
    )


def _external_sentence(service: ServiceBehaviour) -> str:
    return (
        f"emitted no spans: {service.received} calls from {', '.join(service.callers) or 'nobody'} "
        f"reached it with no instrumented answer"
    )


def _source_sentence(service: ServiceBehaviour) -> str:
    return (
        f"a traffic source outside the landscape: its {service.overall.requests} requests start in its own "
        f"spans, nobody calls it, and it calls {', '.join(service.callees) or 'nobody'}"
    )


def _service_sentence(service: ServiceBehaviour) -> str:
    overall = service.overall
    return (
        f"per request it calls {_services(overall.distinct_callees_per_request)} in "
        f"{_number(overall.calls_per_request)} calls, {overall.db_calls_per_request:.1f} own database calls "
        f"({overall.requests} requests; called by {', '.join(service.callers) or 'nobody'})"
    )
