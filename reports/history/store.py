"""The scan history: one SQLite file that records what every scan found, for diffs and trends.

Several scans may record into one file at the same time (cron jobs overlapping, CI jobs sharing
a volume): every write is a single ``BEGIN IMMEDIATE`` transaction, so writers queue on SQLite's
file lock and wait for it up to :data:`BUSY_TIMEOUT_S`; readers read inside one transaction and
see whole scans only. The file keeps SQLite's rollback journal rather than WAL so that it stays
one self-contained file a CI job can cache or upload, and can be read from a read-only mount.

A file that is not SQLite, an SQLite file without orchscan's tables and a file written by a newer
orchscan are refused with :class:`HistoryError` before anything is written to them; an older
history is migrated (:mod:`reports.history.schema`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from orchscan.analyzer.changes.snapshot import (
    CompensationState,
    FindingState,
    FlowState,
    RetryState,
    ScanCounts,
    ScanSnapshot,
    ServiceState,
    StepState,
    count_scan,
)
from orchscan.analyzer.results import SEVERITIES
from orchscan.reports.history.schema import APPLICATION_ID, SCHEMA_VERSION, VERSION_TABLE, migrate

#: How long a scan waits for another process's write to the same history before giving up.
BUSY_TIMEOUT_S = 60.0

_SQLITE_HEADER = b"SQLite format 3\x00"
_RECORDED_COLUMNS = (
    "recorded_at",
    "orchscan_version",
    "start_ns",
    "end_ns",
    "spans",
    "traces",
    "calls",
    "services_count",
    "orchestrators_count",
    "flows_count",
    *(f"findings_{severity}_count" for severity in SEVERITIES),
)
_PREVIOUS, _LATEST = "previous", "latest"


class HistoryError(Exception):
    """A history file (or scan in it) that cannot be used, with the reason."""


@dataclass(frozen=True)
class RecordedScan:
    """One scan in a history: when it was recorded, by which orchscan, its window and counts."""

    id: int
    recorded_at: datetime
    orchscan_version: str
    start_ns: int | None
    end_ns: int | None
    counts: ScanCounts


class History:
    """An open history file; use :func:`open_history` and close it (or use it as a context manager)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._connection = connection

    def __enter__(self) -> History:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        self._connection.close()

    def record(self, snapshot: ScanSnapshot, *, recorded_at: datetime, orchscan_version: str) -> int:
        """Append one scan in one transaction; returns its id (ids grow with every scan)."""
        counts = count_scan(snapshot)
        with _transaction(self._connection, self.path, "BEGIN IMMEDIATE"):
            problems = [row[0] for row in self._connection.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise HistoryError(
                    f"{self.path} is damaged ({'; '.join(problems[:3])}); it was left as it is"
                )
            cursor = self._connection.execute(
                f"INSERT INTO scans ({', '.join(_RECORDED_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_RECORDED_COLUMNS))})",
                (
                    recorded_at.isoformat(),
                    orchscan_version,
                    snapshot.start_ns,
                    snapshot.end_ns,
                    counts.spans,
                    counts.traces,
                    counts.calls,
                    counts.services,
                    counts.orchestrators,
                    counts.flows,
                    *(count for _, count in counts.findings),
                ),
            )
            scan_id = cursor.lastrowid
            assert scan_id is not None
            self._insert_details(scan_id, snapshot)
        return scan_id

    def _insert_details(self, scan_id: int, snapshot: ScanSnapshot) -> None:
        run = self._connection.executemany
        run(
            "INSERT INTO services VALUES (?, ?, ?, ?, ?)",
            [(scan_id, s.name, s.role, s.hidden, s.score) for s in snapshot.services],
        )
        run(
            "INSERT INTO flows VALUES (?, ?, ?, ?, ?)",
            [(scan_id, f.id, f.owner, f.entry, f.requests) for f in snapshot.flows],
        )
        run(
            "INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    scan_id,
                    flow.id,
                    position,
                    step.service,
                    step.operation,
                    step.optional,
                    step.parallel_group,
                    step.retry.max_attempts if step.retry else None,
                    step.retry.idempotency_key if step.retry else None,
                )
                for flow in snapshot.flows
                for position, step in enumerate(flow.steps, start=1)
            ],
        )
        run(
            "INSERT INTO compensations VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (scan_id, flow.id, position, c.failed_step, c.undone_step, c.service, c.operation)
                for flow in snapshot.flows
                for position, c in enumerate(flow.compensations, start=1)
            ],
        )
        run(
            "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    scan_id,
                    position,
                    f.fingerprint,
                    f.rule,
                    f.severity,
                    f.service,
                    f.flow,
                    f.subject,
                    f.message,
                )
                for position, f in enumerate(snapshot.findings, start=1)
            ],
        )

    def scans(self, *, up_to: int | None = None) -> tuple[RecordedScan, ...]:
        """The recorded scans, oldest first; ``up_to`` stops at that id."""
        with _transaction(self._connection, self.path, "BEGIN"):
            rows = self._connection.execute(
                f"SELECT id, {', '.join(_RECORDED_COLUMNS)} FROM scans "
                "WHERE ? IS NULL OR id <= ? ORDER BY id",
                (up_to, up_to),
            ).fetchall()
        return tuple(_recorded(row) for row in rows)

    def resolve(self, reference: str) -> int:
        """A scan id from ``latest``, ``previous`` or a number; unknown scans are a :class:`HistoryError`."""
        with _transaction(self._connection, self.path, "BEGIN"):
            ids = [
                row[0] for row in self._connection.execute("SELECT id FROM scans ORDER BY id DESC LIMIT 2")
            ]
            found = (
                self._connection.execute("SELECT id FROM scans WHERE id = ?", (int(reference),)).fetchone()
                if reference.isdigit()
                else None
            )
        if reference == _LATEST and ids:
            return int(ids[0])
        if reference == _PREVIOUS and len(ids) == 2:
            return int(ids[1])
        if reference in (_LATEST, _PREVIOUS):
            return self._missing(f"{len(ids)} scan(s) recorded, so there is no {reference!r} scan")
        if not reference.isdigit():
            raise HistoryError(f"{reference!r} is not a scan: give a scan id, {_LATEST!r} or {_PREVIOUS!r}")
        return int(found[0]) if found else self._missing(f"no scan {reference}")

    def _missing(self, reason: str) -> NoReturn:
        raise HistoryError(f"{self.path}: {reason} (`orchscan history {self.path}` lists them)")

    def snapshot(self, scan_id: int) -> ScanSnapshot:
        """Everything one recorded scan holds, read in one transaction."""
        with _transaction(self._connection, self.path, "BEGIN"):
            run = self._connection.execute
            scan = run(
                "SELECT start_ns, end_ns, spans, traces, calls FROM scans WHERE id = ?", (scan_id,)
            ).fetchone()
            if scan is None:
                self._missing(f"no scan {scan_id}")
            services = tuple(
                ServiceState(name, role, bool(hidden), score)
                for name, role, hidden, score in run(
                    "SELECT name, role, hidden, score FROM services WHERE scan_id = ? ORDER BY name",
                    (scan_id,),
                )
            )
            steps: dict[str, list[StepState]] = {}
            for flow_id, service, operation, optional, group, attempts, key in run(
                "SELECT flow_id, service, operation, optional, parallel_group, retry_attempts, "
                "idempotency_key FROM steps WHERE scan_id = ? ORDER BY flow_id, position",
                (scan_id,),
            ):
                retry = RetryState(attempts, bool(key)) if attempts is not None else None
                steps.setdefault(flow_id, []).append(
                    StepState(service, operation, bool(optional), group, retry)
                )
            compensations: dict[str, list[CompensationState]] = {}
            for flow_id, *fields in run(
                "SELECT flow_id, failed_step, undone_step, service, operation FROM compensations "
                "WHERE scan_id = ? ORDER BY flow_id, position",
                (scan_id,),
            ):
                compensations.setdefault(flow_id, []).append(CompensationState(*fields))
            flows = tuple(
                FlowState(
                    flow_id,
                    owner,
                    entry,
                    requests,
                    tuple(steps.get(flow_id, ())),
                    tuple(compensations.get(flow_id, ())),
                )
                for flow_id, owner, entry, requests in run(
                    "SELECT flow_id, owner, entry, requests FROM flows WHERE scan_id = ? ORDER BY flow_id",
                    (scan_id,),
                )
            )
            findings = tuple(
                FindingState(*row)
                for row in run(
                    "SELECT fingerprint, rule, severity, service, flow, subject, message FROM findings "
                    "WHERE scan_id = ? ORDER BY position",
                    (scan_id,),
                )
            )
        start_ns, end_ns, spans, traces, calls = scan
        return ScanSnapshot(start_ns, end_ns, spans, traces, calls, services, flows, findings)


