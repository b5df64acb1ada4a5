"""Pitfalls of event-driven flows: a chain that fails and leaves earlier work in place.

In a choreographed saga no service holds the control: when a consumer fails, the services that
acted on earlier events only learn of it from a compensating event. A failed chain after which
no compensating event (nor an undoing call) followed leaves those effects in place: the same
problem as an orchestrator's uncompensated failure, under the same rule id
(``uncompensated-failure``), worded for events.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchscan.analyzer.results import Finding, Flow, Step, Uncompensated

RULE = "uncompensated-failure"


def _action(step: Step) -> str:
    return f"{step.caller} → {step.operation.service} {step.operation.key}"


def _label(step: Step) -> str:
    return f"step {step.index} ({_action(step)})"


def event_findings(flows: Sequence[Flow]) -> list[Finding]:
    """One finding per choreographed flow and failed step whose failures left earlier work in place."""
    out = []
    for flow in flows:
        if flow.kind != "choreographed":
            continue
        by_index = {s.index: s for s in flow.steps}
        by_failed: dict[int, list[Uncompensated]] = {}
        for gap in flow.failure.uncompensated:
            by_failed.setdefault(gap.failed_step, []).append(gap)
        for failed_index, gaps in sorted(by_failed.items()):
            failed = by_index.get(failed_index)
            indices = sorted({i for g in gaps for i in g.left_in_place})
            left = [
                f"the origin's request ({flow.entry.key})" if i == 0 else _label(by_index[i])
                for i in indices
                if i == 0 or i in by_index
            ]
            if failed is None or not left:
                continue
            requests = sum(g.requests for g in gaps)
            out.append(
                Finding(
                    rule=RULE,
                    severity="high",
                    service=flow.owner,
                    flow=flow.id,
                    message=(
                        f"When {_label(failed)} fails, the event chain {flow.owner} starts leaves "
                        + ", ".join(left)
                        + " in place: no compensating event followed"
                    ),
                    evidence=(
                        f"{requests} failed chains without a compensating event or undoing call",
                        f"chains of {flow.entry.key}: {flow.requests}",
                    ),
                    recommendation=(
                        "Publish a compensating event when this step fails (e.g. a '...-failed' event the "
                        "earlier services react to by undoing their work), or make the earlier steps "
                        "tolerate the failure; document the saga's failure paths."
                    ),
                    example_traces=tuple(sorted({t for g in gaps for t in g.example_traces}))[:5],
                    subject=f"{flow.id} > {_action(failed)}",
                )
            )
    return out
