"""The per-partition reduction: spans of whole traces in, compact records and mergeable partials out.

Everything about one request is decided inside its trace, so a partition that keeps its traces
whole can be reduced on its own, in this process, in a worker process or on a cluster node. The
result comes in two parts:

* :class:`PartitionLight`, small and always sent back: partial aggregates that merge by summing
  or concatenating (behaviour, edges, spec coverage, observed statuses, per-flow figures), and
  what the landscape needs to decide which heavy records it wants;
* :class:`PartitionHeavy`, as large as the requests: every request with its synchronous calls,
  and the evidence of broken trace context. The landscape stage keeps only the part of it that
  its decisions select (:func:`select_records`, which also marks the selected requests' steps:
  the costliest part of flow mining runs only where flows can be), so it may stay in a worker
  or on disk until then.

No partial depends on which other traces share the partition: results never depend on how
spans were partitioned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from orchscan.analyzer.findings.rules import TraceContextEvidence
from orchscan.analyzer.flows.chains import ChainRecords, chain_records
from orchscan.analyzer.flows.lost_callees import count_answers, sum_answers
from orchscan.analyzer.flows.steps import (
    StepCalls,
    StepInputs,
    call_figures,
    mark_steps,
    number_requests,
    step_inputs,
)
from orchscan.analyzer.landscape.behaviour import BehaviourPartial, measure_behaviour
from orchscan.analyzer.landscape.graph import EdgePartial
from orchscan.analyzer.landscape.ownership import NamespacePartial
from orchscan.analyzer.requests.calls import SYNC, CallTables, build_call_tables
from orchscan.analyzer.specs.operations import CoveragePartial, match_operations, measure_coverage
from orchscan.analyzer.thresholds import DEFAULT_THRESHOLDS, Thresholds
from orchscan.collectors.openapi.model import Operation


@dataclass(frozen=True)
class PartitionLight:
    """The small part of a partition's reduction: partials and what selection decides by.

    ``statuses``: distinct (callee, operation, status_code) of successful synchronous calls;
    ``calls``: per (owner, entry) the most synchronous calls a request made (see
    :func:`orchscan.analyzer.flows.steps.call_figures`); ``orphan_services``, ``root_keys`` and
    ``sent_callees`` name what the trace-context evidence of other partitions must keep; ``fragments`` per
    service the fragment roots put back into a request (``attached``), those kept apart
    (``kept``) and the calls made below the kept ones (``calls``), summed when merged;
    ``answers`` who answered which calls, by the client's address and operation (see
    :mod:`orchscan.analyzer.flows.lost_callees`); ``namespaces`` counts the namespaces each
    service's spans carry (its team, when no owners file names it).
    """

    behaviour: BehaviourPartial
    edges: EdgePartial
    coverage: CoveragePartial | None
    statuses: pd.DataFrame
    calls: pd.DataFrame
    orphan_services: frozenset[str]
    root_keys: frozenset[str]
    sent_callees: frozenset[str]
    fragments: pd.DataFrame
    answers: pd.DataFrame
    namespaces: NamespacePartial

    @classmethod
    def merge(cls, parts: Sequence[PartitionLight]) -> PartitionLight:
        """The partials of several partitions as one. Every part merges by summing, joining or
        taking extremes, so merging in any grouping gives the same landscape: an engine may
        merge units' partials as they arrive instead of holding them all."""
        coverage = [part.coverage for part in parts if part.coverage is not None]
        return cls(
            behaviour=BehaviourPartial.merge([part.behaviour for part in parts]),
            edges=EdgePartial.merge([part.edges for part in parts]),
            coverage=CoveragePartial.merge(coverage) if coverage else None,
            statuses=pd.concat([part.statuses for part in parts], ignore_index=True).drop_duplicates(
                ignore_index=True
            ),
            calls=pd.concat([part.calls for part in parts], ignore_index=True)
            .groupby(["owner", "entry"], sort=True, as_index=False)
            .max(),
            orphan_services=frozenset().union(*(part.orphan_services for part in parts)),
            root_keys=frozenset().union(*(part.root_keys for part in parts)),
            sent_callees=frozenset().union(*(part.sent_callees for part in parts)),
            fragments=pd.concat([part.fragments for part in parts], ignore_index=True)
            .groupby("service", sort=True, as_index=False)
            .sum(),
            answers=sum_answers([part.answers for part in parts]),
            namespaces=NamespacePartial.merge([part.namespaces for part in parts]),
        )


@dataclass(frozen=True)
class PartitionHeavy:
    """The large part of a partition's reduction: every request with its synchronous calls, the
    trace-context evidence (hosts and unanswered calls included) and the partition's part of the
    message chains."""

    steps: StepInputs
    context: TraceContextEvidence
    chains: ChainRecords


