"""Request records as a durable artefact: every reduced unit written as Parquet tables, and read back.

``scan --keep-records DIR`` writes what each unit of partitions was reduced to; ``scan --records
DIR`` builds the landscape and the reports from those records alone, without reading a span
again (a later scan with other landscape thresholds, a scheduled report over stored records,
a cluster that reduced the units elsewhere). The folder holds ``manifest.json`` and one folder
per table with one Parquet file per unit (``TABLE/unit-00007.parquet``); docs/records.md
documents every table and column. ``RECORDS_VERSION`` changes whenever a table or column does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orchscan.analyzer.findings.rules import TraceContextEvidence
from orchscan.analyzer.flows.chains import ChainRecords
from orchscan.analyzer.flows.steps import StepInputs
from orchscan.analyzer.landscape.behaviour import BehaviourPartial
from orchscan.analyzer.landscape.graph import EdgePartial
from orchscan.analyzer.landscape.ownership import NamespacePartial
from orchscan.analyzer.reduction import (
    PartitionHeavy,
    PartitionLight,
    SelectedRecords,
    Selection,
    select_records,
)
from orchscan.analyzer.specs.operations import CoveragePartial
from orchscan.analyzer.thresholds import Thresholds
from orchscan.collectors.model.records import Notice, Skipped
from orchscan.collectors.traces.accounting import FileTally
from orchscan.engines.units import ResultsInBlocks, UnitResult

#: Version of the records' tables and columns (2: fragments and answers tables, the named
#: requests of behaviour sums, step calls' client side, step requests' holes and names; 3: the
#: namespaces partial and the message chains' tables; 4: the sent_callees table).
RECORDS_VERSION = 4

MANIFEST = "manifest.json"

#: Thresholds the reduction itself applies: records reduced with other values cannot be mixed.
REDUCTION_THRESHOLDS = ("calls.overlap_tolerance_ms", "calls.fragment_tolerance_ms")


_TEXT, _INT, _FLOAT, _BOOL = pa.string(), pa.int64(), pa.float64(), pa.bool_()
_TEXTS, _FLOATS = pa.list_(pa.string()), pa.list_(pa.float64())
_OPERATION_SUMS = (
    "sync_calls",
    "distinct_callees",
    "sequential_steps",
    "dependent_pairs",
    "overlapping_calls",
    "reads",
    "writes",
    "unknown_methods",
    "db_calls",
    "publishes",
    "duration_ns",
    "self_ns",
    "requests",
    "errors",
    "forwarding",
    "multi",
    "consumed",
    "served",
    "events",
    "named",
)


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, kind) for name, kind in fields])


#: Every table of a unit's records with its columns; docs/records.md describes each column.
SCHEMAS: dict[str, pa.Schema] = {
    "behaviour_operations": _schema(
        ("service", _TEXT), ("operation", _TEXT), *((name, _FLOAT) for name in _OPERATION_SUMS)
    ),
    "behaviour_examples": _schema(
        ("service", _TEXT), ("operation", _TEXT), ("trace_id", _TEXT), ("busy", _INT)
    ),
    "behaviour_typical": _schema(
        ("service", _TEXT), ("operation", _TEXT), ("callee", _TEXT), ("requests", _INT), ("position", _INT)
    ),
    "behaviour_links": _schema(
        ("caller", _TEXT), ("callee", _TEXT), ("kind", _TEXT), ("calls", _INT), ("unanswered", _INT)
    ),
    "behaviour_destinations": _schema(("service", _TEXT), ("destination", _TEXT)),
    "behaviour_emitting": _schema(("service", _TEXT)),
    "edges": _schema(
        ("caller", _TEXT),
        ("callee", _TEXT),
        ("kind", _TEXT),
        ("calls", _INT),
        ("errors", _INT),
        ("latency_ms", _FLOATS),
        ("examples", _TEXTS),
    ),
    "statuses": _schema(("callee", _TEXT), ("operation", _TEXT), ("status_code", _INT)),
    "flow_calls": _schema(("owner", _TEXT), ("entry", _TEXT), ("most_calls", _INT)),
    "orphan_services": _schema(("service", _TEXT)),
    "root_keys": _schema(("key", _TEXT)),
    "sent_callees": _schema(("callee", _TEXT)),
    "fragments": _schema(("service", _TEXT), ("attached", _INT), ("kept", _INT), ("calls", _INT)),
    "answers": _schema(
        ("address", _TEXT),
        ("client_key", _TEXT),
        ("callee", _TEXT),
        ("operation", _TEXT),
        ("route", _TEXT),
        ("calls", _INT),
    ),
    "coverage_tallies": _schema(("service", _TEXT), ("kind", _TEXT), ("calls", _INT), ("matched", _INT)),
    "coverage_undocumented": _schema(
        ("service", _TEXT), ("kind", _TEXT), ("method", _TEXT), ("path", _TEXT), ("calls", _INT)
    ),
    "coverage_seen": _schema(("service", _TEXT), ("key", _TEXT)),
    "namespaces": _schema(("service", _TEXT), ("attribute", _TEXT), ("namespace", _TEXT), ("spans", _INT)),
    "skipped": _schema(("file", _TEXT), ("position", _TEXT), ("reason", _TEXT), ("count", _INT)),
    "notices": _schema(("file", _TEXT), ("reason", _TEXT), ("count", _INT)),
    "files": _schema(
        ("file", _TEXT),
        ("spans", _INT),
        ("traces", _INT),
        ("services", _TEXTS),
        ("start_ns", _INT),
        ("end_ns", _INT),
    ),
    "step_calls": _schema(
        ("trace_id", _TEXT),
        ("caller", _TEXT),
        ("callee", _TEXT),
        ("kind", _TEXT),
        ("entry_row", _INT),
        ("caller_row", _INT),
        ("callee_row", _INT),
        ("operation", _TEXT),
        ("method", _TEXT),
        ("start_ns", _INT),
        ("end_ns", _INT),
        ("status_code", _FLOAT),
        ("error", _BOOL),
        ("idempotency_key", _BOOL),
        ("system", _TEXT),
        ("operation_id", _TEXT),
        ("callee_end_ns", _INT),
        ("step", _TEXT),
        ("url_path", _TEXT),
        ("route", _TEXT),
        ("status_message", _TEXT),
        ("address", _TEXT),
        ("client_key", _TEXT),
    ),
    "step_requests": _schema(
        ("row", _INT),
        ("trace_id", _TEXT),
        ("span_id", _TEXT),
        ("owner", _TEXT),
        ("entry", _TEXT),
        ("method", _TEXT),
        ("url_path", _TEXT),
        ("start_ns", _INT),
        ("end_ns", _INT),
        ("error", _BOOL),
        ("status_code", _FLOAT),
        ("holes", _BOOL),
        ("named", _BOOL),
        ("infra_calls", _INT),
    ),
    "context_orphans": _schema(
        ("service", _TEXT), ("trace_id", _TEXT), ("start_ns", _INT), ("end_ns", _INT), ("callees", _TEXTS)
    ),
    "context_hosts": _schema(
        ("service", _TEXT), ("trace_id", _TEXT), ("start_ns", _INT), ("end_ns", _INT), ("operation", _TEXT)
    ),
    "context_roots": _schema(
        ("service", _TEXT),
        ("trace_id", _TEXT),
        ("start_ns", _INT),
        ("end_ns", _INT),
        ("span_id", _TEXT),
        ("server_address", _TEXT),
    ),
    "context_sent": _schema(
        ("caller", _TEXT), ("callee", _TEXT), ("trace_id", _TEXT), ("start_ns", _INT), ("end_ns", _INT)
    ),
    "context_unanswered": _schema(("caller", _TEXT), ("calls", _INT)),
    "chain_deliveries": _schema(
        ("trace_id", _TEXT),
        ("span_id", _TEXT),
        ("producer", _TEXT),
        ("topic", _TEXT),
        ("system", _TEXT),
        ("published_ns", _INT),
        ("consumer_trace", _TEXT),
        ("consumer_span", _TEXT),
        ("consumer", _TEXT),
        ("start_ns", _INT),
        ("end_ns", _INT),
        ("error", _BOOL),
        ("holes", _BOOL),
    ),
    "chain_publishes": _schema(
        ("trace_id", _TEXT),
        ("span_id", _TEXT),
        ("producer", _TEXT),
        ("topic", _TEXT),
        ("system", _TEXT),
        ("published_ns", _INT),
    ),
    "chain_calls": _schema(
        ("trace_id", _TEXT),
        ("span_id", _TEXT),
        ("callee", _TEXT),
        ("operation", _TEXT),
        ("operation_id", _TEXT),
        ("method", _TEXT),
        ("route", _TEXT),
        ("url_path", _TEXT),
        ("start_ns", _INT),
        ("end_ns", _INT),
        ("error", _BOOL),
        ("status_code", _FLOAT),
    ),
    "chain_origins": _schema(
        ("trace_id", _TEXT),
        ("span_id", _TEXT),
        ("service", _TEXT),
        ("entry", _TEXT),
        ("method", _TEXT),
        ("start_ns", _INT),
        ("end_ns", _INT),
        ("error", _BOOL),
        ("writes", _BOOL),
        ("holes", _BOOL),
    ),
}

_SKIPPED = tuple(SCHEMAS["skipped"].names)
_NOTICES = tuple(SCHEMAS["notices"].names)


class RecordsError(Exception):
    """A records folder that cannot be read (missing, foreign, another version, damaged)."""


def _tables(result: UnitResult, heavy: PartitionHeavy) -> dict[str, pd.DataFrame]:
    """Every table of one unit's records, by name."""
    light = result.light
    behaviour = light.behaviour
    tables = {
        "behaviour_operations": behaviour.operations,
        "behaviour_examples": behaviour.examples,
        "behaviour_typical": behaviour.typical,
        "behaviour_links": behaviour.links,
        "behaviour_destinations": behaviour.destinations,
        "behaviour_emitting": behaviour.emitting,
        "edges": _edges_table(light.edges),
        "statuses": light.statuses,
        "flow_calls": light.calls,
        "orphan_services": pd.DataFrame({"service": sorted(light.orphan_services)}, dtype=object),
        "root_keys": pd.DataFrame({"key": sorted(light.root_keys)}, dtype=object),
        "sent_callees": pd.DataFrame({"callee": sorted(light.sent_callees)}, dtype=object),
        "fragments": light.fragments,
        "answers": light.answers,
        "namespaces": light.namespaces.counts,
        "skipped": pd.DataFrame(
            [asdict(s) for s in result.skipped], columns=["file", "position", "reason", "count"]
        ),
        "notices": pd.DataFrame([asdict(n) for n in result.notices], columns=["file", "reason", "count"]),
        "files": pd.DataFrame(
            [
                (source, t.spans, t.traces, sorted(t.services), t.start_ns, t.end_ns)
                for source, t in sorted(result.tallies.items())
            ],
            columns=["file", "spans", "traces", "services", "start_ns", "end_ns"],
        ),
        "step_calls": heavy.steps.calls,
        "step_requests": heavy.steps.requests,
        "context_orphans": heavy.context.orphans,
        "context_hosts": heavy.context.hosts,
        "context_roots": heavy.context.roots,
        "context_sent": heavy.context.sent,
        "context_unanswered": heavy.context.unanswered,
        "chain_deliveries": heavy.chains.deliveries,
        "chain_publishes": heavy.chains.publishes,
        "chain_calls": heavy.chains.calls,
        "chain_origins": heavy.chains.origins,
    }
    if light.coverage is not None:
        tables["coverage_tallies"] = light.coverage.tallies
        tables["coverage_undocumented"] = light.coverage.undocumented
        tables["coverage_seen"] = light.coverage.seen
    return tables


