"""Plain data for the report's history section: what changed since the previous scan, and trends.

Kept apart from :mod:`reports.html.view_model` because it reads the history rather than the
analysis; the page shows it only when the scan was recorded (``scan --history``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from orchscan.analyzer.changes.snapshot import ScanCounts
from orchscan.reports.history.describe import ChangeGroup, describe_changes
from orchscan.reports.history.listing import format_findings, format_window
from orchscan.reports.history.store import RecordedScan
from orchscan.reports.history.tracking import ScanHistory
from orchscan.reports.html.trend_svg import Series, render_trend

#: The trends show this many of the most recent scans (a year of weekly runs).
TREND_SCANS = 52

#: Each kind of change lists this many lines on the page; ``orchscan diff`` lists them all.
SHOWN_CHANGES = 200

#: Line colours: the report's role and severity colours.
ORCHESTRATOR_COLOUR, HIDDEN_COLOUR, FLOW_COLOUR, CALL_COLOUR = "#c62828", "#111827", "#1d4ed8", "#0f766e"
SEVERITY_COLOURS = {
    "critical": "#7f1d1d",
    "high": "#c62828",
    "medium": "#c2410c",
    "low": "#a16207",
    "info": "#1d4ed8",
}


@dataclass(frozen=True)
class TrendChart:
    """One drawn chart and what it shows."""

    title: str
    svg: str


@dataclass(frozen=True)
class HistoryView:
    """The history section: which scans were compared, the changes in words, the trend charts.

    ``previous`` is None for the first scan of a history; ``hidden_changes`` counts the lines left
    out beyond :data:`SHOWN_CHANGES`; ``scans`` are the rows of the recorded-scans table, newest first.
    """

    current: str
    previous: str | None
    empty: bool
    groups: tuple[ChangeGroup, ...]
    hidden_changes: int
    trends: tuple[TrendChart, ...]
    scans: tuple[tuple[str, str, str, str, str, str, str], ...]


def _label(scan: RecordedScan) -> str:
    return f"scan {scan.id} (recorded {scan.recorded_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"


def build_history_view(history: ScanHistory) -> HistoryView:
    """The changes since the previous scan and the trends over the most recent recorded scans."""
    groups = describe_changes(history.diff) if history.diff else ()
    shown = tuple(
        ChangeGroup(group.title, group.noun, group.tally, group.lines[:SHOWN_CHANGES]) for group in groups
    )
    recent = history.trend[-TREND_SCANS:]
    return HistoryView(
        current=f"scan {history.current.id}",
        previous=_label(history.previous) if history.previous else None,
        empty=history.diff is not None and history.diff.empty,
        groups=shown,
        hidden_changes=sum(len(g.lines) for g in groups) - sum(len(g.lines) for g in shown),
        trends=trend_charts(recent),
        scans=tuple(
            (
                str(s.id),
                f"{s.recorded_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
                format_window(s.start_ns, s.end_ns),
                f"{s.counts.spans:,}",
                str(s.counts.orchestrators),
                str(s.counts.flows),
                format_findings(s),
            )
            for s in reversed(recent)
        ),
    )


def trend_charts(scans: tuple[RecordedScan, ...]) -> tuple[TrendChart, ...]:
    """Orchestrators, flows, findings by severity and calls, one chart each, over ``scans``."""
    labels = tuple(f"#{s.id}" for s in scans)
    counts: list[ScanCounts] = [s.counts for s in scans]
    severities = [
        Series(severity, colour, values)
        for severity, colour in SEVERITY_COLOURS.items()
        if any(values := tuple(c.findings_of(severity) for c in counts))
    ]
    charts = (
        (
            "Orchestrators",
            (Series("orchestrators", ORCHESTRATOR_COLOUR, tuple(c.orchestrators for c in counts)),),
        ),
        ("Flows", (Series("flows", FLOW_COLOUR, tuple(c.flows for c in counts)),)),
        (
            "Findings by severity",
            tuple(severities) or (Series("findings", SEVERITY_COLOURS["info"], tuple(0 for _ in counts)),),
        ),
        ("Calls between services", (Series("calls", CALL_COLOUR, tuple(c.calls for c in counts)),)),
    )
    return tuple(TrendChart(title, render_trend(title, labels, series)) for title, series in charts)
