"""Tie observed calls to operations: documented ones from OpenAPI specs, or keys derived from traces.

Every span gets an ``operation_key`` (so later stages work on traces alone) and, when the service
it calls has a spec, the matching documented operation. Nothing is done per span in Python, and
little is done per span at all: the low-cardinality columns (service, kind, method, route,
address, port, peer, rpc names) become dictionary codes, combined with numpy into one code per
distinct combination, of which a landscape has a few hundred or thousand however many spans it
has. Targets are resolved and keys built per combination, in Python; only the concrete URL paths
of spans that need one are read row by row, their identifier segments folded segment-wise. Each
distinct (target, method, route, path) is matched once and the answers taken back to the rows by
code. Within a service, path templates sit in a segment trie that is searched
concrete-segment-first, which is OpenAPI's precedence (``/pets/mine`` before ``/pets/{id}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchscan.analyzer.columnar.codes import Coded, combine, encode, representatives
from orchscan.analyzer.results import OperationRef, ServiceCoverage, UndocumentedCall
from orchscan.collectors.openapi import Operation, Spec, SpecBindings
from orchscan.collectors.side_threads import side_pool

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

_FOLDED = "{}"
# Path segments that are identifiers, not names: numbers, UUIDs, long hex (object ids, hashes).
# Numbers are told by a classification kernel; only segments this long can be the others.
_LONG_IDENTIFIER = 24
_HEX_IDENTIFIER = (
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{24,})$"
)
_CODED_TEXT = pa.dictionary(pa.int32(), pa.string())
#: Fewer paths than this are folded in one piece: a thread's start-up would cost more than it saves.
_ROWS_PER_SLICE = 50_000
_ROUTE_PARAM = re.compile(r"^(\{[^/]*\}|:[^/]+|<[^/]+>|\*)$")


@dataclass(frozen=True, slots=True)
class _MatchCodes:
    """A match table's target and operation as codes (values: target names; operations as
    ``(matched, op_method, op_path)``), so that coverage need not encode a million strings again."""

    target: Coded
    operation: Coded


@dataclass(frozen=True, slots=True)
class OperationMatches:
    """Per-span operation references; ``table`` has ``MATCH_SCHEMA`` and one row per span, in order.

    ``codes`` is internal: the same answers as codes, set by ``match_operations``.
    """

    table: pa.Table
    codes: _MatchCodes | None = field(default=None, repr=False, compare=False)


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


def operation_of(ref: OperationRef, operations: Sequence[Operation]) -> Operation | None:
    """The documented operation behind an observed one, decided as the spans' matching decides.

    The operationId the spans' match gave wins; otherwise the method with the route template,
    then with the concrete path, through the same router :func:`match_operations` uses (base
    paths, literal segments before templated ones). One answer for handoffs, findings and drafts.
    """
    if ref.operation_id:
        for operation in operations:
            if operation.operation_id == ref.operation_id:
                return operation
    if not operations:
        return None
    method, _, path = ref.key.partition(" ")
    router = _router(tuple(operations))
    index = _match(
        router, (ref.method or method).upper(), ref.route or "", path if path.startswith("/") else ""
    )
    return None if index < 0 else router.operations[index]


@lru_cache(maxsize=256)
def _router(operations: tuple[Operation, ...]) -> _Router:
    return _Router(operations)


# -- columnar helpers -------------------------------------------------------------------------


def _codes(values: Sequence[int]) -> npt.NDArray[np.int64]:
    return np.array(values, dtype=np.int64)


def _flags(values: Sequence[bool]) -> npt.NDArray[np.bool_]:
    return np.array(values, dtype=np.bool_)


def _plain(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One array from a possibly chunked column."""
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _masked(positions: npt.NDArray[np.int64]) -> pa.Array:
    """Take indices; negative positions select null."""
    return pa.array(positions, pa.int64(), mask=positions < 0)


