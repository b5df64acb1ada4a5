"""Failure logic of event-driven flows: where a chain fails, what compensates, what stays.

Read from the actions of the chains (:mod:`orchscan.analyzer.flows.events`), one row per
delivery, unconsumed message or consumer call with its block, sender (``caller``), the request
it was done in (``actor_key``) and the request that sent it (``parent_key``). A chain *fails*
at its first action (in step order) that failed: a consumer that ended in error, a consumer's
call whose last attempt failed, or a message whose topic announces a failure
(:data:`FAILURE_EVENT`), which fails the step where its publisher received its own message.
After the failure, a message whose topic announces an undo
(:data:`orchscan.analyzer.flows.failures.UNDO`), or a consumer's call that undoes a write, is a
compensation: it undoes its sender's earlier step (a call prefers the write to the same
service), or the origin's own request (step 0) when the origin sends it. A failed chain no
compensation follows leaves the writes before the failure on its causal path in place: the
deliveries and write calls of the failed action's ancestors, and the origin's request when it
wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import pandas as pd

from orchscan.analyzer.flows.failures import UNDO, is_undo, is_write
from orchscan.analyzer.flows.steps import StepCalls
from orchscan.analyzer.requests.calls import MESSAGING, SYNC
from orchscan.analyzer.results import Compensation, FailureLogic, Flow, OperationRef, Uncompensated

#: Topics that announce that something failed; the publisher's step is where the chain failed.
FAILURE_EVENT = re.compile(
    r"fail|reject|declin|denied|deny|abort|error|insufficient|unavailable|expired|timed?[-_ ]?out",
    re.IGNORECASE,
)


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


def first_failures(actions: pd.DataFrame) -> pd.Series:
    """Per chain, the step key of the step where it first failed."""
    points = _failure_points(actions)
    return points.drop_duplicates("chain").set_index("chain")["failed_key"]


def event_failure_logics(
    steps: StepCalls, flows: Sequence[Flow], origin_writes: pd.Series
) -> dict[str, FailureLogic]:
    """Per flow: where its chains failed, the compensations that followed, and what stayed in place."""
    actions = steps.calls
    points = _failure_points(actions).drop_duplicates("chain")
    index_of = {
        (flow.id, f"{s.caller} → {s.operation.service} {s.operation.key}"): s.index
        for flow in flows
        for s in flow.steps
    }
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
