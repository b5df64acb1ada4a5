"""The span table: the one neutral model every collector produces and every later stage reads.

Spans are columnar (Apache Arrow) because landscapes produce millions of them; a Python object
per span would not fit in memory. Every collector normalises at the boundary: integer UTC
nanoseconds (0 to 2^63-1, end never before start), lower-case hex ids, text within the caps of
``collectors.traces.limits`` (names 512 characters, values 8,192), and one attribute vocabulary
whatever semantic-convention version or tracer produced the span. The column list below is the contract; bump
``SCHEMA_VERSION`` whenever it changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchscan.collectors.side_threads import side_pool

SCHEMA_VERSION = 4

KINDS = ("server", "client", "producer", "consumer", "internal", "unspecified")
STATUSES = ("unset", "ok", "error")

LINK_TYPE = pa.struct([("trace_id", pa.string()), ("span_id", pa.string())])

#: Text that repeats from span to span (services, operations, kinds, methods, routes, hosts): a
#: dictionary holds each distinct value once per batch and the rows hold 4-byte codes, which for
#: a million spans saves tens of megabytes over a string per row.
CODED = pa.dictionary(pa.int32(), pa.string())

#: Column name -> (Arrow type, meaning). The order is the table's column order.
COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "trace_id": (pa.string(), "32 lower-case hex digits (64-bit ids are left-padded with zeros)"),
    "span_id": (pa.string(), "16 lower-case hex digits, unique within its trace"),
    "parent_span_id": (pa.string(), "parent's span id; null for a root span"),
    "service": (CODED, "service.name of the emitting process ('unknown' when absent)"),
    "service_namespace": (CODED, "service.namespace resource attribute"),
    "service_instance": (CODED, "service.instance.id resource attribute"),
    "k8s_namespace": (CODED, "k8s.namespace.name resource attribute (Kubernetes namespace)"),
    "name": (CODED, "span name / operation name as emitted"),
    "kind": (CODED, "one of " + ", ".join(KINDS)),
    "start_ns": (pa.int64(), "start time, integer nanoseconds since the Unix epoch, UTC"),
    "end_ns": (pa.int64(), "end time, integer nanoseconds since the Unix epoch, UTC"),
    "status": (CODED, "one of " + ", ".join(STATUSES)),
    "status_message": (pa.string(), "status description or error message"),
    "http_method": (CODED, "HTTP request method, upper case"),
    "http_route": (CODED, "matched route template on the server (http.route)"),
    "url_path": (pa.string(), "concrete URL path, without query string"),
    "http_status_code": (pa.int32(), "HTTP response status code"),
    "server_address": (CODED, "server.address / net.peer.name / host of the URL"),
    "server_port": (pa.int32(), "server.port / net.peer.port"),
    "peer_service": (CODED, "peer.service, or Zipkin remoteEndpoint.serviceName"),
    "rpc_system": (CODED, "rpc.system, e.g. grpc"),
    "rpc_service": (CODED, "rpc.service, e.g. driver.DriverService"),
    "rpc_method": (CODED, "rpc.method, e.g. FindNearest"),
    "db_system": (CODED, "db.system / db.system.name"),
    "db_operation": (CODED, "db.operation / db.operation.name, or the statement's verb"),
    "messaging_system": (CODED, "messaging.system, e.g. kafka"),
    "messaging_destination": (CODED, "topic or queue name"),
    "messaging_operation": (CODED, "publish / receive / process / settle / create"),
    "links": (pa.list_(LINK_TYPE), "span links (trace_id, span_id), e.g. a consumer's producer"),
    "idempotency_key": (pa.bool_(), "an Idempotency-Key style request header was recorded"),
    # Keys repeat on every span (a landscape has a few hundred distinct ones): a dictionary
    # stores each once per batch instead of once per span.
    "attributes": (
        pa.map_(pa.dictionary(pa.int32(), pa.string()), pa.string()),
        "every other attribute, stringified",
    ),
    "source": (pa.string(), "the input file the span was read from"),
}

SCHEMA = pa.schema(
    [pa.field(name, dtype) for name, (dtype, _) in COLUMNS.items()],
    metadata={"orchscan.span_schema_version": str(SCHEMA_VERSION)},
)

#: The normalised semantic columns an attribute vocabulary can fill, in table order.
SEMANTIC_COLUMNS = (
    "http_method",
    "http_route",
    "url_path",
    "http_status_code",
    "server_address",
    "server_port",
    "peer_service",
    "rpc_system",
    "rpc_service",
    "rpc_method",
    "db_system",
    "db_operation",
    "messaging_system",
    "messaging_destination",
    "messaging_operation",
)


@dataclass(frozen=True, slots=True)
class Link:
    """A span link: the span at the other end, typically a message's producer."""

    trace_id: str
    span_id: str


