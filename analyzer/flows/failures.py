"""Failure logic of a flow: retries, compensations, side effects left in place, timeouts.

Read from the step table of the flow's requests. A step *failed* for a request when its last
attempt failed; the earliest failed step is the failure the request reacted to. A call after it
that undoes an earlier write (DELETE, or an operation named cancel / release / void / refund /
rollback ...) of the same service is a compensation; an earlier write nobody undid is left in
place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from orchscan.analyzer.flows.steps import StepCalls, join_per_group
from orchscan.analyzer.requests.calls import MESSAGING
from orchscan.analyzer.results import (
    Compensation,
    FailureLogic,
    Flow,
    OperationRef,
    RetryPolicy,
    Uncompensated,
)

_MS = 1_000_000
_WRITE_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
_RPC_WRITE = re.compile(
    r"/(?:create|add|place|reserve|charge|pay|book|update|set|delete|remove|send|submit|insert)",
    re.IGNORECASE,
)
UNDO = re.compile(
    r"cancel|release|void|refund|revert|rollback|roll-back|compensat|undo|unreserve|reverse", re.IGNORECASE
)
TIMEOUT = re.compile(r"time[ds]?[ _-]?out|deadline[ _]exceeded|deadline", re.IGNORECASE)


def is_write(calls: pd.DataFrame) -> pd.Series:
    """Calls that change state in the callee: HTTP writes, messages, RPCs named after a write."""
    method = calls["method"].fillna("").astype(str).str.upper()
    rpc = calls["method"].isna() & calls["operation"].astype(str).str.contains(_RPC_WRITE)
    return method.isin(_WRITE_METHODS) | (calls["kind"] == MESSAGING) | rpc


def is_undo(calls: pd.DataFrame) -> pd.Series:
    """Calls that take back an earlier write: DELETE, or an operation named after undoing."""
    method = calls["method"].fillna("").astype(str).str.upper()
    return (method == "DELETE") | calls["operation"].astype(str).str.contains(UNDO)


#: HTTP statuses that mean "gave up waiting".
TIMEOUT_STATUSES = (408, 504)


def is_timeout(calls: pd.DataFrame, tolerance_ns: int) -> pd.Series:
    """Calls that gave up waiting: a timeout message, no answer at all (status 0), or an answer that
    came after the caller quit."""
    said_so = calls["status_message"].fillna("").astype(str).str.contains(TIMEOUT)
    unanswered = calls["status_code"].fillna(-1) == 0
    # An answer the caller recorded a status for was received, however late the callee's own span
    # ends (servers often finish work after sending the response); only a caller left without one
    # while the callee was still busy gave up.
    late = (calls["callee_end_ns"] > calls["end_ns"] + tolerance_ns) & calls["status_code"].isna()
    # 408 Request Timeout and 504 Gateway Timeout: a server or proxy says it gave up waiting.
    timeout_status = calls["status_code"].isin(TIMEOUT_STATUSES)
    return calls["error"] & (said_so | unanswered | late | timeout_status)


def with_step_indices(steps: StepCalls, flows: Sequence[Flow]) -> pd.DataFrame:
    """Every flow's calls with their step index (0 outside the steps), in one frame."""
    calls = steps.calls
    return calls.assign(step_index=_step_indices(calls, flows)).reset_index(drop=True)


def _step_indices(calls: pd.DataFrame, flows: Sequence[Flow]) -> np.ndarray:
    """The index of the step each call is of, in its flow; 0 for calls outside the flow's steps.

    Looked up by codes rather than merged: a merge copied every column of the calls.
    """
    flow_codes, flow_ids = pd.factorize(calls["flow_id"])
    step_codes, step_keys = pd.factorize(calls["step"])
    flow_code = {str(flow_id): code for code, flow_id in enumerate(flow_ids)}
    step_code = {str(key): code for code, key in enumerate(step_keys)}
    # A step key that recurs in a flow (A, B, A) is known by its first index.
    first: dict[int, int] = {}
    width = len(step_keys)
    for flow in flows:
        row = flow_code.get(flow.id)
        if row is None:
            continue
        for step in flow.steps:
            column = step_code.get(f"{step.operation.service} {step.operation.key}")
            if column is not None:
                first.setdefault(row * width + column, step.index)
    found = np.zeros(len(calls), dtype=np.int64)
    if not first:
        return found
    keys = pd.Index(np.fromiter(first.keys(), dtype=np.int64, count=len(first)))
    indices = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    at = keys.get_indexer(flow_codes.astype(np.int64) * width + step_codes)
    hit = (at >= 0) & (flow_codes >= 0) & (step_codes >= 0)
    found[hit] = indices[at[hit]]
    return found


