"""``orchscan history`` output: a table for people, ``{"scans": [...]}`` for machines."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from snapshot_factories import month_of_changes

from orchscan.analyzer.changes.snapshot import count_scan
from orchscan.reports.history.listing import format_window, render_scans
from orchscan.reports.history.store import RecordedScan

DAY_NS = 86_400 * 1_000_000_000
START = 1_772_431_200_000_000_000  # 2026-03-02 06:00:00 UTC


def _scans() -> tuple[RecordedScan, ...]:
    old, new = month_of_changes()
    return (
        RecordedScan(
            1, datetime(2026, 3, 2, 7, 0, tzinfo=UTC), "0.1.0", START, START + 3_600 * 10**9, count_scan(old)
        ),
        RecordedScan(
            2,
            datetime(2026, 3, 9, 7, 0, tzinfo=UTC),
            "0.2.0",
            START + 6 * DAY_NS,
            START + 7 * DAY_NS,
            count_scan(new),
        ),
    )


def test_the_table_lists_every_scan_oldest_first() -> None:
    lines = render_scans(_scans(), as_json=False).splitlines()
    assert lines[0].split() == [
        "id",
        "recorded",
        "(UTC)",
        "window",
        "(UTC)",
        "spans",
        "traces",
        "orchestrators",
        "flows",
        "findings",
    ]
    assert lines[1].split()[:9] == [
        "1",
        "2026-03-02",
        "07:00:00",
        "2026-03-02",
        "06:00:00",
        "–",
        "07:00:00",
        "184,233",
        "23,410",
    ]
    assert lines[1].endswith("2 high, 6 medium, 1 info")
    assert "2026-03-08 06:00:00 – 2026-03-09 06:00:00" in lines[2]
    assert lines[2].endswith("1 critical, 2 high, 5 medium, 1 info")
    assert render_scans((), as_json=False) == "No scans recorded.\n"


def test_the_json_lists_every_scan_with_its_window_and_findings_by_severity() -> None:
    document = json.loads(render_scans(_scans(), as_json=True))
    assert list(document) == ["scans"]
    first, second = document["scans"]
    assert first["id"] == 1 and second["id"] == 2
    assert first["recorded_at"] == "2026-03-02T07:00:00Z"
    assert first["window"] == {
        "start": "2026-03-02T06:00:00Z",
        "end": "2026-03-02T07:00:00Z",
        "start_ns": START,
        "end_ns": START + 3_600 * 10**9,
    }
    assert second["findings"] == {"critical": 1, "high": 2, "medium": 5, "low": 0, "info": 1}
    assert (first["orchestrators"], second["orchestrators"]) == (3, 3)
    assert set(first) == {
        "id",
        "recorded_at",
        "orchscan_version",
        "window",
        "spans",
        "traces",
        "calls",
        "services",
        "orchestrators",
        "flows",
        "findings",
    }
    assert json.loads(render_scans((), as_json=True)) == {"scans": []}


def test_a_scan_of_nothing_has_no_window() -> None:
    assert format_window(None, None) == "—"
