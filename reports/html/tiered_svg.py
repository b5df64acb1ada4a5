"""Draw the tiered layout of :mod:`reports.html.graph_layout` as SVG, by hand.

Every label comes from span data and goes through :func:`html.escape` here, so the markup is
ours alone. Nodes are boxes in their role's colours with the service name as SVG text; edges
are curves drawn beneath them, so an opaque box keeps its label legible wherever lines cross.
Ids and classes are the same as in Graphviz's drawing, so the page's script works on either.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from orchscan.analyzer.results import Analysis, Edge
from orchscan.reports.html.figures import edge_figures, window_minutes
from orchscan.reports.html.graph_layout import TIERS, Layout, lay_out
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

#: Vertical distance between rows; ``graph_layout.TIER_ROWS`` rows of it fit the first view.
ROW_PITCH = 24
_BOX_HEIGHT = 18
_PAD = 6
_COLUMN_GAP = 26
_TIER_GAP = 84
_HEADER = 30
_MARGIN = 10
_ARROW = 7
_DASH = {"messaging": ' stroke-dasharray="6,3"', "infrastructure": ' stroke-dasharray="2,3"'}

# Approximate advance widths (in ems) of a wide sans-serif face (DejaVu Sans, Verdana), rounded
# up, so that a box is never narrower than its label in the fonts a browser is likely to pick.
_NARROW = frozenset("fijlrtI.,:;'|!()[]{} -/")
_WIDE = frozenset("mwMW@%")


def label_width(text: str) -> float:
    """An upper estimate of the drawn width of ``text`` at ``LABEL_SIZE``."""
    ems = 0.0
    for char in text:
        if not char.isascii() or char in _WIDE:
            ems += 1.0
        elif char in _NARROW:
            ems += 0.42
        elif char.isupper():
            ems += 0.8
        else:
            ems += 0.66
    return ems * LABEL_SIZE


def tiered_svg(analysis: Analysis) -> str:
    """The landscape in tiers, as one SVG element with the ids and classes the page expects."""
    layout = lay_out(analysis)
    ids = service_ids(analysis)
    labels = {name: shorten(name) for name in layout.cells}
    widths = {name: label_width(text) + 2 * _PAD for name, text in labels.items()}
    left, column_width = _columns(layout, widths)
    width = (left[-1] + column_width[-1] if left else 0) + _MARGIN  # a landscape with no service: empty
    height = _HEADER + layout.rows * ROW_PITCH + _MARGIN
    box = {
        name: (left[cell.column], _HEADER + cell.row * ROW_PITCH, widths[name])
        for name, cell in layout.cells.items()
    }
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="tiered-graph" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" font-size="{LABEL_SIZE}">'
    ]
    shown: set[int] = set()
    for column, tier in enumerate(layout.column_tiers):
        if tier not in shown:
            shown.add(tier)
            parts.append(f'<text class="tier" x="{left[column]:.1f}" y="16">{escape(TIERS[tier])}</text>')
    minutes = window_minutes(analysis.input)
    for index, edge in enumerate(analysis.edges):
        parts.append(_edge(edge, index, ids, box, layout, minutes))
    roles = {s.name: s for s in analysis.services}
    for name in sorted(layout.cells, key=lambda n: ids[n]):
        service = roles.get(name)
        role = role_of(service)
        fill, border, _ = ROLE_STYLE.get(role, ROLE_STYLE["service"])
        x, y, w = box[name]
        classes = f"svc role-{role}"
        hub = is_hub(service)
        classes += " hub" if hub else ""
        classes += " hidden-orchestrator" if service and service.hidden else ""
        classes += " core" if layout.cells[name].core else ""
        ring = (
            f'<rect x="{x - 3:.1f}" y="{y - 3}" width="{w + 6:.1f}" height="{_BOX_HEIGHT + 6}" rx="6" '
            f'fill="none" stroke="{border}" stroke-width="1.2"/>'
            if service and service.hidden
            else ""
        )
        parts.append(
            f'<g id="{ids[name]}" class="{classes}"><title>{escape(node_title(name, service))}</title>{ring}'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{_BOX_HEIGHT}" rx="4" fill="{fill}" '
            f'stroke="{border}" stroke-width="{2.6 if hub else 1.1}"/>'
            f'<text x="{x + _PAD:.1f}" y="{y + _BOX_HEIGHT / 2 + LABEL_SIZE * 0.36:.1f}">'
            f"{escape(labels[name])}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _columns(layout: Layout, widths: Mapping[str, float]) -> tuple[list[float], list[float]]:
    """Each column's left x and width: as wide as its widest box, a wider gap between tiers."""
    column_width = [0.0] * len(layout.column_tiers)
    for name, cell in layout.cells.items():
        column_width[cell.column] = max(column_width[cell.column], widths[name])
    for column, tier in enumerate(layout.column_tiers):
        if column == 0 or layout.column_tiers[column - 1] != tier:  # the tier's heading
            column_width[column] = max(column_width[column], label_width(TIERS[tier]))
    lefts = []
    x = float(_MARGIN)
    for column, tier in enumerate(layout.column_tiers):
        if column:
            x += column_width[column - 1]
            x += _COLUMN_GAP if layout.column_tiers[column - 1] == tier else _TIER_GAP
        lefts.append(x)
    return lefts, column_width


