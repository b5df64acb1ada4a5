"""The numbers behind role classification, named and documented in one place.

A flat frozen dataclass of numbers, so a configuration file can fill it from a plain mapping
(``RoleThresholds(**mapping)``). Shares are in [0, 1]; counts are per request averages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RoleThresholds:
    """Thresholds for behaviour measurement, hub ranking and role classification."""

    #: Two calls overlap when one starts at least this long before the other ends. Absorbs
    #: clock skew and the few hundred microseconds between one call's end and the next's start.
    overlap_tolerance_ms: float = 1.0

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


#: The defaults, shared by every analyzer function's keyword argument.
DEFAULT_THRESHOLDS = RoleThresholds()
