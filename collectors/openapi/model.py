"""The operation model: what an OpenAPI document promises, reduced to what matching and Arazzo need.

Everything is a small frozen dataclass, sortable in a stable order, so later stages can compare,
group and render operations without touching the raw document again.
"""

from __future__ import annotations

from dataclasses import dataclass

#: HTTP methods an OpenAPI path item can hold, in the order the specification lists them.
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

#: Where a parameter travels.
PARAMETER_LOCATIONS = ("path", "query", "header", "cookie")


@dataclass(frozen=True, order=True, slots=True)
class SpecProblem:
    """Something in a spec that could not be used; the rest of the spec still loads.

    ``pointer`` is the JSON pointer (RFC 6901) of the offending node inside ``file``; an empty
    pointer means the whole document.
    """

    file: str
    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}#{self.pointer}: {self.message}"


@dataclass(frozen=True, order=True, slots=True)
class Parameter:
    """A declared request parameter.

    ``location`` is one of ``PARAMETER_LOCATIONS``; ``type`` is the JSON Schema type (several
    joined by ``|``), or None when the spec does not say.
    """

    location: str
    name: str
    required: bool
    type: str | None


@dataclass(frozen=True, order=True, slots=True)
class Field:
    """One property of a request or response body, flattened from its schema.

    ``pointer`` is a JSON pointer into a body instance (``/customer/firstName``); array items are
    addressed as element ``0`` so the pointer can be used in an Arazzo runtime expression.
    ``type`` joins the alternatives of ``oneOf``/``anyOf`` unions with ``|``.
    """

    pointer: str
    type: str | None
    required: bool

    @property
    def name(self) -> str:
        """The property's own name, the pointer's last segment."""
        return self.pointer.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")


@dataclass(frozen=True, order=True, slots=True)
class Response:
    """A documented response: status code (``200``, ``4XX``, ``default``) and its body fields."""

    status: str
    fields: tuple[Field, ...]


@dataclass(frozen=True, order=True, slots=True)
class Server:
    """Where an API is served: the declared URL, its host (None when relative) and base path."""

    url: str
    host: str | None
    base_path: str


@dataclass(frozen=True, order=True, slots=True)
class Operation:
    """One documented operation (a method on a path template).

    ``operation_id`` is the spec's own ``operationId`` verbatim, or, when the spec has none, one
    synthesised from method and path (matching ``[A-Za-z0-9_-]+``) with ``inferred`` set.
    ``pointer`` locates the operation object in ``source``. ``idempotency_header`` names a
    declared ``Idempotency-Key``-style header parameter.
    """

    method: str
    path: str
    operation_id: str
    inferred: bool
    parameters: tuple[Parameter, ...]
    request_fields: tuple[Field, ...]
    responses: tuple[Response, ...]
    idempotency_header: str | None
    tags: tuple[str, ...]
    servers: tuple[Server, ...]
    summary: str | None
    source: str
    title: str
    pointer: str

    @property
    def key(self) -> str:
        """The stable identity of the operation: upper-case method and path template."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True, order=True, slots=True)
class Spec:
    """One loaded API description and its operations.

    ``version`` is the document's ``openapi``/``swagger`` value; ``service_name`` is its
    ``x-service-name`` extension, if any.
    """

    source: str
    title: str
    version: str
    service_name: str | None
    servers: tuple[Server, ...]
    operations: tuple[Operation, ...]


@dataclass(frozen=True, slots=True)
class SpecSet:
    """Every spec read from the inputs plus every problem met while reading them."""

    specs: tuple[Spec, ...]
    problems: tuple[SpecProblem, ...]

    @property
    def operations(self) -> tuple[Operation, ...]:
        """All operations of all specs, in spec order."""
        return tuple(op for spec in self.specs for op in spec.operations)
