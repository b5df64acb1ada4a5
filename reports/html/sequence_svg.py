"""A sequence diagram of a flow's main path, drawn as SVG by hand.

Hand-built because the flow's structure (parallel groups, optional steps, retries,
compensations) maps onto a handful of boxes and arrows, and because every label comes from span
data: each one goes through :func:`html.escape` here, so the markup is ours alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from orchscan.analyzer.results import Flow, Step

_COLUMN = 190
_LEFT = 20
_HEADER = 56
_ROW = 46
_LABEL_CHARS = 46
_NAME_CHARS = 24


@dataclass(frozen=True)
class _Frame:
    """A box around consecutive rows: a parallel group (``par``) or an optional step (``opt``)."""

    kind: str
    first_row: int
    last_row: int


def lifelines(flow: Flow) -> tuple[str, ...]:
    """The owner first, then every service that calls or is called, in order of first appearance."""
    names = [flow.owner]
    for step in sorted(flow.steps, key=lambda s: s.index):
        for name in (step.caller or flow.owner, step.operation.service):
            if name not in names:
                names.append(name)
    for compensation in flow.failure.compensations:
        if compensation.operation.service not in names:
            names.append(compensation.operation.service)
    return tuple(names)


def step_label(step: Step) -> str:
    """What an arrow says: position, operation (a message's says its topic) and, when present, the
    retry policy."""
    label = f"{step.index}. {step.operation.key}"
    if step.retries:
        label += f"  ↻ ≤{step.retries.max_attempts}×"
    if step.optional:
        label += f"  [{step.support:.0%}]"
    return label


def render_sequence(flow: Flow) -> str:
    """Draw the flow's steps in order, boxing parallel groups and optional steps, then its compensations."""
    names = lifelines(flow)
    column = {name: _LEFT + _COLUMN // 2 + i * _COLUMN for i, name in enumerate(names)}
    steps = sorted(flow.steps, key=lambda s: s.index)
    rows = len(steps) + (1 + len(flow.failure.compensations) if flow.failure.compensations else 0)
    width = _LEFT * 2 + _COLUMN * len(names)
    height = _HEADER + rows * _ROW + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sequence" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f"<title>{escape(flow.owner)}: {escape(flow.entry.key)}</title>",
    ]
    for name, x in column.items():
        parts.append(
            f'<g class="lifeline"><title>{escape(name)}</title>'
            f'<rect x="{x - _COLUMN // 2 + 8}" y="8" width="{_COLUMN - 16}" height="30" rx="4" '
            f'class="{"owner" if name == flow.owner else "participant"}"/>'
            f'<text x="{x}" y="28" text-anchor="middle">{escape(_shorten(name, _NAME_CHARS))}</text>'
            f'<line x1="{x}" y1="38" x2="{x}" y2="{height - 10}" class="life"/></g>'
        )
    for frame in _frames(steps):
        top = _HEADER + frame.first_row * _ROW - 6
        bottom = _HEADER + (frame.last_row + 1) * _ROW - 10
        parts.append(
            f'<g class="frame frame-{frame.kind}"><rect x="{_LEFT - 8}" y="{top}" '
            f'width="{width - 2 * _LEFT + 16}" height="{bottom - top}" rx="3"/>'
            f'<text x="{_LEFT - 4}" y="{top + 12}">{frame.kind}</text></g>'
        )
    for row, step in enumerate(steps):
        classes = (
            "step"
            + (" optional" if step.optional else "")
            + (" retried" if step.retries else "")
            + (" message" if step.kind == "message" else "")
        )
        parts.append(
            _arrow(
                column[step.caller or flow.owner],
                column[step.operation.service],
                _HEADER + row * _ROW + 24,
                step_label(step),
                classes,
            )
        )
    if flow.failure.compensations:
        y = _HEADER + len(steps) * _ROW + 18
        parts.append(
            f'<g class="frame frame-failure"><line x1="{_LEFT}" y1="{y}" x2="{width - _LEFT}" y2="{y}"/>'
            f'<text x="{_LEFT}" y="{y - 4}">on failure</text></g>'
        )
        for i, compensation in enumerate(flow.failure.compensations):
            label = (
                f"step {compensation.failed_step} fails → undo {compensation.undone_step}: "
                f"{compensation.operation.key}"
            )
            y_row = _HEADER + (len(steps) + 1 + i) * _ROW + 24
            parts.append(
                _arrow(
                    column[flow.owner], column[compensation.operation.service], y_row, label, "compensation"
                )
            )
    parts.append("</svg>")
    return "".join(parts)


def _frames(steps: list[Step]) -> list[_Frame]:
    """Runs of consecutive steps in the same parallel group, and single optional steps outside one."""
    frames: list[_Frame] = []
    row = 0
    while row < len(steps):
        group = steps[row].parallel_group
        end = row
        while group is not None and end + 1 < len(steps) and steps[end + 1].parallel_group == group:
            end += 1
        if group is not None:
            frames.append(_Frame("par", row, end))
        elif steps[row].optional:
            frames.append(_Frame("opt", row, row))
        row = end + 1
    return frames


def _arrow(x1: int, x2: int, y: int, label: str, classes: str) -> str:
    """One call arrow (a loop when a service calls itself) with its escaped label above it."""
    title = f"<title>{escape(label)}</title>"
    text = escape(_shorten(label, _LABEL_CHARS))
    if x1 == x2:
        return (
            f'<g class="{classes}">{title}<path d="M{x1},{y - 8} h30 v14 h-30" fill="none"/>'
            f'<polygon points="{x1},{y + 6} {x1 + 8},{y + 2} {x1 + 8},{y + 10}"/>'
            f'<text x="{x1 + 36}" y="{y}">{text}</text></g>'
        )
    direction = 1 if x2 > x1 else -1
    tip = x2 - direction * 2
    return (
        f'<g class="{classes}">{title}<line x1="{x1}" y1="{y}" x2="{tip}" y2="{y}"/>'
        f'<polygon points="{tip},{y} {tip - direction * 9},{y - 4} {tip - direction * 9},{y + 4}"/>'
        f'<text x="{min(x1, x2) + 8}" y="{y - 6}">{text}</text></g>'
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