@contextmanager
def _transaction(connection: sqlite3.Connection, path: Path, begin: str) -> Iterator[None]:
    """One transaction; SQLite's errors (a lock held too long, a damaged file) become a HistoryError."""
    try:
        connection.execute(begin)
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    except sqlite3.OperationalError as error:
        raise HistoryError(f"{path}: {error}") from None
    except sqlite3.DatabaseError as error:
        raise HistoryError(f"{path} is damaged ({error}); it was left as it is") from None


def _recorded(row: tuple[Any, ...]) -> RecordedScan:
    (
        scan_id,
        recorded_at,
        version,
        start,
        end,
        spans,
        traces,
        calls,
        services,
        orchestrators,
        flows,
        *findings,
    ) = row
    return RecordedScan(
        id=scan_id,
        recorded_at=datetime.fromisoformat(recorded_at),
        orchscan_version=version,
        start_ns=start,
        end_ns=end,
        counts=ScanCounts(
            spans=spans,
            traces=traces,
            calls=calls,
            services=services,
            orchestrators=orchestrators,
            flows=flows,
            findings=tuple(zip(SEVERITIES, findings, strict=True)),
        ),
    )


def open_history(path: str | Path, *, create: bool, now: datetime) -> History:
    """Open (with ``create``, make) a history file, migrating an older one; refuse anything else.

    Nothing is written to a file that is not SQLite, is SQLite without orchscan's tables, or was
    written by a newer orchscan. ``now`` stamps applied migrations.
    """
    path = Path(path)
    if path.exists():
        _check_file(path)
    elif not create:
        raise HistoryError(f"{path}: no such history file")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    uri = f"{path.resolve().as_uri()}?mode={'rwc' if create else 'rw'}"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as error:
        raise HistoryError(f"{path}: cannot open ({error})") from None
    history = History(path, connection)
    try:
        connection.execute("PRAGMA foreign_keys = ON")
        version = _version(connection, path)
        if version == 0 and not create:
            raise HistoryError(
                f"{path} holds no orchscan history yet (`orchscan scan --history` records one)"
            )
        if version < SCHEMA_VERSION:
            with _transaction(connection, path, "BEGIN IMMEDIATE"):
                # Again under the write lock: another process may have created or migrated it meanwhile.
                migrate(connection, _version(connection, path), now)
    except sqlite3.DatabaseError as error:
        history.close()
        raise HistoryError(
            f"{path} is not a usable orchscan history ({error}); it was left as it is"
        ) from None
    except BaseException:
        history.close()
        raise
    return history


