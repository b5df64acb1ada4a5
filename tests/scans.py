"""The analysis stages over one in-memory span table, as a scan composes them, for unit tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pyarrow as pa

from orchscan.analyzer.findings.rules import TraceContextEvidence
from orchscan.analyzer.flows.handoffs import SpecIndex
from orchscan.analyzer.flows.judgement import split_mixed_entries
from orchscan.analyzer.flows.lost_callees import decide_answers
from orchscan.analyzer.flows.mining import analyze_flows
from orchscan.analyzer.flows.steps import (
    StepCalls,
    candidate_flows,
    flow_figures,
    mark_steps,
    number_requests,
    wanted_flows,
)
from orchscan.analyzer.landscape.behaviour import ServiceBehaviour, measure_behaviour, summarise_behaviour
from orchscan.analyzer.landscape.graph import EdgePartial, build_edges
from orchscan.analyzer.landscape.roles import classify_behaviours
from orchscan.analyzer.reduction import reduce_partition
from orchscan.analyzer.requests.calls import CallTables, build_call_tables
from orchscan.analyzer.results import Edge, Flow, ServiceRole
from orchscan.analyzer.thresholds import (
    DEFAULT_CALL_THRESHOLDS,
    DEFAULT_FLOW_THRESHOLDS,
    DEFAULT_ROLE_THRESHOLDS,
    CallThresholds,
    FlowThresholds,
    RoleThresholds,
    Thresholds,
)
from orchscan.collectors.openapi.model import Operation


def behaviour_of(
    table: pa.Table | CallTables, *, tolerance_ms: float = DEFAULT_CALL_THRESHOLDS.overlap_tolerance_ms
) -> tuple[ServiceBehaviour, ...]:
    """Every service's behaviour in one table (or its call tables)."""
    tables = table if isinstance(table, CallTables) else build_call_tables(table)
    return summarise_behaviour(measure_behaviour(tables, tolerance_ms=tolerance_ms))


def roles_of(
    table: pa.Table | CallTables, thresholds: RoleThresholds = DEFAULT_ROLE_THRESHOLDS
) -> tuple[ServiceRole, ...]:
    """Every service's role in one table, sorted by ``(-score, name)``."""
    return classify_behaviours(behaviour_of(table), thresholds=thresholds)


def edges_of(table: pa.Table | CallTables) -> tuple[Edge, ...]:
    """The service graph's edges of one table."""
    tables = table if isinstance(table, CallTables) else build_call_tables(table)
    return build_edges(EdgePartial.of(tables.calls))


def mined_steps(
    table: pa.Table,
    *,
    owners: Iterable[str] = (),
    operations: Mapping[str, Sequence[Operation]] | None = None,
    thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS,
    tolerance_ms: float = DEFAULT_CALL_THRESHOLDS.overlap_tolerance_ms,
) -> StepCalls:
    """The requests (and marked calls) of the flows worth mining in one table."""
    limits = Thresholds(calls=CallThresholds(tolerance_ms), flows=thresholds)
    light, heavy = reduce_partition(table, operations=operations, thresholds=limits)
    named = frozenset(owners)
    candidates = candidate_flows(light.calls, named, thresholds.min_steps)
    answers = decide_answers(light.answers)
    marked = mark_steps(heavy.steps, candidates, tolerance_ms=tolerance_ms, answers=answers)
    return number_requests([marked], wanted_flows(flow_figures(marked.requests), named, thresholds.min_steps))


def mined_flows(
    table: pa.Table,
    *,
    owners: Iterable[str] = (),
    specs: SpecIndex | None = None,
    thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS,
    tolerance_ms: float = DEFAULT_CALL_THRESHOLDS.overlap_tolerance_ms,
) -> tuple[tuple[Flow, ...], StepCalls]:
    """The flows of one table (with ``owners`` as orchestrators), judged, and the steps they were mined
    from (mixed entries split into their sub-entries)."""
    wanted = mined_steps(
        table, owners=owners, operations=specs, thresholds=thresholds, tolerance_ms=tolerance_ms
    )
    steps, mixed = split_mixed_entries(wanted, thresholds=thresholds)
    return analyze_flows(
        steps, specs=specs, thresholds=thresholds, tolerance_ms=tolerance_ms, mixed=mixed
    ), steps


def context_of(table: pa.Table) -> TraceContextEvidence:
    """The trace-context evidence of one table."""
    return TraceContextEvidence.of(build_call_tables(table))
