"""Numbers as the report prints them, and the figures of an edge a reviewer judges it by.

Shared by the view model and the graph drawings, so a table cell and a tooltip never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from orchscan.analyzer.results import Edge, InputSource, InputSummary


def format_window(summary: InputSummary) -> str:
    """The observed time window in UTC, with its length."""
    if summary.start_ns is None or summary.end_ns is None:
        return "—"
    start = datetime.fromtimestamp(summary.start_ns / 1e9, UTC)
    end = datetime.fromtimestamp(summary.end_ns / 1e9, UTC)
    length = format_duration((summary.end_ns - summary.start_ns) / 1e6)
    return f"{start:%Y-%m-%d %H:%M:%S} – {end:%Y-%m-%d %H:%M:%S} UTC ({length})"


def format_duration(ms: float) -> str:
    """Milliseconds in the largest unit that keeps the number readable (never in e-notation)."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms >= size:
            return f"{_three_digits(ms / size)} {unit}"
    return f"{_three_digits(ms)} ms"


def _three_digits(value: float) -> str:
    # ``:.3g`` switches to e-notation from 1000 (and rounds 999.7 up to "1e+03").
    if value >= 99.95:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 0.001 or value == 0 else "< 0.001"


def describe_fetch(source: InputSource) -> str:
    """What fetching a live source took, in one phrase."""
    return (
        f"{source.traces:,} traces in {source.pages:,} page(s), {source.requests:,} requests "
        f"({source.retries:,} retries, {source.errors:,} failed)"
    )


def format_share(share: float) -> str:
    """A share in [0, 1] as a percentage with one decimal where it matters."""
    return f"{share * 100:.1f} %" if 0 < share < 0.1 else f"{share * 100:.0f} %"


def format_rate(per_minute: float | None) -> str:
    """Calls per minute with as many digits as tell rates apart; a dash without a time window."""
    if per_minute is None:
        return "—"
    return f"{per_minute:,.0f}" if per_minute >= 100 else f"{per_minute:.3g}"


def window_minutes(summary: InputSummary) -> float | None:
    """Length of the observed window in minutes; None when the input had no time range."""
    if summary.start_ns is None or summary.end_ns is None or summary.end_ns <= summary.start_ns:
        return None
    return (summary.end_ns - summary.start_ns) / 60e9


@dataclass(frozen=True)
class EdgeFigures:
    """An edge's traffic as printed: calls, calls per minute, error rate and p95 latency."""

    calls: str
    per_minute: str
    error_rate: str
    p95: str

    def sentence(self) -> str:
        """One line for a tooltip."""
        return f"{self.calls} calls ({self.per_minute}/min), {self.error_rate} errors, p95 {self.p95}"


def edge_figures(edge: Edge, minutes: float | None) -> EdgeFigures:
    """The figures of one edge over a window of ``minutes`` (per-minute rate: Jaeger's, Kiali's)."""
    return EdgeFigures(
        calls=f"{edge.calls:,}",
        per_minute=format_rate(edge.calls / minutes if minutes else None),
        error_rate=format_share(edge.error_rate),
        p95=format_duration(edge.p95_ms),
    )
