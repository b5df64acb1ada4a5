"""A minimal OpenAPI 3.1 document for a service that has none, synthesised from observed traffic.

An Arazzo step must name a real operation in a real source description. When a participating
service ships no spec, orchscan writes this stand-in beside the Arazzo drafts, one per service,
shared by every draft that calls it: only the operations the drafted flows were seen calling,
only the parameters and body fields they were seen passing or reading, every schema left open
(``additionalProperties: true``) because traffic proves that a field exists, never that no other
field does. The document and each operation are flagged ``x-orchscan-inferred: true`` so nobody
mistakes it for the service's contract.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from orchscan.analyzer.results import Flow, Handoff, OperationRef
from orchscan.collectors.openapi.model import Field, Operation, Parameter, Response
from orchscan.collectors.openapi.operation_ids import claim_operation_id, synthesise_operation_id

#: OpenAPI version of the synthesised documents.
OPENAPI_VERSION = "3.1.0"

_PATH_PARAMETER = re.compile(r"\{([^{}]+)\}")


def observed_operations(
    service: str,
    flows: Iterable[Flow],
    *,
    source: str,
    success_statuses: Mapping[tuple[str, str], tuple[int, ...]] | None = None,
) -> tuple[Operation, ...]:
    """The HTTP operations of ``service`` the flows call, with what the traffic showed of them."""
    statuses = success_statuses or {}
    found: dict[tuple[str, str], _Observed] = {}
    for flow in flows:
        by_index = {step.index: step.operation for step in flow.steps}
        refs = list(by_index.values()) + [c.operation for c in flow.failure.compensations]
        for ref in refs:
            if ref.service == service and ref.method and ref.route:
                found.setdefault((ref.method.upper(), ref.route), _Observed(ref))
        for handoff in flow.handoffs:
            target = by_index.get(handoff.to_step)
            if target is not None and target.service == service and target.method and target.route:
                found[(target.method.upper(), target.route)].inputs.append(handoff)
            origin = by_index.get(handoff.from_step)
            if origin is not None and origin.service == service and origin.method and origin.route:
                found[(origin.method.upper(), origin.route)].outputs.append(handoff.output)
    # Ids the traffic already carries (from a spec) are kept; the others are synthesised as the
    # spec reader does, unique within the document.
    taken = {o.ref.operation_id for o in found.values() if o.ref.operation_id}
    operations = [
        observed.operation(
            source,
            statuses.get((service, observed.ref.key), ()),
            observed.ref.operation_id or claim_operation_id(synthesise_operation_id(method, route), taken),
        )
        for (method, route), observed in sorted(found.items())
    ]
    return tuple(operations)


class _Observed:
    """What the flows showed of one operation: the reference, handoffs into it, outputs read."""

    def __init__(self, ref: OperationRef) -> None:
        self.ref = ref
        self.inputs: list[Handoff] = []
        self.outputs: list[str] = []

    def operation(self, source: str, statuses: tuple[int, ...], operation_id: str) -> Operation:
        method = (self.ref.method or "").upper()
        route = self.ref.route or ""
        parameters = {("path", name): Parameter("path", name, True, "string") for name in _path_names(route)}
        body: dict[str, Field] = {}
        for handoff in self.inputs:
            if handoff.location == "body":
                pointer = _pointer(handoff.parameter)
                body[pointer] = Field(pointer, None, False)
            elif (handoff.location, handoff.parameter) not in parameters:
                # Only path parameters are known to be required; the rest were merely seen.
                parameters[(handoff.location, handoff.parameter)] = Parameter(
                    handoff.location, handoff.parameter, False, None
                )
        fields = tuple(sorted({_pointer(o): Field(_pointer(o), None, False) for o in self.outputs}.values()))
        codes = [str(code) for code in sorted(set(statuses))] or ["2XX"]
        return Operation(
            method=method,
            path=route,
            operation_id=operation_id,
            inferred=True,
            parameters=tuple(sorted(parameters.values())),
            request_fields=tuple(sorted(body.values())),
            responses=tuple(Response(code, fields) for code in codes),
            idempotency_header=None,
            tags=(),
            servers=(),
            summary=f"{method} {route} as observed in traces",
            source=source,
            title=self.ref.service,
            pointer=f"/paths/{route.replace('~', '~0').replace('/', '~1')}/{method.lower()}",
        )


def build_inferred_openapi(service: str, operations: Iterable[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing ``operations``, flagged as inferred from traffic."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in sorted(operations):
        item: dict[str, Any] = {
            "operationId": operation.operation_id,
            "summary": operation.summary or operation.key,
            "x-orchscan-inferred": True,
        }
        if operation.parameters:
            item["parameters"] = [_parameter(p) for p in operation.parameters]
        if operation.request_fields:
            # Seen sent, never proven required; and one stand-in serves every draft, including
            # those whose flows were not seen passing a body to this operation.
            item["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": _object_schema(operation.request_fields)}},
            }
        item["responses"] = {response.status: _response(response) for response in sorted(operation.responses)}
        paths.setdefault(operation.path, {})[operation.method.lower()] = item
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": f"{service} (inferred from traces)",
            "version": "0.0.0-inferred",
            "description": (
                f"orchscan found no OpenAPI description for {service}. This document lists only "
                "the operations, parameters and body fields seen in traces; schemas are open. "
                "Replace it with the service's real description."
            ),
        },
        "x-orchscan-inferred": True,
        "x-service-name": service,
        "paths": {path: paths[path] for path in sorted(paths)},
    }


def _path_names(route: str) -> list[str]:
    return _PATH_PARAMETER.findall(route)


def _pointer(name: str) -> str:
    """Handoff outputs and body parameters are field names or JSON pointers; make them pointers."""
    return name if name.startswith("/") else "/" + name.replace("~", "~0").replace("/", "~1")


def _parameter(parameter: Parameter) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": parameter.type} if parameter.type else {}
    return {
        "name": parameter.name,
        "in": parameter.location,
        "required": parameter.required,
        "schema": schema,
    }


def _response(response: Response) -> dict[str, Any]:
    body: dict[str, Any] = {"description": "Observed response"}
    if response.fields:
        body["content"] = {"application/json": {"schema": _object_schema(response.fields)}}
    return body


def _object_schema(fields: Iterable[Field]) -> dict[str, Any]:
    """Nest flattened body fields back into an open object schema."""
    root: dict[str, Any] = {"type": "object", "additionalProperties": True, "properties": {}}
    for item in sorted(fields):
        node = root
        segments = [s.replace("~1", "/").replace("~0", "~") for s in item.pointer.strip("/").split("/")]
        for segment in segments[:-1]:
            child = node["properties"].setdefault(
                segment, {"type": "object", "additionalProperties": True, "properties": {}}
            )
            node = child
        node["properties"].setdefault(segments[-1], {"type": item.type} if item.type else {})
    return root
