"""Parallelisation opportunities: sequential steps of a flow that nothing observed orders.

A flow's owner may call two steps one after the other only because it was written that way. The
steps of one *run* of consecutive blocks (a block is a single step or a parallel group; optional
steps end a run) could run together when no pair of them is ordered by anything the traces or
specs show:

* a data handoff from one to the other (:mod:`orchscan.analyzer.flows.handoffs`);
* state on the same service: both call one service and one of them writes, so the later may
  read what the earlier wrote;
* a compensation order: the later step's failure is answered by undoing the earlier one;
* a failure guard: the earlier step failed for good in some request and the later one writes,
  so waiting kept that write from happening (run together, it would need undoing);
* a poll: the earlier step is a read the owner repeats one call after another until its answer
  changes (an approval, a job's status), so what follows waits for that answer.

Runs are formed greedily in main-flow order: a block joins the current run when it is
independent of every block in it. What running a run together saves is measured per request
from the observed durations of its blocks (the first call's start to the last call's end, retries
and repeats included): their sum less the longest one, the time the critical path would lose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from orchscan.analyzer.flows.failures import is_write
from orchscan.analyzer.flows.steps import StepCalls
from orchscan.analyzer.results import Flow, ParallelOpportunity, Step
from orchscan.analyzer.thresholds import DEFAULT_FLOW_THRESHOLDS, FlowThresholds

_MS = 1_000_000


@dataclass(frozen=True)
class _Facts:
    """What orders a flow's steps, read once per flow: writes, failures, handoffs, compensations."""

    writes: frozenset[int]
    failed: Mapping[int, int]
    handoffs: frozenset[tuple[int, int]]
    compensations: frozenset[tuple[int, int]]

    def blocker(self, a: Step, b: Step) -> str | None:
        """Why ``b`` (later) must wait for ``a`` (earlier), or None when nothing says so."""
        if (a.index, b.index) in self.handoffs:
            return "handoff"
        if a.operation.service == b.operation.service and (a.index in self.writes or b.index in self.writes):
            return "state"
        if (b.index, a.index) in self.compensations:
            return "compensation"
        if self.failed.get(a.index) and b.index in self.writes:
            return "guard"
        if a.repeats > 1 and a.parallel_group is None and a.index not in self.writes:
            return "poll"
        return None


def find_parallel_opportunities(
    steps: StepCalls, flows: Sequence[Flow], *, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS
) -> dict[str, tuple[ParallelOpportunity, ...]]:
    """Every orchestrated flow's opportunities, keyed by flow id (flows without any are left out).

    ``flows`` must carry their handoffs and failure logic; ``steps`` are the requests they were
    mined from. Runs are found from the flows alone; only the calls of flows that have one are
    read, to measure them.
    """
    found: dict[str, tuple[ParallelOpportunity, ...]] = {}
    orchestrated = [flow for flow in flows if flow.kind == "orchestrated"]
    writes = _writing_steps(orchestrated)
    for flow in orchestrated:
        facts = _Facts(
            writes=writes.get(flow.id, frozenset()),
            failed=dict(flow.failure.failed_steps),
            handoffs=frozenset((h.from_step, h.to_step) for h in flow.handoffs),
            compensations=frozenset((c.failed_step, c.undone_step) for c in flow.failure.compensations),
        )
        runs = _runs(flow, facts)
        if not runs:
            continue
        spans = _step_spans(steps.of(flow.id).calls, flow)
        opportunities = [
            opportunity
            for run in runs
            if (opportunity := _measure(run, spans, facts, thresholds)) is not None
        ]
        if opportunities:
            found[flow.id] = tuple(opportunities)
    return found


def _writing_steps(flows: Sequence[Flow]) -> dict[str, frozenset[int]]:
    """Per flow, the indices of its steps that change state in the callee."""
    rows = [
        (flow.id, step.index, step.operation.method, step.operation.key, "sync")
        for flow in flows
        for step in flow.steps
    ]
    frame = pd.DataFrame(rows, columns=["flow_id", "index", "method", "operation", "kind"])
    written = frame[is_write(frame)] if len(frame) else frame
    return {str(fid): frozenset(map(int, group["index"])) for fid, group in written.groupby("flow_id")}


def _step_spans(calls: pd.DataFrame, flow: Flow) -> pd.DataFrame:
    """Per (request, step index): when the step's first call started and its last call ended."""
    index = {f"{s.operation.service} {s.operation.key}": s.index for s in flow.steps}
    mine = calls.assign(step_index=calls["step"].map(index)).dropna(subset=["step_index"])
    mine = mine.assign(step_index=mine["step_index"].astype(np.int64))
    return mine.groupby(["entry_row", "step_index"], sort=True).agg(
        start=("start_ns", "min"), end=("end_ns", "max")
    )


