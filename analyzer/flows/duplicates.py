"""Duplicated flows: the same steps driven by different owners, and how each copy drifted.

Two flows of different owners are copies when their step sets (callee service and operation)
are similar enough (Jaccard) and share a few steps. Copies are grouped transitively; each flow
is then compared with every other copy in its group, in plain words: steps it never calls, steps
it adds, pairs it calls in the other order, failure handling it lacks.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import networkx as nx

from orchscan.analyzer.results import Duplicate, Flow, Step
from orchscan.analyzer.thresholds import DEFAULT_FLOW_THRESHOLDS, FlowThresholds


def _key(step: Step) -> str:
    return f"{step.operation.service} {step.operation.key}"


def group_copies(
    flows: Sequence[Flow], *, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS
) -> list[list[Flow]]:
    """Groups of flows, of two or more owners, that drive the same steps; sorted by flow id."""
    graph: nx.Graph[str] = nx.Graph()
    by_id = {f.id: f for f in flows}
    keys = {f.id: {_key(s) for s in f.steps} for f in flows}
    for a, b in itertools.combinations(sorted(by_id.values(), key=lambda f: f.id), 2):
        common, union = keys[a.id] & keys[b.id], keys[a.id] | keys[b.id]
        if (
            a.owner != b.owner
            and len(common) >= thresholds.duplicate_min_common
            and (len(common) / len(union) if union else 0.0) >= thresholds.duplicate_similarity
        ):
            graph.add_edge(a.id, b.id)
    groups = [[by_id[i] for i in sorted(component)] for component in nx.connected_components(graph)]
    return sorted(groups, key=lambda g: g[0].id)


def find_duplicates(
    flows: Sequence[Flow], *, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS
) -> dict[str, tuple[Duplicate, ...]]:
    """For each flow with copies elsewhere: every other copy with its drift, keyed by flow id."""
    out: dict[str, tuple[Duplicate, ...]] = {}
    for group in group_copies(flows, thresholds=thresholds):
        keyed = {flow.id: _Keyed.of(flow) for flow in group}
        for flow in group:
            out[flow.id] = tuple(
                Duplicate(
                    owner=other.owner, entry=other.entry, differences=_drift(keyed[flow.id], keyed[other.id])
                )
                for other in group
                if other.id != flow.id
            )
    return out


@dataclass(frozen=True)
class _Keyed:
    """A flow with its step keys and step names worked out once, for comparing it with many copies."""

    flow: Flow
    by_key: dict[str, Step]
    key_of: dict[int, str]
    name: Callable[[Step], str]

    @classmethod
    def of(cls, flow: Flow) -> _Keyed:
        keys = [_key(s) for s in flow.steps]
        return cls(
            flow=flow,
            by_key=dict(zip(keys, flow.steps, strict=True)),
            key_of={s.index: k for s, k in zip(flow.steps, keys, strict=True)},
            name=_namer(flow.steps),
        )


_T = TypeVar("_T")

#: Differences of one kind listed one by one; beyond this many they are summarised.
MAX_LISTED = 8


def _namer(steps: Sequence[Step]) -> Callable[[Step], str]:
    """Names steps by service alone when that is unambiguous in the flow, else by service and operation."""
    services = Counter(s.operation.service for s in steps)
    return lambda step: step.operation.service if services[step.operation.service] == 1 else _key(step)


def _listed(items: Sequence[_T], describe: Callable[[_T], str], what: str) -> list[str]:
    """The items described one by one up to :data:`MAX_LISTED`, the rest counted: copies of
    flows with hundreds of steps differ in hundreds of them, and only the listed ones are spelled."""
    notes = [describe(item) for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        notes.append(f"... and {len(items) - MAX_LISTED} more {what}")
    return notes


def describe_drift(reference: Flow, copy: Flow) -> tuple[str, ...]:
    """How ``copy`` differs from ``reference``, as sentences naming ``copy``'s owner."""
    return _drift(_Keyed.of(reference), _Keyed.of(copy))


def _drift(reference: _Keyed, copy: _Keyed) -> tuple[str, ...]:
    who = copy.flow.owner
    mine, theirs = reference.by_key, copy.by_key
    ref_name, copy_name = reference.name, copy.name
    missing = [s for k, s in mine.items() if k not in theirs]
    extra = [s for k, s in theirs.items() if k not in mine]
    # Neighbours in the reference's order that the copy calls the other way round: linear, and
    # what a reader needs ("calls payment before inventory") without every implied pair.
    common = [k for k in mine if k in theirs]
    swapped = []
    for a, b in itertools.pairwise(common):
        mine_before, theirs_before = _before(mine[a], mine[b]), _before(theirs[a], theirs[b])
        if mine_before is not None and theirs_before is not None and mine_before != theirs_before:
            swapped.append((theirs[a], theirs[b]))
    notes = (
        _listed(missing, lambda s: f"{who} never calls {ref_name(s)}", "missing steps")
        + _listed(extra, lambda s: f"{who} also calls {copy_name(s)}", "extra steps")
        + _listed(
            swapped,
            lambda pair: f"{who} calls {copy_name(pair[1])} before {copy_name(pair[0])}",
            "swapped pairs",
        )
    )
    notes += _failure_drift(reference, copy)
    return tuple(notes)


