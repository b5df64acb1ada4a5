"""Draft Arazzo workflows from discovered orchestration flows: one document per orchestrator.

The draft is meant to be reviewed, committed and executed. Steps reference real operations
(from the services' OpenAPI descriptions, or from a stand-in inferred from traffic and written
beside the Arazzo file), data handoffs become runtime expressions, success criteria and failure
actions follow what was observed. Everything that is a guess carries its confidence and evidence
in ``x-orchscan-*`` extensions and descriptions. Output is deterministic: the same flows and specs
give the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from orchscan.analyzer.results import Compensation, Flow, Handoff, OperationRef, RetryPolicy, Step
from orchscan.analyzer.specs.operations import operation_of
from orchscan.collectors.openapi.model import Operation, Spec
from orchscan.reports.arazzo.inferred_openapi import observed_operations
from orchscan.reports.names import ARAZZO_NAMES, FILE_NAMES, unique_names

#: Arazzo version written unless a flow needs something only a later version has.
ARAZZO_VERSION = "1.0.1"

#: File name ending of an inferred OpenAPI stand-in.
INFERRED_SUFFIX = ".inferred.openapi.yaml"

_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]+")
_NOT_OUTPUT = re.compile(r"[^A-Za-z0-9._-]+")
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ServiceApi:
    """One service's API description and the file it is read from (or will be written to)."""

    service: str
    path: PurePath
    spec: Spec | None = None
    operations: tuple[Operation, ...] = ()

    def all_operations(self) -> tuple[Operation, ...]:
        """Operations of the loaded spec, or the inferred ones for a service without a spec."""
        return self.spec.operations if self.spec is not None else self.operations


def plan_apis(
    flows: Sequence[Flow],
    specs: Mapping[str, ServiceApi],
    *,
    folder: PurePath,
    success_statuses: Mapping[tuple[str, str], tuple[int, ...]] | None = None,
) -> dict[str, ServiceApi]:
    """The services' specs, plus a stand-in in ``folder`` for each service the flows call without one.

    A stand-in holds the operations every one of ``flows`` was seen calling, whoever owns the
    flow, so that one file serves every draft that references it.
    """
    apis = {service: api for service, api in specs.items() if api.spec is not None}
    missing = sorted(_called_services(flows) - set(apis))
    names = unique_names(missing, FILE_NAMES)
    for service in missing:
        path = folder / f"{names[service]}{INFERRED_SUFFIX}"
        operations = observed_operations(service, flows, source=path.name, success_statuses=success_statuses)
        if operations:
            apis[service] = ServiceApi(service, path, None, operations)
    return apis


def build_arazzo(
    flows: Sequence[Flow],
    apis: Mapping[str, ServiceApi],
    *,
    arazzo_path: PurePath,
    success_statuses: Mapping[tuple[str, str], tuple[int, ...]] | None = None,
) -> dict[str, Any]:
    """The Arazzo document for the flows of one owner: one workflow per entry operation.

    ``apis`` come from :func:`plan_apis`; source description URLs are relative to the folder of
    ``arazzo_path``, which must be given relative to the same base as the APIs' paths.
    """
    owners = {flow.owner for flow in flows}
    if len(owners) != 1:
        raise ValueError(f"build_arazzo takes the flows of exactly one owner, got {sorted(owners)}")
    owner = owners.pop()
    statuses = success_statuses or {}
    called = {service: apis[service] for service in sorted(_called_services(flows)) if service in apis}
    names = unique_names(called, ARAZZO_NAMES)
    qualify = len(called) > 1
    documented = apis.get(owner)
    owner_api = documented if documented is not None and documented.spec is not None else None
    workflow_ids = _Ids()
    workflows = [
        _Workflow(flow, called, names, qualify, statuses, owner_api).build(workflow_ids)
        for flow in sorted(flows, key=lambda f: (f.entry.key, f.id))
    ]
    used = sorted({source for wf in workflows for source in wf.pop("x-orchscan-sources")})
    service_of = {name: service for service, name in names.items()}
    requests = sum(flow.requests for flow in flows)
    return {
        "arazzo": ARAZZO_VERSION,
        "info": {
            "title": f"{owner}: orchestrated workflows (draft)",
            "summary": f"Drafted by orchscan from {requests} traced requests to {owner}",
            "description": (
                f"{owner} coordinates other services behind {len(flows)} entry operation(s). "
                "This is a draft inferred from traces: review every step, handoff and failure "
                "action (see the x-orchscan-* extensions for confidence and evidence) before use."
            ),
            "version": "0.1.0-draft",
        },
        "sourceDescriptions": [_source(called[service_of[name]], name, arazzo_path) for name in used],
        "workflows": workflows,
        "x-orchscan-owner": owner,
    }