def _fold_identifiers(paths: pa.Array) -> pa.Array:
    """Replace identifier segments (all after the first) by a marker only templated segments match.

    The same as replacing every ``/(?:[0-9]+|UUID|[0-9a-fA-F]{24,})(?=/|$)`` with ``/{}``, but
    segment by segment: digits are found with a cheap classification kernel and only segments
    long enough to be a UUID or a long hex id go through a regular expression, which makes it
    about twice as fast as the regular expression over whole paths.
    """
    split = pc.split_pattern(paths, "/")
    segments = split.values
    offsets = split.offsets.to_numpy(zero_copy_only=False)
    identifier = np.array(pc.ascii_is_decimal(segments).fill_null(False).to_numpy(zero_copy_only=False))
    long = np.flatnonzero(pc.binary_length(segments).to_numpy(zero_copy_only=False) >= _LONG_IDENTIFIER)
    if len(long):
        hexlike = pc.match_substring_regex(segments.take(pa.array(long)), _HEX_IDENTIFIER)
        identifier[long] |= hexlike.fill_null(False).to_numpy(zero_copy_only=False)
    starts = offsets[:-1]
    identifier[starts[starts < offsets[1:]]] = False  # the text before the first slash
    if not identifier.any():
        return paths
    folded = pc.if_else(pa.array(identifier), pa.scalar(_FOLDED), segments)
    rebuilt = pa.ListArray.from_arrays(split.offsets, folded, mask=pc.is_null(paths))
    return pc.binary_join(rebuilt, "/")


# -- matching ---------------------------------------------------------------------------------

#: Low-cardinality span columns whose combinations decide a span's target and key (together
#: with ``url_path`` and, for some client spans, their children); a landscape has a few
#: hundred or thousand distinct combinations however many spans it has.
_COMBO_COLUMNS = (
    "service",
    "kind",
    "http_method",
    "http_route",
    "server_address",
    "server_port",
    "peer_service",
    "rpc_service",
    "rpc_method",
)


@dataclass(frozen=True, slots=True)
class _Combo:
    """What one distinct combination of ``_COMBO_COLUMNS`` values means for matching."""

    service: str | None
    kind: str | None
    http_method: str | None
    route: str | None  # the server's route; None on other kinds
    address: str | None
    address_port: str | None
    peer_service: str | None
    method: str | None  # HTTP method; POST for gRPC
    rpc_path: str | None  # /package.Service/Method, set only for gRPC without an HTTP method


def _combo(values: Sequence[Any]) -> _Combo:
    service, kind, http_method, route, address, port, peer, rpc_service, rpc_method = values
    if rpc_service is not None and rpc_method is not None:
        rpc_path: str | None = f"/{rpc_service}/{rpc_method}"
    else:
        rpc_path = f"/{rpc_method}" if rpc_method is not None else None
    is_rpc = http_method is None and rpc_path is not None
    return _Combo(
        service=service,
        kind=kind,
        http_method=http_method,
        route=route if kind == "server" else None,
        address=address,
        address_port=f"{address}:{port}" if address is not None and port is not None else None,
        peer_service=peer,
        method="POST" if is_rpc else http_method,
        rpc_path=rpc_path if is_rpc else None,
    )


def _unique_values(pairs: Iterable[tuple[str | None, str | None]]) -> dict[str, str]:
    """Keys that map to exactly one value (ambiguous keys are left out)."""
    found: dict[str, set[str]] = {}
    for key, value in pairs:
        if key is not None and value is not None:
            found.setdefault(key, set()).add(value)
    return {key: next(iter(values)) for key, values in found.items() if len(values) == 1}


def _combo_targets(
    combos: Sequence[_Combo], operations: Mapping[str, Sequence[Operation]]
) -> list[str | None]:
    """The service each combination calls: its own for servers; for clients, by evidence."""
    servers = [c for c in combos if c.kind == "server"]
    by_address_port = _unique_values((c.address_port, c.service) for c in servers)
    # Spec server hosts and the service names themselves are addresses too (e.g. Kubernetes DNS).
    by_host = {
        s.host: service for service, ops in operations.items() for op in ops for s in op.servers if s.host
    }
    by_host.update({c.service: c.service for c in combos if c.service})
    by_address = {**by_host, **_unique_values((c.address, c.service) for c in servers)}
    targets: list[str | None] = []
    for c in combos:
        target = None
        if c.kind == "server":
            target = c.service
        elif c.kind == "client":
            target = c.peer_service
            if target is None and c.address_port is not None:
                target = by_address_port.get(c.address_port)
            if target is None and c.address is not None:
                target = by_address.get(c.address)
        targets.append(target)
    return targets


