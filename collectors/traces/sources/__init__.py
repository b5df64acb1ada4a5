"""Live trace sources by kind: query APIs read for a time window, their answers handed to the readers.

Registries are plain dicts, as for the formats: the CLI's help and the URL check come from
:data:`SOURCE_KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orchscan.collectors.traces.sources import jaeger, tempo
from orchscan.collectors.traces.sources.base import SourceError, SourceSpec, TraceSource, split_source_url
from orchscan.collectors.traces.sources.http import AuthHeader, FetchLimits
from orchscan.collectors.traces.sources.window import TimeWindow

Opener = Callable[[SourceSpec, TimeWindow, FetchLimits, AuthHeader | None], TraceSource]


@dataclass(frozen=True)
class SourceKind:
    """A kind of live source: how it is named on the command line, what it reads, its options."""

    name: str
    example: str
    description: str
    options: str
    open: Opener


SOURCE_KINDS: dict[str, SourceKind] = {
    jaeger.KIND: SourceKind(
        jaeger.KIND,
        "jaeger+http://jaeger:16686",
        "Jaeger query API: /api/traces per service (api=v1, Jaeger JSON) "
        "or /api/v3/traces (api=v3, OTLP JSON)",
        "api=v1|v3, service=NAME (repeatable; default: every service)",
        jaeger.JaegerSource,
    ),
    tempo.KIND: SourceKind(
        tempo.KIND,
        "tempo+http://tempo:3200",
        "Grafana Tempo: /api/search, then each trace by id (api=v2 /api/v2/traces, api=v1 /api/traces)",
        "api=v2|v1, encoding=protobuf|json, q=TRACEQL (default {}), tenant=ORG_ID",
        tempo.TempoSource,
    ),
}


def parse_source(text: str) -> SourceSpec | None:
    """The live source ``text`` names, None for anything else (a file or folder path)."""
    return split_source_url(text, tuple(SOURCE_KINDS))


def open_source(
    spec: SourceSpec, window: TimeWindow, limits: FetchLimits, auth: AuthHeader | None = None
) -> TraceSource:
    """A source ready to fetch ``window``; raises SourceError for options its kind does not take."""
    return SOURCE_KINDS[spec.kind].open(spec, window, limits, auth)


__all__ = [
    "SOURCE_KINDS",
    "SourceError",
    "SourceKind",
    "SourceSpec",
    "TraceSource",
    "open_source",
    "parse_source",
]