# --- building one workflow -------------------------------------------------------------------


@dataclass
class _StepDraft:
    """A step being assembled; turned into the Arazzo step object at the end."""

    step_id: str
    operation: Operation
    source: str
    description: str
    extensions: dict[str, Any]
    parameters: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    success: list[dict[str, str]] = field(default_factory=list)
    on_success: list[dict[str, Any]] = field(default_factory=list)
    on_failure: list[dict[str, Any]] = field(default_factory=list)

    def output(self, pointer: str) -> str:
        """The name under which this step exposes the response field at ``pointer``."""
        wanted = f"$response.body#{pointer}"
        for name, expression in self.outputs.items():
            if expression == wanted:
                return name
        base = _output_name(pointer)
        name, n = base, 1
        while name in self.outputs:
            n += 1
            name = f"{base}_{n}"
        self.outputs[name] = wanted
        return name

    def render(self, qualify: bool) -> dict[str, Any]:
        operation_id = self.operation.operation_id
        step: dict[str, Any] = {"stepId": self.step_id, "description": self.description}
        if _PLAIN_ID.fullmatch(operation_id):
            step["operationId"] = (
                f"$sourceDescriptions.{self.source}.{operation_id}" if qualify else operation_id
            )
        else:
            # Real specs carry operationIds such as "Get cart" that cannot sit inside a runtime
            # expression; the JSON pointer to the operation is unambiguous.
            step["operationPath"] = f"{{$sourceDescriptions.{self.source}.url}}#{self.operation.pointer}"
        if self.parameters:
            step["parameters"] = [self.parameters[key] for key in sorted(self.parameters)]
        if self.body:
            step["requestBody"] = {"contentType": "application/json", "payload": self.body}
        step["successCriteria"] = self.success
        if self.on_success:
            step["onSuccess"] = self.on_success
        if self.on_failure:
            step["onFailure"] = self.on_failure
        if self.outputs:
            step["outputs"] = {name: self.outputs[name] for name in sorted(self.outputs)}
        step.update({key: self.extensions[key] for key in sorted(self.extensions)})
        return step