def _child_services(
    spans: pa.Table, open_rows: npt.NDArray[np.bool_], is_server: npt.NDArray[np.bool_], service: Coded
) -> npt.NDArray[np.int64]:
    """For each open client row, the service code of the server span it caused (-1 if none).

    A hash join on (trace, span id) against the server spans' (trace, parent id); the smaller
    side is the build side. A client with several server children takes the first in table order.
    """
    rows = np.arange(spans.num_rows, dtype=np.int64)
    clients = pa.table({"trace_id": spans["trace_id"], "span_id": spans["span_id"], "row": rows}).filter(
        pa.array(open_rows)
    )
    servers = pa.table(
        {"trace_id": spans["trace_id"], "span_id": spans["parent_span_id"], "child": rows}
    ).filter(pa.array(is_server))
    keys = ["trace_id", "span_id"]
    if clients.num_rows <= servers.num_rows:
        joined = servers.join(clients, keys, join_type="inner", use_threads=False)
    else:
        joined = clients.join(servers, keys, join_type="inner", use_threads=False)
    found = np.full(spans.num_rows, -1, dtype=np.int64)
    if joined.num_rows == 0:
        return found
    client = joined["row"].to_numpy()
    child = joined["child"].to_numpy()
    order = np.lexsort((child, client))
    client, child = client[order], child[order]
    first = np.ones(len(client), dtype=bool)
    first[1:] = client[1:] != client[:-1]
    codes = service.codes[child[first]]
    found[client[first]] = np.where(codes == len(service.values) - 1, -1, codes)
    return found


def match_operations(spans: pa.Table, operations: Mapping[str, Sequence[Operation]]) -> OperationMatches:
    """Tie each server span, and each client span toward a documented service, to an operation.

    Row-parallel work (encoding columns, folding paths, spelling out the result columns) runs on
    Arrow's CPU count of threads: Arrow kernels release the GIL.
    """
    with side_pool(pa.cpu_count()) as pool:
        return _match_operations(spans, operations, pool)


def _match_operations(
    spans: pa.Table, operations: Mapping[str, Sequence[Operation]], pool: Executor
) -> OperationMatches:
    *coded, name_of = pool.map(lambda name: encode(spans[name]), (*_COMBO_COLUMNS, "name"))
    combo_of, count = combine([c.codes for c in coded], [len(c.values) for c in coded])
    samples = representatives(combo_of, count)
    columns = [[c.values[i] for i in c.codes[samples].tolist()] for c in coded]
    combos = [_combo(values) for values in zip(*columns, strict=True)]
    names, target = _resolve_targets(spans, combos, combo_of, coded[0], operations)
    flat = [(name, op) for name in sorted(operations) for op in operations[name]]
    op_of = _match_rows(spans, combos, combo_of, names, target, operations, pool)
    # operation_key: the operation matched, else METHOD route, else the rpc path, else the name.
    fallback = [_fallback(c) for c in combos]
    fallback_of = _codes([i if key is not None else -1 for i, key in enumerate(fallback)])[combo_of]
    key_of = np.where(fallback_of >= 0, len(flat) + fallback_of, len(flat) + len(fallback) + name_of.codes)
    key_of = np.where(op_of >= 0, op_of, key_of)
    keys = [f"{op.method} {op.path}" for _, op in flat] + fallback + name_of.values
    picked = _masked(op_of) if (op_of >= 0).any() else None
    spelled = [
        (names, _masked(target)),
        (keys, pa.array(key_of, pa.int64())),
        ([name for name, _ in flat], picked),
        ([op.method for _, op in flat], picked),
        ([op.path for _, op in flat], picked),
        ([op.operation_id for _, op in flat], picked),
        ([op.inferred for _, op in flat], picked),
    ]

    def spell(values: list[Any], positions: pa.Array | None, dtype: pa.DataType) -> pa.Array:
        return pa.nulls(len(spans), dtype) if positions is None else pa.array(values, dtype).take(positions)

    table = pa.table(
        list(pool.map(spell, *zip(*spelled, strict=True), MATCH_SCHEMA.types)), schema=MATCH_SCHEMA
    )
    operation = [(True, op.method, op.path) for _, op in flat] + [(False, None, None)]
    codes = _MatchCodes(
        target=Coded(np.where(target >= 0, target, len(names)), [*names, None]),
        operation=Coded(np.where(op_of >= 0, op_of, len(flat)), operation),
    )
    return OperationMatches(table, codes)


