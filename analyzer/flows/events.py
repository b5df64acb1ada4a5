"""Event-driven flows: message chains mined as flows, with where they fail and what undoes it.

The partitions' chain records (:mod:`orchscan.analyzer.flows.chains`) are stitched into chains:
a chain starts at an *origin*, a request that published a message without having consumed one,
and follows every delivery to a consumer, that consumer's own calls and the messages it
published in turn, hop by hop (at most ``flows.event_chain_max_hops``). The chains of one origin
(service and entry operation) are one flow of kind ``choreographed``, owned by the origin's
service.

Steps are the chain's actions: a delivery of a topic to a consumer (kind ``message``), a message
published that nobody was seen consuming, and a consumer's synchronous call (kind ``call``). Each
is named ``caller → callee operation``, so the same topic sent by two services stays two steps.
The order is causal, not by the clock, so that consumers that happened to start in a different
order do not make different variants: hop *n*'s deliveries form one block (they run
concurrently), followed by the calls of hop *n*'s consumers (a consumer's calls in their own time
order, the *k*-th calls of all consumers in one block), then hop *n + 1*'s deliveries. From there
on, variants, optional steps and durations are mined as for an orchestrated flow
(:func:`orchscan.analyzer.flows.mining.mine_flows`).

Failure logic follows the chain, not one caller. A chain *fails* at its first action (in step
order) that failed: a consumer that ended in error, a consumer's call whose last attempt failed,
or a message whose topic announces a failure (``payment-failed``, ``stock-rejected``; see
:data:`FAILURE_EVENT`), which fails the step where its publisher consumed its own message. After
the failure, a message whose topic announces an undo (``payment-refunded``, ``order-cancelled``;
see :data:`orchscan.analyzer.flows.failures.UNDO`), or a consumer's call that undoes a write, is a
*compensation*: it undoes its publisher's (caller's) earlier step, or the origin's own request
when the origin publishes it. A failed chain with no compensation leaves the writes before the
failure on its causal path in place: the deliveries and write calls of the failed consumer's
ancestors, and the origin's request when it wrote.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from orchscan.analyzer.flows.chains import ChainRecords
from orchscan.analyzer.flows.failures import UNDO, is_undo, is_write
from orchscan.analyzer.flows.mining import mine_flows
from orchscan.analyzer.flows.steps import BLOCK_SEP, STEP_SEP, StepCalls, join_per_group
from orchscan.analyzer.requests.calls import MESSAGING, SYNC
from orchscan.analyzer.results import Compensation, FailureLogic, Flow, OperationRef, Uncompensated
from orchscan.analyzer.thresholds import DEFAULT_FLOW_THRESHOLDS, FlowThresholds

#: Topics that announce that something failed; the publisher's step is where the chain failed.
FAILURE_EVENT = re.compile(
    r"fail|reject|declin|denied|deny|abort|error|insufficient|unavailable|expired|timed?[-_ ]?out",
    re.IGNORECASE,
)

#: Name of a topic no span named.
UNNAMED_TOPIC = "(unnamed topic)"


def event_flow_id(owner: str, entry: str) -> str:
    """The stable identifier of the event-driven flow an origin's requests start."""
    return f"{owner}:{entry} (events)"


class _Failure(NamedTuple):
    """Where one chain first failed: the failing action's place and the step that failed."""

    chain: int
    block: int
    start_ns: int
    kind: str
    actor_key: str
    parent_key: str
    failed_key: str


class _Undo(NamedTuple):
    """An action that takes something back: who did it, to whom, and with which message."""

    caller: str
    callee: str
    operation: str
    topic: str | None


@dataclass(frozen=True)
class _Chains:
    """Every stitched chain's actions (``actions``) and origins (``roots``), numbered canonically."""

    actions: pd.DataFrame
    roots: pd.DataFrame


def mine_event_flows(
    records: ChainRecords, *, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS
) -> tuple[Flow, ...]:
    """One choreographed flow per origin whose chains reach ``flows.event_flow_min_steps`` steps."""
    chains = _stitch(records, thresholds.event_chain_max_hops)
    if chains.roots.empty:
        return ()
    steps = _step_calls(chains, thresholds.event_flow_min_steps)
    if steps.requests.empty:
        return ()
    mined = mine_flows(steps, thresholds=thresholds)
    failures = _failure_logics(chains, steps, mined)
    return tuple(
        dataclasses.replace(flow, kind="choreographed", failure=failures.get(flow.id, FailureLogic()))
        for flow in mined
    )


