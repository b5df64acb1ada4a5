"""Duplicated flows: the same steps driven by different owners, and how each copy drifted.

Two flows of different owners are copies when their step sets (callee service and operation)
are similar enough (Jaccard) and share a few steps. Copies are grouped transitively; each flow
is then compared with every other copy in its group, in plain words: steps it never calls, steps
it adds, pairs it calls in the other order, failure handling it lacks.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import networkx as nx
import numpy as np

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
        vocabulary: dict[str, int] = {}
        for flow in group:
            for step in flow.steps:
                vocabulary.setdefault(_key(step), len(vocabulary))
        keyed = {flow.id: _Keyed.of(flow, vocabulary) for flow in group}
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
    """A flow with its step keys and step names worked out once, for comparing it with many copies.

    Step keys are numbered over the group of copies (``ids``: the flow's distinct keys in the
    order they first occur); ``position`` gives, per key number, the step of
    ``flow.steps`` the key stands for (its last occurrence), -1 where the flow has no such
    step. Copies of a thousand steps each are compared by these arrays, not step by step.
    """

    flow: Flow
    by_key: dict[str, Step]
    by_index: dict[int, Step]
    key_of: dict[int, str]
    name: Callable[[Step], str]
    ids: np.ndarray
    position: np.ndarray
    indices: np.ndarray
    groups: np.ndarray

    @classmethod
    def of(cls, flow: Flow, vocabulary: Mapping[str, int]) -> _Keyed:
        keys = [_key(s) for s in flow.steps]
        by_key = dict(zip(keys, flow.steps, strict=True))
        position = np.full(len(vocabulary), -1, dtype=np.int64)
        last = {key: i for i, key in enumerate(keys)}
        ids = np.fromiter((vocabulary[key] for key in by_key), dtype=np.int64, count=len(by_key))
        position[ids] = [last[key] for key in by_key]
        return cls(
            flow=flow,
            by_key=by_key,
            by_index={s.index: s for s in flow.steps},
            key_of={s.index: k for s, k in zip(flow.steps, keys, strict=True)},
            name=_namer(flow.steps),
            ids=ids,
            position=position,
            indices=np.fromiter((s.index for s in flow.steps), dtype=np.int64, count=len(flow.steps)),
            groups=np.fromiter(
                (-1 if s.parallel_group is None else s.parallel_group for s in flow.steps),
                dtype=np.int64,
                count=len(flow.steps),
            ),
        )

    def steps_at(self, ids: np.ndarray) -> list[Step]:
        """The steps the key numbers ``ids`` stand for."""
        return [self.flow.steps[i] for i in self.position[ids].tolist()]

    def order(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each neighbouring pair of the steps ``ids`` stand for: whether they run in one
        parallel group (no order), and whether the first runs before the second."""
        at = self.position[ids]
        indices, groups = self.indices[at], self.groups[at]
        parallel = (groups[:-1] >= 0) & (groups[:-1] == groups[1:])
        return parallel, indices[:-1] < indices[1:]


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


def _drift(reference: _Keyed, copy: _Keyed) -> tuple[str, ...]:
    who = copy.flow.owner
    ref_name, copy_name = reference.name, copy.name
    in_copy = copy.position[reference.ids] >= 0
    missing = reference.steps_at(reference.ids[~in_copy])
    extra = copy.steps_at(copy.ids[reference.position[copy.ids] < 0])
    # Neighbours in the reference's order that the copy calls the other way round: linear, and
    # what a reader needs ("calls payment before inventory") without every implied pair.
    common = reference.ids[in_copy]
    mine_parallel, mine_before = reference.order(common)
    theirs_parallel, theirs_before = copy.order(common)
    turned = np.flatnonzero(~mine_parallel & ~theirs_parallel & (mine_before != theirs_before))
    swapped = list(zip(copy.steps_at(common[turned]), copy.steps_at(common[turned + 1]), strict=True))
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


def _failure_drift(keyed_reference: _Keyed, keyed_copy: _Keyed) -> list[str]:
    reference, copy = keyed_reference.flow, keyed_copy.flow
    who = copy.owner
    ref_name = keyed_reference.name
    ref_steps = keyed_reference.by_index
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
    copy_steps = keyed_copy.by_index
    ref_steps = keyed_reference.by_key
    ref_undo = {
        (c.operation.service, c.operation.key, c.failed_step, c.undone_step)
        for c in reference.failure.compensations
    }
    notes = []
    for compensation in copy.failure.compensations:
        failed, undone = copy_steps.get(compensation.failed_step), copy_steps.get(compensation.undone_step)
        if failed is None or undone is None:
            continue
        ref_failed_step = ref_steps.get(keyed_copy.key_of[failed.index])
        ref_undone_step = ref_steps.get(keyed_copy.key_of[undone.index])
        if ref_failed_step is None or ref_undone_step is None:
            continue
        ref_failed, ref_undone = ref_failed_step.index, ref_undone_step.index
        # Only a failure that comes after the undone step in the reference could need the undo there.
        if ref_undone >= ref_failed:
            continue
        key = (compensation.operation.service, compensation.operation.key, ref_failed, ref_undone)
        if key not in ref_undo:
            notes.append(
                f"{copy.owner} also calls {compensation.operation.service} {compensation.operation.key} "
                f"to undo {copy_name(undone)} when {copy_name(failed)} fails"
            )
    return notes
