"""Entry operations with very many requests are mined from a sample of their traces.

The landscape stage holds every selected request with its calls while it mines flows, so
without a bound its memory grows with the input: a day of a busy checkout is millions of
requests. An entry operation with more than ``flows.max_mined_requests`` requests, or more than
its share of the requests the memory budget allows the stage (counted exactly in the merged
behaviour partials), is mined from a sample of about that many: a request is kept when the hash
of its trace id falls below the entry's rate. The choice depends on
the trace id alone, so the same requests are kept in any partitioning, on any engine and from
stored records, and all requests of one trace stay together. Counts a flow reports (requests,
variants, findings' cases) are then the sample's, and the flow says so (``sample_rate``).
The origins of message chains are sampled alike, by the origin's trace id, with the chains of
each origin counted in the stitched records (:mod:`orchscan.analyzer.flows.events`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from orchscan.analyzer.results import Flow

#: Sample rates per (owner, entry); entries mined whole are absent.
SampleRates = Mapping[tuple[str, str], float]

#: Hash bits compared with the rate (a float holds 53 bits exactly).
_BITS = 53


def sample_rates(
    operations: pd.DataFrame,
    candidates: Iterable[tuple[str, str]],
    max_requests: int,
    budget: int | None = None,
) -> dict[tuple[str, str], float]:
    """The rate at which each candidate entry is sampled, for those mined from a sample.

    An entry keeps at most ``max_requests`` requests, and all candidates together at most
    ``budget`` (the landscape stage's memory, in requests): the largest entries are cut to one
    common level, the smaller ones are mined whole. ``operations`` are the merged behaviour
    partial's per (service, operation) sums, with their ``requests``.
    """
    if operations.empty:
        return {}
    totals = operations.groupby(
        [operations["service"].astype(str), operations["operation"].astype(str)], sort=False
    )["requests"].sum()
    counted = totals.to_dict()
    wanted = {candidate: float(counted.get(candidate, 0)) for candidate in sorted(set(candidates))}
    cap = float(max_requests)
    if budget is not None:
        cap = min(cap, _common_level(list(wanted.values()), float(budget)))
    return {candidate: cap / total for candidate, total in wanted.items() if total > cap}


def _common_level(totals: list[float], budget: float) -> float:
    """The largest level L with sum(min(total, L)) <= budget (infinite when everything fits)."""
    remaining, left = budget, len(totals)
    for total in sorted(totals):
        share = remaining / left
        if total > share:
            return max(share, 1.0)
        remaining -= total
        left -= 1
    return float("inf")


def in_sample(requests: pd.DataFrame, rates: SampleRates) -> np.ndarray:
    """Which ``requests`` (with ``owner``, ``entry`` and ``trace_id``) the sample keeps."""
    keep = np.ones(len(requests), dtype=bool)
    if not rates or requests.empty:
        return keep
    keys = pd.MultiIndex.from_frame(requests[["owner", "entry"]].astype(str))
    by_entry = pd.Series(list(rates.values()), index=pd.MultiIndex.from_tuples(list(rates)))
    rate = by_entry.reindex(keys).fillna(1.0).to_numpy(dtype=np.float64)
    sampled = rate < 1.0
    traces = requests["trace_id"].astype(str).to_numpy(dtype=object)[sampled]
    position = pd.util.hash_array(traces) >> np.uint64(64 - _BITS)
    keep[sampled] = position.astype(np.float64) < rate[sampled] * float(1 << _BITS)
    return keep


def with_sample_rates(flows: Iterable[Flow], rates: SampleRates) -> tuple[Flow, ...]:
    """Flows of sampled entries (a sub-entry by the entry it was split from) with their rate and a
    caveat saying that their counts are a sample's."""
    marked = []
    for flow in flows:
        rate = rates.get((flow.owner, flow.split_from or flow.entry.key))
        if rate is not None:
            caveat = (
                f"mined from a sample of {rate:.1%} of the entry's requests, chosen by trace id "
                "(flows.max_mined_requests): its counts are the sample's"
            )
            flow = dataclasses.replace(flow, sample_rate=rate, caveats=(*flow.caveats, caveat))
        marked.append(flow)
    return tuple(marked)
