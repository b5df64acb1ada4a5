"""Small line charts of numbers over recorded scans, drawn as SVG by hand.

Hand-built, like the sequence diagrams: a handful of lines, dots and labels needs no charting
library, and the page stays one offline file. Every label goes through :func:`html.escape`.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

_WIDTH, _HEIGHT = 420, 210
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 14, 34, 30
#: At most this many scan labels under the x axis (the first and the last always among them).
_X_LABELS = 8
#: At most this many grid steps on the y axis.
_Y_STEPS = 4


@dataclass(frozen=True)
class Series:
    """One line: its name (for the legend and tooltips), colour and one value per scan."""

    name: str
    colour: str
    values: tuple[int, ...]


def nice_ceiling(value: int) -> tuple[int, int]:
    """The top of the y axis and its grid step: 1, 2 or 5 times a power of ten, at most four steps."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if value <= factor * step * _Y_STEPS:
                size = factor * step
                return max(size, -(-value // size) * size), size
        step *= 10


def tick_label(value: int, top: int) -> str:
    """A tick label that fits beside the axis, in one unit for the whole axis: 950, 9,500, 95k, 9.5M."""
    for size, unit in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if top >= size * 10:
            return f"{value / size:.3g}{unit}" if value else "0"
    return f"{value:,}"


def shown_labels(count: int) -> list[int]:
    """Which of ``count`` x positions get a label: evenly spaced, the first and the last always."""
    step = max(1, -(-(count - 1) // (_X_LABELS - 1)))
    shown = list(range(0, count, step))
    if shown[-1] != count - 1:
        # The last label goes where it belongs; a regular one too close before it makes room.
        if count - 1 - shown[-1] < step / 2:
            shown.pop()
        shown.append(count - 1)
    return shown


def render_trend(title: str, labels: tuple[str, ...], series: tuple[Series, ...]) -> str:
    """A line chart with one line per series over ``labels`` (one per scan, oldest first)."""
    count = len(labels)
    top, step = nice_ceiling(max((max(s.values, default=0) for s in series), default=0))
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM

    def x(i: int) -> float:
        return _LEFT + (plot_w / 2 if count == 1 else plot_w * i / (count - 1))

    def y(value: int) -> float:
        return _TOP + plot_h - plot_h * value / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" style="max-width: 100%; height: auto" role="img" '
        'font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in range(0, top + 1, step):
        parts.append(
            f'<line x1="{_LEFT}" y1="{y(tick):.1f}" x2="{_WIDTH - _RIGHT}" y2="{y(tick):.1f}" '
            f'stroke="{"#9ca3af" if tick == 0 else "#e5e7eb"}"/>'
            f'<text x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#6b7280">'
            f"{tick_label(tick, top)}</text>"
        )
    for i in shown_labels(count):
        parts.append(
            f'<text x="{x(i):.1f}" y="{_HEIGHT - _BOTTOM + 16}" text-anchor="middle" '
            f'fill="#6b7280">{escape(labels[i])}</text>'
        )
    legend_x = _LEFT
    for line in series:
        parts.append(
            f'<g class="legend"><rect x="{legend_x}" y="10" width="12" height="12" rx="2" '
            f'fill="{line.colour}"/>'
            f'<text x="{legend_x + 16}" y="20" fill="#1f2933">{escape(line.name)}</text></g>'
        )
        legend_x += 30 + 8 * len(line.name)
    for line in series:
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(line.values))
        parts.append(f'<g class="series" data-series="{escape(line.name)}">')
        if count > 1:
            parts.append(f'<polyline points="{points}" fill="none" stroke="{line.colour}" stroke-width="2"/>')
        for i, value in enumerate(line.values):
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3.5" fill="{line.colour}">'
                f"<title>{escape(labels[i])}: {value:,} {escape(line.name)}</title></circle>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
