"""Damaged and hostile inputs through the CLI: a clear account of what was skipped, never a traceback."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sdk_spans import (
    Landscape,
    batches,
    encode,
    framed,
    otlp_json,
    otlp_json_lines,
    protobuf_json,
    record_landscape,
    write,
)

from orchscan.cli import EXIT_INPUT, main


@pytest.fixture(scope="module")
def land() -> Landscape:
    return record_landscape()


def inspect(*paths: Path, fmt: str | None = None) -> tuple[Result, dict[str, Any] | None]:
    """Run ``orchscan inspect`` as text and as JSON; the JSON document when anything was read."""
    options = ["--format", fmt] if fmt else []
    text = CliRunner().invoke(main, ["inspect", "-j", "1", *options, *map(str, paths)])
    as_json = CliRunner().invoke(main, ["inspect", "--json", "-j", "1", *options, *map(str, paths)])
    for result in (text, as_json):
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output
    assert text.exit_code == as_json.exit_code
    return text, json.loads(as_json.output) if as_json.exit_code == 0 else None


def _frames(payload: bytes) -> list[tuple[int, int]]:
    """(offset, body length) of each frame of a Collector proto stream."""
    frames, offset = [], 0
    while offset < len(payload):
        (length,) = struct.unpack_from(">I", payload, offset)
        frames.append((offset, length))
        offset += 4 + length
    return frames


def _skips(doc: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    return [(Path(s["file"]).name, s["position"], s["reason"], s["count"]) for s in doc["skipped"]]


def test_truncated_frame_keeps_the_frames_before_it(land: Landscape, tmp_path: Path) -> None:
    payload = framed(batches(land.spans, 3))
    last, _ = _frames(payload)[-1]
    path = write(tmp_path / "cut.binpb", payload[:-20])
    text, doc = inspect(path)
    assert text.exit_code == 0 and doc is not None
    # The whole frames, and the complete spans of the cut one.
    assert 9 <= doc["totals"]["spans"] < len(land.spans)
    ((name, position, reason, count),) = _skips(doc)
    assert (name, count) == ("cut.binpb", 1) and int(position.removeprefix("byte ")) > last
    assert reason.startswith("invalid OTLP protobuf") and f"message from byte {last + 4}" in reason
    assert f"cut.binpb @ {position}: invalid OTLP protobuf" in text.output
    assert doc["totals"]["skipped"] == 1 and "skipped: 1 record(s)" in text.output


def test_truncated_size_prefix_keeps_every_whole_frame(land: Landscape, tmp_path: Path) -> None:
    payload = framed(batches(land.spans, 3))
    path = write(tmp_path / "prefix.binpb", payload + b"\x00\x00")
    _, doc = inspect(path)
    assert doc is not None and doc["totals"]["spans"] == len(land.spans)
    assert _skips(doc) == [
        ("prefix.binpb", f"byte {len(payload)}", "truncated size prefix (2 of 4 bytes)", 1)
    ]


def test_corrupt_frame_in_the_middle_keeps_frames_before_and_after(land: Landscape, tmp_path: Path) -> None:
    payload = bytearray(framed(batches(land.spans, 3)))
    offset, _ = _frames(bytes(payload))[1]
    # An over-long varint cannot be valid protobuf anywhere.
    payload[offset + 14 : offset + 34] = b"\xff" * 20
    path = write(tmp_path / "corrupt.binpb", bytes(payload))
    text, doc = inspect(path)
    assert text.exit_code == 0 and doc is not None
    # Frames 1, 3 and 4 are whole; frame 2 keeps at most the spans before the damage.
    assert len(land.spans) - 3 <= doc["totals"]["spans"] < len(land.spans)
    ((name, position, reason, _),) = _skips(doc)
    assert name == "corrupt.binpb"
    assert offset + 4 <= int(position.removeprefix("byte ")) <= offset + 34
    assert reason.startswith("invalid OTLP protobuf") and f"message from byte {offset + 4}" in reason
    assert f"corrupt.binpb @ {position}: invalid OTLP protobuf" in text.output


def test_truncated_bare_request_keeps_the_complete_spans_before_the_cut(
    land: Landscape, tmp_path: Path
) -> None:
    from orchscan.collectors.traces.ingest import ingest

    body = encode(land.spans).SerializeToString()
    path = write(tmp_path / "half.pb", body[: len(body) // 2])
    text, doc = inspect(path)
    assert text.exit_code == 0 and doc is not None
    ((name, position, reason, _),) = _skips(doc)
    # The position is where the first incomplete piece (here: the cut span) starts.
    assert name == "half.pb" and 0 < int(position.removeprefix("byte ")) <= len(body) // 2
    kept = doc["totals"]["spans"]
    assert 0 < kept < len(land.spans) and f"{kept} complete span(s) before the damage kept" in reason
    recorded = {
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")): s for s in land.spans
    }
    for row in ingest([path], jobs=1).spans.to_pylist():
        span = recorded[(row["trace_id"], row["span_id"])]
        assert (row["name"], row["start_ns"], row["end_ns"]) == (span.name, span.start_time, span.end_time)


def test_request_cut_inside_its_first_span_reads_nothing_and_exits_2(land: Landscape, tmp_path: Path) -> None:
    path = write(tmp_path / "stub.pb", encode(land.spans).SerializeToString()[:40])
    text, _ = inspect(path)
    assert text.exit_code == EXIT_INPUT
    assert "stub.pb" in text.output and "invalid OTLP protobuf" in text.output


def test_malformed_json_document_beside_a_good_file(land: Landscape, tmp_path: Path) -> None:
    good = write(tmp_path / "good.json", protobuf_json(encode(land.spans)))
    bad = write(tmp_path / "bad.json", protobuf_json(encode(land.spans))[:-40])
    text, doc = inspect(good, bad)
    assert text.exit_code == 0 and doc is not None
    assert doc["totals"]["spans"] == len(land.spans)
    # The cut document keeps its records before the damage (here all copies of good.json's spans).
    damaged = [s for s in _skips(doc) if s[0] == "bad.json" and "malformed JSON" in s[2]]
    assert len(damaged) == 1 and "record(s) before it were read" in damaged[0][2]
    assert {s[2] for s in _skips(doc)} - {damaged[0][2]} <= {
        "duplicate span id (same trace); first copy kept"
    }
    assert {f["file"].rsplit("/", 1)[-1]: f["spans"] for f in doc["files"]} == {
        "good.json": 10,
        "bad.json": 0,
    }


def test_malformed_json_line_keeps_the_other_lines(land: Landscape, tmp_path: Path) -> None:
    lines = otlp_json_lines(batches(land.spans, 3)).splitlines()
    broken = [lines[0], b'{"resourceSpans": [ {"resource": oops', *lines[1:]]
    path = write(tmp_path / "lines.jsonl", b"\n".join(broken) + b"\n")
    text, doc = inspect(path)
    assert doc is not None and doc["totals"]["spans"] == len(land.spans)
    ((name, position, reason, _),) = _skips(doc)
    assert (name, position) == ("lines.jsonl", "line 2") and reason.startswith("malformed JSON")
    assert "lines.jsonl @ line 2: malformed JSON" in text.output


def test_forced_wrong_format_is_reported_per_file(land: Landscape, tmp_path: Path) -> None:
    proto = write(tmp_path / "traces.pb", encode(land.spans).SerializeToString())
    text, _ = inspect(proto, fmt="otlp-json")
    assert text.exit_code == EXIT_INPUT and "traces.pb" in text.output and "malformed JSON" in text.output
    json_file = write(tmp_path / "traces.json", protobuf_json(encode(land.spans)))
    text, _ = inspect(json_file, fmt="otlp-proto")
    assert text.exit_code == EXIT_INPUT and "traces.json" in text.output and "OTLP protobuf" in text.output


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.json", b"", "empty file"),
        ("blank.jsonl", b"\n \n\t\n", "empty file"),
        ("junk.bin", bytes(range(256)) * 8, "unrecognised content"),
        ("notes.json", b'{"title": "not a trace"}', "unrecognised content"),
    ],
)
def test_unusable_files_are_skipped_beside_good_ones(
    land: Landscape, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    good = write(tmp_path / "good.pb", encode(land.spans).SerializeToString())
    junk = write(tmp_path / name, content)
    text, doc = inspect(good, junk)
    assert text.exit_code == 0 and doc is not None
    assert doc["totals"]["spans"] == len(land.spans)
    ((skipped, position, why, _),) = _skips(doc)
    assert (skipped, position) == (name, "file") and why.startswith(reason)
    alone, _ = inspect(junk)
    assert alone.exit_code == EXIT_INPUT and name in alone.output and reason in alone.output


def test_invalid_utf8_in_a_json_line_keeps_the_span(land: Landscape, tmp_path: Path) -> None:
    payload = otlp_json_lines(batches(land.spans, 3)).replace(b"compute total", b"compute \xff total")
    path = write(tmp_path / "latin.jsonl", payload)
    _, doc = inspect(path)
    assert doc is not None and doc["totals"]["spans"] == len(land.spans) and doc["skipped"] == []


def test_duplicate_spans_are_kept_once_and_counted(land: Landscape, tmp_path: Path) -> None:
    first = write(tmp_path / "a.pb", encode(land.spans).SerializeToString())
    again = write(tmp_path / "b.binpb", framed(batches(land.spans[:4], 2)))
    text, doc = inspect(first, again)
    assert doc is not None and doc["totals"]["spans"] == len(land.spans)
    assert _skips(doc) == [("b.binpb", "whole file", "duplicate span id (same trace); first copy kept", 4)]
    assert "(x4)" in text.output


def _document(land: Landscape) -> dict[str, Any]:
    return otlp_json(encode(land.spans))


def _spans(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for rs in document["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def test_parent_cycle_is_cut_and_absent_parents_reported(land: Landscape, tmp_path: Path) -> None:
    document = _document(land)
    spans = {s["name"]: s for s in _spans(document)}
    # SELECT carts and INSERT orders point at each other; compute total points at a span never exported.
    spans["SELECT carts"]["parentSpanId"] = spans["INSERT orders"]["spanId"]
    spans["INSERT orders"]["parentSpanId"] = spans["SELECT carts"]["spanId"]
    spans["compute total"]["parentSpanId"] = "00000000deadbeef"
    path = write(tmp_path / "cycle.json", json.dumps(document))
    text, doc = inspect(path)
    assert doc is not None and doc["totals"]["spans"] == len(land.spans) and doc["skipped"] == []
    assert {(n["reason"], n["count"]) for n in doc["notices"]} == {
        ("parent links formed a cycle (links cut, spans kept as roots)", 2),
        ("parent span absent from the input (span kept as a fragment root)", 1),
    }
    assert "notice: " in text.output and "cycle" in text.output


def test_hostile_strings_are_read_verbatim(land: Landscape, tmp_path: Path) -> None:
    from orchscan.collectors.traces.ingest import ingest

    document = _document(land)
    hostile = '<script>alert("x")</script>\u202e\x00 & </td>'
    for span in _spans(document):
        span["name"] = hostile + span["name"]
    document["resourceSpans"][0]["resource"]["attributes"].append(
        {"key": "service.namespace", "value": {"stringValue": "<img src=x onerror=alert(1)>"}}
    )
    path = write(tmp_path / "hostile.json", json.dumps(document))
    text, doc = inspect(path)
    assert text.exit_code == 0 and doc is not None and doc["skipped"] == []
    names = set(ingest([path], jobs=1).spans["name"].to_pylist())
    assert names == {hostile + s.name for s in land.spans}


def test_spans_without_ids_are_skipped_with_their_position(land: Landscape, tmp_path: Path) -> None:
    document = _document(land)
    first = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    first["spanId"] = ""
    path = write(tmp_path / "noid.json", json.dumps(document))
    _, doc = inspect(path)
    assert doc is not None and doc["totals"]["spans"] == len(land.spans) - 1
    assert _skips(doc) == [
        (
            "noid.json",
            "document: resourceSpans[0].scopeSpans[0].spans[0]",
            "missing or invalid trace/span id",
            1,
        )
    ]
