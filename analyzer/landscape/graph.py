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

from orchscan.analyzer.columnar.grouping import distinct_names, group_codes, positions_in, tuples_by_code
from orchscan.analyzer.requests.calls import CallTables
from orchscan.analyzer.results import Edge

#: How many example trace ids an edge keeps.
EXAMPLES = 5


def group_quantiles(
    code: np.ndarray, values: np.ndarray, groups: int, quantiles: tuple[float, ...]
) -> list[np.ndarray]:
    """Each quantile of ``values`` per group code, linearly interpolated as pandas does.

    One sort for all groups and quantiles instead of pandas' per-group quantile machinery;
    every group ``0..groups-1`` must have at least one value.
    """
    order = np.lexsort((values, code))
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

    ``edges`` has one row per key with ``calls``, ``errors``, ``latency_ms`` (every call's
    latency as the caller saw it, an array: percentiles need them all) and ``examples`` (the
    :data:`EXAMPLES` smallest trace ids, an array).
    """

    edges: pd.DataFrame

    @classmethod
    def of(cls, calls: pd.DataFrame) -> EdgePartial:
        """The edges of one partition's calls (rows with a null key belong to no edge)."""
        return cls(_edge_stats(calls, list(EDGE_KEYS)))

    @classmethod
    def merge(cls, parts: Sequence[EdgePartial]) -> EdgePartial:
        """The partial of the union of the partitions ``parts`` came from."""
        frame = pd.concat([part.edges for part in parts], ignore_index=True)
        if frame.empty or len(parts) == 1:
            return cls(frame)
        code, keys = group_codes(frame, list(EDGE_KEYS), dropna=True)
        groups = len(keys)
        keys["calls"] = np.bincount(code, weights=frame["calls"].to_numpy(), minlength=groups).astype(
            np.int64
        )
        keys["errors"] = np.bincount(code, weights=frame["errors"].to_numpy(), minlength=groups).astype(
            np.int64
        )
        # Every partition's arrays flattened once and cut per edge: no Python call per edge.
        keys["latency_ms"] = _regrouped(code, frame["latency_ms"], groups, np.float64)
        examples = _regrouped(code, frame["examples"], groups, object)
        flat_code = np.repeat(np.arange(groups), [len(e) for e in examples])
        flat = np.concatenate(examples) if groups else np.zeros(0, dtype=object)
        smallest = tuples_by_code(flat_code, flat, groups, EXAMPLES)
        keys["examples"] = pd.Series([np.asarray(e, dtype=object) for e in smallest], dtype=object)
        return cls(keys)


def _regrouped(code: np.ndarray, arrays: pd.Series, groups: int, dtype: type) -> list[np.ndarray]:
    """The arrays of all rows with the same group code, joined, per group ``0..groups-1``."""
    sizes = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    flat = np.concatenate([np.asarray(a, dtype=dtype) for a in arrays]) if len(arrays) else np.zeros(0, dtype)
    owner = np.repeat(code, sizes)
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(groups + 1))
    ordered = flat[order]
    return [ordered[bounds[g] : bounds[g + 1]] for g in range(groups)]


#: What identifies an edge of the service graph.
EDGE_KEYS = ("caller", "callee", "kind")


def _edge_stats(calls: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Calls, errors, all latencies and example traces per group of ``keys``."""
    code, stats = group_codes(calls, keys, dropna=True)
    groups = len(stats)
    kept = code >= 0  # rows with a null key belong to no group
    code = code[kept]
    stats["calls"] = np.bincount(code, minlength=groups)
    latency = (calls["end_ns"].to_numpy()[kept] - calls["start_ns"].to_numpy()[kept]).clip(min=0) / 1e6
    errors = calls["error"].to_numpy(dtype=bool)[kept]
    stats["errors"] = np.bincount(code, weights=errors, minlength=groups).astype(int)
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(groups + 1))
    ordered = latency[order]
    stats["latency_ms"] = pd.Series([ordered[bounds[g] : bounds[g + 1]] for g in range(groups)], dtype=object)
    examples = tuples_by_code(code, calls["trace_id"][kept], groups, EXAMPLES)
    stats["examples"] = pd.Series([np.asarray(e, dtype=object) for e in examples], dtype=object)
    return stats


def _finished(edges: pd.DataFrame) -> pd.DataFrame:
    """Percentiles from the merged latencies."""
    stats = edges.copy()
    if stats.empty:
        return stats.assign(p50_ms=[], p95_ms=[])
    sizes = np.array([len(a) for a in stats["latency_ms"]], dtype=np.int64)
    code = np.repeat(np.arange(len(stats)), sizes)
    values = np.concatenate(list(stats["latency_ms"]))
    stats["p50_ms"], stats["p95_ms"] = group_quantiles(code, values, len(stats), (0.5, 0.95))
    return stats


def build_edges(partial: EdgePartial) -> tuple[Edge, ...]:
    """One :class:`Edge` per caller, callee and call kind, sorted by ``(caller, callee, kind)``."""
    stats = _finished(partial.edges)
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
            example_traces=tuple(str(e) for e in examples),
        )
        for caller, callee, kind, calls, errors, p50, p95, examples in zip(
            *(stats[c].tolist() for c in columns), strict=True
        )
    )


def _graph_stats(calls: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Edge statistics plus the sorted call kinds folded into each edge."""
    code, _ = group_codes(calls, keys, dropna=True)
    stats = _finished(_edge_stats(calls, keys))
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
    for service, operation in nodes.itertuples(index=False, name=None):
        graph.add_node((service, operation), service=service, operation=operation)
    keys = ["caller", "entry_operation", "callee", "operation"]
    _add_edges(graph, _graph_stats(calls, keys), ["caller", "entry_operation"], ["callee", "operation"])
    for node in graph.nodes:
        graph.nodes[node].setdefault("service", node[0])
        graph.nodes[node].setdefault("operation", node[1])
    return graph
