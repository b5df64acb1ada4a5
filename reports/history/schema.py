"""The history file's layout, version by version, and the migration that brings a file up to date.

Every version is a list of SQL statements applied once, in order, inside one write transaction;
a new file is created by applying all of them, so that a fresh file and a migrated old one go
through the same steps and cannot drift apart. The statements of a released version never change:
a later layout is a new version. ``docs/history.md`` describes the tables.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

#: ``PRAGMA application_id`` of an orchscan history ("ORCH"): tells our files from other SQLite files.
APPLICATION_ID = 0x4F524348

#: The table every history has from version 1 on; one row per applied version.
VERSION_TABLE = "schema_version"

_V1 = (
    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    """CREATE TABLE scans (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        recorded_at TEXT NOT NULL,
        orchscan_version TEXT NOT NULL,
        start_ns INTEGER,
        end_ns INTEGER,
        spans INTEGER NOT NULL,
        traces INTEGER NOT NULL,
        calls INTEGER NOT NULL
    )""",
    """CREATE TABLE services (
        scan_id INTEGER NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        hidden INTEGER NOT NULL,
        score REAL NOT NULL,
        PRIMARY KEY (scan_id, name)
    )""",
    """CREATE TABLE flows (
        scan_id INTEGER NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
        flow_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        entry TEXT NOT NULL,
        requests INTEGER NOT NULL,
        PRIMARY KEY (scan_id, flow_id)
    )""",
    """CREATE TABLE steps (
        scan_id INTEGER NOT NULL,
        flow_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        service TEXT NOT NULL,
        operation TEXT NOT NULL,
        optional INTEGER NOT NULL,
        parallel_group INTEGER,
        retry_attempts INTEGER,
        idempotency_key INTEGER,
        PRIMARY KEY (scan_id, flow_id, position),
        FOREIGN KEY (scan_id, flow_id) REFERENCES flows (scan_id, flow_id) ON DELETE CASCADE
    )""",
    """CREATE TABLE compensations (
        scan_id INTEGER NOT NULL,
        flow_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        failed_step TEXT NOT NULL,
        undone_step TEXT NOT NULL,
        service TEXT NOT NULL,
        operation TEXT NOT NULL,
        PRIMARY KEY (scan_id, flow_id, position),
        FOREIGN KEY (scan_id, flow_id) REFERENCES flows (scan_id, flow_id) ON DELETE CASCADE
    )""",
    """CREATE TABLE findings (
        scan_id INTEGER NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        rule TEXT NOT NULL,
        severity TEXT NOT NULL,
        service TEXT NOT NULL,
        flow TEXT,
        subject TEXT,
        message TEXT NOT NULL,
        PRIMARY KEY (scan_id, position)
    )""",
    "CREATE INDEX findings_by_fingerprint ON findings (fingerprint)",
)

# Version 2 keeps each scan's headline numbers on its row, so that listing a long history and
# drawing its trends read one table instead of counting services, flows and findings per scan.
_V2_COUNTS = (
    ("services", "SELECT count(*) FROM services x WHERE x.scan_id = scans.id"),
    (
        "orchestrators",
        "SELECT count(*) FROM services x WHERE x.scan_id = scans.id AND x.role = 'orchestrator'",
    ),
    ("flows", "SELECT count(*) FROM flows x WHERE x.scan_id = scans.id"),
    *(
        (
            f"findings_{severity}",
            f"SELECT count(*) FROM findings x WHERE x.scan_id = scans.id AND x.severity = '{severity}'",
        )
        for severity in ("critical", "high", "medium", "low", "info")
    ),
)
_V2 = (
    *(f"ALTER TABLE scans ADD COLUMN {column}_count INTEGER NOT NULL DEFAULT 0" for column, _ in _V2_COUNTS),
    "UPDATE scans SET " + ", ".join(f"{column}_count = ({query})" for column, query in _V2_COUNTS),
)

#: Version -> the statements that turn the previous version into it.
MIGRATIONS: dict[int, tuple[str, ...]] = {1: _V1, 2: _V2}

#: The layout this orchscan writes.
SCHEMA_VERSION = max(MIGRATIONS)


def migrate(connection: sqlite3.Connection, current: int, applied_at: datetime) -> None:
    """Apply every version after ``current``; the caller holds the write transaction."""
    if current == 0:
        connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version]:
            connection.execute(statement)
        connection.execute(
            f"INSERT INTO {VERSION_TABLE} (version, applied_at) VALUES (?, ?)",
            (version, applied_at.isoformat()),
        )
