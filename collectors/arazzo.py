"""Read existing Arazzo documents into small records, so documented workflows can be compared with traffic.

Only what conformance needs is kept: each step's operation, the runtime expressions it feeds its
parameters and body with, and its failure actions. Documents are read with the same bounded,
tag-free loader as OpenAPI specs; a malformed document raises :class:`ArazzoError` naming the
file and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchscan.collectors.openapi.documents import DEFAULT_LIMITS, DocumentError, Limits, parse_document

_METHODS = frozenset(("get", "put", "post", "delete", "options", "head", "patch", "trace"))


class ArazzoError(Exception):
    """An Arazzo document that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, order=True, slots=True)
class StepInput:
    """A value a step sends: ``location`` is path/query/header/cookie or ``body`` (``name`` a pointer)."""

    location: str
    name: str
    value: str


@dataclass(frozen=True, order=True, slots=True)
class FailureAction:
    """One ``onFailure`` action: ``kind`` is end, goto or retry; ``target`` the goto/retry step."""

    kind: str
    target: str | None
    retry_limit: int | None


@dataclass(frozen=True, slots=True)
class DocumentedStep:
    """One step of a documented workflow.

    ``operation_id`` is the bare operationId (the ``$sourceDescriptions.<name>.`` prefix removed);
    ``operation_key`` is ``METHOD /path`` when the step names its operation by ``operationPath``
    or carries orchscan's ``x-orchscan-step`` note; ``workflow`` names a called workflow instead.
    """

    step_id: str
    operation_id: str | None
    operation_key: str | None
    workflow: str | None
    inputs: tuple[StepInput, ...]
    on_failure: tuple[FailureAction, ...]


@dataclass(frozen=True, slots=True)
class DocumentedWorkflow:
    """A workflow of an Arazzo document; ``flow_id`` is the orchscan flow it was drafted from, if any."""

    file: str
    workflow_id: str
    steps: tuple[DocumentedStep, ...]
    flow_id: str | None


@dataclass(frozen=True, slots=True)
class ArazzoDocument:
    """A read Arazzo document: its version and workflows."""

    file: str
    version: str
    workflows: tuple[DocumentedWorkflow, ...]


def read_arazzo(path: Path, *, limits: Limits = DEFAULT_LIMITS) -> ArazzoDocument:
    """Read one Arazzo document (JSON or YAML) safely; raise ArazzoError with file and problem."""
    file = str(path)
    try:
        document = parse_document(path.read_bytes(), limits)
    except OSError as error:
        raise ArazzoError(f"{file}: cannot read: {error.strerror or error}") from None
    except DocumentError as error:
        raise ArazzoError(f"{file}: {error}") from None
    return parse_arazzo(document, file)


def parse_arazzo(document: Any, file: str) -> ArazzoDocument:
    """Turn a decoded Arazzo document into records; raise ArazzoError naming what is wrong."""
    if not isinstance(document, dict) or not isinstance(document.get("arazzo"), str):
        raise ArazzoError(f"{file}: not an Arazzo document (no 'arazzo' version string)")
    workflows = document.get("workflows")
    if not isinstance(workflows, list):
        raise ArazzoError(f"{file}: 'workflows' must be a list")
    read = []
    for index, workflow in enumerate(workflows):
        where = f"{file}#/workflows/{index}"
        if not isinstance(workflow, dict) or not isinstance(workflow.get("workflowId"), str):
            raise ArazzoError(f"{where}: a workflow needs a workflowId")
        steps = workflow.get("steps")
        if not isinstance(steps, list):
            raise ArazzoError(f"{where}: 'steps' must be a list")
        flow = workflow.get("x-orchscan-flow")
        read.append(
            DocumentedWorkflow(
                file=file,
                workflow_id=workflow["workflowId"],
                steps=tuple(_step(step, f"{where}/steps/{n}") for n, step in enumerate(steps)),
                flow_id=flow.get("id")
                if isinstance(flow, dict) and isinstance(flow.get("id"), str)
                else None,
            )
        )
    return ArazzoDocument(file, document["arazzo"], tuple(read))


def _step(step: Any, where: str) -> DocumentedStep:
    if not isinstance(step, dict) or not isinstance(step.get("stepId"), str):
        raise ArazzoError(f"{where}: a step needs a stepId")
    operation_id = step.get("operationId")
    if isinstance(operation_id, str) and operation_id.startswith("$sourceDescriptions."):
        operation_id = operation_id.split(".", 2)[2] if operation_id.count(".") >= 2 else None
    key = _key_of_path(step.get("operationPath"))
    note = step.get("x-orchscan-step")
    if key is None and isinstance(note, dict) and isinstance(note.get("operation"), str):
        key = note["operation"]
    inputs = [
        StepInput(str(p.get("in", "")), str(p["name"]), str(p.get("value", "")))
        for p in step.get("parameters", []) or []
        if isinstance(p, dict) and "name" in p
    ]
    body = step.get("requestBody")
    if isinstance(body, dict):
        inputs += [
            StepInput("body", pointer, value) for pointer, value in _expressions(body.get("payload"), "")
        ]
    actions = tuple(
        FailureAction(
            str(a.get("type")),
            a.get("stepId") if isinstance(a.get("stepId"), str) else None,
            a.get("retryLimit") if isinstance(a.get("retryLimit"), int) else None,
        )
        for a in step.get("onFailure", []) or []
        if isinstance(a, dict)
    )
    workflow = step.get("workflowId")
    return DocumentedStep(
        step_id=step["stepId"],
        operation_id=operation_id if isinstance(operation_id, str) else None,
        operation_key=key,
        workflow=workflow if isinstance(workflow, str) else None,
        inputs=tuple(sorted(inputs)),
        on_failure=actions,
    )


def _key_of_path(operation_path: Any) -> str | None:
    """``{$sourceDescriptions.x.url}#/paths/~1carts~1{id}/get`` -> ``GET /carts/{id}``."""
    if not isinstance(operation_path, str) or "#/paths/" not in operation_path:
        return None
    tokens = operation_path.split("#/paths/", 1)[1].split("/")
    if len(tokens) != 2 or tokens[1].lower() not in _METHODS:
        return None
    return f"{tokens[1].upper()} {tokens[0].replace('~1', '/').replace('~0', '~')}"


def _expressions(payload: Any, pointer: str) -> list[tuple[str, str]]:
    """Runtime expressions inside a request payload, with the JSON pointer where each sits."""
    if isinstance(payload, str) and payload.startswith("$"):
        return [(pointer or "/", payload)]
    if isinstance(payload, dict):
        return [
            found
            for key, value in payload.items()
            for found in _expressions(value, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}")
        ]
    return []