def find_failure_logics(
    steps: StepCalls, flows: Sequence[Flow], *, tolerance_ms: float = 1.0
) -> dict[str, FailureLogic]:
    """The failure logic of every flow at once, keyed by flow id (one pass over all calls)."""
    calls = with_step_indices(steps, flows)
    failures = _first_failures(calls)
    # Compensations and what was left in place are looked for in the requests that failed only:
    # most requests went through, and filtering all their calls copied every column.
    failing = calls[calls["entry_row"].isin(failures["entry_row"]).to_numpy()]
    compensations, undone = _compensations(failing, failures)
    failed = steps.requests[steps.requests["failed"] & steps.requests["status_code"].notna()]
    statuses = failed.groupby("flow_id")["status_code"].unique()
    retries = _retries(calls)
    holes = steps.requests.set_index("entry_row")["holes"]
    uncompensated = _uncompensated(failing, failures, undone, holes)
    timeouts = _timeouts(calls, int(tolerance_ms * _MS))
    first = failures.merge(calls[["entry_row", "flow_id"]].drop_duplicates(), on="entry_row")
    failed_at: dict[str, list[tuple[int, int]]] = {}
    for (fid, index), count in first.groupby(["flow_id", "step_index"], sort=True).size().items():
        failed_at.setdefault(str(fid), []).append((int(index), int(count)))
    return {
        flow.id: FailureLogic(
            retries=retries.get(flow.id, ()),
            compensations=compensations.get(flow.id, ()),
            uncompensated=uncompensated.get(flow.id, ()),
            timeouts=timeouts.get(flow.id, ()),
            failure_statuses=tuple(sorted({int(code) for code in statuses.get(flow.id, ())})),
            failed_steps=tuple(failed_at.get(flow.id, ())),
        )
        for flow in flows
    }


def _retries(calls: pd.DataFrame) -> dict[str, tuple[tuple[int, RetryPolicy], ...]]:
    chains = calls.groupby(["entry_row", "step", "chain"], sort=False)
    attempts = chains["attempt"].transform("max")
    retried = calls[(attempts > 1).to_numpy() & (calls["step_index"] > 0).to_numpy()]
    if retried.empty:
        return {}
    previous_end = retried.groupby(["entry_row", "step", "chain"], sort=False)["end_ns"].shift(1)
    delay_ms = ((retried["start_ns"] - previous_end) / _MS)[retried["retry"]]
    failed = retried[retried["error"] & retried["status_code"].notna()]
    codes_of = failed.groupby(["flow_id", "step_index"])["status_code"].unique()
    policies: dict[str, tuple[tuple[int, RetryPolicy], ...]] = {}
    for (fid, index), group in retried.groupby(["flow_id", "step_index"], sort=True):
        codes = codes_of.get((fid, index), ())
        policies[fid] = (
            *policies.get(fid, ()),
            (
                int(index),
                RetryPolicy(
                    requests_with_retries=int(group["entry_row"].nunique()),
                    max_attempts=int(group["attempt"].max()),
                    status_codes=tuple(sorted(int(c) for c in codes)),
                    median_delay_ms=float(delay_ms[group.index.intersection(delay_ms.index)].median()),
                    idempotency_key=bool(group["idempotency_key"].all()),
                    keyed_requests=int(group.groupby("entry_row")["idempotency_key"].all().sum()),
                ),
            ),
        )
    return policies


def _first_failures(calls: pd.DataFrame) -> pd.DataFrame:
    """Per request, the earliest step that failed for good, and when it gave up."""
    final = calls[calls["final_error"] & (calls["step_index"] > 0)]
    last = final.groupby(["entry_row", "step", "chain"], sort=False).agg(
        step_index=("step_index", "first"),
        failed_at=("end_ns", "max"),
        started=("start_ns", "min"),
        trace_id=("trace_id", "first"),
    )
    last = last.reset_index().sort_values(["entry_row", "started"], kind="stable")
    return last.drop_duplicates("entry_row")[["entry_row", "step_index", "failed_at", "trace_id"]]