def check_history(path: str | Path) -> None:
    """Refuse an unusable history before a long scan, without creating or changing anything."""
    path = Path(path)
    if not path.exists():
        return
    _check_file(path)
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            _version(connection, path)
    except sqlite3.DatabaseError as error:
        raise HistoryError(
            f"{path} is not a usable orchscan history ({error}); it was left as it is"
        ) from None


def _check_file(path: Path) -> None:
    """Refuse a folder, or a file whose first bytes are not SQLite's (an empty file is a new history)."""
    if path.is_dir():
        raise HistoryError(f"{path} is a folder, not a history file")
    with path.open("rb") as stream:
        header = stream.read(len(_SQLITE_HEADER))
    if header and header != _SQLITE_HEADER:
        raise HistoryError(f"{path} is not an SQLite file, so not an orchscan history; it was left as it is")


def _version(connection: sqlite3.Connection, path: Path) -> int:
    """The file's schema version, 0 for an empty database; a foreign or newer file is refused."""
    tables = sorted(
        row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    )
    if not tables:
        return 0
    (application_id,) = connection.execute("PRAGMA application_id").fetchone()
    if application_id != APPLICATION_ID or VERSION_TABLE not in tables:
        shown = ", ".join(tables[:8]) + (", ..." if len(tables) > 8 else "")
        raise HistoryError(
            f"{path} is an SQLite database but not an orchscan history (tables: {shown}); "
            "it was left as it is"
        )
    (version,) = connection.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone()
    if not isinstance(version, int) or version < 1:
        raise HistoryError(f"{path} has no schema version; it was left as it is")
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"{path} was written by a newer orchscan (history schema {version}; this one reads up to "
            f"{SCHEMA_VERSION}): upgrade orchscan"
        )
    return version
