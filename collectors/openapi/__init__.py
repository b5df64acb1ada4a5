"""OpenAPI 3.0/3.1 and Swagger 2.0 specs: safe loading, ``$ref`` resolution, the operation model
and binding specs to traced services."""

from orchscan.collectors.openapi.binding import (
    Binding,
    SpecBindings,
    bind_specs,
    load_mapping,
    normalise_name,
)
from orchscan.collectors.openapi.documents import Limits
from orchscan.collectors.openapi.loader import load_specs
from orchscan.collectors.openapi.model import (
    Field,
    Operation,
    Parameter,
    Response,
    Server,
    Spec,
    SpecProblem,
    SpecSet,
)

__all__ = [
    "Binding",
    "Field",
    "Limits",
    "Operation",
    "Parameter",
    "Response",
    "Server",
    "Spec",
    "SpecBindings",
    "SpecProblem",
    "SpecSet",
    "bind_specs",
    "load_mapping",
    "load_specs",
    "normalise_name",
]
