"""Changed versions of the sample landscape, cut from its recorded spans (the OTLP/JSON Lines rendition).

The spans stay the SDK's own, ids and times included: a change is made only by leaving spans out,
the way a landscape changes when a service stops taking traffic or a code path goes away.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from paths import SAMPLE

RENDITION = SAMPLE / "renditions" / "shop.otlp.jsonl.gz"
SERVER, CLIENT = 2, 3

Batch = dict[str, Any]


def sample_batches() -> list[Batch]:
    """The sample's requests, one OTLP ``TracesData`` document per line."""
    with gzip.open(RENDITION, "rt", encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def _service(resource_spans: dict[str, Any]) -> str:
    attributes = resource_spans["resource"]["attributes"]
    return next(a["value"]["stringValue"] for a in attributes if a["key"] == "service.name")


def _attribute(span: dict[str, Any], key: str) -> str | None:
    return next((a["value"].get("stringValue") for a in span.get("attributes", ()) if a["key"] == key), None)


def spans(batches: list[Batch]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every span with the name of the service that emitted it."""
    for batch in batches:
        for resource_spans in batch["resourceSpans"]:
            service = _service(resource_spans)
            for scope in resource_spans["scopeSpans"]:
                for span in scope["spans"]:
                    yield service, span


def _keep(batches: list[Batch], keep: Callable[[dict[str, Any]], bool]) -> list[Batch]:
    kept = []
    for batch in batches:
        resources = []
        for resource_spans in batch["resourceSpans"]:
            scopes = [
                {**scope, "spans": [s for s in scope["spans"] if keep(s)]}
                for scope in resource_spans["scopeSpans"]
            ]
            scopes = [scope for scope in scopes if scope["spans"]]
            if scopes:
                resources.append({**resource_spans, "scopeSpans": scopes})
        if resources:
            kept.append({"resourceSpans": resources})
    return kept


def without_traces_entering(batches: list[Batch], service: str) -> list[Batch]:
    """Leave out every trace in which ``service`` answered a request: as if it took no traffic."""
    traces = {span["traceId"] for name, span in spans(batches) if name == service and span["kind"] == SERVER}
    return _keep(batches, lambda span: span["traceId"] not in traces)


def without_calls(batches: list[Batch], caller: str, callee: str, method: str, route: str) -> list[Batch]:
    """Leave out ``caller``'s calls of ``callee``'s ``method route``, with everything they caused."""
    client_spans = {
        span["spanId"] for name, span in spans(batches) if name == caller and span["kind"] == CLIENT
    }
    dropped = {
        span["parentSpanId"]
        for name, span in spans(batches)
        if name == callee
        and span["kind"] == SERVER
        and span.get("parentSpanId") in client_spans
        and _attribute(span, "http.request.method") == method
        and _attribute(span, "http.route") == route
    }
    children: dict[str, list[str]] = {}
    for _, span in spans(batches):
        children.setdefault(span.get("parentSpanId", ""), []).append(span["spanId"])
    pending = list(dropped)
    while pending:
        for child in children.get(pending.pop(), ()):
            if child not in dropped:
                dropped.add(child)
                pending.append(child)
    return _keep(batches, lambda span: span["spanId"] not in dropped)


def write_batches(batches: list[Batch], path: Path) -> Path:
    """Write the batches as OTLP/JSON Lines, the Collector file exporter's format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(batch) + "\n" for batch in batches), encoding="utf-8")
    return path
