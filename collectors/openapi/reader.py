"""Turn one parsed OpenAPI 3.0/3.1 or Swagger 2.0 document into a Spec and its operations.

Every defect is recorded as a SpecProblem at its JSON pointer and only the defective part is
left out: a broken operation does not cost its siblings, a broken ``paths`` does not cost the
document's title and servers.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from orchscan.collectors.openapi.documents import Limits
from orchscan.collectors.openapi.model import (
    METHODS,
    PARAMETER_LOCATIONS,
    Field,
    Operation,
    Parameter,
    Response,
    Server,
    Spec,
    SpecProblem,
)
from orchscan.collectors.openapi.operation_ids import claim_operation_id, synthesise_operation_id
from orchscan.collectors.openapi.refs import Located, RefError, Resolver
from orchscan.collectors.openapi.schemas import flatten_schema

# Header names that carry an idempotency key (compared lower case).
_IDEMPOTENCY_HEADERS = frozenset(
    ("idempotency-key", "x-idempotency-key", "idempotencykey", "x-request-id-idempotency")
)
_SERVER_VARIABLE = re.compile(r"\{([^{}]+)\}")


class _Reader:
    def __init__(self, root: Located, resolver: Resolver, limits: Limits) -> None:
        self.root = root
        self.resolver = resolver
        self.limits = limits
        self.problems: list[SpecProblem] = []

    def problem(self, node: Located, message: str) -> None:
        self.problems.append(SpecProblem(node.file, node.pointer, message))

    def resolve(self, node: Located) -> Located | None:
        try:
            return self.resolver.resolve(node)
        except RefError as error:
            self.problems.append(SpecProblem(error.file, error.pointer, error.message))
            return None

    def text(self, node: Located) -> str | None:
        return node.value if isinstance(node.value, str) and node.value.strip() else None

    # -- the document -----------------------------------------------------------------------

    def read(self) -> Spec | None:
        document = self.root.value
        if not isinstance(document, dict):
            self.problem(self.root, f"not an OpenAPI document: the top level is a {_kind(document)}")
            return None
        version = document.get("openapi", document.get("swagger"))
        version = str(version) if version is not None else ""
        if not (version.startswith("3.0") or version.startswith("3.1") or version == "2.0"):
            where = self.root.child("openapi" if "openapi" in document else "swagger")
            self.problem(where, f"unsupported version {version!r}: expected openapi 3.0/3.1 or swagger 2.0")
            return None
        swagger = version == "2.0"
        info = self.root.child("info")
        title = self.text(info.child("title")) if isinstance(info.value, dict) else None
        if title is None:
            self.problem(info, "info.title is missing")
            title = PurePosixPath(self.root.file).stem
        servers = self.swagger_servers() if swagger else self.servers(self.root.child("servers"))
        service_name = self.text(self.root.child("x-service-name"))
        operations = self.operations(swagger, servers, title)
        return Spec(self.root.file, title, version, service_name, servers, operations)

    def swagger_servers(self) -> tuple[Server, ...]:
        document = self.root.value
        host = document.get("host") if isinstance(document.get("host"), str) else None
        base = document.get("basePath") if isinstance(document.get("basePath"), str) else ""
        base_path = _base_path(base)
        if host is None:
            return (Server(base or "/", None, base_path),)
        schemes = [s for s in document.get("schemes") or ["http"] if isinstance(s, str)] or ["http"]
        return tuple(
            Server(f"{scheme}://{host}{base_path}", urlsplit(f"//{host}").hostname, base_path)
            for scheme in schemes
        )

    def servers(self, node: Located) -> tuple[Server, ...]:
        if node.value is None:
            return ()
        if not isinstance(node.value, list):
            self.problem(node, f"servers must be a list, found a {_kind(node.value)}")
            return ()
        found = []
        for index, raw in enumerate(node.value):
            entry = node.child(index)
            if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
                self.problem(entry, "server without a url")
                continue
            url = _substitute_variables(raw["url"], raw.get("variables"))
            parts = urlsplit(url)
            found.append(Server(raw["url"], parts.hostname, _base_path(parts.path)))
        return tuple(found)

    # -- operations -------------------------------------------------------------------------

    def operations(self, swagger: bool, servers: tuple[Server, ...], title: str) -> tuple[Operation, ...]:
        paths = self.root.child("paths")
        if paths.value is None:
            return ()
        if not isinstance(paths.value, dict):
            self.problem(paths, f"paths must be a mapping of path templates, found a {_kind(paths.value)}")
            return ()
        found: list[Operation] = []
        for template in paths.value:
            item_node = paths.child(str(template))
            if not isinstance(template, str) or not template.startswith("/"):
                self.problem(item_node, f"path {template!r} does not start with '/'")
                continue
            item = self.resolve(item_node)
            if item is None:
                continue
            if not isinstance(item.value, dict):
                self.problem(item, f"path item must be a mapping, found a {_kind(item.value)}")
                continue
            item_servers = servers if swagger else (self.servers(item.child("servers")) or servers)
            shared = self.parameters(item.child("parameters"))
            for method in METHODS:
                if method not in item.value:
                    continue
                node = item.child(method)
                if not isinstance(node.value, dict):
                    self.problem(node, f"operation must be a mapping, found a {_kind(node.value)}")
                    continue
                found.append(self.operation(node, method, template, swagger, item_servers, shared, title))
        return _unique_ids(found, self)

    def operation(
        self,
        node: Located,
        method: str,
        template: str,
        swagger: bool,
        servers: tuple[Server, ...],
        shared: dict[tuple[str, str], tuple[Parameter, Located]],
        title: str,
    ) -> Operation:
        own = self.parameters(node.child("parameters"))
        merged = {**shared, **own}  # an operation's parameter overrides the path item's
        parameters = tuple(sorted(p for p, _ in merged.values() if p.location in PARAMETER_LOCATIONS))
        if swagger:
            request_fields = self.swagger_body(merged)
        else:
            request_fields = self.request_body(node.child("requestBody"))
        operation_id = self.text(node.child("operationId"))
        tags = node.value.get("tags")
        idempotency = next(
            (p.name for p in parameters if p.location == "header" and p.name.lower() in _IDEMPOTENCY_HEADERS),
            None,
        )
        return Operation(
            method=method.upper(),
            path=template,
            operation_id=operation_id or synthesise_operation_id(method, template),
            inferred=operation_id is None,
            parameters=parameters,
            request_fields=request_fields,
            responses=self.responses(node.child("responses"), swagger),
            idempotency_header=idempotency,
            tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
            servers=servers if swagger else (self.servers(node.child("servers")) or servers),
            summary=self.text(node.child("summary")),
            source=self.root.file,
            title=title,
            pointer=node.pointer,
        )

    def parameters(self, node: Located) -> dict[tuple[str, str], tuple[Parameter, Located]]:
        if node.value is None:
            return {}
        if not isinstance(node.value, list):
            self.problem(node, f"parameters must be a list, found a {_kind(node.value)}")
            return {}
        found: dict[tuple[str, str], tuple[Parameter, Located]] = {}
        for index in range(len(node.value)):
            resolved = self.resolve(node.child(index))
            if resolved is None:
                continue
            raw = resolved.value
            if (
                not isinstance(raw, dict)
                or not isinstance(raw.get("name"), str)
                or not isinstance(raw.get("in"), str)
            ):
                self.problem(resolved, "parameter needs a name and an 'in'")
                continue
            location = raw["in"]
            if "schema" in raw and location != "body":
                types = _types(self.resolve(resolved.child("schema")))
            else:
                types = raw.get("type") if isinstance(raw.get("type"), str) else None
            required = bool(raw.get("required")) or location == "path"
            found[(location, raw["name"])] = (Parameter(location, raw["name"], required, types), resolved)
        return found

    def swagger_body(self, parameters: dict[tuple[str, str], tuple[Parameter, Located]]) -> tuple[Field, ...]:
        fields: list[Field] = []
        for (location, name), (parameter, node) in sorted(parameters.items()):
            if location == "body":
                fields += flatten_schema(node.child("schema"), self.resolver, self.limits, self.problems)
            elif location == "formData":
                fields.append(Field(f"/{name}", parameter.type, parameter.required))
        return tuple(sorted(set(fields)))

    def request_body(self, node: Located) -> tuple[Field, ...]:
        body = self.resolve(node) if node.value is not None else None
        if body is None or not isinstance(body.value, dict):
            return ()
        return self.content_fields(body.child("content"))

    def content_fields(self, content: Located) -> tuple[Field, ...]:
        if not isinstance(content.value, dict) or not content.value:
            return ()
        # JSON bodies are what flows pass along; other media types only when there is no JSON one.
        media = next(
            (m for m in content.value if isinstance(m, str) and "json" in m), next(iter(content.value))
        )
        schema = content.child(str(media)).child("schema")
        if schema.value is None:
            return ()
        return flatten_schema(schema, self.resolver, self.limits, self.problems)

    def responses(self, node: Located, swagger: bool) -> tuple[Response, ...]:
        if node.value is None:
            return ()
        if not isinstance(node.value, dict):
            self.problem(node, f"responses must be a mapping, found a {_kind(node.value)}")
            return ()
        found = []
        for status in node.value:
            response = self.resolve(node.child(str(status)))
            if response is None or not isinstance(response.value, dict):
                continue
            if swagger:
                schema = response.child("schema")
                fields = (
                    flatten_schema(schema, self.resolver, self.limits, self.problems)
                    if schema.value is not None
                    else ()
                )
            else:
                fields = self.content_fields(response.child("content"))
            found.append(Response(str(status), fields))
        return tuple(sorted(found))


def _types(node: Located | None) -> str | None:
    if node is None or not isinstance(node.value, dict):
        return None
    declared = node.value.get("type")
    if isinstance(declared, str):
        return declared
    if isinstance(declared, list):
        return "|".join(sorted(t for t in declared if isinstance(t, str))) or None
    return None


def _kind(value: Any) -> str:
    names: dict[type, str] = {dict: "mapping", list: "list", str: "string"}
    return names.get(type(value), type(value).__name__)


def _base_path(path: str) -> str:
    """A server's base path without trailing slash; '' for the root."""
    return "/" + path.strip("/") if path.strip("/") else ""


