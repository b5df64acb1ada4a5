"""Large JSON documents are read record by record: the same spans as a whole read, in bounded chunks,
with whatever precedes damage kept."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paths import FIXTURES
from sdk_spans import Landscape, batches, encode, otlp_json, record_landscape, write

from orchscan.collectors.model.records import Chunk, Skipped
from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces import jsonio
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.registry import FORMATS

LENS = FIXTURES / "zipkin-lens-testdata" / "traces"
PETCLINIC = FIXTURES / "spring-petclinic" / "traces"


@pytest.fixture(scope="module")
def land() -> Landscape:
    return record_landscape()


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Documents over 4 kB are streamed in chunks of about 2 kB (ingest runs in-process here)."""
    monkeypatch.setattr(jsonio, "WHOLE_DOCUMENT_BYTES", 4096)
    monkeypatch.setattr(jsonio, "CHUNK_BYTES", 2048)


def _rows(result: Any) -> list[dict[str, Any]]:
    table = plain_strings(result.spans).drop_columns(["source"])
    return table.sort_by([("trace_id", "ascending"), ("span_id", "ascending")]).to_pylist()


def _documents(land: Landscape) -> dict[str, bytes]:
    # One resourceSpans entry per span, as an exporter batching one span at a time writes them.
    otlp = {
        "resourceSpans": [
            rs for request in batches(land.spans, 1) for rs in otlp_json(request)["resourceSpans"]
        ]
    }
    zipkin = [json.loads(path.read_text()) for path in sorted(LENS.iterdir())]
    jaeger = [json.loads(path.read_text()) for path in sorted(PETCLINIC.iterdir())]
    return {
        "otlp-json": json.dumps(otlp, indent=1).encode(),
        "tempo-v1": json.dumps({"batches": otlp["resourceSpans"]}).encode(),
        "tempo-v2": json.dumps({"trace": otlp, "metrics": {"inspectedBytes": "1"}}).encode(),
        "jaeger-json": json.dumps({"data": jaeger, "total": 0}).encode(),
        "zipkin-traces": json.dumps(zipkin).encode(),
        "zipkin-spans": json.dumps([span for trace in zipkin for span in trace]).encode(),
    }


@pytest.mark.parametrize(
    "shape", ["otlp-json", "tempo-v1", "tempo-v2", "jaeger-json", "zipkin-traces", "zipkin-spans"]
)
def test_a_streamed_document_reads_as_the_whole_document_does(
    land: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    document = _documents(land)[shape]
    path = write(tmp_path / "doc.json", document)
    whole = ingest([path], jobs=1)
    assert whole.spans.num_rows >= 10
    monkeypatch.setattr(jsonio, "WHOLE_DOCUMENT_BYTES", 4096)
    monkeypatch.setattr(jsonio, "CHUNK_BYTES", 2048)
    fmt = whole.files[0].format
    chunks = list(FORMATS[fmt].split(io.BufferedReader(io.BytesIO(document)), "doc"))
    assert len(chunks) >= 2 and all(isinstance(c, Chunk) and c.position == jsonio.PARTS for c in chunks)
    streamed = ingest([path], jobs=1)
    assert streamed.skipped == whole.skipped and streamed.notices == whole.notices
    assert _rows(streamed) == _rows(whole)


@pytest.mark.usefixtures("small_limits")
def test_a_document_on_one_long_line_is_streamed_too(land: Landscape, tmp_path: Path) -> None:
    document = json.dumps(otlp_json(encode(land.spans))).encode()
    assert b"\n" not in document and len(document) > 4096
    chunks = list(FORMATS["otlp-json"].split(io.BufferedReader(io.BytesIO(document)), "doc"))
    assert len(chunks) > 1
    assert ingest([write(tmp_path / "doc.json", document)], jobs=1).spans.num_rows == len(land.spans)


def _cut(document: bytes, fraction: float) -> bytes:
    return document[: int(len(document) * fraction)]


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("shape", ["otlp-json", "jaeger-json", "zipkin-traces", "zipkin-spans"])
def test_a_document_cut_short_keeps_the_records_before_the_cut(
    land: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str, streamed: bool
) -> None:
    document = _documents(land)[shape]
    complete = ingest([write(tmp_path / "whole.json", document)], jobs=1).spans.num_rows
    if streamed:
        monkeypatch.setattr(jsonio, "WHOLE_DOCUMENT_BYTES", 4096)
        monkeypatch.setattr(jsonio, "CHUNK_BYTES", 2048)
    result = ingest([write(tmp_path / "cut.json", _cut(document, 0.7))], jobs=1)
    assert 0 < result.spans.num_rows < complete
    damage = [s for s in result.skipped if "rest of the document skipped" in s.reason]
    assert len(damage) == 1, result.skipped
    assert "malformed JSON" in damage[0].reason and "record(s) before it were read" in damage[0].reason


@pytest.mark.usefixtures("small_limits")
def test_a_record_larger_than_the_limit_ends_the_document_with_a_counted_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonio, "RECORD_BYTES", 4096)
    monkeypatch.setattr(jsonio, "_PIECE", 512)
    trace = json.loads((PETCLINIC / "testTraceNormal.jaeger.json").read_text())
    small = {**trace, "spans": trace["spans"][:1]}
    big = {**trace, "spans": trace["spans"] * 40}
    document = json.dumps({"data": [small, big, small]}).encode()
    result = ingest([write(tmp_path / "doc.json", document)], jobs=1)
    assert result.spans.num_rows == 1
    (skip,) = result.skipped
    assert skip.position == "data[1]"
    assert skip.reason.startswith("a single record exceeds 4,096 bytes after")
    assert skip.reason.endswith("the 1 record(s) before it were read, the rest of the document skipped")