def _resolve_targets(
    spans: pa.Table,
    combos: Sequence[_Combo],
    combo_of: npt.NDArray[np.int64],
    service: Coded,
    operations: Mapping[str, Sequence[Operation]],
) -> tuple[list[str], npt.NDArray[np.int64]]:
    """The services called, sorted, and each row's target as an index into them (-1: none)."""
    combo_targets = _combo_targets(combos, operations)
    names = sorted({t for t in combo_targets if t is not None} | {v for v in service.values if v is not None})
    position = {name: index for index, name in enumerate(names)}
    target = _codes([position[t] if t is not None else -1 for t in combo_targets])[combo_of]
    is_open = [c.kind == "client" and t is None for c, t in zip(combos, combo_targets, strict=True)]
    open_rows = _flags(is_open)[combo_of]
    if open_rows.any():
        # Client spans still without a target take the service of the server span they caused.
        is_server = _flags([c.kind == "server" for c in combos])[combo_of]
        child = _child_services(spans, open_rows, is_server, service)
        filled = np.flatnonzero(child >= 0)
        service_target = _codes([position[v] if v is not None else -1 for v in service.values])
        target[filled] = service_target[child[filled]]
    return names, target


def _match_rows(
    spans: pa.Table,
    combos: Sequence[_Combo],
    combo_of: npt.NDArray[np.int64],
    names: Sequence[str],
    target: npt.NDArray[np.int64],
    operations: Mapping[str, Sequence[Operation]],
    pool: Executor,
) -> npt.NDArray[np.int64]:
    """Each row's operation as an index into all operations in service order (-1: none)."""
    op_of = np.full(len(spans), -1, dtype=np.int64)
    documented = _flags([name in operations for name in names] + [False])
    has_method = _flags([c.method is not None for c in combos])
    eligible = np.flatnonzero(documented[target] & has_method[combo_of])
    if len(eligible) == 0:
        return op_of
    # A server's route is the authority; without one, the concrete path with identifier-looking
    # segments folded, so a million paths carrying ids collapse into a few distinct keys.
    from_url = _flags([c.route is None and c.rpc_path is None for c in combos])
    url_rows = eligible[from_url[combo_of[eligible]]]
    paths = _folded_paths(spans["url_path"], url_rows, pool)
    path_of = np.full(len(spans), len(paths.values) - 1, dtype=np.int64)
    path_of[url_rows] = paths.codes
    rpc_paths = sorted({c.rpc_path for c in combos if c.rpc_path is not None and c.route is None})
    folded = _fold_identifiers(pa.array(rpc_paths, pa.string())).to_pylist()
    folded_rpc = dict(zip(rpc_paths, folded, strict=True))
    # One match per distinct (target, combination, folded path).
    key_of, key_count = combine(
        [target[eligible], combo_of[eligible], path_of[eligible]],
        [len(names), len(combos), len(paths.values)],
    )
    routers = {name: _Router(ops) for name, ops in operations.items()}
    offsets = np.cumsum([0] + [len(operations[name]) for name in sorted(operations)]).tolist()
    first_op = dict(zip(sorted(operations), offsets, strict=False))  # offsets among all operations
    found: dict[tuple[str, str, str, str], int] = {}
    key_op: list[int] = []
    for row in eligible[representatives(key_of, key_count)].tolist():
        combo = combos[combo_of[row]]
        name = names[target[row]]
        if combo.route is not None:
            path = None
        elif combo.rpc_path is not None:
            path = folded_rpc[combo.rpc_path]
        else:
            path = paths.values[path_of[row]]
        text = (name, combo.method or "", combo.route or "", path or "")
        if text not in found:
            found[text] = _match(routers[name], *text[1:])
        index = found[text]
        key_op.append(first_op[name] + index if index >= 0 else -1)
    op_of[eligible] = _codes(key_op)[key_of]
    return op_of


