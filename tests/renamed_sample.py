"""The sample landscape with some services renamed, for names that are hard to write anywhere."""

from __future__ import annotations

import dataclasses
from functools import cache

import pyarrow as pa
from paths import SAMPLE

from orchscan.collectors.model.records import Ingest
from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces.ingest import ingest

#: The sample's four orchestrators under names that collide once sanitised or case-folded, one
#: of them far beyond a file name's length, one with a bidi control and a terminal escape.
HOSTILE_NAMES = {
    "slashes": {"orders": "team/a", "mobile-bff": "team-a", "partner-api": "team:a", "returns": "team a"},
    "case": {
        "orders": "stLogin",
        "mobile-bff": "stlogin",
        "partner-api": "partner-" + "api" * 100,
        "returns": "ret\u202eurns\x1b[2J",
    },
}


@cache
def sample_ingest() -> Ingest:
    """The sample landscape as read, text columns decoded (read once per test session)."""
    read = ingest([SAMPLE / "traces"], jobs=1)
    return dataclasses.replace(read, spans=plain_strings(read.spans))


def renamed_sample(names: dict[str, str]) -> Ingest:
    """The sample landscape with services (and peer names) renamed as ``names`` says."""
    read = sample_ingest()
    spans = read.spans
    for column in ("service", "peer_service"):
        values = [names.get(v, v) if v is not None else None for v in spans[column].to_pylist()]
        spans = spans.set_column(spans.schema.get_field_index(column), column, pa.array(values, pa.string()))
    return dataclasses.replace(read, spans=spans)
