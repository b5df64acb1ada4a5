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

Failure logic follows the chain, not one caller (:mod:`orchscan.analyzer.flows.event_failures`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from orchscan.analyzer.columnar.frames import values
from orchscan.analyzer.flows.chains import ChainRecords
from orchscan.analyzer.flows.event_failures import event_failure_logics, first_failures
from orchscan.analyzer.flows.mining import mine_flows
from orchscan.analyzer.flows.request_keys import request_keys, text_request_keys
from orchscan.analyzer.flows.sampling import in_sample, sample_rates, with_sample_rates
from orchscan.analyzer.flows.steps import BLOCK_SEP, STEP_SEP, StepCalls, join_per_group
from orchscan.analyzer.requests.calls import MESSAGING, SYNC
from orchscan.analyzer.results import FailureLogic, Flow
from orchscan.analyzer.thresholds import DEFAULT_FLOW_THRESHOLDS, FlowThresholds

#: Name of a topic no span named.
UNNAMED_TOPIC = "(unnamed topic)"


def event_flow_id(owner: str, entry: str) -> str:
    """The stable identifier of the event-driven flow an origin's requests start."""
    return f"{owner}:{entry} (events)"


@dataclass(frozen=True)
class _Chains:
    """Every stitched chain's actions (``actions``) and origins (``roots``), numbered canonically."""

    actions: pd.DataFrame
    roots: pd.DataFrame


def mine_event_flows(
    records: ChainRecords,
    *,
    thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS,
    budget: int | None = None,
) -> tuple[Flow, ...]:
    """One choreographed flow per origin whose chains reach ``flows.event_flow_min_steps`` steps.

    An origin (service and entry) with more chains than ``flows.max_mined_requests``, or than its
    share of ``budget`` chains, is mined from a sample of them chosen by the origin's trace id
    (:mod:`orchscan.analyzer.flows.sampling`)."""
    deliveries = _delivery_keys(records.deliveries)
    roots = _roots(records.origins, deliveries["consumer_key"])
    rates = _chain_rates(roots, thresholds.max_mined_requests, budget)
    if rates:
        roots = roots[in_sample(roots.rename(columns={"service": "owner"}), rates)]
    chains = _stitch(records, deliveries, roots, thresholds.event_chain_max_hops)
    if chains.roots.empty:
        return ()
    steps = _step_calls(chains, thresholds.event_flow_min_steps)
    if steps.requests.empty:
        return ()
    mined = mine_flows(steps, thresholds=thresholds)
    failures = event_failure_logics(steps, mined, chains.roots.set_index("chain")["writes"])
    return with_sample_rates(
        (
            dataclasses.replace(flow, kind="choreographed", failure=failures.get(flow.id, FailureLogic()))
            for flow in mined
        ),
        rates,
    )


def _key(trace: pd.Series, span: pd.Series) -> np.ndarray:
    """The requests' keys (:func:`orchscan.analyzer.flows.request_keys.request_keys`); Arrow-backed
    ids are read in place."""
    traces, spans = _arrow(trace), _arrow(span)
    keys = text_request_keys(traces, spans) if traces is not None and spans is not None else None
    if keys is None:
        keys = request_keys(trace.to_numpy(dtype=object), span.to_numpy(dtype=object))
    return keys


def _arrow(ids: pd.Series) -> pa.Array | None:
    """The Arrow array behind Arrow-backed ids, as it is; None for other columns.

    Not the conversion of ``analyzer.columnar.grouping``'s ``_as_text``: that casts
    large_string (how pandas holds text) and spells object columns out, which made keying the
    10M benchmark's chains 0.09 -> 0.13 s."""
    dtype = ids.dtype
    arrow_backed = isinstance(dtype, pd.ArrowDtype) or (
        isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
    )
    if not arrow_backed:
        return None
    array = pa.array(ids.array)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _delivery_keys(deliveries: pd.DataFrame) -> pd.DataFrame:
    """The deliveries as the hops follow them: producer and consumer keys, when it was published,
    and its ``row`` in the chain records, to fetch the other columns only for those reached."""
    return pd.DataFrame(
        {
            "producer_key": _key(deliveries["trace_id"], deliveries["span_id"]),
            "consumer_key": _key(deliveries["consumer_trace"], deliveries["consumer_span"]),
            "published_ns": deliveries["published_ns"].to_numpy(dtype=np.int64),
            "row": np.arange(len(deliveries)),
        }
    )


def _roots(origins: pd.DataFrame, consumers: pd.Series) -> pd.DataFrame:
    """The origins that did not consume a message themselves (``consumers`` are the keys of
    the requests that did), each once, in canonical order."""
    origins = origins.assign(key=_key(origins["trace_id"], origins["span_id"]))
    origins = origins.drop_duplicates("key")
    roots = origins[~origins["key"].isin(consumers)]
    return roots.sort_values(["trace_id", "start_ns", "span_id"], kind="stable", ignore_index=True)


def _chain_rates(roots: pd.DataFrame, max_chains: int, budget: int | None) -> dict[tuple[str, str], float]:
    """Sample rates of the origins with too many chains, as for an orchestrated entry's requests."""
    if roots.empty:
        return {}
    service, entry = roots["service"].astype(str), roots["entry"].astype(str)
    counts = roots.groupby([service, entry], sort=True).size()
    origins = pd.DataFrame(
        {
            "service": counts.index.get_level_values(0),
            "operation": counts.index.get_level_values(1),
            "requests": counts.to_numpy(dtype=np.float64),
        }
    )
    return sample_rates(
        origins, zip(origins["service"], origins["operation"], strict=True), max_chains, budget
    )


def _stitch(records: ChainRecords, deliveries: pd.DataFrame, roots: pd.DataFrame, max_hops: int) -> _Chains:
    """Follow every root's ``deliveries`` (:func:`_delivery_keys`) hop by hop; every action with
    its chain, hop and actor."""
    consumers = records.deliveries["consumer"].to_numpy(dtype=object)
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
            {
                "chain": hop["chain"],
                "key": hop["consumer_key"],
                "level": level,
                "actor": consumers[hop["row"].to_numpy()],
            }
        )
        reached.append(frontier)
    members = pd.concat(reached, ignore_index=True)
    delivered = _reached(
        pd.concat(hops, ignore_index=True) if hops else deliveries.iloc[:0].assign(chain=0, level=0),
        records.deliveries,
    )
    parts = [_deliveries(delivered), _publishes(records, members), _calls(records, members)]
    parts = [part for part in parts if not part.empty]
    if not parts:
        return _Chains(pd.DataFrame(), roots.iloc[:0])
    actions = pd.concat(parts, ignore_index=True)
    actions["step"] = actions["caller"] + " → " + actions["callee"] + " " + actions["operation"]
    # A chain lost spans when its origin's trace or a consumer's trace did.
    holed = delivered.loc[delivered["holes"].astype(bool), "chain"]
    roots = roots.assign(holes=roots["holes"].astype(bool) | roots["chain"].isin(holed))
    return _Chains(actions, roots[roots["chain"].isin(actions["chain"])])


