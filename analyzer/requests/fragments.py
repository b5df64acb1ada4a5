"""Fragments: spans cut off from their request because a span above them was lost.

When a span names a parent that is not in the input (sampled away, dropped by a collector or an
exporter), everything below it loses its way to the request it was made for. A client, producer
or internal span in that place would otherwise start a "request" of its own, named after a call
rather than an entry operation: a flow of one step, ``DELETE /reservations/res_57c5`` with one
request. Instead such a *fragment root* is put back into its service's request in the same trace
when that is unambiguous: exactly one request (server or consumer span) of the same service in
the same trace contains it in time, within a tolerance. Otherwise it stays a fragment: its calls
still count as calls between services, but it is no request, so never an operation, a flow or
evidence of a role.

A server or consumer span whose parent was lost is a whole request of its own (only its caller
is unknown); a span without any parent is the start of a trace, not a fragment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fragments:
    """Fragment roots (span rows, ascending) and the request row each was adopted into (-1: kept)."""

    roots: np.ndarray
    hosts: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        """Rows of the fragment roots no request could take in."""
        kept: np.ndarray = self.roots[self.hosts < 0]
        return kept


def adopt_fragments(
    trace: np.ndarray,
    service: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    lost: np.ndarray,
    is_entry: np.ndarray,
    *,
    tolerance_ns: int,
) -> Fragments:
    """Find the fragment roots among the spans and the one request of its service that contains each.

    Per span: ``trace`` and ``service`` codes, ``start``/``end`` times, ``lost`` (it names a parent
    that is absent) and ``is_entry`` (a server or consumer span, i.e. a request).
    """
    roots = np.flatnonzero(lost & ~is_entry)
    hosts = np.full(len(roots), -1, dtype=np.int64)
    requests = np.flatnonzero(is_entry)
    if not len(roots) or not len(requests):
        return Fragments(roots, hosts)
    # One key per (trace, service); the requests sorted by it, each root's candidates a range.
    width = int(service.max(initial=0)) + 2
    request_key = trace[requests].astype(np.int64) * width + service[requests] + 1
    order = np.argsort(request_key, kind="stable")
    requests, request_key = requests[order], request_key[order]
    root_key = trace[roots].astype(np.int64) * width + service[roots] + 1
    low = np.searchsorted(request_key, root_key, side="left")
    count = np.searchsorted(request_key, root_key, side="right") - low
    pair_root = np.repeat(np.arange(len(roots)), count)
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    pair_host = requests[np.repeat(low, count) + offset]
    root_rows = roots[pair_root]
    inside = (start[pair_host] - tolerance_ns <= start[root_rows]) & (
        end[root_rows] <= end[pair_host] + tolerance_ns
    )
    pair_root, pair_host = pair_root[inside], pair_host[inside]
    unambiguous = np.bincount(pair_root, minlength=len(roots)) == 1
    single = unambiguous[pair_root]
    hosts[pair_root[single]] = pair_host[single]
    return Fragments(roots, hosts)