def _key(trace: pd.Series, span: pd.Series) -> pd.Series:
    """A request's key: its trace id and span id, which are fixed-length hex, side by side."""
    return trace.astype(str) + span.astype(str)


def _stitch(records: ChainRecords, max_hops: int) -> _Chains:
    """Follow every origin's deliveries hop by hop; every action with its chain, hop and actor."""
    deliveries = records.deliveries.assign(
        producer_key=_key(records.deliveries["trace_id"], records.deliveries["span_id"]),
        consumer_key=_key(records.deliveries["consumer_trace"], records.deliveries["consumer_span"]),
        topic=records.deliveries["topic"].fillna(UNNAMED_TOPIC),
    )
    origins = records.origins.assign(key=_key(records.origins["trace_id"], records.origins["span_id"]))
    origins = origins.drop_duplicates("key")
    roots = origins[~origins["key"].isin(deliveries["consumer_key"])]
    roots = roots.sort_values(["trace_id", "start_ns", "span_id"], kind="stable", ignore_index=True)
    roots = roots.assign(chain=np.arange(len(roots)))
    members = roots[["chain", "key"]].assign(level=0, actor=roots["service"])
    reached = [members]
    frontier = members
    hops = []
    for level in range(1, max_hops + 1):
        hop = deliveries.merge(frontier[["chain", "key"]], left_on="producer_key", right_on="key")
        seen = pd.concat(reached, ignore_index=True)
        hop = hop[
            ~pd.MultiIndex.from_frame(hop[["chain", "consumer_key"]]).isin(
                pd.MultiIndex.from_frame(seen[["chain", "key"]])
            )
        ]
        hop = hop.sort_values(["chain", "consumer_key", "published_ns"], kind="stable")
        hop = hop.drop_duplicates(["chain", "consumer_key"]).assign(level=level)
        if hop.empty:
            break
        hops.append(hop)
        frontier = pd.DataFrame(
            {"chain": hop["chain"], "key": hop["consumer_key"], "level": level, "actor": hop["consumer"]}
        )
        reached.append(frontier)
    members = pd.concat(reached, ignore_index=True)
    delivered = pd.concat(hops, ignore_index=True) if hops else deliveries.iloc[:0].assign(chain=0, level=0)
    parts = [_deliveries(delivered), _publishes(records, members), _calls(records, members)]
    parts = [part for part in parts if not part.empty]
    if not parts:
        return _Chains(pd.DataFrame(), roots.iloc[:0])
    actions = pd.concat(parts, ignore_index=True)
    actions["step"] = actions["caller"] + " → " + actions["callee"] + " " + actions["operation"]
    return _Chains(actions, roots[roots["chain"].isin(actions["chain"])])


def _deliveries(hops: pd.DataFrame) -> pd.DataFrame:
    """Messages received: hop ``level``'s first block, done by the consumer."""
    return pd.DataFrame(
        {
            "chain": hops["chain"],
            "level": hops["level"],
            "rank": 0,
            "kind": MESSAGING,
            "caller": hops["producer"].astype(str),
            "callee": hops["consumer"].astype(str),
            "operation": "consume " + hops["topic"].astype(str),
            "topic": hops["topic"].astype(str),
            "method": None,
            "route": None,
            "operation_id": None,
            "start_ns": hops["start_ns"].astype(np.int64),
            "end_ns": hops["end_ns"].astype(np.int64),
            "error": hops["error"].astype(bool),
            "actor_key": hops["consumer_key"],
            "parent_key": hops["producer_key"],
            "wait_ns": (hops["start_ns"] - hops["published_ns"]).clip(lower=0).astype(np.int64),
        }
    )