def _substitute_variables(url: str, variables: Any) -> str:
    """Fill server URL variables with their defaults so host and base path can be read."""
    defaults = variables if isinstance(variables, dict) else {}

    def fill(match: re.Match[str]) -> str:
        spec = defaults.get(match.group(1))
        return str(spec.get("default", "")) if isinstance(spec, dict) else ""

    return _SERVER_VARIABLE.sub(fill, url)


def _unique_ids(operations: list[Operation], reader: _Reader) -> tuple[Operation, ...]:
    """Make synthesised ids unique and report duplicated declared ones."""
    declared: dict[str, Operation] = {}
    for op in operations:
        if not op.inferred:
            if op.operation_id in declared:
                reader.problems.append(
                    SpecProblem(op.source, op.pointer, f"operationId {op.operation_id!r} is used twice")
                )
            declared.setdefault(op.operation_id, op)
    taken = set(declared)
    result = []
    for op in operations:
        if op.inferred:
            claimed = claim_operation_id(op.operation_id, taken)
            if claimed != op.operation_id:
                op = replace(op, operation_id=claimed)
        result.append(op)
    return tuple(result)


def read_spec(
    root: Located, resolver: Resolver, limits: Limits
) -> tuple[Spec | None, tuple[SpecProblem, ...]]:
    """Read a parsed document into a Spec (None if it is no OpenAPI document) and its problems."""
    reader = _Reader(root, resolver, limits)
    spec = reader.read()
    return spec, tuple(sorted(set(reader.problems)))
