"""The service graph as inline SVG: Graphviz's layered drawing where it reads well, else our own.

Graphviz's ``dot`` draws a small landscape as a layered picture with routed edges. It may not
be installed, and at a few hundred services its ranks grow taller than any screen, so that a
reviewer's first view would miss the orchestrators. So ``dot``'s drawing is used only when the
orchestrators' labels fit one first view at a legible size (and it is not even tried on large
landscapes, where it is slow and never does); otherwise, and without ``dot``,
the graph is drawn in tiers by :mod:`reports.html.tiered_svg`. Both drawings carry the same ids
and classes, so the page's script (pan, zoom, search, focus, filters) works on either.

Service names come from span data and are untrusted. Nodes and edges get synthetic ids
(``svc-3``, ``edge-12``), labels are escaped for DOT (``dot`` escapes them again for XML), and
``dot``'s SVG is checked element by element before it is inlined.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from orchscan.analyzer.results import Analysis, Edge
from orchscan.reports.html.figures import edge_figures, window_minutes
from orchscan.reports.html.graph_layout import lay_out
from orchscan.reports.html.graph_style import (
    LABEL_SIZE,
    ROLE_STYLE,
    edge_classes,
    edge_width,
    is_hub,
    node_title,
    role_of,
    service_ids,
    shorten,
)
from orchscan.reports.html.tiered_svg import label_width, tiered_svg

#: Edge kind -> Graphviz style: messaging is asynchronous, so it is dashed.
EDGE_STYLE = {"sync": "solid", "messaging": "dashed", "infrastructure": "dotted"}

#: Labels are never shown smaller than this many CSS pixels in the graph's first view.
MIN_LABEL_PX = 9.0

#: The smallest graph view (CSS pixels) the first-view promise is made for: a 1280 × 800 screen
#: less the page's header and the graph's controls. ``dot``'s drawing is used only when every
#: orchestrator's label fits it at ``MIN_LABEL_PX``.
FIRST_VIEW = (1200.0, 560.0)

#: ``dot`` is not tried on landscapes with more services than this: its drawing of them never
#: showed the orchestrators in one view in our tests, and its ranking then takes from seconds to
#: minutes (20 s at 300 services and 700 edges on a busy 2-core machine).
DOT_MAX_SERVICES = 100

#: Installing Graphviz, for the notice in the report and the README.
INSTALL_HINT = (
    "install Graphviz (apt install graphviz, dnf install graphviz, brew install graphviz, "
    "or choco install graphviz) for its layered drawing"
)

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
    """The drawn graph: SVG markup, which engine drew it, and a notice when ``dot`` was not used."""

    svg: str
    engine: str
    notice: str | None


def build_dot(analysis: Analysis) -> str:
    """Write the service graph as DOT with sorted nodes and edges, so equal input gives equal text.

    Nodes are named by their service (the name becomes the node's SVG title) and carry the
    page's id; the coordinators and their neighbours are marked ``core`` for the first view.
    """
    ids = service_ids(analysis)
    roles = {s.name: s for s in analysis.services}
    cells = lay_out(analysis).cells
    minutes = window_minutes(analysis.input)
    lines = [
        "digraph landscape {",
        '  graph [rankdir=LR, bgcolor="transparent", nodesep=0.12, ranksep=1.1, outputorder=edgesfirst];',
        f'  node [style="filled", fontname="Helvetica", fontsize={LABEL_SIZE}, penwidth=1.2];',
        '  edge [fontname="Helvetica", fontsize=9, arrowsize=0.6, color="#64748b"];',
    ]
    for name in sorted(ids):
        service = roles.get(name)
        role = role_of(service)
        fill, border, shape = ROLE_STYLE.get(role, ROLE_STYLE["service"])
        classes = f"svc role-{role}"
        extra = ""
        if is_hub(service):
            classes += " hub"
            extra = ", penwidth=3"
        if service and service.hidden:
            classes += " hidden-orchestrator"
            extra += ", peripheries=2"
        if cells[name].core:
            classes += " core"
        lines.append(
            f'  "{escape_dot(name)}" [id="{ids[name]}", class="{classes}", shape={shape}, '
            f'fillcolor="{fill}", color="{border}", label="{escape_dot(shorten(name))}", '
            f'tooltip="{escape_dot(node_title(name, service))}"{extra}];'
        )
    for index, edge in enumerate(analysis.edges):
        lines.append(f"  {_dot_edge(edge, index, ids, minutes)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_edge(edge: Edge, index: int, ids: dict[str, str], minutes: float | None) -> str:
    tooltip = f"{edge.caller} → {edge.callee} ({edge.kind}): {edge_figures(edge, minutes).sentence()}"
    return (
        f'"{escape_dot(edge.caller)}" -> "{escape_dot(edge.callee)}" [id="edge-{index}", '
        f'class="{edge_classes(edge, ids)}", style={EDGE_STYLE.get(edge.kind, "solid")}, '
        f'penwidth={edge_width(edge):.2f}, tooltip="{escape_dot(tooltip)}"];'
    )


def escape_dot(text: str) -> str:
    r"""Quote text for a DOT string: no escape sequence (``\N``, ``\G``), entity or control survives."""
    text = re.sub(r"[\x00-\x1f\x7f]", " ", text)
    # Graphviz passes entities through to XML, so a literal '&' must become '&amp;' to stay text.
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")


def render_graph(analysis: Analysis) -> ServiceGraph:
    """Draw with ``dot`` when its picture shows the orchestrators legibly at once, else in tiers.

    Landscapes larger than ``DOT_MAX_SERVICES`` go to the tiers without asking ``dot``.
    """
    dot = shutil.which("dot")
    if dot is None:
        notice = f"Graphviz's dot program was not found, so the graph is drawn in tiers: {INSTALL_HINT}."
        return ServiceGraph(tiered_svg(analysis), "tiered", notice)
    services = len(service_ids(analysis))
    if services > DOT_MAX_SERVICES:
        notice = (
            f"With {services} services this landscape is too large for Graphviz's drawing to show every "
            "orchestrator in one view, so the graph is drawn in tiers by role."
        )
        return ServiceGraph(tiered_svg(analysis), "tiered", notice)
    try:
        completed = subprocess.run(
            [dot, "-Tsvg"],
            input=build_dot(analysis).encode(),
            capture_output=True,
            check=True,
            timeout=_DOT_TIMEOUT_S,
        )
        svg = clean_svg(completed.stdout.decode())
    except (OSError, subprocess.SubprocessError, UnsafeSvg, ET.ParseError) as error:
        notice = f"Graphviz's dot could not draw the graph ({_describe(error)}), so it is drawn in tiers."
        return ServiceGraph(tiered_svg(analysis), "tiered", notice)
    if not fits_first_view(svg):
        notice = (
            "Graphviz's drawing of this landscape is too large to show every orchestrator in one view, "
            "so the graph is drawn in tiers by role."
        )
        return ServiceGraph(tiered_svg(analysis), "tiered", notice)
    return ServiceGraph(svg, "dot", None)


def fits_first_view(svg: str) -> bool:
    """Whether every orchestrator's label in ``dot``'s drawing fits ``FIRST_VIEW`` at ``MIN_LABEL_PX``."""
    labels = []
    for node in ET.fromstring(svg).iter(_SVG + "g"):
        if "role-orchestrator" in node.get("class", "").split():
            text = next(node.iter(_SVG + "text"), None)
            if text is not None:
                labels.append((float(text.get("x", 0)), float(text.get("y", 0)), text.text or ""))
    if not labels:
        return True
    scale = MIN_LABEL_PX / LABEL_SIZE
    half = max(label_width(label) for _, _, label in labels) / 2  # labels are centred
    width = max(x for x, _, _ in labels) - min(x for x, _, _ in labels) + 2 * half
    height = max(y for _, y, _ in labels) - min(y for _, y, _ in labels) + 2 * LABEL_SIZE
    return width * scale <= FIRST_VIEW[0] and height * scale <= FIRST_VIEW[1]


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
