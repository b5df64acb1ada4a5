"""What each finding rule means, for reports that describe their rules (SARIF, JUnit) and for users.

The analyzer decides *whether* a rule fires and writes a finding's message and recommendation;
this catalogue says what the rule is about in general, as ``docs/method.md`` does (a test keeps
the two and the analyzer's rule ids in step).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One finding rule: a stable ``id``, a PascalCase ``name``, a one-line ``summary`` and ``help``."""

    id: str
    name: str
    summary: str
    help: str


def _rule(rule_id: str, summary: str, help_text: str) -> Rule:
    name = "".join(part.capitalize() for part in rule_id.split("-"))
    return Rule(rule_id, name, summary, help_text)


#: Rule id -> rule, in the order of ``docs/method.md``.
RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        _rule(
            "hidden-orchestration",
            "A business service holds a flow's control.",
            "A service that does its own business work (database calls, significant self time) also "
            "calls several other services in a fixed order for one request: the orchestration is hidden "
            "inside it, undocumented and hard to change. Describe the flow as a workflow (the Arazzo "
            "draft is a start) or move the coordination into a dedicated orchestrator.",
        ),
        _rule(
            "overloaded-orchestrator",
            "The coordinating service also does heavy business work.",
            "The service that drives a flow spends many database calls or much of its request time on "
            "its own work. Coordination and business logic then change and fail together; keep the "
            "flow's control in one place and move the data work behind its own service or step.",
        ),
        _rule(
            "duplicated-flow",
            "The same flow is driven by several owners.",
            "Several services run copies of one flow (similar steps for the same purpose). Copies drift "
            "apart in order, steps and failure handling; the finding lists the drift. Keep one "
            "implementation or one shared workflow description.",
        ),
        _rule(
            "missing-idempotency",
            "A write step is retried without an idempotency key.",
            "A write was sent again after a failure, but neither the traces (an Idempotency-Key header) "
            "nor the spec show a key the callee could deduplicate on, so a retry after a lost answer "
            "can apply the write twice. Send an idempotency key or stop retrying the write.",
        ),
        _rule(
            "uncompensated-failure",
            "A failed step leaves earlier writes in place.",
            "When a later step of a flow failed, earlier steps that changed state (a reservation, a "
            "payment) were not undone in the same request and no compensation was observed; in an "
            "event-driven flow, no compensating event or call followed the failed step. Undo them "
            "(cancel, release, refund) or make the flow resumable, and describe the compensation.",
        ),
        _rule(
            "missing-trace-context",
            "Calls lose the trace context.",
            "A service's outgoing calls start new traces, or root spans sit inside another service's "
            "unanswered call: the trace context is not propagated, so requests cannot be followed end "
            "to end and flows cannot be attributed. Propagate the W3C traceparent header, also across "
            "thread pools and background tasks.",
        ),
        _rule(
            "unbounded-wait",
            "A flow waits long at a step with no timeout seen.",
            "A flow is held at a step for longer than the long-running threshold (flows.long_running_s) "
            "and no timeout was ever observed for it. Set an explicit timeout or deadline and decide "
            "what the flow does when it fires; long work belongs in an asynchronous workflow with "
            "durable state.",
        ),
        _rule(
            "workflow-description",
            "Steps pass data to each other: a workflow description pays off.",
            "Three or more steps of the flow hand data to each other. An explicit, reviewed workflow "
            "description (Arazzo) documents the contract between them; adopt and review the draft.",
        ),
        _rule(
            "cross-team-orchestration",
            "A hidden orchestrator drives services of several other teams.",
            "A business service that also holds a flow's control calls services owned by several other "
            "teams (from --owners, service.namespace or the Kubernetes namespace): the flow's control "
            "sits in one team's code, its behaviour in others'. Give the flow an owner: a workflow all "
            "teams review, or an orchestrator owned by the team responsible for the business process.",
        ),
        _rule(
            "undocumented-endpoint",
            "Traffic the spec does not describe.",
            "A service receives calls to operations its OpenAPI spec does not document. Workflows and "
            "clients can only rely on what the spec describes: document these operations or retire "
            "them.",
        ),
        _rule(
            "unused-operation",
            "Documented operations nobody called.",
            "Operations of the spec received no call in the scanned traffic. Check whether they are still "
            "needed; if the traffic window was short, scan a longer one before deciding.",
        ),
        _rule(
            "workflow-drift",
            "A documented workflow differs from the observed traffic.",
            "A workflow of an Arazzo document given to `orchscan conform` differs from what the traces "
            "show: steps missing or added, a different order, or different failure handling. Update the "
            "document or the implementation so that they agree.",
        ),
    )
}


def describe_rule(rule_id: str) -> Rule:
    """The catalogue entry of ``rule_id``; a rule the catalogue lacks still gets a generic entry."""
    return RULES.get(rule_id) or _rule(rule_id, f"orchscan rule {rule_id}.", f"orchscan rule {rule_id}.")