def _publishes(records: ChainRecords, members: pd.DataFrame) -> pd.DataFrame:
    """Messages nobody was seen consuming, sent by a chain member: the next hop's first block."""
    publishes = records.publishes.assign(
        key=_key(records.publishes["trace_id"], records.publishes["span_id"])
    )
    sent = publishes.merge(members, on="key")
    topic = sent["topic"].fillna(UNNAMED_TOPIC).astype(str)
    return pd.DataFrame(
        {
            "chain": sent["chain"],
            "level": sent["level"] + 1,
            "rank": 0,
            "kind": MESSAGING,
            "caller": sent["producer"].astype(str),
            "callee": sent["system"].fillna("broker").astype(str),
            "operation": "publish " + topic,
            "topic": topic,
            "method": None,
            "route": None,
            "operation_id": None,
            "start_ns": sent["published_ns"].astype(np.int64),
            "end_ns": sent["published_ns"].astype(np.int64),
            "error": False,
            "actor_key": sent["key"],
            "parent_key": sent["key"],
            "wait_ns": 0,
        }
    )


def _calls(records: ChainRecords, members: pd.DataFrame) -> pd.DataFrame:
    """The consumers' own calls, blocked by overlap within each consumer's request."""
    calls = records.calls.assign(key=_key(records.calls["trace_id"], records.calls["span_id"]))
    calls = calls.merge(members[members["level"] > 0], on="key")
    calls = calls.sort_values(["chain", "key", "start_ns", "end_ns"], kind="stable", ignore_index=True)
    by_request = calls.groupby(["chain", "key"], sort=False)
    previous_end = by_request["end_ns"].cummax().groupby([calls["chain"], calls["key"]], sort=False).shift(1)
    new_block = previous_end.isna() | (calls["start_ns"] >= previous_end)
    rank = new_block.astype(np.int64).groupby([calls["chain"], calls["key"]], sort=False).cumsum()
    return pd.DataFrame(
        {
            "chain": calls["chain"],
            "level": calls["level"],
            "rank": rank,
            "kind": SYNC,
            "caller": calls["actor"].astype(str),
            "callee": calls["callee"].astype(str),
            "operation": calls["operation"].astype(str),
            "topic": None,
            "method": calls["method"],
            "route": calls["route"],
            "operation_id": calls["operation_id"],
            "start_ns": calls["start_ns"].astype(np.int64),
            "end_ns": calls["end_ns"].astype(np.int64),
            "error": calls["error"].astype(bool),
            "actor_key": calls["key"],
            "parent_key": calls["key"],
            "wait_ns": 0,
        }
    )


def _step_calls(chains: _Chains, min_steps: int) -> StepCalls:
    """The chains of origins with enough steps, as the step table flow mining reads."""
    actions, roots = chains.actions, chains.roots.set_index("chain")
    blocks = actions[["chain", "level", "rank"]].drop_duplicates().sort_values(["chain", "level", "rank"])
    blocks["block"] = blocks.groupby("chain").cumcount() + 1
    actions = actions.merge(blocks, on=["chain", "level", "rank"])
    actions = actions.sort_values(
        ["chain", "block", "start_ns", "end_ns", "step"], kind="stable", ignore_index=True
    )
    distinct = actions[["chain", "block", "step"]].drop_duplicates().sort_values(["chain", "block", "step"])
    joined = join_per_group(distinct, ["chain", "block"], "step", STEP_SEP)
    repeated = joined["step"].eq(joined["step"].shift(1)) & joined["chain"].eq(joined["chain"].shift(1))
    sequences = join_per_group(joined[~repeated], ["chain"], "step", BLOCK_SEP).set_index("chain")
    distinct_steps = actions.groupby("chain")["step"].nunique()
    owner = roots["service"].astype(str)
    entry = roots["entry"].astype(str)
    requests = pd.DataFrame(
        {
            "entry_row": roots.index.to_numpy(),
            "trace_id": roots["trace_id"].to_numpy(),
            "span_id": roots["span_id"].to_numpy(),
            "flow_id": [event_flow_id(o, e) for o, e in zip(owner, entry, strict=True)],
            "owner": owner.to_numpy(),
            "entry": entry.to_numpy(),
            "method": roots["method"].to_numpy(),
            "start_ns": roots["start_ns"].to_numpy(dtype=np.int64),
            "end_ns": np.maximum(
                roots["end_ns"].to_numpy(dtype=np.int64),
                actions.groupby("chain")["end_ns"].max().reindex(roots.index).to_numpy(dtype=np.int64),
            ),
            "error": roots["error"].to_numpy(dtype=bool),
            "failed": _first_failures(actions).reindex(roots.index).notna().to_numpy(),
            "sequence": sequences["step"].reindex(roots.index).to_numpy(),
            "steps": distinct_steps.reindex(roots.index).to_numpy(dtype=np.int64),
            "max_gap_ns": actions.groupby("chain")["wait_ns"]
            .max()
            .reindex(roots.index)
            .to_numpy(dtype=np.int64),
        }
    )
    most = requests.groupby("flow_id")["steps"].transform("max")
    requests = requests[most >= min_steps].reset_index(drop=True)
    actions = actions[actions["chain"].isin(requests["entry_row"])]
    info = requests.set_index("entry_row")
    calls = actions.assign(
        entry_row=actions["chain"],
        flow_id=info["flow_id"].reindex(actions["chain"]).to_numpy(),
        owner=info["owner"].reindex(actions["chain"]).to_numpy(),
        entry=info["entry"].reindex(actions["chain"]).to_numpy(),
        trace_id=info["trace_id"].reindex(actions["chain"]).to_numpy(),
        retry=False,
        final_error=actions["error"],
        step_kind=np.where(actions["kind"] == MESSAGING, "message", "call"),
        step_caller=actions["caller"],
    )
    return StepCalls(calls=calls.reset_index(drop=True), requests=requests)