class SpanRows:
    """Accumulates spans column by column and turns them into an Arrow record batch.

    Collectors call :meth:`append` once per span; lists of Python scalars are the cheapest
    thing to grow, and Arrow converts them in one go per batch.
    """

    __slots__ = ("_columns", "_semantic_rows")

    def __init__(self) -> None:
        self._columns: dict[str, list[Any]] = {name: [] for name in COLUMNS if name not in SEMANTIC_COLUMNS}
        # Semantic values stay one list per span and are transposed once per batch: one append
        # per span instead of one per semantic column.
        self._semantic_rows: list[list[Any]] = []

    def __len__(self) -> int:
        return len(self._columns["span_id"])

    def append(
        self,
        *,
        trace_id: str,
        span_id: str,
        parent_span_id: str | None,
        service: str,
        service_namespace: str | None,
        service_instance: str | None,
        name: str,
        kind: str,
        start_ns: int,
        end_ns: int,
        status: str,
        status_message: str | None,
        semantic: list[Any],
        links: list[dict[str, str]] | None,
        idempotency_key: bool,
        attributes: list[tuple[str, str | None]],
        source: str,
        k8s_namespace: str | None = None,
    ) -> None:
        """Add one span; ``semantic`` holds the values of ``SEMANTIC_COLUMNS`` in order."""
        c = self._columns
        c["trace_id"].append(trace_id)
        c["span_id"].append(span_id)
        c["parent_span_id"].append(parent_span_id)
        c["service"].append(service)
        c["service_namespace"].append(service_namespace)
        c["service_instance"].append(service_instance)
        c["k8s_namespace"].append(k8s_namespace)
        c["name"].append(name)
        c["kind"].append(kind)
        c["start_ns"].append(start_ns)
        c["end_ns"].append(end_ns)
        c["status"].append(status)
        c["status_message"].append(status_message)
        self._semantic_rows.append(semantic)
        c["links"].append(links)
        c["idempotency_key"].append(idempotency_key)
        c["attributes"].append(attributes)
        c["source"].append(source)

    def to_batch(self, keep_attributes: bool = True) -> pa.RecordBatch:
        """Convert the accumulated rows into a record batch with the span schema; without
        ``keep_attributes``, the ``attributes`` column is null."""
        rows = self._semantic_rows
        semantic: dict[str, tuple[Any, ...]] = (
            dict(zip(SEMANTIC_COLUMNS, zip(*rows, strict=True), strict=True))
            if rows
            else {name: () for name in SEMANTIC_COLUMNS}
        )
        arrays = [
            (_attribute_map(self._columns[name]) if keep_attributes else pa.nulls(len(self), dtype))
            if name == "attributes"
            else pa.array(self._columns[name] if name in self._columns else semantic[name], type=dtype)
            for name, (dtype, _) in COLUMNS.items()
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


def span_batch(columns: Mapping[str, pa.Array]) -> pa.RecordBatch:
    """A batch with the span schema from one array per column, coding text where the schema says so.

    Readers hand over plain text; encoding it here keeps one encoding for every format.
    """
    return pa.RecordBatch.from_arrays(
        [_coded(columns[name]) if dtype == CODED else columns[name] for name, (dtype, _) in COLUMNS.items()],
        schema=SCHEMA,
    )


def _coded(array: pa.Array) -> pa.Array:
    if array.type == CODED:
        return array
    return pc.dictionary_encode(array if array.type == pa.string() else array.cast(pa.string()))


def plain_strings(table: pa.Table) -> pa.Table:
    """The table with every coded text column decoded to plain strings.

    Stages written against text (pandas frames, joins and group-bys across batches, whose
    dictionaries differ) call this once at their entry; a table without coded columns comes
    back unchanged. Columns are decoded side by side on Arrow's threads: each cast releases
    the GIL, and a million-row table has a dozen coded columns.
    """
    coded = [index for index, field in enumerate(table.schema) if field.type == CODED]
    if not coded:
        return table
    with side_pool(pa.cpu_count()) as pool:
        decoded = list(pool.map(lambda index: table.column(index).cast(pa.string()), coded))
    for index, column in zip(coded, decoded, strict=True):
        table = table.set_column(index, table.schema.field(index).name, column)
    return table


def source_column(source: str, rows: int) -> pa.Array:
    """The ``source`` column of a batch read from one file."""
    return pa.repeat(source, rows) if rows else pa.array([], type=pa.string())


# "00" .. "ff" as two-byte little-endian units: indexing with the id bytes spells their hex.
_HEX_PAIRS = np.array([f"{i:02x}".encode() for i in range(256)]).view(np.uint16)


def hex_ids(ids: pa.Array) -> pa.StringArray:
    """Binary ids as lower-case hex strings; empty or all-zero ids mean 'absent' (null).

    Done on the whole column with numpy: calling ``bytes.hex`` per id is a Python call for
    each of millions of ids.
    """
    ids = ids.cast(pa.binary())
    count = len(ids)
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + count + 1]
    data = ids.buffers()[2]
    raw = (
        np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]
        if data is not None
        else np.zeros(0, dtype=np.uint8)
    )
    relative = offsets - offsets[0]
    nonzero = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum(raw != 0, out=nonzero[1:])
    present = nonzero[relative[1:]] > nonzero[relative[:-1]]
    if ids.null_count:
        present &= np.asarray(pc.is_valid(ids))
    return pa.StringArray.from_buffers(
        count,
        pa.py_buffer(relative * 2),
        pa.py_buffer(_HEX_PAIRS[raw].tobytes()),
        pa.py_buffer(np.packbits(present, bitorder="little").tobytes()),
        count - int(present.sum()),
    )


