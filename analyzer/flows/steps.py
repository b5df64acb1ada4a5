"""The per-request step table every flow analysis reads: which downstream calls each request made.

Steps are synchronous calls to other services; store calls and published messages are the
owner's own work (counted per request), not steps.

From the calls table, only requests of coordinating services are kept (named owners, or any
service whose requests make several downstream calls). Their calls are marked, columnar and per
request, with:

* ``block``: the parallel block: calls overlapping in time (caller-view timing, with a small
  tolerance for skew) share a block number, blocks are numbered in time order;
* ``retry`` / ``chain`` / ``attempt``: a call repeating the same step right after that step
  failed is a retry; the first try and its retries form one chain;
* ``final_error``: the chain's last attempt failed too, so the step failed for the request.

Each request gets its ``sequence``: its blocks in order, steps sorted inside a block (overlapping
calls start in whatever order the scheduler chose), consecutive identical blocks folded (loops,
fan-outs and retries of one step are one step).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchscan.analyzer.columnar.frames import with_columns
from orchscan.analyzer.columnar.grouping import sorted_codes, sorted_unique
from orchscan.analyzer.flows.lost_callees import name_lost_callees
from orchscan.analyzer.flows.sampling import SampleRates, in_sample
from orchscan.analyzer.requests.calls import INFRASTRUCTURE, SYNC, CallTables

#: Separators inside a sequence string: between steps of one block, and between blocks.
STEP_SEP, BLOCK_SEP = "\x1f", "\x1e"

_MS = 1_000_000
# A concrete path segment that is an identifier: digits, or a longer token carrying a digit.
_ID_SEGMENT = re.compile(r"^(?:\d+|(?=.*\d).{6,})$")


@dataclass(frozen=True)
class StepCalls:
    """Downstream calls of the mined requests, and the requests themselves.

    ``calls``: one row per non-infrastructure call, sorted by ``(entry_row, start_ns)``, with
    ``flow_id``, ``owner``, ``entry``, ``step`` (``"callee OPERATION"``), ``callee``,
    ``operation``, ``operation_id`` (documented, when a spec matched), ``method``, ``url_path``,
    ``route``, ``status_message``, timing (and ``callee_end_ns``, when the callee's own span
    ended), ``error`` (also set for 4xx answers and status 0, no answer), ``status_code`` (as the
    caller saw it), ``idempotency_key``, ``block``, ``block_calls`` (calls in the block),
    ``gap_ns`` (wait since the previous block ended, 0 for the first), ``retry``, ``chain``,
    ``attempt``, ``final_error``; from the client's side, when the caller has a client span:
    ``address`` (``server.address:port``) and ``client_key`` (its own operation, ids folded).

    ``requests``: one row per mined request: ``entry_row``, ``trace_id``, ``flow_id``,
    ``owner``, ``entry``, ``method``, ``url_path``, ``start_ns``, ``end_ns`` (extended to the last
    call), ``error``, ``status_code``, ``holes`` (its trace lost spans: some span's parent is
    absent), ``named`` (its entry is only a span name), ``steps`` (distinct blocks after
    folding), ``sequence``,
    ``infra_calls`` (store calls: the owner's own work), ``busy_ns`` (time covered by downstream
    calls), ``max_gap_ns``,
    ``failed`` (some step failed after its retries).
    """

    calls: pd.DataFrame
    requests: pd.DataFrame

    @cached_property
    def _by_flow(self) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
        calls = dict(iter(self.calls.groupby("flow_id", sort=False)))
        empty = self.calls.iloc[:0]
        return {
            str(fid): (calls.get(fid, empty), requests)
            for fid, requests in self.requests.groupby("flow_id", sort=False)
        }

    def of(self, flow: str) -> StepCalls:
        """The calls and requests of one flow (split once, so per-flow analyses stay linear)."""
        calls, requests = self._by_flow.get(flow, (self.calls.iloc[:0], self.requests.iloc[:0]))
        return StepCalls(calls=calls, requests=requests)


def singular(word: str) -> str:
    """The singular of a collection name in a path (``reservations`` -> ``reservation``)."""
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def fold_identifiers(key: str) -> str:
    """``GET /approvals/apr-000150`` -> ``GET /approvals/{approvalId}``: a template from a concrete path."""
    method, _, path = key.partition(" ")
    if not path.startswith("/"):
        return key
    segments = path.split("/")
    for i, segment in enumerate(segments):
        if i and _ID_SEGMENT.match(segment):
            before = segments[i - 1]
            named = before and not before.startswith("{")
            segments[i] = "{" + (singular(before) + "Id" if named else "id") + "}"
    return f"{method} {'/'.join(segments)}"


def flow_id(owner: str, entry: str) -> str:
    """The stable identifier of the flow behind one entry operation of one owner."""
    return f"{owner}:{entry}"


@dataclass(frozen=True)
class StepInputs:
    """One partition's synchronous calls with their span details, and its requests, not marked yet.

    ``calls`` as :attr:`StepCalls.calls` without the marks (block, retry, chain, attempt,
    final_error, gap); ``requests``: ``row``, ``trace_id``, ``span_id``, ``owner``, ``entry``,
    ``method``, ``url_path``, ``start_ns``, ``end_ns``, ``error``, ``status_code``, ``holes``,
    ``named`` and ``infra_calls``. Marking waits until the landscape knows which entry operations can be
    flows (:func:`candidate_flows`): it costs more than everything else here.
    """

    calls: pd.DataFrame
    requests: pd.DataFrame


def step_inputs(tables: CallTables, span_table: pa.Table, *, matches: pa.Table | None = None) -> StepInputs:
    """The calls and requests of one partition that steps are marked from.

    ``matches`` is the per-span operation table of
    :func:`orchscan.analyzer.specs.operations.match_operations`: where a documented operation
    matched, the step is named after it.
    """
    calls, requests, spans = tables.calls, tables.requests, tables.spans
    # Steps are synchronous calls; infrastructure is the owner's own work, and published events
    # are choreography the owner does not wait for.
    steps = _with_span_details(calls[calls["kind"] == SYNC], spans, span_table, matches)
    infra = calls.loc[calls["kind"] == INFRASTRUCTURE, "entry_row"].value_counts()
    holes = spans.loc[spans["lost_parent"].to_numpy(dtype=bool), "trace_id"].unique()
    rows = requests["row"].to_numpy()
    frame = pd.DataFrame(
        {
            "row": rows,
            "trace_id": requests["trace_id"].array,
            "span_id": requests["span_id"].array,
            "owner": requests["service"].array,
            "entry": requests["operation"].astype(str).array,
            "method": requests["method"].array,
            "url_path": _text_at(spans["url_path"], rows),
            "start_ns": requests["start_ns"].to_numpy(),
            "end_ns": requests["end_ns"].to_numpy(),
            "error": (requests["error"] | (spans["http_status_code"].to_numpy()[rows] >= 400)).to_numpy(),
            "status_code": spans["http_status_code"].to_numpy()[rows],
            "holes": requests["trace_id"].isin(holes).to_numpy(dtype=bool),
            "named": requests["named"].to_numpy(dtype=bool),
            "infra_calls": infra.reindex(rows).fillna(0).astype(np.int64).to_numpy(),
        }
    )
    return StepInputs(calls=steps.reset_index(drop=True), requests=frame)


def call_figures(inputs: StepInputs) -> pd.DataFrame:
    """Per (owner, entry): the most synchronous calls one request made, an upper bound of its steps.

    Merges by taking the maximum; :func:`candidate_flows` decides by it.
    """
    made = inputs.calls["entry_row"].value_counts()
    requests = inputs.requests
    frame = pd.DataFrame(
        {
            "owner": requests["owner"],
            "entry": requests["entry"],
            "most_calls": made.reindex(requests["row"]).fillna(0).astype(np.int64).to_numpy(),
        }
    )
    return frame.groupby(["owner", "entry"], sort=True, as_index=False).max()


def candidate_flows(
    figures: pd.DataFrame, owners: frozenset[str], min_steps: int
) -> frozenset[tuple[str, str]]:
    """Entry operations that may be flows: a cheap upper bound before the steps are counted.

    A request has at most as many steps as calls, so only entry operations with a request making
    ``min_steps`` calls (or owned by a named owner and calling anything) can qualify; everything
    else (leaves, gateways) is dropped before the costly marking. ``figures`` are
    :func:`call_figures` rows of any number of partitions.
    """
    most = figures.groupby(["owner", "entry"], sort=True)["most_calls"].max()
    owned = (most > 0) & most.index.get_level_values("owner").isin(list(owners))
    return frozenset(most.index[(most >= min_steps) | owned])


def mark_steps(
    inputs: StepInputs,
    candidates: frozenset[tuple[str, str]],
    *,
    tolerance_ms: float,
    answers: pd.DataFrame | None = None,
    sample_rates: SampleRates | None = None,
) -> StepCalls:
    """The requests of the candidate entry operations, their calls marked: blocks, retries, sequences.

    Calls whose answer was lost are named first after the landscape's ``answers`` (see
    :mod:`orchscan.analyzer.flows.lost_callees`); candidates with a sample rate keep only their
    sampled traces (see :mod:`orchscan.analyzer.flows.sampling`).
    """
    requests = inputs.requests
    keep = pd.MultiIndex.from_frame(requests[["owner", "entry"]]).isin(list(candidates))
    requests = requests[keep]
    if sample_rates:
        requests = requests[in_sample(requests, sample_rates)]
    calls = inputs.calls[inputs.calls["entry_row"].isin(requests["row"])]
    if answers is not None:
        calls = name_lost_callees(calls, answers)
    steps = _mark(calls, tolerance_ms)
    return StepCalls(calls=steps, requests=_request_frame(requests, _sequences(steps)))


def flow_figures(requests: pd.DataFrame) -> pd.DataFrame:
    """Per (owner, entry) of one partition's requests, what :func:`wanted_flows` decides by.

    ``most_steps`` is the most steps any request made, ``most_ok_steps`` the most a request
    that went through made (-1 when none did); both merge by taking the maximum.
    """
    ok = ~requests["error"] & ~requests["failed"]
    frame = pd.DataFrame(
        {
            "owner": requests["owner"],
            "entry": requests["entry"],
            "most_steps": requests["steps"],
            "most_ok_steps": requests["steps"].where(ok, -1),
        }
    )
    return frame.groupby(["owner", "entry"], sort=True, as_index=False).max()


def wanted_flows(figures: pd.DataFrame, owners: frozenset[str], min_steps: int) -> frozenset[tuple[str, str]]:
    """Entry operations of named owners that call anything, and any entry that coordinates.

    ``figures`` are :func:`flow_figures` rows of any number of partitions. A flow is judged on
    requests that went through when there are any: a failure cuts a flow short.
    """
    merged = figures.groupby(["owner", "entry"], sort=True)[["most_steps", "most_ok_steps"]].max()
    most = merged["most_ok_steps"].where(merged["most_ok_steps"] >= 0, merged["most_steps"])
    owned = (merged["most_steps"] > 0) & merged.index.get_level_values("owner").isin(list(owners))
    return frozenset(merged.index[(most >= min_steps) | owned])


def number_requests(
    parts: Sequence[StepCalls], wanted: frozenset[tuple[str, str]] | None = None
) -> StepCalls:
    """Selected steps of several partitions as one table, requests numbered in a fixed order.

    Partition row numbers mean nothing across partitions: requests are renumbered in the order
    of (trace id, start, span id), so that results never depend on how spans were partitioned.
    With ``wanted``, only the requests of those (owner, entry) operations are kept, with their
    calls (see :func:`wanted_flows`): left out while numbering, the others are never copied.
    """
    requests = pd.concat([part.requests for part in parts], ignore_index=True)
    calls = pd.concat([part.calls for part in parts], ignore_index=True)
    # A request's key: its row in its partition, above every row of the partitions before.
    widths = [int(part.requests["entry_row"].max()) + 1 if len(part.requests) else 0 for part in parts]
    offsets = np.cumsum([0, *widths], dtype=np.int64)
    request_key = requests["entry_row"].to_numpy() + np.repeat(offsets[:-1], [len(p.requests) for p in parts])
    call_key = calls["entry_row"].to_numpy() + np.repeat(offsets[:-1], [len(p.calls) for p in parts])
    keys = pa.table({name: pa.array(requests[name]) for name in ("trace_id", "start_ns", "span_id")})
    order = pc.sort_indices(keys, [(name, "ascending") for name in keys.column_names]).to_numpy()
    if wanted is not None:
        order = order[pd.MultiIndex.from_frame(requests[["owner", "entry"]]).isin(list(wanted))[order]]
    number = np.full(offsets[-1], -1, dtype=np.int64)  # -1: a request left out
    number[request_key[order]] = np.arange(len(order))
    requests = requests.take(order).reset_index(drop=True)
    requests["entry_row"] = np.arange(len(requests))
    rows = number[call_key]
    # A request's calls all come from one partition, in (start, end) order there: a stable
    # sort by the new numbers keeps that order. Columns are set in place: a landscape's
    # selected calls are the scan's largest frame.
    by_request = np.argsort(rows, kind="stable")
    by_request = by_request[rows[by_request] >= 0]
    calls = calls.take(by_request).reset_index(drop=True)
    rows = rows[by_request]
    calls["entry_row"] = rows
    for column in ("flow_id", "owner", "entry"):
        calls[column] = requests[column].array.take(rows)
    return StepCalls(calls=calls, requests=requests)


def _with_span_details(
    calls: pd.DataFrame, spans: pd.DataFrame, span_table: pa.Table, matches: pa.Table | None
) -> pd.DataFrame:
    """Concrete paths, route templates, error messages and documented operations of each call."""
    caller_rows = calls["caller_row"].to_numpy()
    callee_rows = calls["callee_row"].to_numpy()
    answered = callee_rows >= 0
    safe_callee = np.where(answered, callee_rows, 0)
    messages = span_table["status_message"]
    caller_path = pd.Series(_text_at(spans["url_path"], caller_rows), index=calls.index)
    callee_path = pd.Series(_text_at(spans["url_path"], safe_callee, answered), index=calls.index)
    callee_message = pd.Series(
        np.where(answered, messages.take(safe_callee).to_numpy(zero_copy_only=False), None), index=calls.index
    )
    caller_message = pd.Series(messages.take(caller_rows).to_numpy(zero_copy_only=False), index=calls.index)
    callee_route = pd.Series(_text_at(spans["http_route"], safe_callee, answered), index=calls.index)
    callee_end = np.where(answered, spans["end_ns"].to_numpy()[safe_callee], calls["end_ns"].to_numpy())
    # Without a route template the key is a concrete path: fold its identifiers.
    operation = calls["operation"].astype(str)
    # Folded once per distinct key: a million calls carry only a few thousand of them.
    folded = {key: fold_identifiers(key) for key in operation[callee_route.isna()].unique()}
    operation = operation.where(callee_route.notna(), operation.map(folded))
    callee = calls["callee"]
    operation_id = pd.Series(None, index=calls.index, dtype=object)
    if matches is not None:
        found = matches.take(pa.array(np.where(answered, callee_rows, caller_rows))).to_pandas()
        found.index = calls.index
        documented = found["op_service"].notna()
        callee = found["op_service"].where(documented, found["target_service"]).fillna(callee)
        operation = (found["op_method"] + " " + found["op_path"]).where(documented, operation)
        callee_route = found["op_path"].where(documented, callee_route)
        operation_id = found["operation_id"].where(documented & ~found["inferred"].fillna(False).astype(bool))
    # For the flow, a refused request (402 declined, 409 conflict) failed as much as a crash did.
    # The caller's view wins: a proxy that gave up saw no answer, whatever the callee sent later.
    client = (spans["kind"] == "client").to_numpy(dtype=bool)[caller_rows]
    address, client_key = _client_side(spans, span_table, caller_rows, client)
    seen = pd.Series(
        np.where(client, spans["http_status_code"].to_numpy()[caller_rows], np.nan), index=calls.index
    )
    status_code = seen.fillna(calls["status_code"])
    code = status_code.fillna(-1).astype(np.int64)
    # Status 0 is a client that got no response at all (Envoy, browsers): it gave up.
    refused = (code >= 400) | (code == 0)
    # Without a template of its own, the folded key's path is the best template there is: spelled
    # once per distinct key, as the folding above.
    codes, keys = pd.factorize(operation)
    paths = pd.Series(keys, dtype=object).str.replace(r"^\S+ ", "", regex=True)
    templates = np.array([*paths.where(paths.str.startswith("/")), None], dtype=object)
    callee_route = callee_route.where(callee_route.notna(), pd.Series(templates[codes], index=calls.index))
    return with_columns(
        calls,
        error=calls["error"].astype(bool) | refused,
        status_code=status_code,
        callee=callee,
        operation=operation,
        operation_id=operation_id,
        callee_end_ns=callee_end.astype(np.int64),
        step=callee + " " + operation,
        url_path=caller_path.fillna(callee_path),
        route=callee_route,
        status_message=caller_message.fillna(callee_message),
        address=address.set_axis(calls.index),
        client_key=client_key.set_axis(calls.index),
    )


def _client_side(
    spans: pd.DataFrame, span_table: pa.Table, rows: np.ndarray, client: np.ndarray
) -> tuple[pd.Series, pd.Series]:
    """Per call, where its client span sent it (``host:port``) and what it asked for (ids folded);
    null where the caller has no client span."""
    host = pa.array(_text_at(spans["server_address"], rows), pa.string(), from_pandas=True)
    port = span_table["server_port"].take(pa.array(rows, pa.int64())).cast(pa.string())
    address = pc.if_else(pc.is_valid(port), pc.binary_join_element_wise(host, port, ":"), host)
    address = pc.if_else(pa.array(client, pa.bool_()), address, pa.scalar(None, pa.string()))
    # Folded once per distinct key, as in _with_span_details.
    codes, keys = pd.factorize(pd.Series(_text_at(spans["operation"], rows), dtype=object))
    folded = np.array([fold_identifiers(str(key)) for key in keys] + [None], dtype=object)
    client_key = pd.Series(folded[codes], dtype=object).where(pd.Series(client))
    return pd.Series(address.to_numpy(zero_copy_only=False), dtype=object), client_key


def _text_at(column: pd.Series, rows: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """A span text column's values at ``rows`` as objects, None where ``present`` is False: only
    those rows are converted, not every span's text."""
    values: np.ndarray = column.array.take(rows).to_numpy(dtype=object)
    if present is not None:
        values[~present] = None
    return values