def _edges_table(partial: EdgePartial) -> pd.DataFrame:
    """The edges with their latencies and examples as list columns, one row per edge."""
    index = partial.edges.index
    return partial.edges.assign(
        latency_ms=pd.Series(partial.latencies_by_edge(), index=index, dtype=object),
        examples=pd.Series(partial.examples_by_edge(), index=index, dtype=object),
    )


def write_unit(folder: Path, index: int, result: UnitResult, heavy: PartitionHeavy) -> None:
    """Write one unit's records (its light part, its account and its heavy records)."""
    for name, frame in _tables(result, heavy).items():
        path = folder / name / f"unit-{index:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        schema = SCHEMAS[name]
        table = pa.Table.from_pandas(
            frame[schema.names].reset_index(drop=True), schema=schema, preserve_index=False
        )
        pq.write_table(table, path, compression="zstd")
    (folder / "units").mkdir(parents=True, exist_ok=True)
    (folder / "units" / f"unit-{index:05d}.json").write_text(json.dumps({"traces": result.traces}))


@dataclass(frozen=True)
class RecordsManifest:
    """What a records folder holds besides its tables: how the records were made."""

    units: int
    services: tuple[str, ...]
    files: tuple[str, ...]
    formats: Mapping[str, str]
    skipped: tuple[Skipped, ...]
    notices: tuple[Notice, ...]
    thresholds: Mapping[str, float]


