"""History files as older orchscan releases wrote them, for migration tests.

The version 1 layout is spelled out here, apart from the package's own copy, the way a file from
the field would hold it: if the package's migration ever stops accepting such a file, the tests
say so instead of silently creating the old layout from the new code.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from orchscan.analyzer.changes.snapshot import ScanSnapshot

V1_LAYOUT = """
PRAGMA application_id = 1330791240;
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
INSERT INTO schema_version VALUES (1, '2026-01-05T06:00:00+00:00');
CREATE TABLE scans (
    id INTEGER PRIMARY KEY AUTOINCREMENT, recorded_at TEXT NOT NULL, orchscan_version TEXT NOT NULL,
    start_ns INTEGER, end_ns INTEGER, spans INTEGER NOT NULL, traces INTEGER NOT NULL, calls INTEGER NOT NULL
);
CREATE TABLE services (
    scan_id INTEGER NOT NULL REFERENCES scans (id) ON DELETE CASCADE, name TEXT NOT NULL, role TEXT NOT NULL,
    hidden INTEGER NOT NULL, score REAL NOT NULL, PRIMARY KEY (scan_id, name)
);
CREATE TABLE flows (
    scan_id INTEGER NOT NULL REFERENCES scans (id) ON DELETE CASCADE, flow_id TEXT NOT NULL,
    owner TEXT NOT NULL, entry TEXT NOT NULL, requests INTEGER NOT NULL, PRIMARY KEY (scan_id, flow_id)
);
CREATE TABLE steps (
    scan_id INTEGER NOT NULL, flow_id TEXT NOT NULL, position INTEGER NOT NULL, service TEXT NOT NULL,
    operation TEXT NOT NULL, optional INTEGER NOT NULL, parallel_group INTEGER, retry_attempts INTEGER,
    idempotency_key INTEGER, PRIMARY KEY (scan_id, flow_id, position),
    FOREIGN KEY (scan_id, flow_id) REFERENCES flows (scan_id, flow_id) ON DELETE CASCADE
);
CREATE TABLE compensations (
    scan_id INTEGER NOT NULL, flow_id TEXT NOT NULL, position INTEGER NOT NULL, failed_step TEXT NOT NULL,
    undone_step TEXT NOT NULL, service TEXT NOT NULL, operation TEXT NOT NULL,
    PRIMARY KEY (scan_id, flow_id, position),
    FOREIGN KEY (scan_id, flow_id) REFERENCES flows (scan_id, flow_id) ON DELETE CASCADE
);
CREATE TABLE findings (
    scan_id INTEGER NOT NULL REFERENCES scans (id) ON DELETE CASCADE, position INTEGER NOT NULL,
    fingerprint TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL, service TEXT NOT NULL, flow TEXT,
    subject TEXT, message TEXT NOT NULL, PRIMARY KEY (scan_id, position)
);
CREATE INDEX findings_by_fingerprint ON findings (fingerprint);
"""


def write_v1_history(path: Path, snapshots: list[ScanSnapshot]) -> Path:
    """A version 1 history holding these scans, recorded on 5 January 2026 by orchscan 0.0.9."""
    with closing(sqlite3.connect(path)) as db:
        db.executescript(V1_LAYOUT)
        for snapshot in snapshots:
            scan_id = db.execute(
                "INSERT INTO scans (recorded_at, orchscan_version, start_ns, end_ns, spans, traces, calls) "
                "VALUES ('2026-01-05T06:00:00+00:00', '0.0.9', ?, ?, ?, ?, ?)",
                (snapshot.start_ns, snapshot.end_ns, snapshot.spans, snapshot.traces, snapshot.calls),
            ).lastrowid
            db.executemany(
                "INSERT INTO services VALUES (?, ?, ?, ?, ?)",
                [(scan_id, s.name, s.role, s.hidden, s.score) for s in snapshot.services],
            )
            for flow in snapshot.flows:
                db.execute(
                    "INSERT INTO flows VALUES (?, ?, ?, ?, ?)",
                    (scan_id, flow.id, flow.owner, flow.entry, flow.requests),
                )
                db.executemany(
                    "INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            scan_id,
                            flow.id,
                            i,
                            s.service,
                            s.operation,
                            s.optional,
                            s.parallel_group,
                            s.retry.max_attempts if s.retry else None,
                            s.retry.idempotency_key if s.retry else None,
                        )
                        for i, s in enumerate(flow.steps, start=1)
                    ],
                )
                db.executemany(
                    "INSERT INTO compensations VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (scan_id, flow.id, i, c.failed_step, c.undone_step, c.service, c.operation)
                        for i, c in enumerate(flow.compensations, start=1)
                    ],
                )
            db.executemany(
                "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (scan_id, i, f.fingerprint, f.rule, f.severity, f.service, f.flow, f.subject, f.message)
                    for i, f in enumerate(snapshot.findings, start=1)
                ],
            )
        db.commit()
    return path
