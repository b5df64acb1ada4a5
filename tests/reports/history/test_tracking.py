"""Recording a scan returns what its reports need: the scan before it, the diff and the trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from snapshot_factories import month_of_changes

from orchscan.analyzer.changes.diff import compare_scans
from orchscan.reports.history.tracking import record_scan

WEEK = timedelta(days=7)
MONDAY = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def test_each_scan_is_compared_with_the_one_recorded_before_it(tmp_path: Path) -> None:
    path = tmp_path / "history" / "shop.db"
    old, new = month_of_changes()
    first = record_scan(path, old, recorded_at=MONDAY, orchscan_version="0.1.0")
    assert (first.current.id, first.previous, first.diff, [s.id for s in first.trend]) == (1, None, None, [1])

    again = record_scan(path, old, recorded_at=MONDAY + WEEK, orchscan_version="0.1.0")
    assert again.previous == first.current and again.diff is not None and again.diff.empty

    changed = record_scan(path, new, recorded_at=MONDAY + 2 * WEEK, orchscan_version="0.2.0")
    assert changed.current.id == 3 and changed.previous == again.current
    assert changed.diff == compare_scans(old, new)
    assert [(s.id, s.recorded_at, s.orchscan_version) for s in changed.trend] == [
        (1, MONDAY, "0.1.0"),
        (2, MONDAY + WEEK, "0.1.0"),
        (3, MONDAY + 2 * WEEK, "0.2.0"),
    ]