class _Workflow:
    """Turns one flow into one Arazzo workflow object."""

    def __init__(
        self,
        flow: Flow,
        apis: Mapping[str, ServiceApi],
        names: Mapping[str, str],
        qualify: bool,
        statuses: Mapping[tuple[str, str], tuple[int, ...]],
        owner_api: ServiceApi | None,
    ) -> None:
        self.flow = flow
        self.apis = apis
        self.names = names
        self.qualify = qualify
        self.statuses = statuses
        self.entry = operation_of(flow.entry, owner_api.all_operations()) if owner_api else None
        self.step_ids = _Ids()
        self.inputs: dict[str, dict[str, Any]] = {}
        self.required_inputs: set[str] = set()
        self.sources: set[str] = set()

    def build(self, taken: _Ids) -> dict[str, Any]:
        flow = self.flow
        main: dict[int, _StepDraft] = {}
        unmodelled: list[str] = []
        for step in sorted(flow.steps, key=lambda s: s.index):
            draft = self.step(step)
            if draft is None:
                unmodelled.append(f"step {step.index}: {step.operation.service} {step.operation.key}")
            else:
                main[step.index] = draft
        for handoff in sorted(
            flow.handoffs, key=lambda h: (h.to_step, h.parameter, -h.confidence, h.from_step)
        ):
            self.hand_off(handoff, main)
        for draft in main.values():
            self.fill_required(draft)
        compensations = self.compensate(main)
        ordered = [main[index] for index in sorted(main)]
        if compensations and ordered:
            # The compensation steps follow the main path; without an explicit end they would run
            # after a successful last step.
            ordered[-1].on_success = [{"name": "done", "type": "end"}]
        workflow_id = taken.unique(_name(flow.entry.operation_id or flow.id))
        workflow: dict[str, Any] = {
            "workflowId": workflow_id,
            "summary": f"{flow.entry.key} on {flow.owner}",
            "description": self.description(len(ordered)),
        }
        if self.inputs:
            inputs: dict[str, Any] = {
                "type": "object",
                "properties": {name: self.inputs[name] for name in sorted(self.inputs)},
            }
            if self.required_inputs:
                inputs["required"] = sorted(self.required_inputs)
            workflow["inputs"] = inputs
        workflow["steps"] = [d.render(self.qualify) for d in ordered + compensations]
        outputs = self.workflow_outputs(ordered)
        if outputs:
            workflow["outputs"] = outputs
        workflow["x-orchscan-flow"] = {
            "id": flow.id,
            "owner": flow.owner,
            "entry": flow.entry.key,
            "requests": flow.requests,
            "support": round(flow.support, 3),
            "long-running": flow.long_running,
            "duration-p50-ms": round(flow.duration_p50_ms, 1),
            "duration-p95-ms": round(flow.duration_p95_ms, 1),
            "example-traces": list(flow.example_traces),
        }
        opportunities = self.opportunities(main)
        if opportunities:
            workflow["x-orchscan-parallel-opportunities"] = opportunities
        if flow.variants:
            workflow["x-orchscan-variants"] = [
                {"steps": list(v.steps), "requests": v.requests, "support": round(v.support, 3)}
                for v in flow.variants
            ]
        if unmodelled:
            workflow["x-orchscan-unmodelled-steps"] = unmodelled
        workflow["x-orchscan-sources"] = sorted(self.sources)
        return workflow

    def opportunities(self, main: Mapping[int, _StepDraft]) -> list[dict[str, Any]]:
        """Steps that ran one after another with nothing observed ordering them: a hint that they
        could run together (Arazzo has no parallel construct), with the latency it would save."""
        found = []
        for opportunity in self.flow.parallel_opportunities:
            drafted = [main[index].step_id for index in opportunity.steps if index in main]
            if len(drafted) < 2:
                continue
            found.append(
                {
                    "steps": drafted,
                    "saving-ms": {
                        "p50": round(opportunity.saving_p50_ms, 1),
                        "p95": round(opportunity.saving_p95_ms, 1),
                    },
                    "requests": opportunity.requests,
                    "evidence": list(opportunity.evidence),
                }
            )
        return found

    def description(self, steps: int) -> str:
        flow = self.flow
        text = (
            f"Drafted from {flow.requests} traced requests ({flow.support:.0%} of {flow.entry.key}); "
            f"{steps} step(s) in the order most often observed."
        )
        if any(s.parallel_group is not None for s in flow.steps):
            text += (
                " Some steps ran concurrently (x-orchscan-parallel-group); Arazzo 1.0 has no parallel "
                "construct, so they are listed one after another."
            )
        if any(s.optional for s in flow.steps):
            text += (
                " Optional steps (x-orchscan-optional) were seen in only some requests;"
                " the condition is unknown."
            )
        if flow.parallel_opportunities:
            text += (
                " Some steps that ran one after another could run together "
                "(x-orchscan-parallel-opportunities, with the latency it would save)."
            )
        if flow.failure.uncompensated:
            text += (
                " Some failures left earlier side effects in place (x-orchscan-uncompensated); "
                "the draft does not invent compensations for them."
            )
        return text

    def step(self, step: Step) -> _StepDraft | None:
        api = self.apis.get(step.operation.service)
        operation = operation_of(step.operation, api.all_operations()) if api else None
        if api is None or operation is None:
            return None
        source = self.names[api.service]
        self.sources.add(source)
        step_id = self.step_ids.unique(_name(operation.operation_id))
        extensions: dict[str, Any] = {
            "x-orchscan-step": {
                "index": step.index,
                "service": step.operation.service,
                "operation": step.operation.key,
                "support": round(step.support, 3),
                "p50-ms": round(step.p50_ms, 1),
            }
        }
        text = (
            f"{step.operation.service}: {operation.key}. Seen in {step.support:.0%} of the flow's requests."
        )
        if step.optional:
            extensions["x-orchscan-optional"] = True
            text += " Optional: not every request made this call."
        if step.parallel_group is not None:
            extensions["x-orchscan-parallel-group"] = step.parallel_group
            peers = sorted(
                s.index for s in self.flow.steps if s.parallel_group == step.parallel_group and s is not step
            )
            text += (
                f" Ran concurrently with steps {', '.join(map(str, peers))}"
                f" (parallel group {step.parallel_group})."
            )
        if operation.inferred:
            text += " The operation is inferred from traffic (no OpenAPI description)."
        draft = _StepDraft(step_id, operation, source, text, extensions)
        draft.success = self.criteria(step.operation, operation)
        policy = step.retries or dict(self.flow.failure.retries).get(step.index)
        if policy is not None:
            draft.on_failure.append(_retry(policy))
            if policy.idempotency_key and operation.idempotency_header:
                name = self.add_input(
                    f"{step_id}_idempotency_key",
                    {"type": "string"},
                    required=True,
                    why=f"Idempotency key for {step_id}: the same value must be sent on every retry",
                )
                draft.parameters[("header", operation.idempotency_header.lower())] = {
                    "name": operation.idempotency_header,
                    "in": "header",
                    "value": f"$inputs.{name}",
                }
        return draft

    def criteria(self, ref: OperationRef, operation: Operation) -> list[dict[str, str]]:
        observed = self.statuses.get((ref.service, ref.key), ())
        codes = sorted(set(observed)) or sorted(
            int(r.status) for r in operation.responses if r.status.isdigit() and r.status.startswith("2")
        )
        if not codes:
            return [{"condition": "$statusCode >= 200"}, {"condition": "$statusCode < 300"}]
        return [{"condition": " || ".join(f"$statusCode == {code}" for code in codes)}]

    def hand_off(self, handoff: Handoff, main: Mapping[int, _StepDraft]) -> None:
        target = main.get(handoff.to_step)
        if target is None:
            return
        if handoff.from_step == 0:
            name = self.add_input(
                _output_name(handoff.output),
                self.entry_schema(handoff.output),
                required=True,
                why=f"From the entry request of {self.flow.entry.key}",
            )
            value = f"$inputs.{name}"
        else:
            origin = main.get(handoff.from_step)
            if origin is None or handoff.from_step >= handoff.to_step:
                return
            value = f"$steps.{origin.step_id}.outputs.{origin.output(_pointer(handoff.output))}"
        evidence = {
            "x-orchscan-confidence": round(handoff.confidence, 3),
            "x-orchscan-evidence": list(handoff.evidence),
        }
        if handoff.location == "body":
            _place(target.body, _pointer(handoff.parameter), value)
            target.extensions.setdefault("x-orchscan-body-handoffs", []).append(
                {"field": _pointer(handoff.parameter), "value": value} | evidence
            )
            return
        key = (
            handoff.location,
            handoff.parameter.lower() if handoff.location == "header" else handoff.parameter,
        )
        if key in target.parameters:
            return  # a weaker candidate for a parameter already set (handoffs are sorted by confidence)
        target.parameters[key] = {
            "name": handoff.parameter,
            "in": handoff.location,
            "value": value,
        } | evidence

    def fill_required(self, draft: _StepDraft) -> None:
        """Required parameters and body fields no handoff explains become workflow inputs."""
        for parameter in draft.operation.parameters:
            key = (
                parameter.location,
                parameter.name.lower() if parameter.location == "header" else parameter.name,
            )
            if not parameter.required or key in draft.parameters:
                continue
            name = self.add_input(
                _output_name(parameter.name),
                {"type": parameter.type} if parameter.type else {},
                required=True,
                why=f"Required {parameter.location} parameter of {draft.step_id}; no handoff explains it",
            )
            draft.parameters[key] = {
                "name": parameter.name,
                "in": parameter.location,
                "value": f"$inputs.{name}",
            }
        for item in draft.operation.request_fields:
            if (
                item.required
                and "/" not in item.pointer.strip("/")
                and _get(draft.body, item.pointer) is None
            ):
                name = self.add_input(
                    _output_name(item.pointer),
                    {"type": item.type} if item.type else {},
                    required=True,
                    why=f"Required body field of {draft.step_id}; no handoff explains it",
                )
                _place(draft.body, item.pointer, f"$inputs.{name}")

    def compensate(self, main: Mapping[int, _StepDraft]) -> list[_StepDraft]:
        """Compensation steps reached only through ``goto`` from the step whose failure triggers them."""
        chains: dict[int, list[Compensation]] = {}
        for item in self.flow.failure.compensations:
            if item.failed_step in main and item.undone_step in main:
                chains.setdefault(item.failed_step, []).append(item)
        drafts: list[_StepDraft] = []
        for failed in sorted(chains):
            # Undo the most recent side effect first, as the observed orchestrator did.
            chain = sorted(chains[failed], key=lambda c: -c.undone_step)
            chain_drafts = [d for d in (self.compensation_step(c, main) for c in chain) if d is not None]
            if not chain_drafts:
                continue
            for draft, following in zip(chain_drafts, [*chain_drafts[1:], None], strict=True):
                draft.on_success = (
                    [{"name": "next-compensation", "type": "goto", "stepId": following.step_id}]
                    if following
                    else [{"name": "compensated", "type": "end"}]
                )
                draft.on_failure = [{"name": "compensation-failed", "type": "end"}]
            origin = main[failed]
            origin.on_failure.append(
                {
                    "name": "compensate",
                    "type": "goto",
                    "stepId": chain_drafts[0].step_id,
                    "x-orchscan-evidence": [
                        f"{c.requests} request(s) called {c.operation.key} on {c.operation.service}"
                        " after this step failed"
                        for c in chain
                    ],
                }
            )
            drafts += chain_drafts
        for draft in main.values():
            # Without a compensation, a failure (after any retries) ends the workflow.
            if all(action["type"] == "retry" for action in draft.on_failure):
                draft.on_failure.append({"name": "stop", "type": "end"})
        return drafts

    def compensation_step(self, item: Compensation, main: Mapping[int, _StepDraft]) -> _StepDraft | None:
        api = self.apis.get(item.operation.service)
        operation = operation_of(item.operation, api.all_operations()) if api else None
        if api is None or operation is None:
            return None
        undone, failed = main[item.undone_step], main[item.failed_step]
        source = self.names[api.service]
        self.sources.add(source)
        step_id = self.step_ids.unique(_name(f"undo-{undone.step_id}-after-{failed.step_id}"))
        draft = _StepDraft(
            step_id,
            operation,
            source,
            f"Compensation: undoes {undone.step_id} when {failed.step_id} fails "
            f"(seen in {item.requests} request(s)). Reached only through onFailure goto.",
            {
                "x-orchscan-compensation": {
                    "failed-step": item.failed_step,
                    "undone-step": item.undone_step,
                    "requests": item.requests,
                }
            },
        )
        draft.success = self.criteria(item.operation, operation)
        fields = {f.pointer for r in undone.operation.responses for f in r.fields}
        for parameter in operation.parameters:
            if not parameter.required:
                continue
            pointer, confidence = _guess_field(parameter.name, fields)
            key = (parameter.location, parameter.name)
            if pointer is None:
                continue  # fill_required below makes it an input
            draft.parameters[key] = {
                "name": parameter.name,
                "in": parameter.location,
                "value": f"$steps.{undone.step_id}.outputs.{undone.output(pointer)}",
                "x-orchscan-confidence": confidence,
                "x-orchscan-evidence": [f"{undone.step_id} returns {pointer.lstrip('/')}; matched by name"],
            }
        self.fill_required(draft)
        return draft

    def add_input(self, name: str, schema: dict[str, Any], *, required: bool, why: str) -> str:
        if name not in self.inputs:
            self.inputs[name] = schema | {"description": why}
        if required:
            self.required_inputs.add(name)
        return name

    def entry_schema(self, output: str) -> dict[str, Any]:
        """The JSON Schema type of an entry-request field, as the owner's spec documents it."""
        if self.entry is None:
            return {}
        pointer = _pointer(output)
        for item in self.entry.request_fields:
            if item.pointer == pointer and item.type:
                return {"type": item.type} if "|" not in item.type else {"type": item.type.split("|")}
        for parameter in self.entry.parameters:
            if parameter.name == output.lstrip("/") and parameter.type:
                return {"type": parameter.type}
        return {}

    def workflow_outputs(self, ordered: Sequence[_StepDraft]) -> dict[str, str]:
        names = [name for d in ordered for name in d.outputs]
        outputs: dict[str, str] = {}
        for draft in ordered:
            for name in draft.outputs:
                key = name if names.count(name) == 1 else f"{draft.step_id}.{name}"
                outputs[_NOT_OUTPUT.sub("_", key)] = f"$steps.{draft.step_id}.outputs.{name}"
        return {key: outputs[key] for key in sorted(outputs)}


