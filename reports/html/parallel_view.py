"""Plain data for the report's "Parallelisation opportunities" section, across every flow.

Each flow's own table lists its opportunities with their evidence; this section ranks all of
them by what they would save on the critical path, so a reviewer sees first where running
steps together is worth a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchscan.analyzer.results import Analysis
from orchscan.reports.html.figures import format_duration
from orchscan.reports.html.teams_view import FlowLink, flow_label


@dataclass(frozen=True)
class ParallelRow:
    """One opportunity: its flow, the steps that could run together, the saving and why."""

    flow: FlowLink
    steps: tuple[str, ...]
    saving_p50: str
    saving_p95: str
    requests: str
    evidence: tuple[str, ...]


def build_parallel(analysis: Analysis, flow_anchors: Mapping[str, str]) -> tuple[ParallelRow, ...]:
    """Every flow's parallelisation opportunities, the largest p50 saving first."""
    found = sorted(
        ((flow, o) for flow in analysis.flows for o in flow.parallel_opportunities),
        key=lambda pair: (-pair[1].saving_p50_ms, pair[0].id, pair[1].steps),
    )
    rows = []
    for flow, opportunity in found:
        by_index = {s.index: s for s in flow.steps}
        rows.append(
            ParallelRow(
                flow=FlowLink(flow_label(flow), flow_anchors[flow.id]),
                steps=tuple(
                    f"{i}. {by_index[i].operation.service} {by_index[i].operation.key}"
                    for i in opportunity.steps
                    if i in by_index
                ),
                saving_p50=format_duration(opportunity.saving_p50_ms),
                saving_p95=format_duration(opportunity.saving_p95_ms),
                requests=f"{opportunity.requests:,}",
                evidence=opportunity.evidence,
            )
        )
    return tuple(rows)
