"""``orchscan history`` output: the recorded scans as a table, or as ``{"scans": [...]}``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from orchscan.reports.history.store import RecordedScan


def _instant(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns // 1_000_000_000, UTC)


def format_window(start_ns: int | None, end_ns: int | None) -> str:
    """The observed window in UTC, the end's date left out when it is the start's."""
    start, end = _instant(start_ns), _instant(end_ns)
    if start is None or end is None:
        return "—"
    end_format = "%H:%M:%S" if end.date() == start.date() else "%Y-%m-%d %H:%M:%S"
    return f"{start:%Y-%m-%d %H:%M:%S} – {end.strftime(end_format)}"


def format_findings(scan: RecordedScan) -> str:
    """Findings by severity, most severe first, only the severities present."""
    return ", ".join(f"{count} {severity}" for severity, count in scan.counts.findings if count) or "none"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scan(scan: RecordedScan) -> dict[str, Any]:
    counts = scan.counts
    return {
        "id": scan.id,
        "recorded_at": _iso(scan.recorded_at),
        "orchscan_version": scan.orchscan_version,
        "window": {
            "start": _iso(_instant(scan.start_ns)),
            "end": _iso(_instant(scan.end_ns)),
            "start_ns": scan.start_ns,
            "end_ns": scan.end_ns,
        },
        "spans": counts.spans,
        "traces": counts.traces,
        "calls": counts.calls,
        "services": counts.services,
        "orchestrators": counts.orchestrators,
        "flows": counts.flows,
        "findings": dict(counts.findings),
    }


def render_scans(scans: tuple[RecordedScan, ...], *, as_json: bool) -> str:
    """Every recorded scan, oldest first."""
    if as_json:
        return orjson.dumps({"scans": [_scan(s) for s in scans]}, option=orjson.OPT_INDENT_2).decode() + "\n"
    if not scans:
        return "No scans recorded.\n"
    header = ("id", "recorded (UTC)", "window (UTC)", "spans", "traces", "orchestrators", "flows", "findings")
    rows = [
        (
            str(s.id),
            f"{s.recorded_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
            format_window(s.start_ns, s.end_ns),
            f"{s.counts.spans:,}",
            f"{s.counts.traces:,}",
            str(s.counts.orchestrators),
            str(s.counts.flows),
            format_findings(s),
        )
        for s in scans
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {0, 3, 4, 5, 6}
    lines = [
        "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines) + "\n"