def _mark(calls: pd.DataFrame, tolerance_ms: float) -> pd.DataFrame:
    """Blocks, retries and chains, per request, without a Python loop per call.

    Calls are ordered by request, start and end. A call opens a new block unless it starts
    before every earlier call of its request ended (less ``tolerance_ms``); ``gap_ns`` is the
    idle time before a new block. A call is a retry when the call before it to the same step
    of the same request failed, had ended (less the tolerance) and went to the same path; a
    chain is a first try and its retries, with each call's ``attempt`` and the chain's
    ``final_error``. Every group is a run of an integer key in a stable order: grouping by
    the text of steps cost more than all the rest of the selection.
    """
    calls = calls.sort_values(["entry_row", "start_ns", "end_ns"], kind="stable", ignore_index=True)
    count = len(calls)
    tolerance = int(tolerance_ms * _MS)
    entry = calls["entry_row"].to_numpy()
    start, end = calls["start_ns"].to_numpy(), calls["end_ns"].to_numpy()
    error = calls["error"].to_numpy(dtype=bool)
    first = _run_starts(entry)
    # Times compared as floats, as pandas compares an integer column with a shifted one.
    latest_end = pd.Series(end).groupby(entry, sort=False).cummax().to_numpy()
    previous_end = np.r_[np.nan, latest_end[:-1]].astype(np.float64)[:count]
    previous_end[first] = np.nan
    with np.errstate(invalid="ignore"):
        new_block = first | (start >= previous_end - tolerance)
    gap = np.where(first, 0, np.clip(start - np.nan_to_num(previous_end), 0, None))
    block_run = np.cumsum(new_block) - 1
    calls["block"] = block_run - block_run[_run_first(first)] + 1
    calls["gap_ns"] = np.where(new_block, gap, 0).astype(np.int64)
    calls["block_calls"] = np.bincount(block_run, minlength=count)[block_run] if count else block_run

    # Each request's calls to one step, in call order.
    step = pd.factorize(calls["step"], use_na_sentinel=False)[0]
    request_step = (np.cumsum(first) - 1) * (int(step.max(initial=0)) + 1) + step
    order = np.argsort(request_step, kind="stable")
    group_first = _run_starts(request_step[order])
    row, before = order[~group_first], order[np.flatnonzero(~group_first) - 1]
    path = pd.factorize(calls["url_path"])[0]  # nulls -1: two null paths are the same target
    retry = np.zeros(count, dtype=bool)
    retry[row] = (
        error[before]
        & (start[row] >= end[before].astype(np.float64) - tolerance)
        & (path[row] == path[before])
    )
    # In that order a chain is a first try (no retry) and the retries after it.
    chain_start = group_first | ~retry[order]
    chain_run = np.cumsum(chain_start) - 1
    chain = np.empty(count, dtype=np.int64)
    chain[order] = chain_run - chain_run[_run_first(group_first)] + 1
    attempt = np.empty(count, dtype=np.int64)
    attempt[order] = np.arange(count) - _run_first(chain_start) + 1
    last = np.r_[np.flatnonzero(chain_start)[1:] - 1, count - 1] if count else np.zeros(0, dtype=np.int64)
    final_error = np.empty(count, dtype=bool)
    final_error[order] = error[order][last][chain_run]
    calls["retry"] = retry
    calls["chain"] = chain
    calls["attempt"] = attempt
    calls["final_error"] = final_error
    return calls


