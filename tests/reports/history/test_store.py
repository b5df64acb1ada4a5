"""The history file: round trips, refusals, migration of an older file and concurrent writers.

Every test works on a real SQLite file in a temporary folder; the concurrency tests start real
processes that record into one file at the same moment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from analysis_factories import hostile_analysis, shop_analysis
from history_files import write_v1_history
from paths import TESTS

from orchscan.analyzer.changes.diff import compare_scans
from orchscan.analyzer.changes.snapshot import ScanSnapshot, count_scan, take_snapshot
from orchscan.analyzer.results import Analysis
from orchscan.reports.history.schema import SCHEMA_VERSION
from orchscan.reports.history.store import HistoryError, check_history, open_history

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _record(path: Path, *snapshots: ScanSnapshot) -> list[int]:
    with open_history(path, create=True, now=NOW) as history:
        return [history.record(s, recorded_at=NOW, orchscan_version="test") for s in snapshots]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("analysis", [shop_analysis(), hostile_analysis()], ids=["shop", "hostile"])
def test_a_recorded_scan_reads_back_unchanged(tmp_path: Path, analysis: Analysis) -> None:
    snapshot = take_snapshot(analysis)
    (scan_id,) = _record(tmp_path / "history.db", snapshot)
    with open_history(tmp_path / "history.db", create=False, now=NOW) as history:
        assert history.snapshot(scan_id) == snapshot
        (recorded,) = history.scans()
    assert recorded.id == scan_id and recorded.recorded_at == NOW and recorded.orchscan_version == "test"
    assert recorded.counts == count_scan(snapshot)
    assert (recorded.start_ns, recorded.end_ns) == (snapshot.start_ns, snapshot.end_ns)


def test_scans_are_listed_in_order_and_named_by_id_latest_or_previous(tmp_path: Path) -> None:
    snapshot = take_snapshot(shop_analysis())
    ids = _record(tmp_path / "h.db", snapshot, dataclasses.replace(snapshot, spans=1), snapshot)
    assert ids == [1, 2, 3]
    with open_history(tmp_path / "h.db", create=False, now=NOW) as history:
        assert [s.id for s in history.scans()] == ids
        assert [s.id for s in history.scans(up_to=2)] == [1, 2]
        assert (history.resolve("latest"), history.resolve("previous"), history.resolve("2")) == (3, 2, 2)
        assert history.snapshot(2).spans == 1
        for wrong, reason in (("7", "no scan 7"), ("last", "is not a scan"), ("-1", "is not a scan")):
            with pytest.raises(HistoryError, match=reason):
                history.resolve(wrong)


def test_a_history_with_one_scan_has_no_previous_scan(tmp_path: Path) -> None:
    _record(tmp_path / "h.db", take_snapshot(shop_analysis()))
    with (
        open_history(tmp_path / "h.db", create=False, now=NOW) as history,
        pytest.raises(HistoryError, match=r"1 scan\(s\) recorded, so there is no 'previous' scan"),
    ):
        history.resolve("previous")


def test_reading_never_creates_a_history(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="no such history file"):
        open_history(tmp_path / "missing.db", create=False, now=NOW)
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "empty.db").touch()
    with pytest.raises(HistoryError, match="holds no orchscan history yet"):
        open_history(tmp_path / "empty.db", create=False, now=NOW)
    assert (tmp_path / "empty.db").stat().st_size == 0
    # An empty file is where a new history may begin, and a missing folder is made.
    _record(tmp_path / "empty.db", take_snapshot(shop_analysis()))
    _record(tmp_path / "new" / "folder" / "h.db", take_snapshot(shop_analysis()))


def _text(path: Path) -> Path:
    path.write_text("scan,spans\n1,20\n")
    return path


def _gzip(path: Path) -> Path:
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(200))
    return path


def _foreign_sqlite(path: Path) -> Path:
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
        db.execute("INSERT INTO moz_places VALUES (1, 'https://example.org/')")
        db.commit()
    return path


def _overwrite(path: Path, first_page: int, pages: int) -> Path:
    """A real history with some pages overwritten by garbage; the first page still says SQLite."""
    snapshot = take_snapshot(shop_analysis())
    _record(path, *[dataclasses.replace(snapshot, spans=i) for i in range(40)])
    data = bytearray(path.read_bytes())
    size = int.from_bytes(data[16:18], "big")
    start = size * (first_page if first_page >= 0 else len(data) // size + first_page)
    end = min(len(data), start + pages * size)
    data[start:end] = bytes((i * 37 + 11) % 256 for i in range(end - start))
    path.write_bytes(bytes(data))
    return path


def _damaged(path: Path) -> Path:
    return _overwrite(path, 1, 10_000)


def _damaged_tail(path: Path) -> Path:
    """Only the last pages (findings of the latest scans) damaged: found by the check before a write."""
    return _overwrite(path, -3, 3)


def _newer(path: Path) -> Path:
    _record(path, take_snapshot(shop_analysis()))
    with closing(sqlite3.connect(path)) as db:
        db.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
        db.commit()
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_text, "is not an SQLite file"),
        (_gzip, "is not an SQLite file"),
        (_foreign_sqlite, r"an SQLite database but not an orchscan history \(tables: moz_places\)"),
        (_newer, f"written by a newer orchscan \\(history schema {SCHEMA_VERSION + 1};"),
        (_damaged, "not a usable orchscan history"),
        (_damaged_tail, "is damaged"),
    ],
    ids=["text", "gzip", "foreign-sqlite", "newer", "damaged", "damaged-tail"],
)
def test_an_unusable_file_is_refused_and_left_as_it_is(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    path = make(tmp_path / "history.db")
    before, modified = _digest(path), path.stat().st_mtime_ns
    with pytest.raises(HistoryError, match=reason):
        check_history(path)
        _record(path, take_snapshot(shop_analysis()))
    with pytest.raises(HistoryError, match=reason):
        _record(path, take_snapshot(shop_analysis()))
    assert (_digest(path), path.stat().st_mtime_ns) == (before, modified)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.db"]


def test_reading_a_damaged_history_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = _damaged_tail(tmp_path / "history.db")
    with (
        open_history(path, create=False, now=NOW) as history,
        pytest.raises(HistoryError, match="is damaged"),
    ):
        for scan in history.scans():
            history.snapshot(scan.id)


def test_a_folder_is_no_history(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="is a folder"):
        _record(tmp_path, take_snapshot(shop_analysis()))


def _layout(path: Path) -> dict[str, list[tuple[str, str, int]]]:
    with closing(sqlite3.connect(path)) as db:
        tables = [
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return {t: [(c[1], c[2], c[3]) for c in db.execute(f"PRAGMA table_info({t})")] for t in tables}


def test_a_version_1_history_is_migrated_and_keeps_its_scans(tmp_path: Path) -> None:
    old = take_snapshot(shop_analysis())
    fewer = dataclasses.replace(old, findings=old.findings[2:], spans=old.spans - 100)
    path = write_v1_history(tmp_path / "v1.db", [old, fewer])

    with open_history(path, create=False, now=NOW) as history:
        scans = history.scans()
        assert [s.counts for s in scans] == [count_scan(old), count_scan(fewer)]
        assert [s.orchscan_version for s in scans] == ["0.0.9", "0.0.9"]
        assert history.snapshot(1) == old and history.snapshot(2) == fewer
        new_id = history.record(old, recorded_at=NOW, orchscan_version="test")
        assert compare_scans(history.snapshot(2), history.snapshot(new_id)).findings_new == old.findings[:2]

    with closing(sqlite3.connect(path)) as db:
        versions = db.execute("SELECT version, applied_at FROM schema_version ORDER BY version").fetchall()
    assert versions == [(1, "2026-01-05T06:00:00+00:00"), (SCHEMA_VERSION, NOW.isoformat())]
    # A migrated file and a new one have the same tables and columns.
    _record(tmp_path / "fresh.db", old)
    assert _layout(path) == _layout(tmp_path / "fresh.db")


CHILD = """
import dataclasses, sys, time
from datetime import UTC, datetime
from pathlib import Path
from analysis_factories import shop_analysis
from orchscan.analyzer.changes.snapshot import take_snapshot
from orchscan.reports.history.store import open_history

