"""The service graph as deterministic DOT, laid out by Graphviz's ``dot`` into inline SVG.

Service names come from span data and are untrusted. Nodes and edges get synthetic ids
(``svc-3``, ``edge-12``), labels are escaped for DOT (``dot`` escapes them again for XML), and the
SVG is checked element by element before it is inlined. Without ``dot`` (or when it fails) the
graph falls back to a circular layout computed here, with the same ids and classes so the
page's filters work on either.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html import escape

from orchscan.analyzer.results import ROLES, Analysis, Edge, ServiceRole

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

#: Edge kind -> Graphviz style: messaging is asynchronous, so it is dashed.
EDGE_STYLE = {"sync": "solid", "messaging": "dashed", "infrastructure": "dotted"}

#: A service whose score reaches this robust z-score is drawn as a hub.
HUB_SCORE = 3.5

#: Labels longer than this are shortened in the drawing (the full name is the tooltip).
LABEL_CHARS = 36

_DOT_TIMEOUT_S = 120
_SVG = "{http://www.w3.org/2000/svg}"
_ALLOWED_TAGS = frozenset(
    _SVG + t for t in ("svg", "g", "title", "a", "polygon", "polyline", "ellipse", "path", "text", "defs")
)
_ALLOWED_ATTRIBUTES = frozenset(
    (
        "id",
        "class",
        "width",
        "height",
        "viewBox",
        "transform",
        "fill",
        "stroke",
        "stroke-width",
        "stroke-dasharray",
        "points",
        "cx",
        "cy",
        "rx",
        "ry",
        "d",
        "x",
        "y",
        "text-anchor",
        "font-family",
        "font-size",
        "font-weight",
        "{http://www.w3.org/1999/xlink}title",
    )
)


class UnsafeSvg(ValueError):
    """The SVG contains an element or attribute we never emit: refuse to inline it."""


@dataclass(frozen=True)
class ServiceGraph:
    """The drawn graph: SVG markup, which engine drew it, and a notice when it fell back."""

    svg: str
    engine: str
    notice: str | None


def service_ids(analysis: Analysis) -> dict[str, str]:
    """Give each service (and each edge endpoint never classified) a stable DOM id."""
    names = sorted(
        {s.name for s in analysis.services} | {n for e in analysis.edges for n in (e.caller, e.callee)}
    )
    return {name: f"svc-{i}" for i, name in enumerate(names)}


def is_hub(service: ServiceRole) -> bool:
    """Hubs are drawn bold: coordinators and anything scoring as conspicuous."""
    return service.role in ("orchestrator", "gateway", "composer") or service.score >= HUB_SCORE


def build_dot(analysis: Analysis) -> str:
    """Write the service graph as DOT with sorted nodes and edges, so equal input gives equal text."""
    ids = service_ids(analysis)
    roles = {s.name: s for s in analysis.services}
    lines = [
        "digraph landscape {",
        '  graph [rankdir=LR, bgcolor="transparent", nodesep=0.25, ranksep=0.9, outputorder=edgesfirst];',
        '  node [style="filled", fontname="Helvetica", fontsize=11, penwidth=1.2];',
        '  edge [fontname="Helvetica", fontsize=9, arrowsize=0.6, color="#64748b"];',
    ]
    for name in sorted(ids):
        service = roles.get(name)
        role = service.role if service else "external"
        fill, border, shape = ROLE_STYLE.get(role, ROLE_STYLE["service"])
        classes = f"svc role-{role}"
        extra = ""
        if service and is_hub(service):
            classes += " hub"
            extra = ", penwidth=3, fontsize=13"
        if service and service.hidden:
            classes += " hidden-orchestrator"
            extra += ", peripheries=2"
        lines.append(
            f'  "{ids[name]}" [id="{ids[name]}", class="{classes}", shape={shape}, fillcolor="{fill}", '
            f'color="{border}", label="{escape_dot(shorten(name))}", tooltip="{escape_dot(name)}"{extra}];'
        )
    for index, edge in enumerate(analysis.edges):
        lines.append(f"  {_dot_edge(edge, index, ids)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_edge(edge: Edge, index: int, ids: dict[str, str]) -> str:
    width = 0.8 + math.log10(max(edge.calls, 1)) * 0.7
    classes = f"link kind-{edge.kind} from-{ids[edge.caller]} to-{ids[edge.callee]}"
    tooltip = f"{edge.caller} → {edge.callee}: {edge.calls} calls, {edge.errors} errors"
    return (
        f'"{ids[edge.caller]}" -> "{ids[edge.callee]}" [id="edge-{index}", class="{classes}", '
        f'style={EDGE_STYLE.get(edge.kind, "solid")}, penwidth={width:.2f}, tooltip="{escape_dot(tooltip)}"];'
    )


def shorten(text: str) -> str:
    """Keep drawn labels short; the tooltip carries the full text."""
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def escape_dot(text: str) -> str:
    r"""Quote text for a DOT string: no escape sequence (``\N``, ``\G``), entity or control survives."""
    text = re.sub(r"[\x00-\x1f\x7f]", " ", text)
    # Graphviz passes entities through to XML, so a literal '&' must become '&amp;' to stay text.
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")


def render_graph(analysis: Analysis) -> ServiceGraph:
    """Lay the graph out with ``dot``; fall back to a computed circular layout, never fail."""
    dot = shutil.which("dot")
    if dot is None:
        notice = "Graphviz's dot program was not found, so the graph uses a simple circular layout."
        return ServiceGraph(circular_svg(analysis), "fallback", notice)
    try:
        completed = subprocess.run(
            [dot, "-Tsvg"],
            input=build_dot(analysis).encode(),
            capture_output=True,
            check=True,
            timeout=_DOT_TIMEOUT_S,
        )
        return ServiceGraph(clean_svg(completed.stdout.decode()), "dot", None)
    except (OSError, subprocess.SubprocessError, UnsafeSvg, ET.ParseError) as error:
        notice = (
            f"Graphviz's dot could not draw the graph ({_describe(error)}), so it uses a circular layout."
        )
        return ServiceGraph(circular_svg(analysis), "fallback", notice)


def _describe(error: Exception) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        lines = (error.stderr or b"").decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {error.returncode}"
    return type(error).__name__ + (f": {error}" if str(error) else "")


def clean_svg(svg: str) -> str:
    """Strip the XML prolog and comments, then refuse any element or attribute we never emit."""
    root = ET.fromstring(svg)
    for element in root.iter():
        if element.tag not in _ALLOWED_TAGS:
            raise UnsafeSvg(f"unexpected element {element.tag}")
        for attribute in element.attrib:
            if attribute not in _ALLOWED_ATTRIBUTES:
                raise UnsafeSvg(f"unexpected attribute {attribute} on {element.tag}")
    start = svg.index("<svg")
    return re.sub(r"<!--.*?-->\n?", "", svg[start:], flags=re.DOTALL).strip()


def circular_svg(analysis: Analysis) -> str:
    """Place services on a circle (sorted by role, then name) and draw straight edges between them."""
    ids = service_ids(analysis)
    roles = {s.name: s for s in analysis.services}
    order = sorted(ids, key=lambda n: (_role_rank(roles.get(n)), n))
    radius = max(160.0, len(order) * 9.0)
    size = 2 * radius + 360
    centre = size / 2
    points = {
        name: (
            centre + radius * math.cos(2 * math.pi * i / len(order)),
            centre + radius * math.sin(2 * math.pi * i / len(order)),
        )
        for i, name in enumerate(order)
    }
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size:.0f}" height="{size:.0f}" '
        f'viewBox="0 0 {size:.0f} {size:.0f}" class="fallback-graph">'
    ]
    for index, edge in enumerate(analysis.edges):
        (x1, y1), (x2, y2) = points[edge.caller], points[edge.callee]
        dash = {"messaging": ' stroke-dasharray="6,3"', "infrastructure": ' stroke-dasharray="2,3"'}.get(
            edge.kind, ""
        )
        width = 0.6 + math.log10(max(edge.calls, 1)) * 0.5
        classes = f"link kind-{edge.kind} from-{ids[edge.caller]} to-{ids[edge.callee]}"
        title = escape(f"{edge.caller} → {edge.callee}: {edge.calls} calls, {edge.errors} errors")
        parts.append(
            f'<g id="edge-{index}" class="{classes}"><title>{title}</title>'
            f'<path fill="none" stroke="#64748b" stroke-width="{width:.2f}"{dash} '
            f'd="M{x1:.1f},{y1:.1f}L{x2:.1f},{y2:.1f}"/></g>'
        )
    for i, name in enumerate(order):
        x, y = points[name]
        service = roles.get(name)
        role = service.role if service else "external"
        fill, border, _ = ROLE_STYLE.get(role, ROLE_STYLE["service"])
        hub = bool(service and is_hub(service))
        radius_px = 8 if hub else 5
        angle = 360 * i / len(order)
        flip = 90 < angle < 270
        anchor = "end" if flip else "start"
        label_x = x + (-10 if flip else 10)
        rotate = angle + 180 if flip else angle
        parts.append(
            f'<g id="{ids[name]}" class="svc role-{role}{" hub" if hub else ""}">'
            f"<title>{escape(name)}</title>"
            f'<ellipse cx="{x:.1f}" cy="{y:.1f}" rx="{radius_px}" ry="{radius_px}" fill="{fill}" '
            f'stroke="{border}" stroke-width="{3 if hub else 1.2}"/>'
            f'<text x="{label_x:.1f}" y="{y + 3:.1f}" text-anchor="{anchor}" font-size="10" '
            f'transform="rotate({rotate:.1f} {x:.1f} {y:.1f})">{escape(shorten(name))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _role_rank(service: ServiceRole | None) -> int:
    return ROLES.index(service.role) if service and service.role in ROLES else len(ROLES)
