"""How the service graph looks, shared by both drawings (Graphviz's and the tiered one).

Service names come from span data: each drawing escapes them itself. What is decided here is
only vocabulary the analysis produced (roles, edge kinds), so either drawing shows a service
the same way and the legend fits both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from orchscan.analyzer.results import Analysis, Edge, ServiceRole

#: Role -> (fill colour, border colour, Graphviz shape); the legend shows the same.
ROLE_STYLE: dict[str, tuple[str, str, str]] = {
    "orchestrator": ("#fde0dc", "#c62828", "hexagon"),
    "gateway": ("#dbeafe", "#1d4ed8", "invtrapezium"),
    "composer": ("#ede9fe", "#6d28d9", "parallelogram"),
    "choreography": ("#ffedd5", "#c2410c", "octagon"),
    "service": ("#f3f4f6", "#4b5563", "box"),
    "infrastructure": ("#e0f2f1", "#00695c", "cylinder"),
    "external": ("#fafafa", "#9e9e9e", "note"),
}

#: Roles the analysis gave to services that coordinate others: they are drawn as hubs. The
#: picture takes the analysis' decisions as they are; it has no threshold of its own.
HUB_ROLES = ("orchestrator", "gateway", "composer")

#: Label size in drawing units, in both drawings; the page scales the drawing so that labels are
#: never shown smaller than ``graph_svg.MIN_LABEL_PX`` in its first view.
LABEL_SIZE = 11

#: Labels longer than this are shortened in the drawing (the full name is the tooltip).
LABEL_CHARS = 36


def service_ids(analysis: Analysis) -> dict[str, str]:
    """Give each service (and each edge endpoint never classified) a stable DOM id."""
    names = sorted(
        {s.name for s in analysis.services} | {n for e in analysis.edges for n in (e.caller, e.callee)}
    )
    return {name: f"svc-{i}" for i, name in enumerate(names)}


def role_of(service: ServiceRole | None) -> str:
    """The role to draw; a name seen only at an edge's end never emitted a span: external."""
    return service.role if service else "external"


def is_hub(service: ServiceRole | None) -> bool:
    """Hubs are drawn bold: the services the analysis classified as coordinating others."""
    return role_of(service) in HUB_ROLES


def node_title(name: str, service: ServiceRole | None) -> str:
    """A node's tooltip: the full name, its role and the score the role was judged by."""
    if service is None:
        return f"{name} (external: never emitted a span)"
    hidden = " (hidden)" if service.hidden else ""
    return f"{name}: {service.role}{hidden}, score {service.score:.2f}"


def edge_width(edge: Edge) -> float:
    """Line width grows with the logarithm of the calls, so busy edges stand out but fit."""
    return 0.6 + math.log10(max(edge.calls, 1)) * 0.4


def edge_classes(edge: Edge, ids: Mapping[str, str]) -> str:
    """The classes the page's script reads: kind, and the ids of both ends."""
    return f"link kind-{edge.kind} from-{ids[edge.caller]} to-{ids[edge.callee]}"


def shorten(text: str) -> str:
    """Keep drawn labels short; the tooltip carries the full text."""
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"