def write_manifest(folder: Path, manifest: RecordsManifest) -> None:
    """Write the manifest last: a folder without one is incomplete and is refused."""
    document = {
        "format": "orchscan-records",
        "version": RECORDS_VERSION,
        "units": manifest.units,
        "services": list(manifest.services),
        "files": list(manifest.files),
        "formats": dict(manifest.formats),
        "skipped": [asdict(s) for s in manifest.skipped],
        "notices": [asdict(n) for n in manifest.notices],
        "thresholds": dict(manifest.thresholds),
    }
    (folder / MANIFEST).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def reduction_thresholds(thresholds: Thresholds) -> dict[str, float]:
    """The thresholds the reduction applies, by dotted name."""
    return {
        "calls.overlap_tolerance_ms": thresholds.calls.overlap_tolerance_ms,
        "calls.fragment_tolerance_ms": thresholds.calls.fragment_tolerance_ms,
    }


def read_manifest(folder: Path) -> RecordsManifest:
    """The manifest of a records folder; :class:`RecordsError` when it is not one this version reads."""
    path = folder / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordsError(f"{folder}: no {MANIFEST} (not a records folder, or written part-way)") from None
    except (OSError, ValueError) as error:
        raise RecordsError(f"{path}: unreadable: {error}") from None
    if not isinstance(document, dict) or document.get("format") != "orchscan-records":
        raise RecordsError(f"{path}: not an orchscan records manifest")
    version = document.get("version")
    if version != RECORDS_VERSION:
        older = (
            " (written by an older orchscan, without the columns this one needs: keep the records "
            "again from the traces with --keep-records)"
            if isinstance(version, int) and not isinstance(version, bool) and version < RECORDS_VERSION
            else ""
        )
        raise RecordsError(
            f"{path}: records version {version!r}{older}; this orchscan reads version {RECORDS_VERSION}"
        )
    try:
        return RecordsManifest(
            units=int(document["units"]),
            services=tuple(map(str, document["services"])),
            files=tuple(map(str, document["files"])),
            formats={str(k): str(v) for k, v in document["formats"].items()},
            skipped=tuple(Skipped(**s) for s in document["skipped"]),
            notices=tuple(Notice(**n) for n in document["notices"]),
            thresholds={str(k): float(v) for k, v in document["thresholds"].items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RecordsError(f"{path}: damaged manifest: {error}") from None


class RecordsFolder:
    """The units of a records folder, read one table at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.manifest = read_manifest(folder)

    def _table(self, name: str, index: int) -> pa.Table:
        path = self.folder / name / f"unit-{index:05d}.parquet"
        try:
            return pq.read_table(path)
        except (OSError, pa.ArrowException) as error:
            raise RecordsError(f"{path}: unreadable: {error}") from None

    def _frame(self, name: str, index: int) -> pd.DataFrame:
        return self._table(name, index).to_pandas()

    def _edges(self, index: int) -> EdgePartial:
        """The edges' partial, their list columns read flat as the partial holds them."""
        table = self._table("edges", index)
        edges = table.drop_columns(["latency_ms", "examples"]).to_pandas()
        edges["example_count"] = pc.list_value_length(table["examples"]).fill_null(0).to_numpy()
        return EdgePartial(
            edges,
            pc.list_flatten(table["latency_ms"]).to_numpy().astype(np.float64),
            pc.list_flatten(table["examples"]).combine_chunks().cast(pa.string()),
        )

    def _optional(self, name: str, index: int) -> pd.DataFrame | None:
        path = self.folder / name / f"unit-{index:05d}.parquet"
        return self._frame(name, index) if path.exists() else None

    def result(self, index: int) -> UnitResult:
        """One unit's partials and account."""
        frame = self._frame
        behaviour = BehaviourPartial(
            operations=frame("behaviour_operations", index),
            examples=frame("behaviour_examples", index),
            typical=frame("behaviour_typical", index),
            links=frame("behaviour_links", index),
            destinations=frame("behaviour_destinations", index),
            emitting=frame("behaviour_emitting", index),
        )
        tallies = self._optional("coverage_tallies", index)
        coverage = (
            CoveragePartial(
                tallies=tallies,
                undocumented=frame("coverage_undocumented", index),
                seen=frame("coverage_seen", index),
            )
            if tallies is not None
            else None
        )
        light = PartitionLight(
            behaviour=behaviour,
            edges=self._edges(index),
            coverage=coverage,
            statuses=frame("statuses", index),
            calls=frame("flow_calls", index),
            orphan_services=frozenset(frame("orphan_services", index)["service"]),
            root_keys=frozenset(frame("root_keys", index)["key"]),
            sent_callees=frozenset(frame("sent_callees", index)["callee"]),
            fragments=frame("fragments", index),
            answers=frame("answers", index),
            namespaces=NamespacePartial(frame("namespaces", index)),
        )
        files = frame("files", index)
        tallies_by_file = {
            str(row["file"]): FileTally(
                int(row["spans"]),
                int(row["traces"]),
                frozenset(map(str, row["services"])),
                None if pd.isna(row["start_ns"]) else int(row["start_ns"]),
                None if pd.isna(row["end_ns"]) else int(row["end_ns"]),
            )
            for row in files.to_dict("records")
        }
        account = json.loads((self.folder / "units" / f"unit-{index:05d}.json").read_text())
        return UnitResult(
            light=light,
            skipped=tuple(Skipped(**s) for s in frame("skipped", index).to_dict("records")),
            notices=tuple(Notice(**n) for n in frame("notices", index).to_dict("records")),
            tallies=tallies_by_file,
            traces=int(account["traces"]),
        )

    def heavy(self, index: int) -> PartitionHeavy:
        """One unit's heavy records."""
        frame = self._frame
        return PartitionHeavy(
            steps=StepInputs(calls=frame("step_calls", index), requests=frame("step_requests", index)),
            context=TraceContextEvidence(
                orphans=frame("context_orphans", index),
                hosts=frame("context_hosts", index),
                roots=frame("context_roots", index),
                sent=frame("context_sent", index),
                unanswered=frame("context_unanswered", index),
            ),
            chains=ChainRecords(
                deliveries=frame("chain_deliveries", index),
                publishes=frame("chain_publishes", index),
                calls=frame("chain_calls", index),
                origins=frame("chain_origins", index),
            ),
        )


class RecordsEngine:
    """An engine over stored records: reduction was done when they were written."""

    def __init__(self, folder: RecordsFolder) -> None:
        self._folder = folder

    def reduce(self, on_progress: Any = None) -> list[UnitResult]:
        """Every unit's partials as stored, merged in blocks as they are read (see
        :class:`ResultsInBlocks`)."""
        results = ResultsInBlocks(self._folder.manifest.units)
        for index in range(self._folder.manifest.units):
            results.add(index, self._folder.result(index))
            if on_progress is not None:
                on_progress(1)
        return results.results()

    def select(self, selection: Selection) -> list[SelectedRecords]:
        """What every unit's stored heavy records hold of the selection."""
        return [select_records(self._folder.heavy(i), selection) for i in range(self._folder.manifest.units)]


def check_thresholds(manifest: RecordsManifest, thresholds: Thresholds) -> None:
    """Refuse to mix records reduced with other reduction thresholds than the scan's."""
    wanted = reduction_thresholds(thresholds)
    different = sorted(k for k in REDUCTION_THRESHOLDS if manifest.thresholds.get(k) != wanted[k])
    if different:
        pairs = ", ".join(f"{k}={manifest.thresholds.get(k)} (now {wanted[k]})" for k in different)
        raise RecordsError(f"the records were reduced with {pairs}: reduce the spans again to change them")
