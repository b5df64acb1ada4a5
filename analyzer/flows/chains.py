"""Message chains, per partition: who published what to whom, and what the consumers did.

An event-driven flow (a saga in choreography) starts in one request that publishes a message;
its consumers work on it, call other services and publish further messages, whose consumers do
the same. A consumer may continue the producer's trace (parent and child) or start a trace of
its own that names the producer by a span link, so one chain can span traces, and so partitions:
each partition records only its own part, keyed by request, and the landscape stage stitches
the parts (:mod:`orchscan.analyzer.flows.events`). Every record is written exactly once, by the
partition holding its producer span (a delivery, an unconsumed publish) or its request (the
consumer's own calls), so nothing depends on how spans were partitioned.

A request is keyed by its span's ``(trace_id, span_id)``. An entry span nested inside another
request of the same service (a messaging library's ``receive`` span around its ``process``
span) belongs to the outer request, so the work of either counts for the one delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from orchscan.analyzer.columnar.grouping import positions_in
from orchscan.analyzer.flows.steps import StepInputs
from orchscan.analyzer.requests.calls import MESSAGING, CallTables

_WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class ChainRecords:
    """One partition's part of the message chains; parts merge by concatenation.

    ``deliveries``: one row per message a consumer span received: the producer's request
    (``trace_id``, ``span_id``, ``producer``), ``topic``, ``system``, ``published_ns``, and the
    consumer's request (``consumer_trace``, ``consumer_span``, ``consumer``) with its
    ``start_ns``, ``end_ns``, ``error`` and ``holes`` (the consumer's trace lost spans: some
    span's parent is absent). ``publishes``: messages nobody was seen consuming,
    with the producer's request, ``topic``, ``system`` and ``published_ns``. ``calls``: the
    synchronous calls made while handling a consumed message: the consumer's request
    (``trace_id``, ``span_id``), and the step columns of
    :class:`orchscan.analyzer.flows.steps.StepInputs`. ``origins``: every request that published
    a message, with ``service``, ``entry``, ``method``, ``start_ns``, ``end_ns``, ``error``,
    ``writes`` (a write method or store calls of its own) and ``holes`` (its trace lost spans).
    """

    deliveries: pd.DataFrame
    publishes: pd.DataFrame
    calls: pd.DataFrame
    origins: pd.DataFrame

    @classmethod
    def merge(cls, parts: Sequence[ChainRecords]) -> ChainRecords:
        """The records of the union of the partitions ``parts`` came from."""

        def joined(name: str) -> pd.DataFrame:
            return pd.concat([getattr(part, name) for part in parts], ignore_index=True)

        return cls(joined("deliveries"), joined("publishes"), joined("calls"), joined("origins"))


#: The step columns a consumer's call keeps.
CALL_COLUMNS = (
    "callee",
    "operation",
    "operation_id",
    "method",
    "route",
    "url_path",
    "start_ns",
    "end_ns",
    "error",
    "status_code",
)


def chain_records(tables: CallTables, steps: StepInputs) -> ChainRecords:
    """The message chains' records of one partition (see the module docstring)."""
    spans, calls = tables.spans, tables.calls
    outer = _outer_requests(spans)
    producer_span = (spans["kind"] == "producer").to_numpy(dtype=bool)
    consumer_span = (spans["kind"] == "consumer").to_numpy(dtype=bool)
    # Only the few rows of messaging calls are spelled out: whole text columns of a large
    # partition would each cost a Python string per span.
    callee_row = calls["callee_row"].to_numpy()
    caller_row = calls["caller_row"].to_numpy()
    messaging = (calls["kind"] == MESSAGING).to_numpy(dtype=bool)
    delivered = np.flatnonzero(messaging & (callee_row >= 0))
    producer = outer[calls["entry_row"].to_numpy()[delivered]]
    consumer = callee_row[delivered]
    topic = _text(spans, "messaging_destination", caller_row[delivered])
    consumer_trace = _text(spans, "trace_id", consumer)
    lost = spans.loc[spans["lost_parent"].to_numpy(dtype=bool), "trace_id"].unique()
    deliveries = pd.DataFrame(
        {
            "trace_id": _text(spans, "trace_id", producer),
            "span_id": _text(spans, "span_id", producer),
            "producer": _text(calls, "caller", delivered),
            "topic": np.where(pd.isna(topic), _text(spans, "messaging_destination", consumer), topic),
            "system": _text(calls, "system", delivered),
            "published_ns": calls["start_ns"].to_numpy(dtype=np.int64)[delivered],
            "consumer_trace": consumer_trace,
            "consumer_span": _text(spans, "span_id", consumer),
            "consumer": _text(calls, "callee", delivered),
            "start_ns": spans["start_ns"].to_numpy(dtype=np.int64)[consumer],
            "end_ns": spans["end_ns"].to_numpy(dtype=np.int64)[consumer],
            "error": calls["error"].to_numpy(dtype=bool)[delivered],
            "holes": pd.Series(consumer_trace, dtype=object).isin(lost).to_numpy(dtype=bool),
        }
    )
    # A producer span whose message no consumer span received (directly or by a link): the
    # unanswered call the call tables recorded to the broker.
    answered = np.zeros(len(spans), dtype=bool)
    answered[caller_row[messaging]] = True
    unanswered = np.flatnonzero((callee_row < 0) & (caller_row >= 0))
    sender = caller_row[unanswered]
    sent = unanswered[producer_span[sender] & ~answered[sender]]
    publisher = outer[calls["entry_row"].to_numpy()[sent]]
    publishes = pd.DataFrame(
        {
            "trace_id": _text(spans, "trace_id", publisher),
            "span_id": _text(spans, "span_id", publisher),
            "producer": _text(calls, "caller", sent),
            "topic": _text(spans, "messaging_destination", caller_row[sent]),
            "system": _text(calls, "callee", sent),
            "published_ns": calls["start_ns"].to_numpy(dtype=np.int64)[sent],
        }
    )
    return ChainRecords(
        deliveries=deliveries,
        publishes=publishes,
        calls=_consumer_calls(steps, spans, outer, consumer_span),
        origins=_origins(steps, np.unique(np.concatenate([producer, publisher])), spans),
    )


def _text(frame: pd.DataFrame, column: str, rows: np.ndarray) -> np.ndarray:
    """A text column's values at ``rows`` as Python strings (None for null)."""
    return np.asarray(frame[column].array.take(rows).to_numpy(dtype=object, na_value=None), dtype=object)


def _outer_requests(spans: pd.DataFrame) -> np.ndarray:
    """Per span row, the outermost request of its service it belongs to."""
    count = len(spans)
    entry = spans["entry_row"].to_numpy()
    parent = spans["parent_row"].to_numpy()
    up: np.ndarray = entry.copy()
    rows = np.flatnonzero((entry == np.arange(count)) & (parent >= 0))
    service = spans["service"].array
    same = np.asarray(service.take(parent[rows]) == service.take(rows), dtype=bool)
    nested = rows[same]
    up[nested] = entry[parent[nested]]
    # Pointer doubling, as for entry rows: each round climbs twice as far.
    for _ in range(64):
        climbed = up[up]
        if np.array_equal(climbed, up):
            break
        up = climbed
    return up


def _consumer_calls(
    steps: StepInputs, spans: pd.DataFrame, outer: np.ndarray, consumer_span: np.ndarray
) -> pd.DataFrame:
    """The synchronous calls made while handling a consumed message, keyed by the consumer's request."""
    calls = steps.calls
    request = outer[calls["entry_row"].to_numpy()]
    mine = np.flatnonzero(consumer_span[request])
    frame = calls.iloc[mine][list(CALL_COLUMNS)].reset_index(drop=True)
    frame.insert(0, "span_id", _text(spans, "span_id", request[mine]))
    frame.insert(0, "trace_id", _text(spans, "trace_id", request[mine]))
    return _plain(frame)


def _origins(steps: StepInputs, rows: np.ndarray, spans: pd.DataFrame) -> pd.DataFrame:
    """The requests that published, as the chains' possible origins.

    A producer span whose parent was lost is its own fragment's root, not a request: it has no
    entry operation to start a flow from, so it is no origin (the lost parent is reported with
    the span checks' notices). Its deliveries stay recorded.
    """
    at = positions_in(steps.requests["row"].to_numpy(), rows)  # both ascend
    found = steps.requests.iloc[at[at >= 0]]
    method = found["method"].astype(object)
    writes = method.fillna("").astype(str).str.upper().isin(_WRITE_METHODS) | (found["infra_calls"] > 0)
    return _plain(
        pd.DataFrame(
            {
                "trace_id": found["trace_id"].astype(object).to_numpy(),
                "span_id": _text(spans, "span_id", found["row"].to_numpy()),
                "service": found["owner"].astype(object).to_numpy(),
                "entry": found["entry"].astype(object).to_numpy(),
                "method": method.to_numpy(),
                "start_ns": found["start_ns"].to_numpy(dtype=np.int64),
                "end_ns": found["end_ns"].to_numpy(dtype=np.int64),
                "error": found["error"].astype(bool).to_numpy(),
                "writes": writes.astype(bool).to_numpy(),
                "holes": found["holes"].astype(object).fillna(False).astype(bool).to_numpy(),
            }
        )
    )


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain Python strings, so that frames of several partitions concatenate."""
    return frame.astype({c: object for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])})
