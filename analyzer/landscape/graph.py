"""The service graph and the operation graph, with per-edge traffic, errors and latency.

Both are networkx DiGraphs built from one group-by over the calls table. Service graph nodes are
service names; operation graph nodes are ``(service, operation)`` pairs, and an edge runs from
the caller's entry operation (the request during which it called) to the callee's operation.
Edge attributes: ``calls``, ``errors``, ``error_rate``, ``p50_ms``, ``p95_ms`` (the caller's view
of latency), ``example_traces`` (up to five, sorted) and ``kinds`` (sorted call kinds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa

from orchscan.analyzer.columnar.frames import rows
from orchscan.analyzer.columnar.grouping import (
    distinct_names,
    group_codes,
    positions_in,
    smallest_text_by_code,
    tuples_by_code,
)
from orchscan.analyzer.requests.calls import CallTables
from orchscan.analyzer.results import Edge

#: How many example trace ids an edge keeps.
EXAMPLES = 5


def group_quantiles(
    code: np.ndarray, values: np.ndarray, groups: int, quantiles: tuple[float, ...]
) -> list[np.ndarray]:
    """Each quantile of ``values`` per group code, linearly interpolated as pandas does.

    One sort for all groups and quantiles instead of pandas' per-group quantile machinery;
    every group ``0..groups-1`` must have at least one value. The values are sorted, then
    stably by group: the order ``np.lexsort((values, code))`` gives, and with up to 65,536
    groups numpy sorts the codes by radix (5M latencies: 1.8 -> 1.1 s). The first sort is stable
    too although equal values could come in any order: latencies repeat (rounded by tracers, or
    the same few values on a synthetic landscape), and numpy's quicksort took nine times as
    long as its stable sort on 8 distinct values in 4M.
    """
    order = np.argsort(values, kind="stable")
    narrow = code[order].astype(np.uint16) if groups <= 1 << 16 else code[order]
    order = order[np.argsort(narrow, kind="stable")]
    ordered = values[order]
    starts = np.searchsorted(code[order], np.arange(groups))
    last = np.bincount(code, minlength=groups) - 1
    result = []
    for q in quantiles:
        position = q * last.astype(np.float64)
        low = position.astype(np.int64)
        below, above = ordered[starts + low], ordered[starts + np.minimum(low + 1, last)]
        fraction = position % 1
        result.append(np.where(fraction == 0, below, below + (above - below) * fraction))
    return result


@dataclass(frozen=True)
class EdgePartial:
    """One partition's calls per (caller, callee, kind); partials merge by concatenation.

    ``edges`` has one row per key with ``calls``, ``errors`` and ``example_count``.
    ``latency_ms`` holds every call's latency as the caller saw it (percentiles need them all),
    edge after edge in the rows' order, ``calls`` of them each; ``examples`` the
    :data:`EXAMPLES` smallest trace ids of each edge the same way, ``example_count`` each.
    Flat arrays rather than two arrays per edge: merging and pickling paid a Python step for
    each edge of each unit (1.5 million arrays at 10M spans), and merging became the largest
    part of the parent's work while the workers reduced. The examples stay Arrow text until the
    edges are finished: as Python strings, each merge spelled all of them twice, which was
    three quarters of a merge.
    """

    edges: pd.DataFrame
    latency_ms: np.ndarray
    examples: pa.Array

    @classmethod
    def of(cls, calls: pd.DataFrame) -> EdgePartial:
        """The edges of one partition's calls (rows with a null key belong to no edge)."""
        return cls(*_edge_stats(calls, list(EDGE_KEYS)))

    @classmethod
    def merge(cls, parts: Sequence[EdgePartial]) -> EdgePartial:
        """The partial of the union of the partitions ``parts`` came from."""
        frame = pd.concat([part.edges for part in parts], ignore_index=True)
        latency = np.concatenate([part.latency_ms for part in parts])
        examples = pa.concat_arrays([part.examples for part in parts])
        if frame.empty or len(parts) == 1:
            return cls(frame, latency, examples)
        code, keys = group_codes(frame, list(EDGE_KEYS), dropna=True)
        groups = len(keys)
        calls = frame["calls"].to_numpy()
        keys["calls"] = np.bincount(code, weights=calls, minlength=groups).astype(np.int64)
        keys["errors"] = np.bincount(code, weights=frame["errors"].to_numpy(), minlength=groups).astype(
            np.int64
        )
        example_code = np.repeat(code, frame["example_count"].to_numpy())
        keys["example_count"], smallest = smallest_text_by_code(example_code, examples, groups, EXAMPLES)
        return cls(keys, latency[_runs_by_code(code, calls)], smallest)

    def latencies_by_edge(self) -> list[np.ndarray]:
        """Each row's latencies, in row order."""
        return _split(self.latency_ms, self.edges["calls"].to_numpy())

    def examples_by_edge(self) -> list[np.ndarray]:
        """Each row's example trace ids, in row order."""
        return _split(self.examples.to_numpy(zero_copy_only=False), self.edges["example_count"].to_numpy())


