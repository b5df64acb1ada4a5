"""Tie observed calls to operations: documented ones from OpenAPI specs, or keys derived from traces.

Every span gets an ``operation_key`` (so later stages work on traces alone) and, when the service
it calls has a spec, the matching documented operation. Matching is done once per distinct
(target service, method, route, path) and joined back columnar: even millions of spans carry
only a few thousand distinct keys. Within a service, path templates sit in a segment trie that is
searched concrete-segment-first, which is OpenAPI's precedence (``/pets/mine`` before
``/pets/{id}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collectors.openapi import Operation, Spec, SpecBindings
from collectors.spans import plain_strings

#: Columns of ``OperationMatches.table``, row-aligned with the span table.
MATCH_SCHEMA = pa.schema(
    [
        pa.field("target_service", pa.string()),  # the service called: own service for server spans
        pa.field("operation_key", pa.string()),  # METHOD template, METHOD route, rpc service/method or name
        pa.field("op_service", pa.string()),  # set only when a documented operation matched
        pa.field("op_method", pa.string()),
        pa.field("op_path", pa.string()),
        pa.field("operation_id", pa.string()),
        pa.field("inferred", pa.bool_()),
    ]
)

_SEP = "\x1f"
_FOLDED = "{}"
# Path segments that are identifiers, not names: numbers, UUIDs, long hex (object ids, hashes).
_IDENTIFIER = (
    r"/(?:[0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{24,})(/|$)"
)
_ROUTE_PARAM = re.compile(r"^(\{[^/]*\}|:[^/]+|<[^/]+>|\*)$")


@dataclass(frozen=True, slots=True)
class OperationMatches:
    """Per-span operation references; ``table`` has ``MATCH_SCHEMA`` and one row per span, in order."""

    table: pa.Table


@dataclass(frozen=True, order=True, slots=True)
class UndocumentedCall:
    """Traffic to a path no operation of the service's spec documents."""

    method: str
    path: str
    count: int


@dataclass(frozen=True, order=True, slots=True)
class ServiceCoverage:
    """How well a service's spec covers the calls it receives.

    ``observed_from`` is ``server`` when the service's own server spans were counted, ``client``
    when it emits none and the client spans calling it stand in. ``unseen`` lists documented
    operation keys no span (server or client) matched.
    """

    service: str
    observed_from: str
    calls: int
    matched: int
    undocumented: tuple[UndocumentedCall, ...]
    unseen: tuple[str, ...]

    @property
    def match_rate(self) -> float:
        """Share of observed calls that matched a documented operation (1.0 when there were none)."""
        return self.matched / self.calls if self.calls else 1.0


def index_operations(specs: Iterable[Spec], bindings: SpecBindings) -> dict[str, tuple[Operation, ...]]:
    """The documented operations of each bound service, from every spec bound to it."""
    spec_list = list(specs)
    services = sorted({b.service for b in bindings.bindings})
    return {
        service: tuple(op for spec in bindings.specs_for(service, spec_list) for op in spec.operations)
        for service in services
    }


# -- path templates ---------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    partial: list[tuple[re.Pattern[str], _Node]] = field(default_factory=list)
    param: _Node | None = None
    methods: dict[str, int] = field(default_factory=dict)


