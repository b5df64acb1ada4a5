"""Documented workflows against observed flows: where the Arazzo description and reality drifted apart.

A documented workflow is paired with the observed flow it was drafted from (``x-orchscan-flow``)
or else with the flow sharing most of its operations. Steps are compared by operation identity
(operationId, else ``METHOD /route``); compensation steps (reached only through an ``onFailure``
goto) are compared with observed compensations, the rest with the flow's steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from orchscan.analyzer.results import Finding, Flow, OperationRef
from orchscan.collectors.arazzo import DocumentedStep, DocumentedWorkflow

RULE = "workflow-drift"

#: Records one finding: severity, message, evidence, recommendation.
_Add = Callable[[str, str, tuple[str, ...], str], None]

_STEP_REF = re.compile(r"^\$steps\.([A-Za-z0-9_-]+)\.outputs\.")


def check_conformance(workflows: Iterable[DocumentedWorkflow], flows: Sequence[Flow]) -> tuple[Finding, ...]:
    """Findings for every way a documented workflow differs from what the traces show."""
    findings: list[Finding] = []
    for workflow in workflows:
        flow = _pair(workflow, flows)
        if flow is None:
            findings.append(
                _finding(
                    "low",
                    workflow,
                    None,
                    f"Workflow {workflow.workflow_id} was never observed: no traced flow calls its steps.",
                    (f"{workflow.file}: {len(workflow.steps)} documented step(s)",),
                    "Check whether the workflow is still in use, or whether its services are traced.",
                )
            )
            continue
        findings += _compare(workflow, flow)
    return tuple(sorted(findings, key=lambda f: (*f.sort_key(), f.message)))


def _identities(ref: OperationRef) -> set[str]:
    found = {ref.key}
    if ref.operation_id:
        found.add(ref.operation_id)
    if ref.method and ref.route:
        found.add(f"{ref.method.upper()} {ref.route}")
    return found


def _documented(step: DocumentedStep) -> set[str]:
    return {i for i in (step.operation_id, step.operation_key) if i}


def _same(step: DocumentedStep, ref: OperationRef) -> bool:
    return bool(_documented(step) & _identities(ref))


def _pair(workflow: DocumentedWorkflow, flows: Sequence[Flow]) -> Flow | None:
    for flow in flows:
        if workflow.flow_id is not None and flow.id == workflow.flow_id:
            return flow
    best, overlap = None, 0
    for flow in sorted(flows, key=lambda f: (f.owner, f.entry.key, f.id)):
        shared = sum(1 for d in workflow.steps if any(_same(d, s.operation) for s in flow.steps))
        if shared > overlap:
            best, overlap = flow, shared
    return best


def _compensation_ids(workflow: DocumentedWorkflow) -> set[str]:
    """Steps entered only through an onFailure goto: the documented compensations."""
    return {a.target for s in workflow.steps for a in s.on_failure if a.kind == "goto" and a.target}


def _compare(workflow: DocumentedWorkflow, flow: Flow) -> list[Finding]:
    compensating = _compensation_ids(workflow)
    main = [s for s in workflow.steps if s.step_id not in compensating and s.workflow is None]
    by_id = {s.step_id: s for s in workflow.steps}
    observed = sorted(flow.steps, key=lambda s: s.index)
    findings: list[Finding] = []

    def add(severity: str, message: str, evidence: tuple[str, ...], advice: str) -> None:
        findings.append(_finding(severity, workflow, flow, message, evidence, advice))

    matched: dict[str, int] = {}
    for step in main:
        hit = next((s.index for s in observed if _same(step, s.operation)), None)
        if hit is None:
            add(
                "medium",
                f"Documented step {step.step_id} of {workflow.workflow_id} was never observed in {flow.id}.",
                (f"{flow.requests} traced request(s); none called {' / '.join(sorted(_documented(step)))}",),
                "Remove the step from the workflow or find out why the orchestrator no longer calls it.",
            )
        else:
            matched[step.step_id] = hit
    for call in observed:
        if not any(_same(d, call.operation) for d in main):
            add(
                "medium",
                f"Observed step {call.index} ({call.operation.service} {call.operation.key}) of {flow.id} "
                f"is missing from workflow {workflow.workflow_id}.",
                (f"seen in {call.support:.0%} of {flow.requests} request(s)",),
                "Document the call in the workflow, or remove it from the orchestrator if it is unintended.",
            )
    group = {s.index: s.parallel_group for s in observed}
    sequence = [matched[s.step_id] for s in main if s.step_id in matched]
    inversions = [
        (a, b)
        for n, a in enumerate(sequence)
        for b in sequence[n + 1 :]
        if a > b and (group.get(a) is None or group.get(a) != group.get(b))
    ]
    if inversions:
        add(
            "low",
            f"Workflow {workflow.workflow_id} orders its steps differently from {flow.id}.",
            tuple(f"documented before observed step {b}: observed step {a}" for a, b in inversions[:5]),
            "Reorder the workflow steps to match the observed sequence, or check for a data dependency.",
        )
    _check_handoffs(flow, main, matched, add)
    _check_failures(flow, main, matched, by_id, add)
    return findings


def _check_handoffs(flow: Flow, main: list[DocumentedStep], matched: dict[str, int], add: _Add) -> None:
    """Documented data sources contradicted by the handoffs seen in the traces."""
    for step in main:
        target = matched.get(step.step_id)
        if target is None:
            continue
        for value in step.inputs:
            seen = [
                h
                for h in flow.handoffs
                if h.to_step == target
                and h.location == value.location
                and h.parameter.lstrip("/") == value.name.lstrip("/")
            ]
            if not seen:
                continue
            documented = _source_index(value.value, matched)
            if documented is None or any(h.from_step == documented for h in seen):
                continue
            best = max(seen, key=lambda h: h.confidence)
            origin = "the entry request" if best.from_step == 0 else f"step {best.from_step}"
            add(
                "medium",
                f"Step {step.step_id} takes {value.location} {value.name} from {value.value}, "
                f"but traces show it comes from {origin}.",
                (*best.evidence, f"confidence {best.confidence:.2f}"),
                "Correct the runtime expression, or check which value the orchestrator really sends.",
            )


def _source_index(expression: str, matched: dict[str, int]) -> int | None:
    if expression.startswith("$inputs."):
        return 0
    found = _STEP_REF.match(expression)
    return matched.get(found.group(1)) if found else None


def _check_failures(
    flow: Flow,
    main: list[DocumentedStep],
    matched: dict[str, int],
    by_id: dict[str, DocumentedStep],
    add: _Add,
) -> None:
    """Retries and compensations documented but not seen, or seen but not documented."""
    retried = {index for index, _ in flow.failure.retries} | {s.index for s in flow.steps if s.retries}
    compensated: dict[int, set[str]] = {}
    for item in flow.failure.compensations:
        compensated.setdefault(item.failed_step, set()).update(_identities(item.operation))
    for step in main:
        index = matched.get(step.step_id)
        if index is None:
            continue
        documents_retry = any(a.kind == "retry" for a in step.on_failure)
        if documents_retry and index not in retried:
            add(
                "low",
                f"Step {step.step_id} documents a retry that was never observed.",
                (f"no request of {flow.id} repeated step {index} after a failure",),
                "Check that the orchestrator really retries, or drop the retry from the workflow.",
            )
        if index in retried and not documents_retry:
            add(
                "medium",
                f"Step {step.step_id} is retried in traffic, but the workflow documents no retry.",
                (f"requests of {flow.id} repeated step {index} after a failure",),
                "Document the retry (retryAfter, retryLimit) and make sure the call is idempotent.",
            )
        gotos = [by_id[a.target] for a in step.on_failure if a.kind == "goto" and a.target in by_id]
        documented: set[str] = set().union(*(_documented(s) for s in gotos))
        if index in compensated and not documented & compensated[index]:
            add(
                "medium",
                f"When step {step.step_id} fails the orchestrator compensates; the workflow does not say so.",
                tuple(f"observed compensation: {op}" for op in sorted(compensated[index])),
                "Add the compensation step, reached through onFailure goto.",
            )
        if gotos and index not in compensated:
            add(
                "low",
                f"Step {step.step_id} documents a compensation that was never observed.",
                (
                    f"goto {', '.join(s.step_id for s in gotos)}; "
                    f"no compensating call after step {index} failed",
                ),
                "Check that the compensation still exists, or that failures of this step were traced.",
            )


def _finding(
    severity: str,
    workflow: DocumentedWorkflow,
    flow: Flow | None,
    message: str,
    evidence: tuple[str, ...],
    recommendation: str,
) -> Finding:
    return Finding(
        rule=RULE,
        severity=severity,
        service=flow.owner if flow else workflow.file,
        flow=flow.id if flow else None,
        message=message,
        evidence=(f"documented in {workflow.file} (workflow {workflow.workflow_id})", *evidence),
        recommendation=recommendation,
        example_traces=flow.example_traces if flow else (),
        subject=f"{workflow.workflow_id}: {message}",
    )