def _split(flat: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    return np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []


def _runs_by_code(code: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Where to take a flat array of runs from (run ``i`` holds ``lengths[i]`` items) so that
    the runs come ordered by ``code``, stably; each run keeps its items' order."""
    rows = np.argsort(code, kind="stable")
    starts = np.cumsum(lengths) - lengths
    moved = lengths[rows]
    # Item j of the result is item (j - where its run now starts) of its run.
    return np.repeat(starts[rows] - (np.cumsum(moved) - moved), moved) + np.arange(moved.sum())


#: What identifies an edge of the service graph.
EDGE_KEYS = ("caller", "callee", "kind")


def _edge_stats(calls: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray, pa.Array]:
    """Calls, errors and example counts per group of ``keys``; every call's latency and the
    example traces, group by group."""
    code, stats = group_codes(calls, keys, dropna=True)
    groups = len(stats)
    kept = code >= 0  # rows with a null key belong to no group
    code = code[kept]
    stats["calls"] = np.bincount(code, minlength=groups)
    latency = (calls["end_ns"].to_numpy()[kept] - calls["start_ns"].to_numpy()[kept]).clip(min=0) / 1e6
    errors = calls["error"].to_numpy(dtype=bool)[kept]
    stats["errors"] = np.bincount(code, weights=errors, minlength=groups).astype(int)
    stats["example_count"], examples = smallest_text_by_code(code, calls["trace_id"][kept], groups, EXAMPLES)
    return stats, latency[np.argsort(code, kind="stable")], examples


def _finished(partial: EdgePartial) -> pd.DataFrame:
    """Percentiles from the merged latencies, and each edge's examples as a tuple."""
    stats = partial.edges.copy()
    if stats.empty:
        return stats.assign(p50_ms=[], p95_ms=[], examples=[])
    code = np.repeat(np.arange(len(stats)), stats["calls"].to_numpy())
    stats["p50_ms"], stats["p95_ms"] = group_quantiles(code, partial.latency_ms, len(stats), (0.5, 0.95))
    stats["examples"] = [tuple(e.tolist()) for e in partial.examples_by_edge()]
    return stats


def build_edges(partial: EdgePartial) -> tuple[Edge, ...]:
    """One :class:`Edge` per caller, callee and call kind, sorted by ``(caller, callee, kind)``."""
    stats = _finished(partial)
    columns = ("caller", "callee", "kind", "calls", "errors", "p50_ms", "p95_ms", "examples")
    return tuple(
        Edge(
            caller=str(caller),
            callee=str(callee),
            kind=str(kind),
            calls=int(calls),
            errors=int(errors),
            p50_ms=round(float(p50), 3),
            p95_ms=round(float(p95), 3),
            example_traces=tuple(map(str, examples)),
        )
        for caller, callee, kind, calls, errors, p50, p95, examples in zip(
            *(stats[c].tolist() for c in columns), strict=True
        )
    )


def _graph_stats(calls: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Edge statistics plus the sorted call kinds folded into each edge."""
    code, _ = group_codes(calls, keys, dropna=True)
    stats = _finished(EdgePartial(*_edge_stats(calls, keys)))
    kept = code >= 0
    stats["kinds"] = pd.Series(tuples_by_code(code[kept], calls["kind"][kept], len(stats)), dtype=object)
    return stats


def _add_edges(graph: nx.DiGraph, stats: pd.DataFrame, source: list[str], target: list[str]) -> None:
    def nodes(columns: list[str]) -> list[object]:
        arrays = [stats[c].to_numpy(dtype=object) for c in columns]
        return list(zip(*arrays, strict=True)) if len(arrays) > 1 else list(arrays[0])

    calls = stats["calls"].to_numpy()
    errors = stats["errors"].to_numpy()
    p50 = stats["p50_ms"].to_numpy().round(3)
    p95 = stats["p95_ms"].to_numpy().round(3)
    examples = [tuple(e) for e in stats["examples"]]
    kinds = stats["kinds"].tolist()
    graph.add_edges_from(
        (
            u,
            v,
            {
                "calls": int(calls[i]),
                "errors": int(errors[i]),
                "error_rate": int(errors[i]) / int(calls[i]),
                "p50_ms": float(p50[i]),
                "p95_ms": float(p95[i]),
                "example_traces": examples[i],
                "kinds": kinds[i],
            },
        )
        for i, (u, v) in enumerate(zip(nodes(source), nodes(target), strict=True))
    )


def build_service_graph(tables: CallTables) -> nx.DiGraph:
    """Services as nodes (``emits_spans`` attribute), calls of every kind folded into one edge per pair."""
    graph: nx.DiGraph = nx.DiGraph()
    emitting = set(distinct_names(tables.spans["service"]))
    for name in distinct_names(tables.spans["service"], tables.calls["caller"], tables.calls["callee"]):
        graph.add_node(name, emits_spans=name in emitting)
    keys = ["caller", "callee"]
    _add_edges(graph, _graph_stats(tables.calls, keys), ["caller"], ["callee"])
    return graph


def build_operation_graph(tables: CallTables) -> nx.DiGraph:
    """``(service, operation)`` nodes; edges from the caller's entry operation to the callee's operation."""
    requests = tables.requests
    # Each call's entry request by position (request rows ascend), instead of a join on the frame.
    at = positions_in(requests["row"].to_numpy(), tables.calls["entry_row"].to_numpy())
    entry_operation = pd.Series(requests["operation"].array.take(at, allow_fill=True))
    calls = tables.calls.assign(entry_operation=entry_operation.fillna("(unknown)").array)
    graph: nx.DiGraph = nx.DiGraph()
    _, nodes = group_codes(requests, ["service", "operation"], dropna=False)
    for service, operation in rows(nodes):
        graph.add_node((service, operation), service=service, operation=operation)
    keys = ["caller", "entry_operation", "callee", "operation"]
    _add_edges(graph, _graph_stats(calls, keys), ["caller", "entry_operation"], ["callee", "operation"])
    for node in graph.nodes:
        graph.nodes[node].setdefault("service", node[0])
        graph.nodes[node].setdefault("operation", node[1])
    return graph
