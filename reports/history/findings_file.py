"""Reading a findings.json document back as a scan snapshot, for ``orchscan diff`` on two files.

Only what a comparison needs is read. Format 1.2 introduced finding fingerprints, without which
findings cannot be matched across scans, so older documents are refused by name; later 1.x
versions only add fields and are read the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import orjson

from orchscan.analyzer.changes.snapshot import (
    CompensationState,
    FindingState,
    FlowState,
    RetryState,
    ScanSnapshot,
    ServiceState,
    StepState,
    step_name,
)
from orchscan.analyzer.results import SEVERITIES
from orchscan.reports.history.store import HistoryError

#: The oldest findings.json minor version of major 1 that carries finding fingerprints.
OLDEST_MINOR = 2

T = TypeVar("T")


class _Document:
    """Typed access to an untrusted JSON document, naming the path of any field that is wrong."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def field(self, value: Any, key: str, kind: type[T], where: str) -> T:
        item = self.optional(value, key, kind, where)
        if item is None:
            raise HistoryError(f"{self.path}: {where}.{key} should be {kind.__name__}, not null")
        return item

    def optional(self, value: Any, key: str, kind: type[T], where: str) -> T | None:
        item = self._get(value, key, where)
        # bool is an int in Python; a count or index given as true/false is still wrong.
        if item is not None and (not isinstance(item, kind) or (kind is not bool and isinstance(item, bool))):
            raise HistoryError(f"{self.path}: {where}.{key} should be {kind.__name__}, not {item!r:.60}")
        return item

    def number(self, value: Any, key: str, where: str) -> float:
        item = self._get(value, key, where)
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise HistoryError(f"{self.path}: {where}.{key} should be a number, not {item!r:.60}")
        return float(item)

    def _get(self, value: Any, key: str, where: str) -> Any:
        if not isinstance(value, dict) or key not in value:
            raise HistoryError(f"{self.path}: {where} has no {key!r}; is this an orchscan findings.json?")
        return value[key]

    def items(self, value: Any, key: str, where: str) -> list[Any]:
        return self.field(value, key, list, where)


def read_findings_snapshot(path: str | Path) -> ScanSnapshot:
    """The snapshot of the scan a findings.json file describes; :class:`HistoryError` if unreadable."""
    path = Path(path)
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as error:
        raise HistoryError(f"{path}: cannot read ({error.strerror or error})") from None
    except orjson.JSONDecodeError as error:
        raise HistoryError(f"{path} is not JSON ({error})") from None
    reader = _Document(path)
    _check_version(reader, document)
    summary = reader.field(document, "input", dict, "document")
    services = tuple(
        sorted(
            ServiceState(
                reader.field(s, "name", str, f"services[{i}]"),
                reader.field(s, "role", str, f"services[{i}]"),
                reader.field(s, "hidden", bool, f"services[{i}]"),
                reader.number(s, "score", f"services[{i}]"),
            )
            for i, s in enumerate(reader.items(document, "services", "document"))
        )
    )
    flows = tuple(
        sorted(
            (
                _flow(reader, f, f"flows[{i}]")
                for i, f in enumerate(reader.items(document, "flows", "document"))
            ),
            key=lambda f: f.id,
        )
    )
    findings = tuple(
        sorted(
            (
                _finding(reader, f, f"findings[{i}]")
                for i, f in enumerate(reader.items(document, "findings", "document"))
            ),
            key=FindingState.sort_key,
        )
    )
    return ScanSnapshot(
        start_ns=reader.optional(summary, "start_ns", int, "input"),
        end_ns=reader.optional(summary, "end_ns", int, "input"),
        spans=reader.field(summary, "spans", int, "input"),
        traces=reader.field(summary, "traces", int, "input"),
        calls=sum(
            reader.field(e, "calls", int, f"edges[{i}]")
            for i, e in enumerate(reader.items(document, "edges", "document"))
        ),
        services=services,
        flows=flows,
        findings=findings,
    )


def _check_version(reader: _Document, document: Any) -> None:
    version = reader.field(document, "format_version", str, "document")
    major, _, minor = version.partition(".")
    if major == "1" and minor.isdigit() and int(minor) >= OLDEST_MINOR:
        return
    if major == "1" and minor.isdigit():
        raise HistoryError(
            f"{reader.path} is findings.json format {version}, which has no finding fingerprints; "
            f"diff reads format 1.{OLDEST_MINOR} and later 1.x: scan again with this orchscan"
        )
    raise HistoryError(
        f"{reader.path} is findings.json format {version!r}; this orchscan reads format 1.{OLDEST_MINOR} "
        "and later 1.x"
    )


def _flow(reader: _Document, flow: Any, where: str) -> FlowState:
    steps: list[StepState] = []
    keys: dict[int, str] = {}
    for i, step in enumerate(reader.items(flow, "steps", where)):
        at = f"{where}.steps[{i}]"
        retries = reader.optional(step, "retries", dict, at)
        state = StepState(
            service=reader.field(step, "service", str, at),
            operation=reader.field(step, "operation", str, at),
            optional=reader.field(step, "optional", bool, at),
            parallel_group=reader.optional(step, "parallel_group", int, at),
            retry=(
                RetryState(
                    reader.field(retries, "max_attempts", int, f"{at}.retries"),
                    reader.field(retries, "idempotency_key", bool, f"{at}.retries"),
                )
                if retries is not None
                else None
            ),
        )
        keys[reader.field(step, "index", int, at)] = state.key
        steps.append(state)
    failure = reader.field(flow, "failure", dict, where)
    compensations = []
    for i, item in enumerate(reader.items(failure, "compensations", f"{where}.failure")):
        at = f"{where}.failure.compensations[{i}]"
        operation = reader.field(item, "operation", dict, at)
        compensations.append(
            CompensationState(
                failed_step=step_name(keys, reader.field(item, "failed_step", int, at)),
                undone_step=step_name(keys, reader.field(item, "undone_step", int, at)),
                service=reader.field(operation, "service", str, f"{at}.operation"),
                operation=reader.field(operation, "operation", str, f"{at}.operation"),
            )
        )
    indexed = sorted(zip(keys, steps, strict=True), key=lambda pair: pair[0])
    return FlowState(
        id=reader.field(flow, "id", str, where),
        owner=reader.field(flow, "owner", str, where),
        entry=reader.field(reader.field(flow, "entry", dict, where), "operation", str, f"{where}.entry"),
        requests=reader.field(flow, "requests", int, where),
        steps=tuple(step for _, step in indexed),
        compensations=tuple(sorted(compensations)),
    )


def _finding(reader: _Document, finding: Any, where: str) -> FindingState:
    severity = reader.field(finding, "severity", str, where)
    if severity not in SEVERITIES:
        raise HistoryError(
            f"{reader.path}: {where}.severity {severity!r:.40} is none of {', '.join(SEVERITIES)}"
        )
    return FindingState(
        fingerprint=reader.field(finding, "fingerprint", str, where),
        rule=reader.field(finding, "rule", str, where),
        severity=severity,
        service=reader.field(finding, "service", str, where),
        flow=reader.optional(finding, "flow", str, where),
        subject=reader.optional(finding, "subject", str, where),
        message=reader.field(finding, "message", str, where),
    )
