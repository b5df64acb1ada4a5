"""Values producers can write that once ended a scan: each is now a counted skip or a counted repair."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import pytest
from paths import FIXTURES
from sdk_spans import Landscape, encode, otlp_json, record_landscape, write

from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.limits import (
    END_BEFORE_START,
    MALFORMED_FIELD,
    MARKER,
    NAME_CHARS,
    NAME_CUT,
    OUT_OF_RANGE,
)

PETCLINIC = FIXTURES / "spring-petclinic" / "traces" / "testTraceNormal.jaeger.json"
LENS = FIXTURES / "zipkin-lens-testdata" / "traces" / "messaging-kafka.json"


@pytest.fixture(scope="module")
def land() -> Landscape:
    return record_landscape()


def _otlp(land: Landscape) -> dict[str, Any]:
    return otlp_json(encode(land.spans))


def _first_span(document: dict[str, Any]) -> dict[str, Any]:
    return document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]  # type: ignore[no-any-return]


def test_an_end_time_beyond_int64_skips_its_span_in_every_format_and_nothing_else(
    land: Landscape, tmp_path: Path
) -> None:
    proto = encode(land.spans)
    proto.resource_spans[0].scope_spans[0].spans[0].end_time_unix_nano = 2**63 + 5
    # Other trace ids than the protobuf file's, so that no span is a duplicate of another file's.
    document = json.loads(json.dumps(_otlp(land)).replace('"traceId": "', '"traceId": "f'))
    for rs in document["resourceSpans"]:
        for scope in rs["scopeSpans"]:
            for span in scope["spans"]:
                span["traceId"] = span["traceId"][:32]
    _first_span(document)["endTimeUnixNano"] = str(2**63 + 5)
    trace = json.loads(PETCLINIC.read_text())
    trace["spans"][0]["startTime"] = trace["spans"][0]["startTime"] * 1000  # nanoseconds, not µs
    zipkin = json.loads(LENS.read_text())
    zipkin[0]["duration"] = 2**62
    files = [
        write(tmp_path / "a.pb", proto.SerializeToString()),
        write(tmp_path / "b.json", json.dumps(document)),
        write(tmp_path / "c.json", json.dumps(trace)),
        write(tmp_path / "d.json", json.dumps(zipkin)),
    ]
    result = ingest(files, jobs=1)
    assert [f.spans for f in result.files] == [len(land.spans) - 1, len(land.spans) - 1, 4, 27]
    reasons = {(f.rsplit("/", 1)[-1], r) for f, r in ((s.file, s.reason) for s in result.skipped)}
    assert ("a.pb", OUT_OF_RANGE) in reasons and ("b.json", OUT_OF_RANGE) in reasons
    assert ("c.json", OUT_OF_RANGE) in reasons and ("d.json", OUT_OF_RANGE) in reasons


def test_an_end_before_the_start_is_set_to_the_start_and_counted(land: Landscape, tmp_path: Path) -> None:
    proto = encode(land.spans)
    span = proto.resource_spans[0].scope_spans[0].spans[0]
    span.end_time_unix_nano = span.start_time_unix_nano - 5
    document = _otlp(land)
    first = _first_span(document)
    first["endTimeUnixNano"] = str(int(first["startTimeUnixNano"]) - 7)
    for name, payload in (("a.pb", proto.SerializeToString()), ("b.json", json.dumps(document))):
        result = ingest([write(tmp_path / name, payload)], jobs=1)
        assert result.skipped == ()
        assert [(n.reason, n.count) for n in result.notices] == [(END_BEFORE_START, 1)]
        table = result.spans
        assert table.num_rows == len(land.spans)
        assert all(
            end >= start
            for start, end in zip(table["start_ns"].to_pylist(), table["end_ns"].to_pylist(), strict=True)
        )


def test_a_megabyte_service_name_is_cut_once_not_copied_per_span(land: Landscape, tmp_path: Path) -> None:
    document = _otlp(land)
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    document["resourceSpans"][0]["scopeSpans"][0]["spans"] = [
        {**spans[0], "spanId": f"{index + 1:016x}"} for index in range(4000)
    ]
    service = next(
        kv for kv in document["resourceSpans"][0]["resource"]["attributes"] if kv["key"] == "service.name"
    )
    service["value"]["stringValue"] = "s" * (1 << 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = ingest([write(tmp_path / "big-name.json", json.dumps(document))], jobs=1)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    names = set(plain_strings(result.spans)["service"].to_pylist())
    long_name = "s" * (NAME_CHARS - len(MARKER)) + MARKER
    assert long_name in names and all(len(n) <= NAME_CHARS for n in names)
    assert (NAME_CUT, 1) in [(n.reason, n.count) for n in result.notices]
    # 4,000 copies of a megabyte would be 4 GB; the cut name costs next to nothing.
    assert grown_mb < 500


def test_wrong_types_become_skips_or_repairs(land: Landscape, tmp_path: Path) -> None:
    trace = json.loads(PETCLINIC.read_text())
    trace["spans"][1]["references"] = 5
    document = _otlp(land)
    document["resourceSpans"][1]["scopeSpans"] = 5
    result = ingest(
        [write(tmp_path / "j.json", json.dumps(trace)), write(tmp_path / "o.json", json.dumps(document))],
        jobs=1,
    )
    jaeger_file, otlp_file = result.files
    assert jaeger_file.spans == len(trace["spans"])
    assert (MALFORMED_FIELD, 1) in [(n.reason, n.count) for n in result.notices if n.file.endswith("j.json")]
    (skip,) = [s for s in result.skipped if s.file.endswith("o.json")]
    assert (skip.position, skip.reason) == ("document: resourceSpans[1].scopeSpans", "not a list")
    assert otlp_file.spans == len(land.spans) - sum(
        len(scope["spans"]) for scope in _otlp(land)["resourceSpans"][1]["scopeSpans"]
    )


def test_a_lone_surrogate_escape_costs_one_character_not_the_document(tmp_path: Path) -> None:
    trace = json.loads(PETCLINIC.read_text())
    name = trace["spans"][0]["operationName"]
    text = json.dumps(trace).replace(f'"{name}"', '"cut emoji \\ud83d here"', 1)
    result = ingest([write(tmp_path / "surrogate.json", text)], jobs=1)
    assert result.skipped == () and result.spans.num_rows == len(trace["spans"])
    assert "cut emoji \ufffd here" in plain_strings(result.spans)["name"].to_pylist()