def _failure_points(actions: pd.DataFrame) -> pd.DataFrame:
    """Actions that failed, each with the step key and actor of the step that failed because of it.

    A consumer in error or a call whose last attempt failed fails its own step; a message that
    announces a failure fails the step where its publisher consumed its message.
    """
    calls = actions[actions["kind"] == SYNC]
    last = calls.groupby(["chain", "actor_key", "step"], sort=False)["error"].transform("last")
    failed_call = (
        (actions["kind"] == SYNC) & actions.index.isin(calls.index[last.astype(bool)]) & actions["error"]
    )
    failed_delivery = (actions["kind"] == MESSAGING) & actions["error"]
    topic = actions["topic"].fillna("").astype(str)
    announced = (actions["kind"] == MESSAGING) & topic.str.contains(FAILURE_EVENT) & ~topic.str.contains(UNDO)
    own = actions[failed_call | failed_delivery].assign(failed_key=lambda f: f["step"])
    # The publisher's own step: the delivery that brought the publisher its message.
    received = _received(actions)[["chain", "actor_key", "step"]]
    signalled = actions[announced].merge(
        received.rename(columns={"actor_key": "parent_key", "step": "failed_key"}), on=["chain", "parent_key"]
    )
    points = pd.concat([own, signalled], ignore_index=True)
    return points.sort_values(["chain", "block", "start_ns"], kind="stable")


def _received(actions: pd.DataFrame) -> pd.DataFrame:
    """Each consumer's delivery, once per chain (a publish nobody consumed is none)."""
    delivered = actions[(actions["kind"] == MESSAGING) & (actions["actor_key"] != actions["parent_key"])]
    return delivered.drop_duplicates(["chain", "actor_key"])


def _first_failures(actions: pd.DataFrame) -> pd.Series:
    """Per chain, the step key of the step where it first failed."""
    points = _failure_points(actions)
    return points.drop_duplicates("chain").set_index("chain")["failed_key"]


def _failure_logics(chains: _Chains, steps: StepCalls, flows: tuple[Flow, ...]) -> dict[str, FailureLogic]:
    """Per flow: where its chains failed, the compensations that followed, and what stayed in place."""
    actions = steps.calls
    points = _failure_points(actions).drop_duplicates("chain")
    index_of = {
        (flow.id, f"{s.caller} → {s.operation.service} {s.operation.key}"): s.index
        for flow in flows
        for s in flow.steps
    }
    origin_writes = chains.roots.set_index("chain")["writes"]
    out: dict[str, FailureLogic] = {}
    for flow in flows:
        mine = actions[actions["flow_id"] == flow.id]
        failed = points[points["chain"].isin(mine["entry_row"])]
        out[flow.id] = _flow_failure(flow, mine, failed, index_of, origin_writes)
    return out


