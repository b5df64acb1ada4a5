"""Where each service sits in orchscan's own drawing of the landscape: tiers by role, wrapped.

Graphviz draws a small landscape well, but it may not be installed, and at a few hundred services
its ranks grow taller than any screen, so its first view misses most orchestrators. This layout
needs neither Graphviz nor a screen of any particular size: services go into four tiers, left
to right (entry points and gateways, coordinators, services, stores and external systems),
each tier ordered so that a service sits near the services it talks to, and a tier with more
services than a screen holds wraps into further columns. Coordinators come first and their
neighbours right after them, so the top left of the drawing is the part a reviewer wants first.

Positions are grid cells (column, row); :mod:`reports.html.tiered_svg` turns them into
coordinates. Everything is sorted by name where nothing else decides, so the same landscape always
gets the same picture.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchscan.analyzer.results import ROLES, Analysis, ServiceRole

#: The tiers, left to right.
TIERS = ("entry points & gateways", "coordinators", "services", "stores & external systems")
ENTRY, COORDINATORS, SERVICES, STORES = range(len(TIERS))

#: A tier with more services than this wraps into another column: this many rows fit the
#: graph's first view at the smallest legible label size (see ``tiered_svg.ROW_PITCH``).
TIER_ROWS = 24


@dataclass(frozen=True)
class Cell:
    """One service's place: its tier, the drawing's column and the row within that column.

    ``core`` marks the coordinators and the services they call or are called by (stores and
    external systems aside): the neighbourhoods the graph's first view is framed on.
    """

    name: str
    tier: int
    column: int
    row: int
    core: bool


@dataclass(frozen=True)
class Layout:
    """Every service's cell, by name, and the tier of each column (left to right)."""

    cells: Mapping[str, Cell]
    column_tiers: tuple[int, ...]
    rows: int


def tier_of(service: ServiceRole | None, calls_out: bool, called: bool) -> int:
    """The tier a service belongs in, by its role; an external system that only calls is a client."""
    role = service.role if service else "external"
    if role in ("orchestrator", "composer"):
        return COORDINATORS
    if role == "gateway" or (role == "external" and calls_out and not called):
        return ENTRY
    if role in ("infrastructure", "external"):
        return STORES
    return SERVICES


def lay_out(analysis: Analysis) -> Layout:
    """Place every service (and every edge endpoint never classified) in a tier, column and row."""
    roles = {s.name: s for s in analysis.services}
    names = sorted(roles.keys() | {n for e in analysis.edges for n in (e.caller, e.callee)})
    neighbours: dict[str, set[str]] = {name: set() for name in names}
    callers: set[str] = set()
    callees: set[str] = set()
    for edge in analysis.edges:
        if edge.caller != edge.callee:
            neighbours[edge.caller].add(edge.callee)
            neighbours[edge.callee].add(edge.caller)
            callers.add(edge.caller)
            callees.add(edge.callee)
    tiers: list[list[str]] = [[] for _ in TIERS]
    for name in names:
        tiers[tier_of(roles.get(name), name in callers, name in callees)].append(name)

    tiers[COORDINATORS].sort(key=lambda n: (*_rank(roles.get(n)), n))
    seeds = tiers[COORDINATORS] or tiers[ENTRY]
    tiers[SERVICES] = _by_rings(tiers[SERVICES], seeds, neighbours)
    placed = _positions(tiers[COORDINATORS] + tiers[SERVICES])
    for tier in (ENTRY, STORES):
        tiers[tier] = _by_barycentre(tiers[tier], placed, neighbours)
        placed.update(_positions(tiers[tier]))

    coordinators = set(tiers[COORDINATORS])
    near = {n for c in coordinators for n in neighbours[c]}
    core = coordinators | {n for n in near if n not in tiers[STORES]}
    return _grid(tiers, neighbours, core)


def _rank(service: ServiceRole | None) -> tuple[int, float]:
    """Orchestrators before composers, the most conspicuous first."""
    role = service.role if service else "external"
    return (ROLES.index(role) if role in ROLES else len(ROLES), -(service.score if service else 0.0))


def _positions(order: Sequence[str]) -> dict[str, float]:
    """Each name's place in ``order`` as a share of its length, comparable across tiers."""
    return {name: (i + 0.5) / len(order) for i, name in enumerate(order)}


