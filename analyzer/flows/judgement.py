"""Which mined flows may be claimed as flows, and which entries hide several request types.

A flow is a claim: this owner coordinates these steps, again and again. It needs evidence: at
least ``flows.evidence_min_requests`` requests and ``flows.evidence_min_steps`` steps. Below
either, the entry is still listed as observed, with "too little evidence", but nothing is built
on it (no finding, no draft, no copy).

An entry operation may also hide several request types: a front end that records every request
under one span name, with no route, path or RPC method to tell a product page from a checkout.
Mined as one, its "flow" has no core step (none in ``flows.required_step_support`` of its
requests) and no dominant variant (the most frequent covers less than
``flows.mixed_entry_max_main_share``). Such a *mixed entry* is split into sub-entries by the
first call its requests make (the first block of their sequence), and each sub-entry is mined and
judged as a flow of its own; a sub-entry holding less than ``flows.sub_entry_min_share`` of the
entry's requests is no request type but a deviation (a lost first call makes a request look
like another type), so it is only observed. When no sub-entry has the requests a flow needs, the
entry stays whole and is listed as a mixed entry, with the evidence, never as a flow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from orchscan.analyzer.flows.steps import BLOCK_SEP, STEP_SEP, StepCalls, flow_id
from orchscan.analyzer.results import Flow
from orchscan.analyzer.thresholds import DEFAULT_FLOW_THRESHOLDS, FlowThresholds

#: Verdicts of a mined entry: a claimed flow, or why it is only observed.
FLOW, TOO_LITTLE_EVIDENCE, MIXED_ENTRY = "flow", "too-little-evidence", "mixed-entry"

#: What a sub-entry is named after when its requests made no downstream call at all.
_NO_CALL = "no downstream call"


@dataclass(frozen=True)
class SubEntry:
    """A request type split from a mixed entry: the entry's key, its share of the entry's requests
    and how many those were."""

    entry: str
    share: float
    of: int


@dataclass(frozen=True)
class MixedEntries:
    """What splitting found.

    ``sub_entries``: per sub-entry flow id, where it came from; ``unsplit``: per mixed entry that
    stayed whole, the sentences saying why.
    """

    sub_entries: Mapping[str, SubEntry]
    unsplit: Mapping[str, tuple[str, ...]]


#: Nothing split: what flows mined without :func:`split_mixed_entries` are judged against.
NO_MIXED_ENTRIES = MixedEntries({}, {})


def split_mixed_entries(
    steps: StepCalls, *, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS
) -> tuple[StepCalls, MixedEntries]:
    """The steps with the requests of every splittable mixed entry moved to their sub-entries."""
    requests = steps.requests
    if requests.empty:
        return steps, NO_MIXED_ENTRIES
    figures = _entry_figures(steps, thresholds)
    mixed = figures[
        figures["route_less"]
        & (figures["core_support"] < thresholds.required_step_support)
        & (figures["main_share"] < thresholds.mixed_entry_max_main_share)
    ]
    if mixed.empty:
        return steps, NO_MIXED_ENTRIES
    chosen = requests[requests["flow_id"].isin(mixed.index)]
    first = chosen["sequence"].str.split(BLOCK_SEP, n=1).str[0].str.replace(STEP_SEP, " + ", regex=False)
    sub_entry = chosen["entry"] + " via " + first.where(first != "", _NO_CALL)
    sizes = sub_entry.groupby(chosen["flow_id"]).value_counts()
    splittable = {fid for (fid, _), n in sizes.items() if n >= thresholds.evidence_min_requests}
    moved = chosen["flow_id"].isin(splittable).to_numpy()
    new_entry = requests["entry"].copy()
    new_entry.loc[chosen.index[moved]] = sub_entry[moved]
    sub_entries, unsplit = {}, {}
    for fid, row in mixed.iterrows():
        evidence = _mixed_sentence(row, thresholds)
        if fid not in splittable:
            unsplit[str(fid)] = (
                evidence,
                f"no single request type has the {thresholds.evidence_min_requests} requests a flow needs",
            )
            continue
        total = int(row["requests"])
        for (_, key), n in sizes.loc[[fid]].items():
            sub_entries[flow_id(str(row["owner"]), str(key))] = SubEntry(
                str(row["entry"]), int(n) / total, total
            )
    return _rekeyed(steps, new_entry), MixedEntries(sub_entries, unsplit)


def shape_basis(requests: pd.DataFrame, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS) -> pd.Series:
    """The requests a flow's shape (which steps it always takes) is judged on.

    Those that went through, since a failure cuts a flow short, and kept every span, since a lost
    span drops a step from the request (unless lost spans are everywhere in the flow,
    ``holes_explain_max_share``, when they tell nothing). A flow without such requests is judged
    on those that went through, and one where none did on all of them.
    """
    flow = requests["flow_id"]

    def none_in_flow(mask: pd.Series) -> pd.Series:
        return ~mask.groupby(flow).transform("any")

    went_through = ~requests["error"] & ~requests["failed"]
    holes_everywhere = requests["holes"].groupby(flow).transform("mean") > thresholds.holes_explain_max_share
    basis = went_through & (~requests["holes"] | holes_everywhere)
    basis |= none_in_flow(basis) & went_through
    return basis | none_in_flow(basis)


def _entry_figures(steps: StepCalls, thresholds: FlowThresholds) -> pd.DataFrame:
    """Per flow: whether its requests carry no route, how often its most common step and variant occur."""
    requests, calls = steps.requests, steps.calls
    basis = requests[shape_basis(requests, thresholds)]
    judged = calls[["flow_id", "step", "entry_row"]][calls["entry_row"].isin(basis["entry_row"]).to_numpy()]
    most = _most_common(judged["flow_id"], judged["step"], requests=judged["entry_row"])
    by_flow = requests.groupby("flow_id", sort=True)
    sizes = by_flow.size()
    figures = pd.DataFrame(
        {
            "owner": by_flow["owner"].first(),
            "entry": by_flow["entry"].first(),
            "requests": sizes,
            "route_less": by_flow["named"].all(),
            "main_share": _most_common(requests["flow_id"], requests["sequence"]).reindex(sizes.index)
            / sizes,
        }
    )
    figures["core_support"] = (
        most.reindex(figures.index).fillna(0) / basis.groupby("flow_id").size()
    ).fillna(0.0)
    return figures


def _most_common(flows: pd.Series, keys: pd.Series, *, requests: pd.Series | None = None) -> pd.Series:
    """Per flow id, how many rows hold its most common key (with ``requests``: how many distinct
    requests), by flow id; rows with no flow id or key are left out.

    Counted on integer codes: grouping by the text (step keys, whole sequences) hashed it again
    for every count.
    """
    flow_codes, flow_ids = pd.factorize(flows)
    key_codes, _ = pd.factorize(keys)
    frame = pd.DataFrame({"flow": flow_codes, "key": key_codes})
    if requests is not None:
        frame = frame.assign(request=requests.to_numpy()).drop_duplicates()
    frame = frame[(frame["flow"].to_numpy() >= 0) & (frame["key"].to_numpy() >= 0)]
    top = frame.groupby(["flow", "key"], sort=False).size().groupby(level="flow", sort=False).max()
    index = pd.Index(flow_ids.take(top.index.to_numpy()), name="flow_id")
    return pd.Series(top.to_numpy(), index=index).sort_index()


def _mixed_sentence(row: pd.Series, thresholds: FlowThresholds) -> str:
    return (
        f"mixed entry: its requests carry no route, path or RPC method, no step is in more than "
        f"{row['core_support']:.0%} of them (a core step is in {thresholds.required_step_support:.0%}) "
        f"and its most frequent variant covers {row['main_share']:.0%}, so it hides several request types"
    )


def _rekeyed(steps: StepCalls, entry: pd.Series) -> StepCalls:
    """Requests and calls under new entry keys (and the flow ids that follow from them)."""
    requests = steps.requests.assign(entry=entry.to_numpy())
    requests = requests.assign(flow_id=requests["owner"] + ":" + requests["entry"])
    info = requests.set_index("entry_row")
    calls = steps.calls.assign(
        entry=info["entry"].reindex(steps.calls["entry_row"]).to_numpy(),
        flow_id=info["flow_id"].reindex(steps.calls["entry_row"]).to_numpy(),
    )
    return StepCalls(calls=calls, requests=requests)


def judge_flows(
    flows: Sequence[Flow], mixed: MixedEntries, *, thresholds: FlowThresholds = DEFAULT_FLOW_THRESHOLDS
) -> tuple[Flow, ...]:
    """Every flow with its verdict and the sentences behind it (see the module docstring), after
    any caveat the flow already carries (such as its sample's)."""
    judged = []
    for flow in flows:
        caveats: list[str] = list(flow.caveats)
        verdict = FLOW
        split = mixed.sub_entries.get(flow.id)
        if split is not None:
            caveats.append(
                f"one request type of the mixed entry {split.entry} ({split.share:.0%} of its {split.of} "
                "requests), told apart by its first call"
            )
        if flow.id in mixed.unsplit:
            verdict = MIXED_ENTRY
            caveats += mixed.unsplit[flow.id]
        elif split is not None and split.share < thresholds.sub_entry_min_share:
            verdict = TOO_LITTLE_EVIDENCE
            caveats.append(
                f"too little evidence: a request type holds at least {thresholds.sub_entry_min_share:.0%} "
                "of its entry's requests; rarer first calls are deviations (a lost first call makes a "
                "request look like another type)"
            )
        elif (
            flow.requests < thresholds.evidence_min_requests
            or len(flow.steps) < thresholds.evidence_min_steps
        ):
            verdict = TOO_LITTLE_EVIDENCE
            caveats.append(
                f"too little evidence: {_count(flow.requests, 'request')} with "
                f"{_count(len(flow.steps), 'step')}; a flow needs at least "
                f"{_count(thresholds.evidence_min_requests, 'request')} and "
                f"{_count(thresholds.evidence_min_steps, 'step')}"
            )
        judged.append(
            dataclasses.replace(
                flow, verdict=verdict, caveats=tuple(caveats), split_from=split.entry if split else None
            )
        )
    return tuple(judged)


def _count(number: int | np.integer, noun: str) -> str:
    return f"{int(number)} {noun}{'' if int(number) == 1 else 's'}"