def _flow_failure(
    flow: Flow,
    actions: pd.DataFrame,
    points: pd.DataFrame,
    index_of: Mapping[tuple[str, str], int],
    origin_writes: pd.Series,
) -> FailureLogic:
    """One choreographed flow's failure logic, from its chains' actions and first failures."""
    failed_steps: dict[int, int] = {}
    compensations: dict[tuple[int, int, str, str, str], set[int]] = {}
    left: dict[tuple[int, tuple[int, ...]], list[str]] = {}
    failing = actions[actions["entry_row"].isin(points["chain"])]
    by_chain = dict(iter(failing.groupby("entry_row", sort=True)))
    for row in points[list(_Failure._fields)].itertuples(index=False, name=None):
        point = _Failure(*row)
        failed = index_of.get((flow.id, str(point.failed_key)))
        if failed is None:
            continue
        chain = by_chain[point.chain]
        failed_steps[failed] = failed_steps.get(failed, 0) + 1
        after = chain[
            (chain["block"] > point.block)
            | ((chain["block"] == point.block) & (chain["start_ns"] > point.start_ns))
        ]
        undo_messages = (after["kind"] == MESSAGING) & after["topic"].fillna("").astype(str).str.contains(
            UNDO
        )
        undo_calls = (after["kind"] == SYNC) & is_undo(after)
        undoing = after[undo_messages | undo_calls]
        before = chain[chain["block"] < point.block]
        for values in undoing[list(_Undo._fields)].itertuples(index=False, name=None):
            caller, callee, operation, topic = values
            action = _Undo(
                str(caller), str(callee), str(operation), topic if isinstance(topic, str) else None
            )
            target = _undone_step(flow, action, before, index_of)
            if target is None and action.caller == flow.owner:
                target = 0
            if target is None:
                continue
            key = (failed, target, action.callee, action.operation, action.topic or "")
            compensations.setdefault(key, set()).add(point.chain)
        if undoing.empty:
            in_place = _in_place(flow, chain, point, index_of, bool(origin_writes.get(point.chain, False)))
            if in_place:
                left.setdefault((failed, in_place), []).append(str(chain["trace_id"].iloc[0]))
    return FailureLogic(
        compensations=tuple(
            Compensation(
                failed_step=failed,
                undone_step=target,
                operation=OperationRef(service=callee, key=operation),
                requests=len(chains),
                topic=topic or None,
            )
            for (failed, target, callee, operation, topic), chains in sorted(compensations.items())
        ),
        uncompensated=tuple(
            Uncompensated(
                failed_step=failed,
                left_in_place=in_place,
                requests=len(traces),
                example_traces=tuple(sorted(set(traces)))[:5],
            )
            for (failed, in_place), traces in sorted(left.items())
        ),
        failed_steps=tuple(sorted(failed_steps.items())),
    )


def _undone_step(
    flow: Flow, action: _Undo, before: pd.DataFrame, index_of: Mapping[tuple[str, str], int]
) -> int | None:
    """The earlier main step a compensating action takes back: its actor's own earlier step."""
    actor, callee = action.caller, action.callee
    writes = before[is_write(before)]
    # A call undoing a write prefers the write to the same service; a message, its publisher's step.
    candidates = [
        writes[(writes["kind"] == SYNC) & (writes["callee"] == callee) & (writes["caller"] == actor)],
        _received(before).loc[lambda f: f["callee"] == actor],
    ]
    for found in candidates:
        for step in found.sort_values(["block", "start_ns"], kind="stable")["step"]:
            index = index_of.get((flow.id, str(step)))
            if index is not None:
                return index
    return None


def _in_place(
    flow: Flow,
    chain: pd.DataFrame,
    point: _Failure,
    index_of: Mapping[tuple[str, str], int],
    origin_wrote: bool,
) -> tuple[int, ...]:
    """Main steps before the failure, on its causal path, that wrote; 0 for the origin's request."""
    ancestors: set[str] = set()
    # A failed or failure-announcing message's path starts at its publisher; a call's at its caller.
    key = point.parent_key if point.kind == MESSAGING else point.actor_key
    parent_of = dict(zip(_received(chain)["actor_key"], _received(chain)["parent_key"], strict=True))
    while key in parent_of and key not in ancestors:
        ancestors.add(key)
        key = parent_of[key]
    before = chain[chain["block"] < point.block]
    on_path = before[before["actor_key"].isin(ancestors)]
    wrote = on_path[(on_path["kind"] == MESSAGING) | is_write(on_path)]
    indices = {index_of[(flow.id, str(step))] for step in wrote["step"] if (flow.id, str(step)) in index_of}
    indices.discard(index_of.get((flow.id, point.failed_key), -1))
    return ((0,) if origin_wrote else ()) + tuple(sorted(indices))