def _segments(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


def _partial_pattern(segment: str) -> re.Pattern[str]:
    """``{id}.json`` -> a regex where each ``{...}`` matches within one segment."""
    parts = re.split(r"\{[^{}]*\}", segment)
    return re.compile("[^/]+?".join(re.escape(p) for p in parts))


class _Router:
    """The operations of one service, searchable by method and concrete path or route template."""

    def __init__(self, operations: Sequence[Operation]) -> None:
        self.operations = tuple(operations)
        self.root = _Node()
        bases = {s.base_path for op in operations for s in op.servers if s.base_path}
        self.bases = sorted(bases, key=len, reverse=True)
        for index, op in enumerate(self.operations):
            node = self.root
            for segment in _segments(op.path):
                if segment.startswith("{") and segment.endswith("}") and segment.count("{") == 1:
                    node.param = node.param or _Node()
                    node = node.param
                elif "{" in segment:
                    pattern = _partial_pattern(segment)
                    found = next((n for p, n in node.partial if p.pattern == pattern.pattern), None)
                    if found is None:
                        found = _Node()
                        node.partial.append((pattern, found))
                    node = found
                else:
                    node = node.literal.setdefault(segment, _Node())
            node.methods.setdefault(op.method, index)

    def match(self, method: str, path: str, *, is_route: bool) -> int | None:
        """Index of the operation serving ``method path``; base paths are tried stripped first."""
        segments: list[str | None] = [
            None if s == _FOLDED or (is_route and _ROUTE_PARAM.match(s)) else unquote(s)
            for s in _segments(path)
        ]
        for base in self.bases:
            base_segments = _segments(base)
            if segments[: len(base_segments)] == base_segments:
                found = self._search(self.root, segments[len(base_segments) :], method)
                if found is not None:
                    return found
        return self._search(self.root, segments, method)

    def _search(self, node: _Node, segments: Sequence[str | None], method: str) -> int | None:
        if not segments:
            return node.methods.get(method)
        head, rest = segments[0], segments[1:]
        # Concrete segments first: that ordering is OpenAPI's matching precedence.
        if head is not None and head in node.literal:
            found = self._search(node.literal[head], rest, method)
            if found is not None:
                return found
        for pattern, child in node.partial:
            if head is not None and pattern.fullmatch(head):
                found = self._search(child, rest, method)
                if found is not None:
                    return found
        if node.param is not None:
            found = self._search(node.param, rest, method)
            if found is not None:
                return found
        # An unknown value (route parameter, folded identifier) fits a partial template last.
        if head is None:
            for _, child in node.partial:
                found = self._search(child, rest, method)
                if found is not None:
                    return found
        return None


# -- columnar helpers -------------------------------------------------------------------------


def _str(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return pc.cast(column, pa.string())


def _lookup(keys: pa.ChunkedArray | pa.Array, mapping: Mapping[str, str]) -> pa.Array:
    """Vectorised dict lookup: the value for each key, null where the key is absent."""
    if not mapping:
        return pa.nulls(len(keys), pa.string())
    names = sorted(mapping)
    positions = pc.index_in(keys, value_set=pa.array(names, pa.string()))
    return pc.take(pa.array([mapping[n] for n in names], pa.string()), positions)


def _fold_identifiers(paths: pa.ChunkedArray) -> pa.ChunkedArray:
    """Replace identifier segments by a marker that matches only templated spec segments."""
    # Two passes: one match consumes the slash that a directly following identifier needs.
    for _ in range(2):
        paths = pc.replace_substring_regex(paths, _IDENTIFIER, "/" + _FOLDED + r"\1")
    return paths


def _unique_map(keys: pa.Array, values: pa.Array) -> dict[str, str]:
    """Keys that map to exactly one value (ambiguous keys are left out)."""
    table = pa.table({"k": keys, "v": values}).filter(pc.and_(pc.is_valid(keys), pc.is_valid(values)))
    grouped = table.group_by("k", use_threads=False).aggregate([("v", "count_distinct"), ("v", "min")])
    grouped = grouped.filter(pc.equal(grouped["v_count_distinct"], 1))
    return dict(zip(grouped["k"].to_pylist(), grouped["v_min"].to_pylist(), strict=True))


def _resolve_targets(spans: pa.Table, operations: Mapping[str, Sequence[Operation]]) -> pa.ChunkedArray:
    """The service each span calls: its own for server spans; for client spans, by evidence."""
    kind = spans["kind"]
    is_server = pc.equal(kind, "server")
    server = spans.filter(is_server)
    address_port = pc.binary_join_element_wise(spans["server_address"], _str(spans["server_port"]), ":")
    server_address_port = pc.binary_join_element_wise(
        server["server_address"], _str(server["server_port"]), ":"
    )
    by_address_port = _unique_map(server_address_port.combine_chunks(), server["service"].combine_chunks())
    by_address = _unique_map(server["server_address"].combine_chunks(), server["service"].combine_chunks())
    # Spec server hosts and the service names themselves are addresses too (e.g. Kubernetes DNS).
    by_host = {
        s.host: service for service, ops in operations.items() for op in ops for s in op.servers if s.host
    }
    known = pc.unique(spans["service"]).to_pylist()
    by_host.update({name: name for name in known if name})
    by_address = {**by_host, **by_address}
    client_target = pc.coalesce(
        spans["peer_service"],
        _lookup(address_port, by_address_port),
        _lookup(spans["server_address"], by_address),
    )
    targets = pc.if_else(
        is_server, spans["service"], pc.if_else(pc.equal(kind, "client"), client_target, None)
    )
    return _fill_from_children(spans, targets)


def _fill_from_children(spans: pa.Table, targets: pa.ChunkedArray) -> pa.ChunkedArray:
    """Client spans still without a target take the service of the server span they caused."""
    open_rows = pc.and_(pc.equal(spans["kind"], "client"), pc.is_null(targets))
    if not pc.any(open_rows).as_py():
        return targets
    row = pa.array(range(len(spans)), pa.int64())
    clients = pa.table({"trace_id": spans["trace_id"], "span_id": spans["span_id"], "row": row}).filter(
        open_rows
    )
    servers = pa.table(
        {"trace_id": spans["trace_id"], "span_id": spans["parent_span_id"], "child_service": spans["service"]}
    ).filter(pc.equal(spans["kind"], "server"))
    joined = clients.join(
        servers, ["trace_id", "span_id"], join_type="inner", use_threads=False
    ).combine_chunks()
    if joined.num_rows == 0:
        return targets
    # Scatter the children's services back to their client rows (numpy, one vectorised store).
    encoded = pc.dictionary_encode(joined["child_service"]).chunk(0)
    codes = np.full(len(spans), -1, dtype=np.int64)
    codes[joined["row"].to_numpy()] = encoded.indices.to_numpy(zero_copy_only=False)
    found = pc.take(encoded.dictionary, pa.array(codes, mask=codes < 0))
    return pc.coalesce(targets, found)


# -- matching ---------------------------------------------------------------------------------


#: The span columns operation matching reads; only these are decoded and rechunked.
_MATCH_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service",
    "name",
    "kind",
    "http_method",
    "http_route",
    "url_path",
    "server_address",
    "server_port",
    "peer_service",
    "rpc_service",
    "rpc_method",
)


def match_operations(spans: pa.Table, operations: Mapping[str, Sequence[Operation]]) -> OperationMatches:
    """Tie each server span, and each client span toward a documented service, to an operation."""
    # One chunk per column, so element-wise kernels see equal layouts.
    spans = plain_strings(spans.select(list(_MATCH_COLUMNS))).combine_chunks()
    targets = _resolve_targets(spans, operations)
    is_server = pc.equal(spans["kind"], "server")
    route = pc.if_else(is_server, spans["http_route"], None)
    rpc_path = pc.binary_join_element_wise("", spans["rpc_service"], spans["rpc_method"], "/")
    rpc_only = pc.if_else(
        pc.is_valid(spans["rpc_method"]), pc.binary_join_element_wise("", spans["rpc_method"], "/"), None
    )
    rpc_path = pc.coalesce(rpc_path, rpc_only)
    # gRPC travels as POST /package.Service/Method; a spec documenting it is matched the same way.
    is_rpc = pc.and_(pc.is_null(spans["http_method"]), pc.is_valid(rpc_path))
    method = pc.if_else(is_rpc, "POST", spans["http_method"])
    path = pc.if_else(is_rpc, rpc_path, spans["url_path"])
    documented = pc.is_in(targets, value_set=pa.array(sorted(operations), pa.string()))
    eligible = pc.and_(pc.fill_null(documented, False), pc.is_valid(method))
    # A server's route is the authority; without one, the concrete path with identifier-looking
    # segments folded, so a million paths carrying ids collapse into a few distinct keys.
    path = pc.if_else(pc.is_valid(route), None, _fold_identifiers(path))
    key = pc.binary_join_element_wise(
        targets, method, route, path, _SEP, null_handling="replace", null_replacement=""
    )
    key = pc.if_else(eligible, key, None)
    encoded = pc.dictionary_encode(key).combine_chunks()
    routers = {service: _Router(ops) for service, ops in operations.items()}
    found_service: list[str | None] = []
    found_index: list[int | None] = []
    for text in encoded.dictionary.to_pylist():
        service, verb, route_text, path_text = text.split(_SEP)
        router = routers[service]
        index = router.match(verb, route_text, is_route=True) if route_text else None
        if index is None and path_text:
            index = router.match(verb, path_text, is_route=False)
        found_service.append(service if index is not None else None)
        found_index.append(index)
    picked = [
        routers[s].operations[i] if s is not None and i is not None else None
        for s, i in zip(found_service, found_index, strict=True)
    ]
    positions = encoded.indices

    def column(values: Sequence[object], dtype: pa.DataType) -> pa.Array:
        return pc.take(pa.array(values, dtype), positions) if values else pa.nulls(len(spans), dtype)

    op_service = column(found_service, pa.string())
    op_method = column([op.method if op else None for op in picked], pa.string())
    op_path = column([op.path if op else None for op in picked], pa.string())
    operation_id = column([op.operation_id if op else None for op in picked], pa.string())
    inferred = column([op.inferred if op else None for op in picked], pa.bool_())
    operation_key = pc.coalesce(
        pc.binary_join_element_wise(op_method, op_path, " "),
        pc.binary_join_element_wise(spans["http_method"], route, " "),
        pc.if_else(is_rpc, pc.utf8_ltrim(rpc_path, "/"), None),
        spans["name"],
    )
    table = pa.table(
        [targets, operation_key, op_service, op_method, op_path, operation_id, inferred], schema=MATCH_SCHEMA
    )
    return OperationMatches(table)


# -- coverage ---------------------------------------------------------------------------------


def measure_coverage(
    spans: pa.Table, matches: OperationMatches, operations: Mapping[str, Sequence[Operation]]
) -> tuple[ServiceCoverage, ...]:
    """Per documented service: match rate, undocumented endpoints seen, documented ones never seen."""
    spans = plain_strings(
        spans.select(["kind", "http_method", "http_route", "url_path", "rpc_method"])
    ).combine_chunks()
    m = matches.table.combine_chunks()
    is_call = pc.or_(pc.is_valid(spans["http_method"]), pc.is_valid(spans["rpc_method"]))
    calls = pa.table(
        {
            "kind": spans["kind"],
            "target": m["target_service"],
            "matched": pc.is_valid(m["op_service"]),
            "method": pc.coalesce(spans["http_method"], pa.scalar("POST")),
            "path": pc.coalesce(
                pc.if_else(pc.equal(spans["kind"], "server"), spans["http_route"], None),
                spans["url_path"],
                m["operation_key"],
            ),
            "key": pc.binary_join_element_wise(m["op_method"], m["op_path"], " "),
        }
    ).filter(
        pc.and_(is_call, pc.is_in(m["target_service"], value_set=pa.array(sorted(operations), pa.string())))
    )
    seen = calls.filter(pc.is_valid(calls["key"])).group_by(["target", "key"]).aggregate([])
    seen_keys: dict[str, set[str]] = {}
    for target, key in zip(seen["target"].to_pylist(), seen["key"].to_pylist(), strict=True):
        seen_keys.setdefault(target, set()).add(key)
    server_targets = set(pc.unique(calls.filter(pc.equal(calls["kind"], "server"))["target"]).to_pylist())
    side = pc.if_else(
        pc.is_in(calls["target"], value_set=pa.array(sorted(server_targets), pa.string())), "server", "client"
    )
    counted = calls.append_column("side", side).filter(pc.equal(calls["kind"], side))
    totals = counted.group_by(["target", "matched"]).aggregate([("kind", "count")])
    tally: dict[str, list[int]] = {}
    for target, matched, count in zip(
        totals["target"].to_pylist(),
        totals["matched"].to_pylist(),
        totals["kind_count"].to_pylist(),
        strict=True,
    ):
        entry = tally.setdefault(target, [0, 0])
        entry[0] += count
        entry[1] += count if matched else 0
    missing = (
        counted.filter(pc.invert(counted["matched"]))
        .group_by(["target", "method", "path"])
        .aggregate([("kind", "count")])
    )
    undocumented: dict[str, list[UndocumentedCall]] = {}
    for target, verb, path, count in zip(
        missing["target"].to_pylist(),
        missing["method"].to_pylist(),
        missing["path"].to_pylist(),
        missing["kind_count"].to_pylist(),
        strict=True,
    ):
        undocumented.setdefault(target, []).append(UndocumentedCall(verb, path, count))
    result = []
    for service in sorted(operations):
        total, matched = tally.get(service, [0, 0])
        documented = {op.key for op in operations[service]}
        result.append(
            ServiceCoverage(
                service=service,
                observed_from="server" if service in server_targets else "client",
                calls=total,
                matched=matched,
                undocumented=tuple(
                    sorted(undocumented.get(service, []), key=lambda u: (-u.count, u.method, u.path))
                ),
                unseen=tuple(sorted(documented - seen_keys.get(service, set()))),
            )
        )
    return tuple(result)