path, gate, worker, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
snapshot = take_snapshot(shop_analysis())
while not gate.exists():
    time.sleep(0.002)
for i in range(count):
    # Every scan opens the file anew, so creating and migrating it race as well.
    with open_history(path, create=True, now=datetime.now(UTC)) as history:
        mine = dataclasses.replace(snapshot, spans=worker * 1000 + i, findings=snapshot.findings[: i % 5])
        history.record(mine, recorded_at=datetime.now(UTC), orchscan_version=f"worker {worker}")
"""


def _run_writers(path: Path, gate: Path, workers: int, count: int) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(gate), str(w), str(count)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    time.sleep(1.0)  # let every process import and wait at the gate
    gate.touch()
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * workers, errors


@pytest.mark.slow
@pytest.mark.parametrize("start", ["missing", "version-1"])
def test_processes_recording_into_one_file_at_once_lose_nothing(tmp_path: Path, start: str) -> None:
    path = tmp_path / "history.db"
    base = take_snapshot(shop_analysis())
    if start == "version-1":
        write_v1_history(path, [base])
    workers, count = 4, 20
    _run_writers(path, tmp_path / "go", workers, count)

    with open_history(path, create=False, now=NOW) as history:
        scans = history.scans()
        recorded = {history.snapshot(s.id).spans: history.snapshot(s.id) for s in scans}
    offset = 1 if start == "version-1" else 0
    assert [s.id for s in scans] == list(range(1, workers * count + offset + 1))
    expected = {
        w * 1000 + i: dataclasses.replace(base, spans=w * 1000 + i, findings=base.findings[: i % 5])
        for w in range(workers)
        for i in range(count)
    }
    if offset:
        expected[base.spans] = base
    assert recorded == expected
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT version FROM schema_version ORDER BY version").fetchall() == [
            (v,) for v in range(1, SCHEMA_VERSION + 1)
        ]
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["go", "history.db"]