def _run_starts(keys: np.ndarray) -> np.ndarray:
    """Where each run of equal ``keys`` starts."""
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = keys[1:] != keys[:-1]
    return starts


def _run_first(starts: np.ndarray) -> np.ndarray:
    """For each position, where its run starts (``starts`` marks the runs' first positions)."""
    return (
        np.maximum.accumulate(np.where(starts, np.arange(len(starts)), 0))
        if len(starts)
        else starts.astype(np.int64)
    )


def join_per_group(frame: pd.DataFrame, keys: list[str], column: str, separator: str) -> pd.DataFrame:
    """``column`` joined with ``separator`` per group of ``keys``, in row order, without a Python loop.

    Groups must be contiguous (the frame sorted by ``keys``). The lists are cut at the group
    boundaries by offsets, so their order is the frame's by construction: a hash aggregation's
    lists come in no guaranteed order, and joined sequences must not depend on it.
    """
    rows = len(frame)
    changes = np.zeros(rows, dtype=bool)
    if rows:
        changes[0] = True
        for key in keys:
            values = frame[key].to_numpy()
            changes[1:] |= values[1:] != values[:-1]
    starts = np.flatnonzero(changes)
    values = frame[column].astype(str).to_numpy(dtype=object)
    joined = _joined_runs(values, starts, separator)
    return pd.DataFrame(
        {
            **{key: frame[key].to_numpy()[starts] for key in keys},
            column: joined.to_numpy(zero_copy_only=False),
            "count": np.diff(np.r_[starts, rows]),
        }
    )