def _mean(values: Iterable[float]) -> float | None:
    """The mean, exactly rounded: neighbours come from sets, and the order of a float sum must not
    decide a tie (and with it the picture)."""
    values = list(values)
    return math.fsum(values) / len(values) if values else None


def _by_barycentre(
    names: Sequence[str], placed: Mapping[str, float], neighbours: Mapping[str, set[str]]
) -> list[str]:
    """Order by the mean place of each service's placed neighbours; the unattached go last."""

    def key(name: str) -> tuple[float, str]:
        centre = _mean(placed[n] for n in neighbours[name] if n in placed)
        return (math.inf if centre is None else centre, name)

    return sorted(names, key=key)


def _by_rings(names: Sequence[str], seeds: Sequence[str], neighbours: Mapping[str, set[str]]) -> list[str]:
    """Breadth first from the seeds: the seeds' neighbours first, then theirs, the rest by name.

    Within a ring, services are ordered by the mean place of their neighbours already placed,
    so the services one coordinator calls sit together.
    """
    placed = _positions(seeds)
    remaining = set(names)
    order: list[str] = []
    while remaining:
        ring = [n for n in remaining if any(m in placed for m in neighbours[n])]
        if not ring:
            order += sorted(remaining)
            break
        ring = _by_barycentre(ring, placed, neighbours)
        start = len(order)
        order += ring
        remaining -= set(ring)
        # Rings after the first are placed after the seeds' neighbours, never among them.
        placed.update({name: 1.0 + (start + i) / len(names) for i, name in enumerate(ring)})
    return order


def _grid(tiers: Sequence[Sequence[str]], neighbours: Mapping[str, set[str]], core: set[str]) -> Layout:
    """Cut each tier into columns of at most ``TIER_ROWS`` rows and give every service a row.

    When nothing wraps (a small landscape) a short tier's services take the rows nearest to
    their neighbours', so edges run straight; when something wraps, every tier starts at the
    top, where the first view is.
    """
    rows = max(1, min(TIER_ROWS, max(len(t) for t in tiers)))
    wraps = any(len(t) > rows for t in tiers)
    row_of: dict[str, float] = {}
    cells: dict[str, Cell] = {}
    column_tiers: list[int] = []
    tallest = max(range(len(tiers)), key=lambda t: (len(tiers[t]), -t))
    order = [tallest] + [t for t in range(len(tiers)) if t != tallest]
    columns: dict[int, list[list[str]]] = {}
    for tier in order:
        names = list(tiers[tier])
        if not names:
            continue
        count = math.ceil(len(names) / rows)
        height = math.ceil(len(names) / count)
        if wraps or tier == tallest:
            chunks = [names[i : i + height] for i in range(0, len(names), height)]
            columns[tier] = chunks
            for chunk in chunks:
                row_of.update({name: float(row) for row, name in enumerate(chunk)})
        else:
            wanted: dict[str, float] = {}
            for i, name in enumerate(names):  # beside its neighbours, else spread over the rows
                centre = _mean(row_of[m] for m in neighbours[name] if m in row_of)
                wanted[name] = (i + 0.5) * rows / len(names) - 0.5 if centre is None else centre
            ordered = sorted(names, key=lambda n: (wanted[n], n))
            rows_here = _pack([wanted[n] for n in ordered], rows)
            columns[tier] = [ordered]
            row_of.update(zip(ordered, map(float, rows_here), strict=True))
    for tier in range(len(tiers)):
        for chunk in columns.get(tier, []):
            column = len(column_tiers)
            column_tiers.append(tier)
            for name in chunk:
                cells[name] = Cell(name, tier, column, int(row_of[name]), name in core)
    return Layout(cells, tuple(column_tiers), rows)


def _pack(wanted: Sequence[float], rows: int) -> list[int]:
    """Distinct rows in ``[0, rows)``, in the given order, each as near its wanted row as fits."""
    placed: list[int] = []
    for i, value in enumerate(wanted):
        lowest = placed[-1] + 1 if placed else 0
        placed.append(max(lowest, min(round(value), rows - (len(wanted) - i))))
    return placed