def _compensations(
    calls: pd.DataFrame, failures: pd.DataFrame
) -> tuple[dict[str, tuple[Compensation, ...]], pd.DataFrame]:
    """Undo calls after a failure, tied to the earlier write of the same service they take back
    (``calls``: those of the failed requests, at least)."""
    after = calls.merge(failures.rename(columns={"step_index": "failed_step"}), on=["entry_row", "trace_id"])
    undo = after[(after["start_ns"] >= after["failed_at"]) & is_undo(after)]
    earlier = calls[is_write(calls) & ~calls["final_error"] & (calls["step_index"] > 0)]
    pairs = undo.merge(earlier, on=["entry_row", "callee"], suffixes=("", "_done"))
    pairs = pairs[pairs["start_ns_done"] < pairs["failed_at"]]
    if pairs.empty:
        return {}, pd.DataFrame(
            {"entry_row": pd.Series(dtype=np.int64), "undone_step": pd.Series(dtype=np.int64)}
        )
    # Prefer the write of the same resource (DELETE /reservations/7 takes back POST /reservations).
    same_resource = [
        bool(isinstance(p, str) and isinstance(d, str) and (p.startswith(d) or d.startswith(p)))
        for p, d in zip(pairs["url_path"], pairs["url_path_done"], strict=True)
    ]
    pairs = pairs.assign(same_resource=same_resource).sort_values(
        ["same_resource", "start_ns_done"], ascending=[False, False], kind="stable"
    )
    pairs = pairs.drop_duplicates(["entry_row", "caller_row"]).rename(
        columns={"step_index_done": "undone_step"}
    )
    out: dict[str, tuple[Compensation, ...]] = {}
    for (fid, failed_step, undone_step, _), group in pairs.groupby(
        ["flow_id", "failed_step", "undone_step", "step"], sort=True
    ):
        first = group.iloc[0]
        ref = OperationRef(
            service=str(first["callee"]),
            key=str(first["operation"]),
            method=None if pd.isna(first["method"]) else str(first["method"]),
            route=None if pd.isna(first["route"]) else str(first["route"]),
            operation_id=None if pd.isna(first["operation_id"]) else str(first["operation_id"]),
        )
        compensation = Compensation(
            failed_step=int(failed_step),
            undone_step=int(undone_step),
            operation=ref,
            requests=int(group["entry_row"].nunique()),
        )
        out[fid] = (*out.get(fid, ()), compensation)
    return out, pairs[["entry_row", "undone_step"]]


def _uncompensated(
    calls: pd.DataFrame, failures: pd.DataFrame, undone: pd.DataFrame, holes: pd.Series, examples: int = 5
) -> dict[str, tuple[Uncompensated, ...]]:
    """Per flow, failed step and set of steps left in place: the requests, with the step's failures
    after earlier writes (``failures``; ``calls``: those of the failed requests, at least) and how
    many of the requests lost spans (``holes``)."""
    writes = calls[is_write(calls) & ~calls["final_error"] & (calls["step_index"] > 0)]
    done = writes.merge(failures, on=["entry_row", "trace_id"], suffixes=("", "_failed"))
    done = done[done["start_ns"] < done["failed_at"]][
        ["flow_id", "entry_row", "trace_id", "step_index", "step_index_failed"]
    ].drop_duplicates()
    failed = done.groupby(["flow_id", "step_index_failed"])["entry_row"].nunique()
    done = done.merge(
        undone.assign(undone=True),
        left_on=["entry_row", "step_index"],
        right_on=["entry_row", "undone_step"],
        how="left",
    )
    left = done[done["undone"].isna()].sort_values(["entry_row", "step_index"])
    if left.empty:
        return {}
    left = left.assign(step_index=left["step_index"].astype(str))
    per_request = join_per_group(left, ["flow_id", "entry_row", "step_index_failed"], "step_index", ",")
    per_request["trace_id"] = (
        left.groupby("entry_row")["trace_id"].first().reindex(per_request["entry_row"]).to_numpy()
    )
    per_request["holes"] = holes.reindex(per_request["entry_row"]).fillna(False).to_numpy(dtype=bool)
    keys = ["flow_id", "step_index_failed", "step_index"]
    per_request = per_request.sort_values([*keys, "trace_id"], ignore_index=True)
    examples_of = join_per_group(per_request.groupby(keys).head(examples), keys, "trace_id", ",")
    groups = pd.MultiIndex.from_frame(examples_of[keys])
    counts = per_request.groupby(keys, sort=False).size().reindex(groups)
    holed = per_request.groupby(keys, sort=False)["holes"].sum().reindex(groups)
    out: dict[str, tuple[Uncompensated, ...]] = {}
    for fid, failed_step, in_place, traces, count, with_holes in zip(
        examples_of["flow_id"],
        examples_of["step_index_failed"],
        examples_of["step_index"],
        examples_of["trace_id"],
        counts,
        holed,
        strict=True,
    ):
        gap = Uncompensated(
            failed_step=int(failed_step),
            left_in_place=tuple(int(i) for i in in_place.split(",")),
            requests=int(count),
            example_traces=tuple(traces.split(",")),
            failures=int(failed[(fid, failed_step)]),
            holes=int(with_holes),
        )
        out[fid] = (*out.get(fid, ()), gap)
    return out


def _timeouts(calls: pd.DataFrame, tolerance_ns: int) -> dict[str, tuple[str, ...]]:
    timed_out = calls[is_timeout(calls, tolerance_ns)]
    out: dict[str, tuple[str, ...]] = {}
    for (fid, index, step), group in timed_out.groupby(["flow_id", "step_index", "step"], sort=True):
        waited = float(((group["end_ns"] - group["start_ns"]) / _MS).median())
        where = f"step {index} ({step})" if index else step
        note = f"{where}: {len(group)} calls timed out, giving up after {waited:.0f} ms (median)"
        out[fid] = (*out.get(fid, ()), note)
    return out