# --- helpers ---------------------------------------------------------------------------------


def _called_services(flows: Iterable[Flow]) -> set[str]:
    services: set[str] = set()
    for flow in flows:
        services |= {s.operation.service for s in flow.steps}
        services |= {c.operation.service for c in flow.failure.compensations}
    return services


def _source(api: ServiceApi, name: str, arazzo_path: PurePath) -> dict[str, Any]:
    # The spec's own file name is kept in its copy (other files may refer to it); a URL escapes it.
    url = quote(_relative(api.path, arazzo_path.parent), safe="/")
    source: dict[str, Any] = {"name": name, "url": url, "type": "openapi"}
    if api.spec is None:
        source["x-orchscan-inferred"] = True
    return source


def _relative(target: PurePath, start: PurePath) -> str:
    """``target`` as a POSIX path relative to the folder ``start`` (both relative to one base)."""
    common = 0
    for mine, theirs in zip(target.parts, start.parts, strict=False):
        if mine != theirs:
            break
        common += 1
    return "/".join([".."] * (len(start.parts) - common) + list(target.parts[common:]))


def _retry(policy: RetryPolicy) -> dict[str, Any]:
    action: dict[str, Any] = {
        "name": "retry",
        "type": "retry",
        "retryAfter": round(policy.median_delay_ms / 1000, 3),
        "retryLimit": max(1, policy.max_attempts - 1),
    }
    if policy.status_codes:
        action["criteria"] = [
            {"condition": " || ".join(f"$statusCode == {code}" for code in sorted(policy.status_codes))}
        ]
    action["x-orchscan-evidence"] = [
        f"{policy.requests_with_retries} request(s) repeated this call after a failure, "
        f"up to {policy.max_attempts} attempts, median delay {policy.median_delay_ms:.0f} ms"
    ]
    return action