def _folded_paths(paths: pa.ChunkedArray, rows: npt.NDArray[np.int64], pool: Executor) -> Coded:
    """The paths of ``rows``, identifiers folded, as codes; in parallel slices when there are many."""
    slices = max(1, min(pa.cpu_count(), len(rows) // _ROWS_PER_SLICE))

    def fold(part: npt.NDArray[np.int64]) -> pa.Array:
        return pc.dictionary_encode(_fold_identifiers(_plain(paths.take(pa.array(part, pa.int64())))))

    return encode(pa.chunked_array(pool.map(fold, np.array_split(rows, slices)), _CODED_TEXT))


def _match(router: _Router, method: str, route: str, path: str) -> int:
    """Index of the operation in ``router`` a key names, -1 for none."""
    index = router.match(method, route, is_route=True) if route else None
    if index is None and path:
        index = router.match(method, path, is_route=False)
    return -1 if index is None else index


def _fallback(combo: _Combo) -> str | None:
    """The operation key of an unmatched span of this combination, unless its name is."""
    if combo.http_method is not None and combo.route is not None:
        return f"{combo.http_method} {combo.route}"
    if combo.rpc_path is not None:
        return combo.rpc_path.lstrip("/")
    return None


# -- coverage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoveragePartial:
    """One partition's share of spec coverage; partials merge by summing.

    ``tallies``: calls and matched calls per (documented service, span kind); ``undocumented``:
    unmatched calls per (service, kind, method, path); ``seen``: documented operation keys some
    span matched. Which kind counts (the service's own server spans, or the client spans calling
    it when it emits none) is decided when the partials are finished.
    """

    tallies: pd.DataFrame
    undocumented: pd.DataFrame
    seen: pd.DataFrame

    @classmethod
    def merge(cls, parts: Sequence[CoveragePartial]) -> CoveragePartial:
        """The partial of the union of the partitions ``parts`` came from."""

        def joined(name: str) -> pd.DataFrame:
            return pd.concat([getattr(part, name) for part in parts], ignore_index=True)

        return cls(
            tallies=joined("tallies").groupby(["service", "kind"], sort=True, as_index=False).sum(),
            undocumented=joined("undocumented")
            .groupby(["service", "kind", "method", "path"], sort=True, as_index=False)
            .sum(),
            seen=joined("seen").drop_duplicates(ignore_index=True),
        )


def measure_coverage(
    spans: pa.Table, matches: OperationMatches, operations: Mapping[str, Sequence[Operation]]
) -> CoveragePartial:
    """Per documented service and span kind: calls, matches, undocumented endpoints, operations seen."""
    m = matches.table
    # Counted per distinct combination of the low-cardinality columns, as in matching; only the
    # unmatched calls' concrete paths are read row by row.
    codes = matches.codes or _match_codes(m)
    coded = [
        encode(spans["kind"]),
        encode(spans["http_method"]),
        encode(spans["http_route"]),
        encode(pc.is_valid(spans["rpc_method"])),
        codes.target,
        codes.operation,
    ]
    combo_of, count = combine([c.codes for c in coded], [len(c.values) for c in coded])
    samples = representatives(combo_of, count)
    rows_per_combo = np.bincount(combo_of, minlength=count).tolist()
    columns = [[c.values[i] for i in c.codes[samples].tolist()] for c in coded]
    combos = list(zip(*columns, strict=True))
    calls = [
        index
        for index, (kind, http_method, _, rpc, target, _) in enumerate(combos)
        if (http_method is not None or rpc) and target in operations
    ]
    seen: set[tuple[str, str]] = set()
    tally: dict[tuple[str, str], list[int]] = {}
    missing: dict[tuple[str, str, str, str], int] = {}
    by_row: list[int] = []  # unmatched combinations whose path is the span's own
    for index in calls:
        kind, http_method, route, _, target, (matched, op_method, op_path) = combos[index]
        if op_method is not None and op_path is not None:
            seen.add((target, f"{op_method} {op_path}"))
        if kind not in _COUNTED_KINDS:
            continue
        entry = tally.setdefault((target, kind), [0, 0])
        entry[0] += rows_per_combo[index]
        entry[1] += rows_per_combo[index] if matched else 0
        if matched:
            continue
        if kind == "server" and route is not None:
            call = (target, kind, http_method if http_method is not None else "POST", route)
            missing[call] = missing.get(call, 0) + rows_per_combo[index]
        else:
            by_row.append(index)
    if by_row:
        is_listed = np.zeros(count, dtype=np.bool_)
        is_listed[by_row] = True
        rows = pa.array(np.flatnonzero(is_listed[combo_of]), pa.int64())
        paths = encode(
            pc.coalesce(_plain(spans["url_path"].take(rows)), _plain(m["operation_key"].take(rows)))
        )
        pair_of, pairs = combine([combo_of[rows.to_numpy()], paths.codes], [count, len(paths.values)])
        pair_rows = representatives(pair_of, pairs)
        pair_combos = combo_of[rows.to_numpy()[pair_rows]].tolist()
        pair_paths = [paths.values[code] for code in paths.codes[pair_rows].tolist()]
        sizes = np.bincount(pair_of, minlength=pairs).tolist()
        for index, path, size in zip(pair_combos, pair_paths, sizes, strict=True):
            kind, http_method, _, _, target, _ = combos[index]
            call = (target, kind, http_method if http_method is not None else "POST", path)
            missing[call] = missing.get(call, 0) + size
    return CoveragePartial(
        tallies=pd.DataFrame(
            [(service, kind, total, matched) for (service, kind), (total, matched) in tally.items()],
            columns=["service", "kind", "calls", "matched"],
        ),
        undocumented=pd.DataFrame(
            [(*call, size) for call, size in missing.items()],
            columns=["service", "kind", "method", "path", "calls"],
        ),
        seen=pd.DataFrame(sorted(seen), columns=["service", "key"]),
    )


#: Calls are counted from the callee's server spans, or from its callers' client spans.
_COUNTED_KINDS = ("server", "client")


def summarise_coverage(
    partial: CoveragePartial, operations: Mapping[str, Sequence[Operation]]
) -> tuple[ServiceCoverage, ...]:
    """Per documented service: match rate, undocumented endpoints seen, documented ones never seen."""
    servers = set(partial.tallies.loc[partial.tallies["kind"] == "server", "service"])

    def counted(frame: pd.DataFrame) -> pd.DataFrame:
        wanted = np.where(frame["service"].isin(list(servers)), "server", "client")
        return frame[frame["kind"].to_numpy() == wanted]

    tallies = counted(partial.tallies).set_index("service")
    undocumented: dict[str, list[UndocumentedCall]] = {}
    for service, _, method, path, calls in counted(partial.undocumented).itertuples(index=False, name=None):
        undocumented.setdefault(service, []).append(UndocumentedCall(method, path, int(calls)))
    seen: dict[str, set[str]] = {}
    for service, key in partial.seen.itertuples(index=False, name=None):
        seen.setdefault(service, set()).add(key)
    result = []
    for service in sorted(operations):
        total = int(tallies.loc[service, "calls"]) if service in tallies.index else 0
        matched = int(tallies.loc[service, "matched"]) if service in tallies.index else 0
        documented = {op.key for op in operations[service]}
        result.append(
            ServiceCoverage(
                service=service,
                observed_from="server" if service in servers else "client",
                calls=total,
                matched=matched,
                undocumented=tuple(
                    sorted(undocumented.get(service, []), key=lambda u: (-u.count, u.method, u.path))
                ),
                unseen=tuple(sorted(documented - seen.get(service, set()))),
            )
        )
    return tuple(result)


def _match_codes(table: pa.Table) -> _MatchCodes:
    """The codes of a match table built elsewhere than by ``match_operations``."""
    parts = [
        encode(pc.is_valid(table["op_service"])),
        encode(table["op_method"]),
        encode(table["op_path"]),
    ]
    operation_of, count = combine([p.codes for p in parts], [len(p.values) for p in parts])
    rows = representatives(operation_of, count)
    values = zip(*([p.values[i] for i in p.codes[rows].tolist()] for p in parts), strict=True)
    return _MatchCodes(target=encode(table["target_service"]), operation=Coded(operation_of, list(values)))
