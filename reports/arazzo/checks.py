"""Checks of Arazzo documents: the official JSON Schema, and the references a schema cannot see.

Every draft orchscan writes passes both in the tests; ``check_references`` reads the OpenAPI
source descriptions the way an Arazzo runner would, relative to the Arazzo file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema

from orchscan.collectors.openapi.documents import DEFAULT_LIMITS, DocumentError, parse_document

_SCHEMAS = {"1.0": "v1.0.json", "1.1": "v1.1.json"}


def validate_arazzo(document: Any) -> tuple[str, ...]:
    """Errors against the official JSON Schema of the document's Arazzo version (none = valid)."""
    version = document.get("arazzo") if isinstance(document, dict) else None
    minor = ".".join(str(version).split(".")[:2]) if isinstance(version, str) else ""
    schema_file = _SCHEMAS.get(minor)
    if schema_file is None:
        return (f"unsupported or missing arazzo version {version!r}; known: {', '.join(sorted(_SCHEMAS))}",)
    schema = json.loads(resources.files(__package__).joinpath("schema", schema_file).read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    return tuple(
        sorted(
            f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in validator.iter_errors(document)
        )
    )


def check_references(document: Mapping[str, Any], *, base: Path) -> tuple[str, ...]:
    """Problems the schema and linters miss: unknown operations and unsupplied required parameters.

    ``base`` is the folder the Arazzo file lives in; OpenAPI source descriptions are read from
    their URLs relative to it.
    """
    problems: list[str] = []
    sources: dict[str, dict[str, _DocumentedOperation]] = {}
    pointers: dict[str, dict[str, str]] = {}
    for source in document.get("sourceDescriptions", []):
        if source.get("type", "openapi") != "openapi":
            continue
        path = base / unquote(source["url"])
        try:
            openapi = parse_document(path.read_bytes(), DEFAULT_LIMITS)
        except (OSError, DocumentError) as error:
            problems.append(f"source {source['name']}: cannot read {source['url']}: {error}")
            continue
        sources[source["name"]] = _documented_operations(openapi)
        pointers[source["name"]] = _operation_pointers(openapi)
    for workflow in document.get("workflows", []):
        for step in workflow.get("steps", []):
            where = f"workflow {workflow.get('workflowId')} step {step.get('stepId')}"
            operation_id = step.get("operationId")
            if operation_id is None and isinstance(step.get("operationPath"), str):
                operation_id = _resolve_path(step["operationPath"], pointers)
                if operation_id.startswith("!"):
                    problems.append(f"{where}: {operation_id[1:]}")
                    continue
            if operation_id is None:
                continue
            found = _find_operation(operation_id, sources)
            if isinstance(found, str):
                problems.append(f"{where}: {found}")
                continue
            given = {
                (p.get("in"), p["name"].lower() if p.get("in") == "header" else p["name"])
                for p in step.get("parameters", [])
                if "name" in p
            }
            for location, name in sorted(found.required):
                key = (location, name.lower() if location == "header" else name)
                if key not in given:
                    problems.append(
                        f"{where}: required {location} parameter {name!r} of {operation_id} not set"
                    )
            for location, name in sorted(given - found.known):
                problems.append(f"{where}: {operation_id} has no {location} parameter {name!r}")
            if found.body_required and "requestBody" not in step:
                problems.append(f"{where}: {operation_id} requires a request body, none given")
    return tuple(problems)


@dataclass(frozen=True)
class _DocumentedOperation:
    """What check_references needs of one OpenAPI operation."""

    required: frozenset[tuple[str, str]]
    known: frozenset[tuple[str, str]]
    body_required: bool


def _documented_operations(openapi: Any) -> dict[str, _DocumentedOperation]:
    found: dict[str, _DocumentedOperation] = {}
    if not isinstance(openapi, dict):
        return found
    for item in (openapi.get("paths") or {}).values():
        item = _deref(openapi, item)
        shared = [_deref(openapi, p) for p in item.get("parameters", [])]
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
                continue
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            own = [_deref(openapi, p) for p in operation.get("parameters", [])]
            merged = {(p["in"], _header(p)): p for p in shared + own if "in" in p and "name" in p}
            body = _deref(openapi, operation.get("requestBody") or {})
            found[operation["operationId"]] = _DocumentedOperation(
                required=frozenset(
                    (loc, name) for (loc, name), p in merged.items() if p.get("required") or loc == "path"
                ),
                known=frozenset(merged),
                body_required=bool(body.get("required")),
            )
    return found


def _operation_pointers(openapi: Any) -> dict[str, str]:
    """JSON pointer of every operation -> the operationId check_references indexes it under."""
    found: dict[str, str] = {}
    if not isinstance(openapi, dict):
        return found
    for path, item in (openapi.get("paths") or {}).items():
        for method, operation in (item or {}).items():
            if isinstance(operation, dict) and "operationId" in operation:
                escaped = path.replace("~", "~0").replace("/", "~1")
                found[f"/paths/{escaped}/{method}"] = operation["operationId"]
    return found


def _resolve_path(operation_path: str, pointers: Mapping[str, Mapping[str, str]]) -> str:
    """``{$sourceDescriptions.x.url}#/paths/...`` -> qualified operationId, or ``!problem``."""
    match = re.fullmatch(r"\{\$sourceDescriptions\.([A-Za-z0-9_-]+)\.url\}#(.*)", operation_path)
    if match is None:
        return f"!operationPath {operation_path!r} is not {{$sourceDescriptions.<name>.url}}#<pointer>"
    source, pointer = match.groups()
    if source not in pointers:
        return f"!operationPath names unknown source description {source!r}"
    operation_id = pointers[source].get(pointer)
    if operation_id is None:
        return f"!operationPath {operation_path!r} points at no operation"
    return f"$sourceDescriptions.{source}.{operation_id}"


def _header(parameter: Mapping[str, Any]) -> str:
    name = str(parameter["name"])
    return name.lower() if parameter["in"] == "header" else name


def _deref(openapi: Mapping[str, Any], node: Any) -> Any:
    """Follow local ``$ref``s (``#/components/...``); check_references reads self-contained specs."""
    hops = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        hops += 1
        if hops > 32:
            return {}
        target: Any = openapi
        for segment in node["$ref"][2:].split("/"):
            segment = segment.replace("~1", "/").replace("~0", "~")
            target = target.get(segment, {}) if isinstance(target, dict) else {}
        node = target
    return node if isinstance(node, dict) else {}


def _find_operation(
    operation_id: str, sources: Mapping[str, Mapping[str, _DocumentedOperation]]
) -> _DocumentedOperation | str:
    if operation_id.startswith("$sourceDescriptions."):
        source, _, bare = operation_id[len("$sourceDescriptions.") :].partition(".")
        if source not in sources:
            return f"operationId {operation_id} names unknown source description {source!r}"
        found = sources[source].get(bare)
        return found if found is not None else f"operationId {bare!r} not found in source {source!r}"
    matches = [ops[operation_id] for ops in sources.values() if operation_id in ops]
    if len(matches) != 1:
        where = "several source descriptions" if matches else "no source description"
        return f"operationId {operation_id!r} found in {where}"
    return matches[0]