def _guess_field(parameter: str, fields: set[str]) -> tuple[str | None, float]:
    """The response field of the undone step that most likely feeds a compensation parameter."""
    wanted = _loose(parameter)
    for pointer in sorted(fields):
        if "/" not in pointer.strip("/") and _loose(pointer) == wanted:
            return pointer, 0.8
    if wanted.endswith("id") and "/id" in fields:
        return "/id", 0.5
    return None, 0.0


def _loose(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _name(text: str) -> str:
    """A name valid as stepId, workflowId or source name (``[A-Za-z0-9_-]+``)."""
    return _NOT_NAME.sub("-", text).strip("-") or "unnamed"


class _Ids:
    """Ids unique within one document: a name given again becomes ``name-2``, ``name-3``, ...

    Each name remembers the suffix it reached, so a flow whose thousand steps share a few
    names costs a thousand lookups, not half a million."""

    def __init__(self) -> None:
        self._taken: set[str] = set()
        self._next: dict[str, int] = {}

    def unique(self, name: str) -> str:
        """``name``, or the first ``name-N`` not given yet."""
        n = self._next.get(name, 1)
        candidate = name if n == 1 else f"{name}-{n}"
        while candidate in self._taken:
            n += 1
            candidate = f"{name}-{n}"
        self._next[name] = n + 1
        self._taken.add(candidate)
        return candidate


def _output_name(pointer: str) -> str:
    segments = [s for s in pointer.strip("/").split("/") if s and not s.isdigit()]
    return _NOT_OUTPUT.sub("_", "_".join(segments[-2:] if len(segments) > 1 else segments)) or "value"


def _pointer(name: str) -> str:
    return name if name.startswith("/") else "/" + name.replace("~", "~0").replace("/", "~1")


def _place(body: dict[str, Any], pointer: str, value: str) -> None:
    """Put ``value`` at ``pointer`` inside a payload, creating objects on the way."""
    segments = [s.replace("~1", "/").replace("~0", "~") for s in pointer.strip("/").split("/")]
    node = body
    for segment in segments[:-1]:
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            return
        node = child
    node.setdefault(segments[-1], value)


def _get(body: Mapping[str, Any], pointer: str) -> Any:
    node: Any = body
    for segment in pointer.strip("/").split("/"):
        if not isinstance(node, Mapping) or segment not in node:
            return None
        node = node[segment]
    return node