def _edge(
    edge: Edge,
    index: int,
    ids: Mapping[str, str],
    box: Mapping[str, tuple[float, float, float]],
    layout: Layout,
    minutes: float | None,
) -> str:
    """A curve from the caller's box to the callee's, with its arrowhead and its figures as tooltip."""
    (x1, y1, w1), (x2, y2, w2) = box[edge.caller], box[edge.callee]
    y1 += _BOX_HEIGHT / 2
    y2 += _BOX_HEIGHT / 2
    c1, c2 = layout.cells[edge.caller].column, layout.cells[edge.callee].column
    if c2 > c1:  # forward: right side to left side
        start, end, direction = x1 + w1, x2 - _ARROW, 1
        reach = max(24.0, (end - start) / 2)
        path = _curve(start, y1, start + reach, end - reach, end, y2)
    elif c2 < c1:  # backward: left side to right side
        start, end, direction = x1, x2 + w2 + _ARROW, -1
        reach = max(24.0, (start - end) / 2)
        path = _curve(start, y1, start - reach, end + reach, end, y2)
    else:  # within a column (or a call to itself): a bow on the right
        start, end, direction = x1 + w1, x2 + w2 + _ARROW, -1
        bow = 18 + 4 * min(10, abs(y2 - y1) / ROW_PITCH) + (12 if edge.caller == edge.callee else 0)
        side = max(start, end) + bow
        path = _curve(start, y1, side, side, end, y2, bend=8 if y1 == y2 else 0)
    tip = end + direction * _ARROW
    arrow = f"{tip:.1f},{y2:.1f} {end:.1f},{y2 - 3.5:.1f} {end:.1f},{y2 + 3.5:.1f}"
    dash = _DASH.get(edge.kind, "")
    title = f"{edge.caller} → {edge.callee} ({edge.kind}): {edge_figures(edge, minutes).sentence()}"
    return (
        f'<g id="edge-{index}" class="{edge_classes(edge, ids)}"><title>{escape(title)}</title>'
        f'<path fill="none" stroke="#64748b" stroke-width="{edge_width(edge):.2f}"{dash} d="{path}"/>'
        f'<polygon fill="#64748b" points="{arrow}"/></g>'
    )


def _curve(x1: float, y1: float, c1: float, c2: float, x2: float, y2: float, *, bend: float = 0) -> str:
    """A cubic Bézier leaving and entering horizontally (control points at ``c1`` and ``c2``)."""
    return f"M{x1:.1f},{y1:.1f}C{c1:.1f},{y1:.1f} {c2:.1f},{y2 + bend:.1f} {x2:.1f},{y2:.1f}"
