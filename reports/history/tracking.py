"""Recording a scan into its history and comparing it with the scan recorded before it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from orchscan.analyzer.changes.diff import ScanDiff, compare_scans
from orchscan.analyzer.changes.snapshot import ScanSnapshot
from orchscan.reports.history.store import RecordedScan, open_history


@dataclass(frozen=True)
class ScanHistory:
    """What the reports say about history: this scan, the one before it, the diff and the trend.

    ``previous`` and ``diff`` are None for the first scan of a history; ``trend`` holds every scan
    recorded up to and including ``current``, oldest first.
    """

    current: RecordedScan
    previous: RecordedScan | None
    diff: ScanDiff | None
    trend: tuple[RecordedScan, ...]


def record_scan(
    path: str | Path, snapshot: ScanSnapshot, *, recorded_at: datetime, orchscan_version: str
) -> ScanHistory:
    """Append the scan to the history at ``path`` (created when missing) and compare it with the last one.

    "The last one" is the scan recorded just before this one, so two scans recording into one file
    at the same time each compare with a whole scan, never with each other's half.
    """
    with open_history(path, create=True, now=recorded_at) as history:
        scan_id = history.record(snapshot, recorded_at=recorded_at, orchscan_version=orchscan_version)
        trend = history.scans(up_to=scan_id)
        previous = trend[-2] if len(trend) > 1 else None
        diff = compare_scans(history.snapshot(previous.id), snapshot) if previous else None
    return ScanHistory(trend[-1], previous, diff, trend)