def _attribute_map(rows: list[list[tuple[str, str | None]]]) -> pa.Array:
    """Build the attributes map column from flat key and value arrays.

    Converting a list of pair lists with ``pa.array`` goes through Arrow's generic Python
    conversion, several times slower than handing it offsets and two flat string arrays.
    """
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum([len(pairs) for pairs in rows], out=offsets[1:])
    pairs = list(chain.from_iterable(rows))
    keys = pa.array([key for key, _ in pairs], type=pa.string())
    values = pa.array([value for _, value in pairs], type=pa.string())
    return attribute_map(offsets, keys, values)


def attribute_map(offsets: np.ndarray, keys: pa.Array, values: pa.Array) -> pa.MapArray:
    """The ``attributes`` column from per-span offsets and flat key and value strings."""
    # A sorted dictionary makes the column independent of the order spans arrived in.
    distinct = pc.unique(keys).sort()
    codes = pc.index_in(keys, value_set=distinct).cast(pa.int32())
    return pa.MapArray.from_arrays(
        pa.array(offsets, type=pa.int32()),
        pa.DictionaryArray.from_arrays(codes, distinct),
        values,
        type=COLUMNS["attributes"][0],
    )


def empty_table() -> pa.Table:
    """A span table with no rows, for inputs that yielded nothing."""
    return SCHEMA.empty_table()


def total_services(table: pa.Table) -> int:
    """Distinct service names in a span table."""
    # Unique of a coded column is coded over the union of the batches' dictionaries.
    return len(pc.unique(table["service"]).drop_null())


def total_traces(table: pa.Table) -> int:
    """Distinct trace ids in a span table."""
    return int(pc.count_distinct(table["trace_id"]).as_py())


def service_names(table: pa.Table) -> list[str]:
    """Traced services plus the peers they name, so a spec of an uninstrumented service can still bind."""
    services = pc.unique(table["service"]).drop_null().to_pylist()
    peers = pc.unique(table["peer_service"]).drop_null().to_pylist()
    return sorted({str(s) for s in services + peers})