@pytest.mark.usefixtures("small_limits")
def test_invalid_utf8_in_a_streamed_document_is_replaced(land: Landscape, tmp_path: Path) -> None:
    document = _documents(land)["otlp-json"].replace(b'"POST /api/checkout"', b'"POST /api/\xff\xfeout"', 1)
    result = ingest([write(tmp_path / "doc.json", document)], jobs=1)
    assert result.spans.num_rows == len(land.spans)
    assert "POST /api/\ufffd\ufffdout" in plain_strings(result.spans)["name"].to_pylist()


def test_an_over_long_json_line_is_skipped_and_counted(
    land: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonio, "RECORD_BYTES", 3000)
    line = json.dumps(otlp_json(encode(land.spans[:1]))).encode()
    long = json.dumps(otlp_json(encode(land.spans))).encode()
    assert len(line) < 3000 < len(long)
    payload = line + b"\n" + long + b"\n" + line + b"\n"
    result = ingest([write(tmp_path / "lines.jsonl", payload)], jobs=1)
    assert [s.position for s in result.skipped if "longer than" in s.reason] == ["line 2"]


def test_skipped_records_of_a_streamed_document_name_their_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonio, "WHOLE_DOCUMENT_BYTES", 1024)
    trace = json.loads((PETCLINIC / "testTraceNormal.jaeger.json").read_text())
    broken = json.loads(json.dumps(trace))
    broken["spans"][1]["references"] = 5
    broken["spans"][2]["startTime"] = "yesterday"
    result = ingest([write(tmp_path / "doc.json", json.dumps({"data": [trace, broken]}))], jobs=1)
    assert [
        (s.position, s.count) for s in result.skipped if isinstance(s, Skipped) and "startTime" in s.reason
    ] == [("data[1].spans[2]", 1)]


@pytest.mark.usefixtures("small_limits")
def test_a_huge_integer_in_a_streamed_record_costs_only_its_span(land: Landscape, tmp_path: Path) -> None:
    document = json.loads(_documents(land)["otlp-json"])
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    text = json.dumps(document).replace(f'"{span["endTimeUnixNano"]}"', str(2**70), 1)
    result = ingest([write(tmp_path / "doc.json", text)], jobs=1)
    assert result.spans.num_rows == len(land.spans) - 1
    (skip,) = result.skipped
    assert skip.position == "document: resourceSpans[0].scopeSpans[0].spans[0]"
    assert skip.reason.startswith("start/end time out of range")


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_a_record_nested_beyond_what_can_be_read_is_skipped_alone(
    land: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    if streamed:
        monkeypatch.setattr(jsonio, "WHOLE_DOCUMENT_BYTES", 4096)
        monkeypatch.setattr(jsonio, "CHUNK_BYTES", 2048)
    document = json.loads(_documents(land)["jaeger-json"])
    document["data"][1]["spans"][0]["tags"] = "NESTED"
    text = json.dumps(document).replace('"NESTED"', "[" * 1100 + "1" + "]" * 1100)
    result = ingest([write(tmp_path / "doc.json", text)], jobs=1)
    (skip,) = result.skipped
    assert skip.position == "data[1]" and skip.reason.startswith("record nested too deeply")
    whole = ingest([write(tmp_path / "plain.json", _documents(land)["jaeger-json"])], jobs=1)
    assert result.spans.num_rows == whole.spans.num_rows - len(document["data"][1]["spans"])


def test_one_flat_zipkin_trace_is_still_cut_at_the_record_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonio, "WHOLE_DOCUMENT_BYTES", 1024)
    monkeypatch.setattr(jsonio, "CHUNK_BYTES", 1024)
    monkeypatch.setattr(jsonio, "RECORD_BYTES", 4096)
    spans = json.loads((LENS / "messaging-kafka.json").read_text()) * 20
    assert len({s["traceId"] for s in spans}) == 1
    chunks = list(
        FORMATS["zipkin-json"].split(io.BufferedReader(io.BytesIO(json.dumps(spans).encode())), "z")
    )
    assert len(chunks) > 2
    assert all(isinstance(c, Chunk) and len(c.payload) < 4096 + 2048 for c in chunks)


_JSON_VALUES = st.recursive(
    st.one_of(
        st.integers(min_value=-(2**80), max_value=2**80),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
        st.sampled_from(["x:12345678901234567890,", "12345678901234567890123"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


def _widened(value: Any) -> Any:
    """What a reader sees: integers beyond 64 bits as floats, as orjson reads them (a document
    is an object or a list, so every number in it follows a separator)."""
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return float(value)
    if isinstance(value, list):
        return [_widened(item) for item in value]
    if isinstance(value, dict):
        return {key: _widened(item) for key, item in value.items()}
    return value


@settings(max_examples=150, deadline=None)
@given(
    value=st.lists(_JSON_VALUES, max_size=4),
    piece=st.integers(min_value=1, max_value=64),
    split=st.integers(min_value=0, max_value=200),
)
def test_the_streamed_bytes_read_as_the_document_with_wide_integers_as_floats(
    value: Any, piece: int, split: int
) -> None:
    text = json.dumps(value, ensure_ascii=False).encode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonio, "_PIECE", piece)
        stream = jsonio._Chained(text[:split], io.BytesIO(text[split:]))
        out = b""
        while part := stream.read(1024):
            out += part
    assert json.loads(out) == _widened(value)