def _sequences(calls: pd.DataFrame) -> pd.DataFrame:
    """Per request: its folded block sequence, number of steps and time covered by calls.

    A block lists its distinct steps, sorted; equal consecutive blocks fold into one, and the
    sequence joins the blocks in time order. ``calls`` come as :func:`_mark` leaves them: each
    request's calls together and its blocks in order, so every figure is a reduction over runs.
    """
    if calls.empty:
        return pd.DataFrame(
            {"sequence": [], "steps": [], "busy_ns": [], "last_end": [], "max_gap_ns": [], "failed": []},
            index=pd.Index([], dtype=np.int64, name="entry_row"),
        ).astype(
            {
                "steps": np.int64,
                "busy_ns": np.int64,
                "last_end": np.int64,
                "max_gap_ns": np.int64,
                "failed": bool,
            }
        )
    entry = calls["entry_row"].to_numpy()
    request_first = _run_starts(entry)
    entry_starts = np.flatnonzero(request_first)
    block_starts = np.flatnonzero(request_first | _run_starts(calls["block"].to_numpy()))
    block = np.repeat(np.arange(len(block_starts)), np.diff(np.r_[block_starts, len(calls)]))
    # Each block's distinct steps in sorted order, joined; then equal neighbours in a request folded.
    rank, names = sorted_codes(calls["step"])
    rank = np.where(rank < 0, len(names), rank)  # a null step sorts last, as pandas sorts it
    spelled = np.r_[np.asarray(names, dtype=object), np.array(["nan"], dtype=object)]
    pairs = sorted_unique(block * (len(names) + 1) + rank)
    pair_block, pair_rank = np.divmod(pairs, len(names) + 1)
    joined = _joined_runs(spelled[pair_rank], np.flatnonzero(_run_starts(pair_block)), STEP_SEP)
    block_entry = entry[block_starts]
    kept = ~(_same_as_previous(joined) & ~_run_starts(block_entry))
    kept_entry = block_entry[kept]
    firsts = np.flatnonzero(_run_starts(kept_entry))
    start, end = calls["start_ns"].to_numpy(), calls["end_ns"].to_numpy()
    block_end = np.maximum.reduceat(end, block_starts)
    entry_blocks = np.flatnonzero(_run_starts(block_entry))
    return pd.DataFrame(
        {
            "sequence": _joined_runs(joined.filter(pa.array(kept)), firsts, BLOCK_SEP).to_numpy(
                zero_copy_only=False
            ),
            "steps": np.diff(np.r_[firsts, len(kept_entry)]),
            "busy_ns": np.add.reduceat(block_end - start[block_starts], entry_blocks),
            "last_end": np.maximum.reduceat(block_end, entry_blocks),
            "max_gap_ns": np.maximum.reduceat(calls["gap_ns"].to_numpy(), entry_starts),
            "failed": np.logical_or.reduceat(calls["final_error"].to_numpy(dtype=bool), entry_starts),
        },
        index=pd.Index(entry[entry_starts], name="entry_row"),
    )


