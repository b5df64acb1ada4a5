"""Flows: the recurring call sequence behind each entry operation of a coordinating service.

A flow is what a reviewer would draw on a whiteboard: the steps in order, which of them run in
parallel, which are optional, how often each repeats, and how long the whole thing takes. The
per-request sequences come from :mod:`analyzer.flowsteps`; here they are counted into variants
(a ``value_counts`` over sequence strings) and the main variant becomes the flow's backbone.
Steps that only some variants take are woven in where those variants put them, marked optional.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from orchscan.analyzer.columnar.frames import values
from orchscan.analyzer.flows.duplicates import find_duplicates
from orchscan.analyzer.flows.failures import find_failure_logics
from orchscan.analyzer.flows.handoffs import SpecIndex, find_handoffs
from orchscan.analyzer.flows.judgement import FLOW, NO_MIXED_ENTRIES, MixedEntries, judge_flows, shape_basis
from orchscan.analyzer.flows.steps import BLOCK_SEP, STEP_SEP, StepCalls
from orchscan.analyzer.results import Flow, OperationRef, Step, Variant
from orchscan.analyzer.thresholds import DEFAULT_CALL_THRESHOLDS, DEFAULT_FLOW_THRESHOLDS, FlowThresholds

_MS = 1_000_000


def analyze_flows(
    steps: StepCalls,
    *,
    specs: SpecIndex | None = None,
    thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS,
    tolerance_ms: float = DEFAULT_CALL_THRESHOLDS.overlap_tolerance_ms,
    mixed: MixedEntries = NO_MIXED_ENTRIES,
) -> tuple[Flow, ...]:
    """Mine every flow of the selected requests, judge it, and complete it with handoffs, failure
    logic and copies (copies among claimed flows only).

    ``steps`` are the requests of the flows worth mining, with their marked calls
    (:func:`orchscan.analyzer.flows.steps.number_requests`), mixed entries already split
    (``mixed``, see :func:`orchscan.analyzer.flows.judgement.split_mixed_entries`).
    """
    mined = judge_flows(mine_flows(steps, thresholds=thresholds), mixed, thresholds=thresholds)
    failures = find_failure_logics(steps, mined, tolerance_ms=tolerance_ms)
    flows = []
    for flow in mined:
        failure = failures[flow.id]
        retried = dict(failure.retries)
        handoffs = find_handoffs(steps, flow, specs=specs)
        flows.append(
            dataclasses.replace(
                flow,
                steps=tuple(
                    dataclasses.replace(s, retries=retried[s.index]) if s.index in retried else s
                    for s in flow.steps
                ),
                failure=failure,
                handoffs=handoffs,
                inputs=tuple(sorted({h.parameter for h in handoffs if h.from_step == 0})),
            )
        )
    copies = find_duplicates([f for f in flows if f.verdict == FLOW], thresholds=thresholds)
    return tuple(dataclasses.replace(f, duplicates=copies.get(f.id, ())) for f in flows)


def mine_flows(steps: StepCalls, *, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS) -> tuple[Flow, ...]:
    """One flow per mined entry operation: steps, variants, parallel groups and durations."""
    requests, calls = steps.requests, steps.calls
    if requests.empty:
        return ()
    variants = requests.groupby(["flow_id", "sequence"], sort=False).size().rename("requests").reset_index()
    variants = variants.sort_values(["flow_id", "requests", "sequence"], ascending=[True, False, True])
    per_flow = _step_stats(requests, calls, shape_basis(requests, thresholds))
    timing = _durations(requests)
    examples = _examples(requests, thresholds.example_traces)
    described = _operation_refs(calls)
    extras = _step_extras(calls)
    flows = []
    for (fid, group), (_, flow_variants) in zip(
        requests.groupby("flow_id", sort=True), variants.groupby("flow_id", sort=True), strict=True
    ):
        total = len(group)
        flow_stats = per_flow.get(fid, {})
        sequences = values(flow_variants["sequence"])
        steps_out = _steps(sequences, flow_stats, described, thresholds, extras)
        first = group.iloc[0]
        methods = group["method"].dropna()
        flows.append(
            Flow(
                id=fid,
                owner=str(first["owner"]),
                entry=OperationRef(
                    service=str(first["owner"]),
                    key=str(first["entry"]),
                    method=_text(methods.iloc[0]) if len(methods) else None,
                ),
                requests=total,
                holes=int(group["holes"].sum()),
                support=float(flow_variants["requests"].iloc[0]) / total,
                long_running=bool(timing.loc[fid, "long_running_s"] >= thresholds.long_running_s),
                steps=steps_out,
                variants=tuple(
                    Variant(steps=_flatten(seq), requests=int(n), support=int(n) / total)
                    for seq, n in zip(
                        flow_variants["sequence"].head(thresholds.max_variants),
                        flow_variants["requests"].head(thresholds.max_variants),
                        strict=True,
                    )
                ),
                example_traces=examples.get(fid, ()),
                duration_p50_ms=float(timing.loc[fid, "p50"]),
                duration_p95_ms=float(timing.loc[fid, "p95"]),
                duration_max_ms=float(timing.loc[fid, "max"]),
            )
        )
    return tuple(flows)


def step_label(ref: OperationRef) -> str:
    """The step key used in the step table for a step's operation."""
    return f"{ref.service} {ref.key}"


