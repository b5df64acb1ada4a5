"""What each input file contributed: spans, traces, services and time range, tallied per table.

Tallies of disjoint sets of traces add up (:func:`merge_tallies`): a trace lives in one
partition, so counting a file's distinct traces per partition and summing gives its distinct
traces overall, and a scan never needs all spans in one table to report per file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from orchscan.collectors.model.records import FileReport


@dataclass(frozen=True)
class FileTally:
    """One file's spans, distinct traces, services and time range within some whole traces."""

    spans: int
    traces: int
    services: frozenset[str]
    start_ns: int | None
    end_ns: int | None

    def plus(self, other: FileTally) -> FileTally:
        """The tally of both (their traces must be disjoint)."""
        starts = [s for s in (self.start_ns, other.start_ns) if s is not None]
        ends = [e for e in (self.end_ns, other.end_ns) if e is not None]
        return FileTally(
            spans=self.spans + other.spans,
            traces=self.traces + other.traces,
            services=self.services | other.services,
            start_ns=min(starts) if starts else None,
            end_ns=max(ends) if ends else None,
        )


def tally_files(table: pa.Table) -> dict[str, FileTally]:
    """Per source file of ``table``, what it holds."""
    # Batch by batch rather than one group-by over the table: a batch comes from one file, the
    # batches' service dictionaries differ (which a group-by cannot unify), and a group-by over
    # a million spans costs tens of megabytes at its peak.
    traces: dict[str, list[pa.Array]] = {}
    tallies: dict[str, FileTally] = {}
    batches: list[pa.RecordBatch] = table.select(
        ["source", "span_id", "trace_id", "service", "start_ns", "end_ns"]
    ).to_batches()
    for batch in batches:
        sources = pc.unique(batch.column("source")).to_pylist()
        for source in sources:
            part = batch if len(sources) == 1 else batch.filter(pc.equal(batch.column("source"), source))
            traces.setdefault(source, []).append(pc.unique(part.column("trace_id")))
            tally = FileTally(
                spans=pc.count(part.column("span_id")).as_py(),
                traces=0,
                services=frozenset(s for s in pc.unique(part.column("service")).to_pylist() if s is not None),
                start_ns=pc.min(part.column("start_ns")).as_py(),
                end_ns=pc.max(part.column("end_ns")).as_py(),
            )
            tallies[source] = tallies[source].plus(tally) if source in tallies else tally
    return {
        source: FileTally(
            tally.spans,
            int(pc.count_distinct(pa.chunked_array(traces[source], type=pa.string())).as_py()),
            tally.services,
            tally.start_ns,
            tally.end_ns,
        )
        for source, tally in tallies.items()
    }


def merge_tallies(parts: Iterable[dict[str, FileTally]]) -> dict[str, FileTally]:
    """Per file, the tallies of several disjoint sets of traces added up."""
    merged: dict[str, FileTally] = {}
    for part in parts:
        for source, tally in part.items():
            merged[source] = merged[source].plus(tally) if source in merged else tally
    return merged


def file_reports(
    tallies: dict[str, FileTally], inputs: Iterable[str], formats: Mapping[str, str]
) -> tuple[FileReport, ...]:
    """One report per input (a file's path as given or its URL, a live source's name), in input
    order; inputs that yielded nothing report zeros."""
    reports = []
    for source in inputs:
        found = tallies.get(source)
        reports.append(
            FileReport(
                file=source,
                format=formats.get(source, "unrecognised"),
                spans=found.spans if found else 0,
                traces=found.traces if found else 0,
                services=tuple(sorted(found.services)) if found else (),
                start_ns=found.start_ns if found else None,
                end_ns=found.end_ns if found else None,
            )
        )
    return tuple(reports)