def _reached(hops: pd.DataFrame, deliveries: pd.DataFrame) -> pd.DataFrame:
    """The deliveries the hops reached, with the columns the actions take from them."""
    rows = hops["row"].to_numpy()
    columns = ["producer", "consumer", "topic", "start_ns", "end_ns", "error", "holes"]
    fetched = deliveries[columns].iloc[rows].reset_index(drop=True)
    fetched["topic"] = fetched["topic"].fillna(UNNAMED_TOPIC)
    return pd.concat(
        [
            hops[["chain", "level", "producer_key", "consumer_key", "published_ns"]].reset_index(drop=True),
            fetched,
        ],
        axis=1,
    )


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
            "flow_id": [event_flow_id(o, e) for o, e in zip(values(owner), values(entry), strict=True)],
            "owner": owner.to_numpy(),
            "entry": entry.to_numpy(),
            "method": roots["method"].to_numpy(),
            "start_ns": roots["start_ns"].to_numpy(dtype=np.int64),
            "end_ns": np.maximum(
                roots["end_ns"].to_numpy(dtype=np.int64),
                actions.groupby("chain")["end_ns"].max().reindex(roots.index).to_numpy(dtype=np.int64),
            ),
            "error": roots["error"].to_numpy(dtype=bool),
            "failed": first_failures(actions).reindex(roots.index).notna().to_numpy(),
            "holes": roots["holes"].to_numpy(dtype=bool),
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