@dataclass(frozen=True)
class Selection:
    """What the landscape keeps of every partition's heavy records.

    ``candidates``: the (owner, entry) operations that may be flows, whose requests are marked;
    ``orphan_services``, ``root_keys`` and ``sent_callees``: whose served requests, unanswered
    calls and root spans the trace-context findings match; ``tolerance_ms``: the overlap
    tolerance steps are marked with; ``answers``: the landscape's answers that name calls whose
    answer was lost; ``sample_rates``: the candidates with too many requests to mine them all,
    and the share of their traces kept (see :mod:`orchscan.analyzer.flows.sampling`).
    """

    candidates: frozenset[tuple[str, str]]
    orphan_services: frozenset[str]
    root_keys: frozenset[str]
    sent_callees: frozenset[str]
    tolerance_ms: float
    answers: pd.DataFrame
    sample_rates: Mapping[tuple[str, str], float] = field(default_factory=dict)


@dataclass(frozen=True)
class SelectedRecords:
    """What one partition's heavy records hold of a selection: candidate requests with their
    marked steps, the trace-context evidence that can matter, and the message chains' records
    (all of them: a chain's parts are stitched across partitions only by the landscape)."""

    steps: StepCalls
    context: TraceContextEvidence
    chains: ChainRecords

    @classmethod
    def merge(
        cls, parts: Sequence[SelectedRecords], wanted: frozenset[tuple[str, str]] | None = None
    ) -> SelectedRecords:
        """The records of several partitions as one, requests numbered in a fixed order (see
        :func:`orchscan.analyzer.flows.steps.number_requests`); with ``wanted``, only the steps of
        those (owner, entry) operations."""
        return cls(
            steps=number_requests([part.steps for part in parts], wanted),
            context=TraceContextEvidence.merge([part.context for part in parts]),
            chains=ChainRecords.merge([part.chains for part in parts]),
        )


def reduce_partition(
    spans: pa.Table,
    stubs: pa.Table | None = None,
    *,
    operations: Mapping[str, Sequence[Operation]] | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    parents: np.ndarray | None = None,
) -> tuple[PartitionLight, PartitionHeavy]:
    """Reduce the spans of whole traces (and the linked consumers stubbed into them) to records.

    ``stubs`` are copies of consumer spans elsewhere that link into these traces (see
    :func:`orchscan.analyzer.requests.calls.link_stubs`); ``operations`` the documented
    operations per service, when specs were given; ``parents`` each span's parent row, when the
    span checks found them already.
    """
    # Coded text stays coded: the call tables and the matching work on its codes and spell out
    # only the columns they hand on.
    tables = build_call_tables(
        spans, stubs, fragment_tolerance_ms=thresholds.calls.fragment_tolerance_ms, parents=parents
    )
    matches = match_operations(spans, operations) if operations else None
    steps = step_inputs(tables, spans, matches=matches.table if matches else None)
    context = TraceContextEvidence.of(tables)
    light = PartitionLight(
        behaviour=measure_behaviour(tables, tolerance_ms=thresholds.calls.overlap_tolerance_ms),
        edges=EdgePartial.of(tables.calls),
        coverage=measure_coverage(spans, matches, operations) if matches and operations else None,
        statuses=_success_statuses(tables),
        calls=call_figures(steps),
        orphan_services=context.orphan_services(),
        root_keys=context.root_keys(),
        sent_callees=context.sent_callees(),
        fragments=_fragment_counts(tables),
        answers=count_answers(steps.calls),
        namespaces=NamespacePartial.of(spans),
    )
    return light, PartitionHeavy(steps, context, chain_records(tables, steps))


def select_records(heavy: PartitionHeavy, selection: Selection) -> SelectedRecords:
    """The part of one partition's heavy records the landscape's decisions need, steps marked."""
    return SelectedRecords(
        steps=mark_steps(
            heavy.steps,
            selection.candidates,
            tolerance_ms=selection.tolerance_ms,
            answers=selection.answers,
            sample_rates=selection.sample_rates,
        ),
        context=heavy.context.relevant(
            selection.orphan_services, selection.root_keys, selection.sent_callees
        ),
        chains=heavy.chains,
    )


def _fragment_counts(tables: CallTables) -> pd.DataFrame:
    """Per service: fragment roots attached to a request, kept apart, and calls made below kept ones."""
    fragments = tables.fragments
    kept = fragments.loc[~fragments["attached"], ["row", "service"]]
    calls = tables.calls["entry_row"].value_counts().reindex(kept["row"]).fillna(0)
    frame = pd.DataFrame(
        {
            "service": fragments["service"].astype(object).to_numpy(),
            "attached": fragments["attached"].to_numpy(dtype=np.int64),
            "kept": (~fragments["attached"]).to_numpy(dtype=np.int64),
            "calls": 0,
        }
    )
    frame.loc[~fragments["attached"].to_numpy(), "calls"] = calls.to_numpy(dtype=np.int64)
    return frame.groupby("service", sort=True, as_index=False).sum()


def _success_statuses(tables: CallTables) -> pd.DataFrame:
    """Distinct status codes each (callee, operation) answered successfully with."""
    calls = tables.calls
    ok = calls[(calls["kind"] == SYNC) & calls["status_code"].notna() & (calls["status_code"] < 400)]
    return pd.DataFrame(
        {
            "callee": ok["callee"].astype(object).to_numpy(),
            "operation": ok["operation"].astype(object).to_numpy(),
            "status_code": ok["status_code"].to_numpy(dtype=np.int64),
        }
    ).drop_duplicates(ignore_index=True)
