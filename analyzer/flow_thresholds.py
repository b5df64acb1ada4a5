"""The named thresholds of flow mining, failure analysis and the pitfall rules, in one place.

Each default is a judgement call a reviewer can question, so each is documented here rather
than buried as a literal in the code that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FlowThresholds:
    """Thresholds for mining flows and raising findings.

    ``min_steps``: a request of a service not named as an owner is mined when it makes at least
    this many downstream calls (after collapsing retries and repeats), i.e. it coordinates.
    ``overlap_tolerance_ms``: two calls overlapping by less than this are still sequential; it
    absorbs clock skew when a caller's timing comes from the callee's clock.
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
    """

    min_steps: int = 3
    overlap_tolerance_ms: float = 1.0
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


DEFAULT_THRESHOLDS = FlowThresholds()
