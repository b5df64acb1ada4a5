"""Every named threshold of the analysis, documented in one place, grouped by stage.

Flat frozen dataclasses of numbers, so a configuration file can fill each group from a plain
mapping (``RoleThresholds(**mapping)``). Each default is a judgement call a reviewer can
question, so each is documented here rather than buried as a literal in the code that uses it.
Shares are in [0, 1]; counts are per request averages.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CallThresholds:
    """How calls are timed against each other, the same for role classification and flow mining."""

    #: Two calls overlap when one starts at least this long before the other ends; by less, they
    #: run one after the other. Absorbs clock skew (a caller's timing may come from the callee's
    #: clock) and the few hundred microseconds between one call's end and the next's start.
    overlap_tolerance_ms: float = 1.0
    #: A span whose parent was lost is put back into the request of its service that contains it
    #: in time, give or take this. Both come from the same service's clock, so the slack only
    #: absorbs rounding (microsecond exports) and work that ends just after the response.
    fragment_tolerance_ms: float = 1.0


DEFAULT_CALL_THRESHOLDS = CallThresholds()


@dataclass(frozen=True)
class RoleThresholds:
    """Thresholds for hub ranking and role classification."""

    #: An entry operation is judged on its own when it carries at least this share of the
    #: service's requests (rare operations such as health checks say little about the role).
    min_operation_share: float = 0.01

    #: Hub score: robust z of distinct downstream services per request against the landscape's
    #: median, scaled by 1.4826 × MAD; the scale never drops below ``min_spread`` services,
    #: so in a flat landscape one more callee than usual is not infinitely conspicuous.
    min_spread: float = 0.5
    #: A score at or above this marks a conspicuous hub.
    hub_z: float = 2.0

    #: Orchestrator: an entry operation calls at least this many distinct services per request...
    orchestrator_min_callees: float = 2.0
    #: ...mostly one after another (share of its distinct callees started after an earlier one ended)...
    orchestrator_min_sequential: float = 0.5
    #: ...and either writes through some of those calls, or calls at least this many services.
    orchestrator_min_callees_without_writes: float = 3.0

    #: Hidden orchestrator: it also does its own work, i.e. at least this many database or cache
    #: calls per request...
    hidden_min_db_calls: float = 0.5
    #: ...or spends at least this share of its request time outside downstream calls.
    hidden_min_self_time: float = 0.3

    #: Composer: an entry operation calls at least this many distinct services per request...
    composer_min_callees: float = 2.0
    #: ...at most this share of them sequentially (the rest in parallel)...
    composer_max_sequential: float = 0.5
    #: ...and at most this share of its calls with a known method are writes.
    composer_max_write_share: float = 0.5

    #: Gateway: at most this many distinct services per request...
    gateway_max_callees_per_request: float = 1.2
    #: ...at least this share of its requests forwarded downstream...
    gateway_min_forward_share: float = 0.8
    #: ...and at least this many distinct downstream services over all requests.
    gateway_min_fan_out: int = 3

    #: Choreography: at least this share of its requests consume or publish a message.
    choreography_min_event_share: float = 0.2

    #: Infrastructure: at least this share of the calls it receives are store/cache/broker calls
    #: and it makes no business calls of its own.
    infrastructure_min_share: float = 0.9

    #: A role claim (orchestrator, composer, gateway, choreography) rests on at least this many
    #: requests: of the entry operation that coordinates, or of the service. Below it the service
    #: is a plain service with "too little evidence"; three requests are few enough that a small
    #: capture (HotROD's three dispatch requests) is still judged, and more than a one-off.
    evidence_min_requests: int = 3
    #: A downstream service called by at least this share of an entry operation's requests that
    #: call anything is a core callee. An entry operation known only by its span's name (no route,
    #: path or RPC method) without a core callee hides several request types (a mixed entry) and
    #: claims no coordination.
    core_callee_share: float = 0.9


#: The defaults, shared by every analyzer function's keyword argument.
DEFAULT_ROLE_THRESHOLDS = RoleThresholds()


@dataclass(frozen=True)
class FlowThresholds:
    """Thresholds for mining flows and raising findings.

    ``min_steps``: a request of a service not named as an owner is mined when it makes at least
    this many downstream calls (after collapsing retries and repeats), i.e. it coordinates.
    ``required_step_support``: a step missing from more than ``1 - this`` of the successful
    requests is optional.
    ``long_running_s``: a flow whose median duration, or whose median longest wait between
    consecutive steps, reaches this is long-running; a step whose p95 duration or preceding wait
    reaches it is a long wait.
    ``duplicate_similarity``: Jaccard similarity of two owners' step sets from which their flows
    count as copies of one another; ``duplicate_min_common`` common steps are needed as well.
    ``overloaded_db_calls``: database calls per request, and ``overloaded_self_time_share`` the
    share of a request's time spent outside downstream calls, above which a coordinating
    service is also doing heavy business work.
    ``workflow_min_steps``: steps linked by data handoffs from which an explicit workflow
    description pays off.
    ``orphan_tolerance_ms``: slack allowed when nesting an orphan root span inside the client
    span that probably sent it.
    ``max_variants``: how many of a flow's variants, most frequent first, it lists (the rest are
    still counted in the flow's requests and woven into its steps).
    ``example_traces``: how many example trace ids a result carries.
    ``evidence_min_requests`` and ``evidence_min_steps``: the least evidence a claim about a flow
    needs: at least this many observed requests of it and this many steps in it. A flow below
    either is still listed as observed, but nothing is built on it (no Arazzo draft). Three
    requests are few enough that a small capture (HotROD's three dispatch requests) is still
    judged, and more than a one-off; one step is a call, not a flow to coordinate.
    ``mixed_entry_max_main_share``: an entry known only by its span's name, none of whose steps
    is required (see ``required_step_support``) and whose most frequent variant covers less than
    this share of its requests, hides several request types: it is split by first call; a
    sub-entry is judged as a flow when it holds at least ``sub_entry_min_share`` of the entry's
    requests (rarer first calls are deviations, such as a request whose first call was lost).
    ``severity_pattern_share`` and ``severity_outlier_share``: a finding that counts its cases
    (failures left uncompensated, retries without a key) keeps its rule's severity when its
    problem showed in at least the pattern share of the cases (and in at least
    ``evidence_min_requests`` of them), one level less between the two shares, and is an outlier
    below the outlier share while the other cases were handled: low; cases whose trace lost
    spans are explained by sampling holes and not counted, and when no case is left the finding is
    info. ``holes_explain_max_share``: lost spans explain a flow's cases only while at most this
    share of the flow's requests lost spans (holes are the exception); where they are everywhere
    (a service that never exports its spans) they explain nothing.
    ``parallel_min_saving_ms``: consecutive steps that nothing observed orders are reported as
    a parallelisation opportunity when running them together would shorten the median request
    by at least this much (below it, the change is not worth a review); the opportunity also
    needs ``evidence_min_requests`` requests that made all of its steps.
    ``cross_team_min_teams``: a hidden orchestrator is reported for coordinating other teams
    when the steps of its flows belong to at least this many teams besides its own ("several":
    one other team is an ordinary dependency, two or more means the flow's control sits in one
    team's business service while others' services do the work).
    ``event_flow_min_steps``: an origin's message chains are mined as an event-driven flow when
    one of them has at least this many steps (deliveries and the consumers' calls); a single
    delivery is a notification, not a flow.
    ``event_chain_max_hops``: how many message hops a chain is followed from its origin; deeper
    chains (a topic that feeds itself) are cut there.
    ``max_mined_requests``: an entry operation with more requests than this (or an origin of
    message chains with more chains) is mined from a sample of about this many, chosen by trace
    id (the same whatever the partitioning or engine), so the landscape stage's memory does not
    grow with the input; its flow's counts are the sample's and the flow says so (see
    :mod:`orchscan.analyzer.flows.sampling`). Twenty thousand requests show every variant and
    failure path that occurs in more than a few hundredths of a percent of them.
    """

    min_steps: int = 3
    required_step_support: float = 0.9
    long_running_s: float = 60.0
    duplicate_similarity: float = 0.6
    duplicate_min_common: int = 2
    overloaded_db_calls: float = 3.0
    overloaded_self_time_share: float = 0.3
    workflow_min_steps: int = 3
    orphan_tolerance_ms: float = 5.0
    max_variants: int = 50
    example_traces: int = 5
    evidence_min_requests: int = 3
    evidence_min_steps: int = 2
    mixed_entry_max_main_share: float = 0.5
    sub_entry_min_share: float = 0.05
    severity_pattern_share: float = 0.5
    severity_outlier_share: float = 0.1
    holes_explain_max_share: float = 0.5
    parallel_min_saving_ms: float = 1.0
    cross_team_min_teams: int = 2
    event_flow_min_steps: int = 2
    event_chain_max_hops: int = 32
    max_mined_requests: int = 20_000


DEFAULT_FLOW_THRESHOLDS = FlowThresholds()


@dataclass(frozen=True)
class Thresholds:
    """Every named threshold of the analysis, by stage."""

    calls: CallThresholds = field(default_factory=CallThresholds)
    roles: RoleThresholds = field(default_factory=RoleThresholds)
    flows: FlowThresholds = field(default_factory=FlowThresholds)


#: Every default, for :func:`orchscan.analyzer.pipeline.analyze`.
DEFAULT_THRESHOLDS = Thresholds()


_INF = float("inf")

#: The closed range each threshold must lie in, by group and name: a value outside it (or NaN or
#: infinity) from a config file or ``--set`` is refused rather than silently finding nothing.
#: Shares and similarities are in [0, 1]; times, counts and scores are non-negative.
RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "calls": {"overlap_tolerance_ms": (0.0, _INF), "fragment_tolerance_ms": (0.0, _INF)},
    "roles": {
        "min_operation_share": (0.0, 1.0),
        "min_spread": (0.0, _INF),
        "hub_z": (0.0, _INF),
        "orchestrator_min_callees": (0.0, _INF),
        "orchestrator_min_sequential": (0.0, 1.0),
        "orchestrator_min_callees_without_writes": (0.0, _INF),
        "hidden_min_db_calls": (0.0, _INF),
        "hidden_min_self_time": (0.0, 1.0),
        "composer_min_callees": (0.0, _INF),
        "composer_max_sequential": (0.0, 1.0),
        "composer_max_write_share": (0.0, 1.0),
        "gateway_max_callees_per_request": (0.0, _INF),
        "gateway_min_forward_share": (0.0, 1.0),
        "gateway_min_fan_out": (1, _INF),
        "choreography_min_event_share": (0.0, 1.0),
        "infrastructure_min_share": (0.0, 1.0),
        "evidence_min_requests": (1, _INF),
        "core_callee_share": (0.0, 1.0),
    },
    "flows": {
        "min_steps": (1, _INF),
        "required_step_support": (0.0, 1.0),
        "long_running_s": (0.0, _INF),
        "duplicate_similarity": (0.0, 1.0),
        "duplicate_min_common": (1, _INF),
        "overloaded_db_calls": (0.0, _INF),
        "overloaded_self_time_share": (0.0, 1.0),
        "workflow_min_steps": (1, _INF),
        "orphan_tolerance_ms": (0.0, _INF),
        "max_variants": (1, _INF),
        "example_traces": (0, _INF),
        "evidence_min_requests": (1, _INF),
        "evidence_min_steps": (1, _INF),
        "mixed_entry_max_main_share": (0.0, 1.0),
        "sub_entry_min_share": (0.0, 1.0),
        "severity_pattern_share": (0.0, 1.0),
        "severity_outlier_share": (0.0, 1.0),
        "holes_explain_max_share": (0.0, 1.0),
        "parallel_min_saving_ms": (0.0, _INF),
        "cross_team_min_teams": (1, _INF),
        "event_flow_min_steps": (1, _INF),
        "event_chain_max_hops": (1, _INF),
        "max_mined_requests": (1, _INF),
    },
}