def _joined_runs(values: np.ndarray | pa.Array, starts: np.ndarray, separator: str) -> pa.Array:
    """The text ``values`` joined run by run (runs start at ``starts``), in their order."""
    offsets = pa.array(np.r_[starts, len(values)].astype(np.int32))
    text = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    joined: pa.Array = pc.binary_join(pa.ListArray.from_arrays(offsets, text), separator)
    return joined


def _same_as_previous(text: pa.Array) -> np.ndarray:
    """Whether each value equals the one before it (the first: False)."""
    same = np.zeros(len(text), dtype=bool)
    same[1:] = pc.equal(text[1:], text[:-1]).to_numpy(zero_copy_only=False)
    return same


def _request_frame(requests: pd.DataFrame, sequences: pd.DataFrame) -> pd.DataFrame:
    rows = requests["row"].to_numpy()
    seq = sequences.reindex(rows)
    # Positions rather than a reindex for the end: a float column cannot hold nanosecond times.
    at = sequences.index.get_indexer(rows)
    last_end = np.append(sequences["last_end"].to_numpy(dtype=np.int64), 0)[at]  # -1: no calls
    frame = requests.rename(columns={"row": "entry_row"}).reset_index(drop=True)
    frame["end_ns"] = np.maximum(frame["end_ns"].to_numpy(), last_end)
    frame["steps"] = seq["steps"].fillna(0).astype(np.int64).to_numpy()
    frame["sequence"] = seq["sequence"].fillna("").to_numpy()
    frame["busy_ns"] = seq["busy_ns"].fillna(0).astype(np.int64).to_numpy()
    frame["max_gap_ns"] = seq["max_gap_ns"].fillna(0).astype(np.int64).to_numpy()
    frame["failed"] = seq["failed"].astype("boolean").fillna(False).astype(bool).to_numpy()
    frame["flow_id"] = frame["owner"] + ":" + frame["entry"]
    return frame