def with_parallel_opportunities(
    steps: StepCalls, flows: Sequence[Flow], *, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS
) -> tuple[Flow, ...]:
    """The flows with their parallelisation opportunities filled in."""
    found = find_parallel_opportunities(steps, flows, thresholds=thresholds)
    return tuple(dataclasses.replace(f, parallel_opportunities=found.get(f.id, ())) for f in flows)


def _blocks(flow: Flow) -> list[list[Step] | None]:
    """The main flow's blocks in order: a parallel group or a single step; None for an optional step."""
    blocks: list[list[Step] | None] = []
    for step in sorted(flow.steps, key=lambda s: s.index):
        if step.optional:
            blocks.append(None)
        elif (
            step.parallel_group is not None
            and blocks
            and (last := blocks[-1]) is not None
            and last[-1].parallel_group == step.parallel_group
        ):
            last.append(step)
        else:
            blocks.append([step])
    return blocks


def _runs(flow: Flow, facts: _Facts) -> list[list[list[Step]]]:
    """Runs of two or more consecutive blocks with no ordering between any two of them."""
    runs: list[list[list[Step]]] = []
    current: list[list[Step]] = []
    for block in [*_blocks(flow), None]:
        independent = block is not None and all(
            facts.blocker(a, b) is None for earlier in current for a in earlier for b in block
        )
        if independent and block is not None:
            current.append(block)
            continue
        if len(current) > 1:
            runs.append(current)
        current = [block] if block is not None else []
    return runs


def _measure(
    run: list[list[Step]], spans: pd.DataFrame, facts: _Facts, thresholds: FlowThresholds
) -> ParallelOpportunity | None:
    """The run's saving on the requests that made all of its steps, with its evidence."""
    durations = []
    for block in run:
        indices = [step.index for step in block]
        mine = spans[spans.index.get_level_values("step_index").isin(indices)]
        per_request = mine.groupby(level="entry_row").agg(
            start=("start", "min"), end=("end", "max"), steps=("start", "size")
        )
        whole = per_request[per_request["steps"] == len(indices)]
        durations.append((whole["end"] - whole["start"]).rename(indices[0]))
    table = pd.concat(durations, axis=1, join="inner").to_numpy(dtype=np.float64) / _MS
    if len(table) < max(thresholds.evidence_min_requests, 1):
        return None
    saving = table.sum(axis=1) - table.max(axis=1)
    p50, p95 = (float(v) for v in np.quantile(saving, [0.5, 0.95]))
    if p50 < thresholds.parallel_min_saving_ms:
        return None
    return ParallelOpportunity(
        steps=tuple(step.index for block in run for step in block),
        saving_p50_ms=p50,
        saving_p95_ms=p95,
        requests=len(table),
        evidence=_evidence(run, len(table), facts),
    )


def _name(step: Step) -> str:
    return f"step {step.index} ({step.operation.service} {step.operation.key})"


def _evidence(run: list[list[Step]], requests: int, facts: _Facts) -> tuple[str, ...]:
    steps = [step for block in run for step in block]
    names = ", ".join(_name(step) for step in steps)
    undocumented = sorted(
        {
            s.operation.service
            for s in steps
            if s.operation.operation_id is None or s.operation.operation_id_inferred
        }
    )
    handoffs = "no data handoff between them: no id one of them created appeared in another's URL, and " + (
        "their OpenAPI descriptions share no output and input field"
        if not undocumented
        else f"no OpenAPI description of {', '.join(undocumented)} could be compared field by field"
    )
    services = [s.operation.service for s in steps]
    shared = sorted({name for name in services if services.count(name) > 1})
    if not shared:
        state = f"each calls a different service ({', '.join(services)}): none can read what another wrote"
    else:
        state = f"the steps on {', '.join(shared)} only read it: no write orders them"
    failures = "no compensation undoes one of them when another fails"
    failed = [s for s in steps[:-1] if facts.failed.get(s.index)]
    if failed:
        failures += (
            "; "
            + ", ".join(f"step {s.index} failed for good in {facts.failed[s.index]} requests" for s in failed)
            + ", but no later step of the run writes"
        )
    else:
        failures += ", and none of them failed for good before a later one that writes"
    return (
        f"{names} ran one after another, each waiting for the previous one, in {requests} requests",
        handoffs,
        state,
        failures,
    )