def _text(value: object) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _flatten(sequence: str) -> tuple[str, ...]:
    # Blocks and step keys are never empty: only an empty sequence has no steps.
    return tuple(sequence.replace(BLOCK_SEP, STEP_SEP).split(STEP_SEP)) if sequence else ()


class _StepFigures(NamedTuple):
    """What the mining knows of one step of one flow."""

    support: float
    ok_support: float
    repeats: float
    fan_out_parallel: bool
    p50_ms: float


def _step_stats(
    requests: pd.DataFrame, calls: pd.DataFrame, basis: pd.Series
) -> dict[str, dict[str, _StepFigures]]:
    """Per flow and step: support overall and among the requests its shape is judged on
    (``basis``, see :func:`orchscan.analyzer.flows.judgement.shape_basis`), repeats, timing.

    Grouped by integer codes of the (flow, step) pairs: grouping by the text columns hashed
    them again for every figure.
    """
    flow_codes, flow_ids = pd.factorize(calls["flow_id"])
    step_codes, step_keys = pd.factorize(calls["step"])
    named = (flow_codes >= 0) & (step_codes >= 0)
    frame = pd.DataFrame(
        {
            "pair": flow_codes.astype(np.int64) * len(step_keys) + step_codes,
            "entry_row": calls["entry_row"].to_numpy(),
            "block": calls["block"].to_numpy(),
            "retry": calls["retry"].to_numpy(dtype=bool),
            "ms": ((calls["end_ns"] - calls["start_ns"]) / _MS).to_numpy(),
        }
    )[named]
    present = frame[["pair", "entry_row"]].drop_duplicates()
    judged_rows = requests["entry_row"].to_numpy()[basis.to_numpy(dtype=bool)]
    counts = (
        present.assign(judged=present["entry_row"].isin(judged_rows))
        .groupby("pair")
        .agg(requests=("entry_row", "size"), judged=("judged", "sum"))
    )
    first_tries = frame[~frame["retry"].to_numpy()]
    per_request = first_tries.groupby(["pair", "entry_row"], sort=False).size()
    repeats = per_request.groupby(level="pair", sort=False).median().round().clip(lower=1)
    in_block = first_tries.groupby(["pair", "entry_row", "block"], sort=False).size()
    fanned = (in_block >= 2).groupby(level="pair", sort=False).mean().reindex(counts.index).fillna(0) > 0.5
    p50 = frame.groupby("pair", sort=False)["ms"].median().reindex(counts.index)
    flow_sizes = requests.assign(judged=basis).groupby("flow_id")["judged"].agg(["sum", "size"])
    pairs = counts.index.to_numpy()
    flows = flow_ids.take(pairs // len(step_keys))
    size = flow_sizes.reindex(flows)
    support = counts["requests"].to_numpy() / size["size"].to_numpy()
    ok_support = counts["judged"].to_numpy() / size["sum"].to_numpy()
    flow_names, step_names = [str(f) for f in flow_ids.tolist()], [str(k) for k in step_keys.tolist()]
    per_flow: dict[str, dict[str, _StepFigures]] = {}
    for pair, *figures in zip(
        pairs.tolist(),
        support.tolist(),
        ok_support.tolist(),
        repeats.reindex(counts.index).tolist(),
        fanned.tolist(),
        p50.tolist(),
        strict=True,
    ):
        flow, step = divmod(pair, len(step_names))
        per_flow.setdefault(flow_names[flow], {})[step_names[step]] = _StepFigures(*figures)
    return per_flow


def _durations(requests: pd.DataFrame) -> pd.DataFrame:
    duration = (requests["end_ns"] - requests["start_ns"]) / _MS
    by_flow = duration.groupby(requests["flow_id"])
    frame = pd.DataFrame({"p50": by_flow.median(), "p95": by_flow.quantile(0.95), "max": by_flow.max()})
    # A flow waits long when a typical request takes long overall or sits idle between steps.
    gap = (requests["max_gap_ns"] / 1e9).groupby(requests["flow_id"]).median()
    frame["long_running_s"] = np.maximum(frame["p50"] / 1000, gap)
    return frame


def _examples(requests: pd.DataFrame, count: int) -> dict[str, tuple[str, ...]]:
    top = requests.groupby("flow_id")["sequence"].agg(lambda s: s.value_counts().index[0])
    main = requests[requests["sequence"].to_numpy() == top.reindex(requests["flow_id"]).to_numpy()]
    ids = main[["flow_id", "trace_id"]].drop_duplicates().sort_values(["flow_id", "trace_id"])
    return {fid: tuple(group["trace_id"].head(count)) for fid, group in ids.groupby("flow_id")}


def _operation_refs(calls: pd.DataFrame) -> dict[str, OperationRef]:
    """The operation behind each step key, with method and route template as observed."""
    # Calls of one step may describe it unevenly (a method or route recorded on some spans
    # only): each field is the first one recorded, documented operation ids first (in their
    # order), then the calls in theirs. Positions are ordered, not the calls: sorting copied
    # every column for a few thousand steps.
    step_codes, step_keys = pd.factorize(calls["step"])
    id_codes, documented = pd.factorize(calls["operation_id"], sort=True)
    id_rank = np.where(id_codes < 0, len(documented), id_codes)
    order = np.lexsort((id_rank, step_codes))
    order = order[step_codes[order] >= 0]
    fields: dict[str, list[Any]] = {}
    for column in ("callee", "operation", "method", "route", "operation_id"):
        recorded = order[calls[column].notna().to_numpy()[order]]
        steps_found, firsts = np.unique(step_codes[recorded], return_index=True)
        found: list[Any] = [np.nan] * len(step_keys)
        picked = values(calls[column].iloc[recorded[firsts]])
        for code, value in zip(steps_found.tolist(), picked, strict=True):
            found[code] = value
        fields[column] = found
    return {
        str(step): OperationRef(
            service=str(callee),
            key=str(operation),
            method=_text(method),
            route=_text(route),
            operation_id=_text(operation_id),
        )
        for step, callee, operation, method, route, operation_id in zip(
            step_keys, *fields.values(), strict=True
        )
    }


#: Optional columns of a step table that describe steps other than the owner's own calls: the
#: step's kind, its topic and the service that made the call (see :mod:`analyzer.flows.events`).
_EXTRA_COLUMNS = {"step_kind": "kind", "topic": "topic", "step_caller": "caller"}


def _step_extras(calls: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per step key, the :class:`Step` fields the optional columns hold (none for an owner's calls)."""
    present = [column for column in _EXTRA_COLUMNS if column in calls.columns]
    if not present:
        return {}
    first = calls.groupby("step", sort=True)[present].first()
    fields = [_EXTRA_COLUMNS[column] for column in present]
    steps = values(first.index.to_series())
    return {
        str(step): {field: _text(value) for field, value in zip(fields, row, strict=True)}
        for step, *row in zip(steps, *(values(first[column]) for column in present), strict=True)
    }


def _order(sequences: Sequence[str]) -> list[list[str]]:
    """Blocks of the main variant, with other variants' extra steps inserted where they occur.

    An extra step goes after the step that precedes it in the variant that introduces it (the
    most frequent one), in a block of its own.
    """
    blocks = [block.split(STEP_SEP) for block in sequences[0].split(BLOCK_SEP) if block]
    # The blocks as a linked list (``following[i]`` comes after block i, -1 ends it): a flow of
    # a thousand steps inserts hundreds of blocks, and searching a list for each was quadratic.
    following = [*range(1, len(blocks)), -1][: len(blocks)]
    first = 0 if blocks else -1
    block_of = {step: i for i, block in enumerate(blocks) for step in block}
    for sequence in sequences[1:]:
        steps = _flatten(sequence)
        # Most variants only leave steps out or reorder them: nothing to insert.
        if block_of.keys() >= set(steps):
            continue
        previous: str | None = None
        for step in steps:
            if step not in block_of:
                block_of[step] = len(blocks)
                blocks.append([step])
                if previous is None:
                    following.append(first)
                    first = block_of[step]
                else:
                    following.append(following[block_of[previous]])
                    following[block_of[previous]] = block_of[step]
            previous = step
    ordered = []
    while first >= 0:
        ordered.append(blocks[first])
        first = following[first]
    return ordered


def _steps(
    sequences: Sequence[str],
    stats: Mapping[str, _StepFigures],
    described: Mapping[str, OperationRef],
    thresholds: FlowThresholds,
    extras: Mapping[str, Mapping[str, Any]],
) -> tuple[Step, ...]:
    steps: list[Step] = []
    group = 0
    for block in _order(sequences):
        # Calls only failed requests make (compensations) belong to the failure logic.
        kept = [s for s in block if s in stats and stats[s].ok_support > 0]
        parallel = len(kept) > 1 or any(stats[s].fan_out_parallel for s in kept)
        group += parallel
        for step in kept:
            row = stats[step]
            steps.append(
                Step(
                    index=len(steps) + 1,
                    operation=described[step],
                    parallel_group=group if parallel else None,
                    optional=bool(row.ok_support < thresholds.required_step_support),
                    support=float(row.support),
                    p50_ms=float(row.p50_ms),
                    repeats=int(row.repeats),
                    **extras.get(step, {}),
                )
            )
    return tuple(steps)