def _before(a: Step, b: Step) -> bool | None:
    """Whether ``a`` runs strictly before ``b``; None when they run in parallel."""
    if a.parallel_group is not None and a.parallel_group == b.parallel_group:
        return None
    return a.index < b.index


def _failure_drift(keyed_reference: _Keyed, keyed_copy: _Keyed) -> list[str]:
    reference, copy = keyed_reference.flow, keyed_copy.flow
    who = copy.owner
    ref_name = keyed_reference.name
    ref_steps = {s.index: s for s in reference.steps}
    copy_steps = keyed_copy.by_key
    notes = []
    for compensation in reference.failure.compensations:
        failed, undone = ref_steps.get(compensation.failed_step), ref_steps.get(compensation.undone_step)
        if failed is None or undone is None:
            continue
        theirs_failed = copy_steps.get(keyed_reference.key_of[failed.index])
        theirs_undone = copy_steps.get(keyed_reference.key_of[undone.index])
        if theirs_failed is None or theirs_undone is None:
            continue
        same = any(
            c.operation.key == compensation.operation.key
            and c.operation.service == compensation.operation.service
            and c.undone_step == theirs_undone.index
            for c in copy.failure.compensations
        )
        left = any(
            u.failed_step == theirs_failed.index and theirs_undone.index in u.left_in_place
            for u in copy.failure.uncompensated
        )
        if not same and left:
            notes.append(
                f"{who} does not call {compensation.operation.service} {compensation.operation.key} "
                f"to undo {ref_name(undone)} when {ref_name(failed)} fails"
            )
    ref_retries = dict(reference.failure.retries)
    copy_retries = dict(copy.failure.retries)
    for index, policy in ref_retries.items():
        step = ref_steps.get(index)
        theirs = copy_steps.get(keyed_reference.key_of[step.index]) if step else None
        if step is None or theirs is None:
            continue
        # Without a failure of that step in the copy, there was nothing to retry.
        failed_there = {u.failed_step for u in copy.failure.uncompensated} | {
            c.failed_step for c in copy.failure.compensations
        }
        if theirs.index not in copy_retries and theirs.index in failed_there:
            notes.append(
                f"{who} does not retry {ref_name(step)} (retried here up to {policy.max_attempts} attempts)"
            )
        theirs_policy = copy_retries.get(theirs.index)
        if theirs_policy is not None and policy.idempotency_key != theirs_policy.idempotency_key:
            sends = (
                "without the idempotency key sent here"
                if policy.idempotency_key
                else "with an idempotency key"
            )
            notes.append(f"{who} retries {ref_name(step)} {sends}")
    return notes + _extra_compensations(keyed_reference, keyed_copy)


def _extra_compensations(keyed_reference: _Keyed, keyed_copy: _Keyed) -> list[str]:
    """Compensations the copy performs that the reference never does for the same failure."""
    reference, copy = keyed_reference.flow, keyed_copy.flow
    copy_name = keyed_copy.name
    copy_steps = {s.index: s for s in copy.steps}
    ref_keys = {k: s.index for k, s in keyed_reference.by_key.items()}
    ref_undo = {
        (c.operation.service, c.operation.key, c.failed_step, c.undone_step)
        for c in reference.failure.compensations
    }
    notes = []
    for compensation in copy.failure.compensations:
        failed, undone = copy_steps.get(compensation.failed_step), copy_steps.get(compensation.undone_step)
        if failed is None or undone is None:
            continue
        ref_failed = ref_keys.get(keyed_copy.key_of[failed.index])
        ref_undone = ref_keys.get(keyed_copy.key_of[undone.index])
        # Only a failure that comes after the undone step in the reference could need the undo there.
        if ref_failed is None or ref_undone is None or ref_undone >= ref_failed:
            continue
        key = (compensation.operation.service, compensation.operation.key, ref_failed, ref_undone)
        if key not in ref_undo:
            notes.append(
                f"{copy.owner} also calls {compensation.operation.service} {compensation.operation.key} "
                f"to undo {copy_name(undone)} when {copy_name(failed)} fails"
            )
    return notes
