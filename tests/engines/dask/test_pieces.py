"""Files cut into runs read exactly as the local engine reads them whole: the same spans, the same skips."""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import struct
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from generated_landscape import write_landscape
from google.protobuf.json_format import MessageToJson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from orchscan.collectors.model.records import Skipped
from orchscan.collectors.traces.ingest import InputReader
from orchscan.collectors.traces.registry import parse_chunk
from orchscan.engines.dask.inputs import InputFile, list_inputs
from orchscan.engines.dask.pieces import Segment, group_pieces, plan_file, segment_chunks

RUN_BYTES = 200_000


def _frames(path: Path) -> list[bytes]:
    data, frames, at = path.read_bytes(), [], 0
    while at < len(data):
        (length,) = struct.unpack_from(">I", data, at)
        frames.append(data[at + 4 : at + 4 + length])
        at += 4 + length
    return frames


@pytest.fixture(scope="module")
def framed(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The messages of a generated landscape of about 20,000 spans, 512 a message (as SDKs export
    them), so that a run holds a few messages."""
    path = tmp_path_factory.mktemp("landscape") / "spans.binpb"
    write_landscape(path, 20_000, spans_per_message=512)
    return _frames(path)


def _framed(messages: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(message)) + message for message in messages)


def _damaged_proto(folder: Path, frames: list[bytes]) -> Path:
    """Framed protobuf with a message damaged inside (its size still right) in the middle."""
    body = bytearray(frames[len(frames) // 2])
    body[len(body) // 2 : len(body) // 2 + 16] = b"\xff" * 16
    path = folder / "damaged.binpb"
    path.write_bytes(_framed([*frames[: len(frames) // 2], bytes(body), *frames[len(frames) // 2 + 1 :]]))
    return path


def _damaged_lines(folder: Path, frames: list[bytes]) -> Path:
    """OTLP/JSON Lines (one export per line) with a malformed line and a blank line in the middle."""
    lines = []
    for frame in frames:
        request = ExportTraceServiceRequest()
        request.ParseFromString(frame)
        lines.append(MessageToJson(request, indent=None).encode())
    middle = len(lines) // 2
    lines[middle : middle + 1] = [b'{"resourceSpans": [{"scopeSpans": ', b""]
    path = folder / "damaged.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _local(path: Path) -> tuple[list[dict[str, Any]], list[Skipped]]:
    reader = InputReader([path], jobs=1)
    return pa.Table.from_batches(list(reader.batches())).to_pylist(), sorted(reader.skipped)


def _cut(segments: tuple[Segment, ...], named: str) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """What the segments hold, every span and skip named ``named`` (the local engine's name)."""
    batches, skipped = [], []
    for segment in segments:
        for item in segment_chunks(segment, None):
            if isinstance(item, Skipped):
                skipped.append(item)
            elif not isinstance(item, str):
                result = parse_chunk(item)
                skipped += result.skipped
                batches.append(result.batch)
    spans = [{**row, "source": named} for row in pa.Table.from_batches(batches).to_pylist()]
    return spans, sorted(dataclasses.replace(s, file=named) for s in skipped)


@pytest.mark.parametrize("at_url", [False, True], ids=["path", "file-url"])
@pytest.mark.parametrize("make", [_damaged_proto, _damaged_lines], ids=["framed-protobuf", "json-lines"])
def test_a_file_cut_into_runs_reads_as_the_whole_file(
    make: Any, at_url: bool, framed: list[bytes], tmp_path: Path
) -> None:
    path = make(tmp_path, framed)
    (file,) = list_inputs([path.as_uri() if at_url else str(path)])
    segments = plan_file(file, None, RUN_BYTES)
    assert len(segments) >= 4 and segments[0].start == 0 and segments[-1].stop == file.size
    assert all(a.stop == b.start for a, b in itertools.pairwise(segments))
    spans, skipped = _cut(segments, str(path))
    local_spans, local_skipped = _local(path)
    assert len(spans) > 15_000 and spans == local_spans
    assert skipped and skipped == local_skipped
    # The damage sits in a later run, so its position proves the runs' positions are moved.
    kind, number = skipped[0].position.split()[:2]
    assert int(number) > (segments[1].start if kind == "byte" else segments[1].first_line)


def test_json_lines_runs_start_at_their_line_numbers(framed: list[bytes], tmp_path: Path) -> None:
    path = _damaged_lines(tmp_path, framed)
    lines = path.read_bytes().split(b"\n")
    for segment in plan_file(list_inputs([str(path)])[0], None, RUN_BYTES):
        assert path.read_bytes()[segment.start :].startswith(lines[segment.first_line - 1])


def test_damage_the_reader_resynchronises_after_leaves_the_file_whole(
    framed: list[bytes], tmp_path: Path
) -> None:
    cut_short = _framed(framed) + struct.pack(">I", 1000) + b"\x0a" * 10
    wrong_size = bytearray(_framed(framed))
    wrong_size[len(_framed(framed[:20])) : len(_framed(framed[:20])) + 4] = struct.pack(">I", 7)
    for name, content in (("cut-short.binpb", cut_short), ("wrong-size.binpb", bytes(wrong_size))):
        path = tmp_path / name
        path.write_bytes(content)
        file = list_inputs([str(path)])[0]
        assert plan_file(file, None, RUN_BYTES) == (Segment(file),)
        assert _cut((Segment(file),), str(path)) == _local(path) and _local(path)[1]


@pytest.mark.parametrize(
    "content",
    [
        gzip.compress(b"\n".join([b'{"resourceSpans": []}'] * 50_000)),
        b'{"resourceSpans": [' + b" " * 500_000 + b"]}",
        b"\x0a\x05" + b"\x00" * 500_000,
    ],
    ids=["gzip", "one-json-document", "bare-protobuf-request"],
)
def test_what_cannot_be_cut_is_read_whole(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(content)
    file = list_inputs([str(path)])[0]
    assert plan_file(file, None, 1000) == (Segment(file),)


def test_an_unreadable_file_is_left_to_its_reader(tmp_path: Path) -> None:
    missing = InputFile("missing.pb", str(tmp_path / "missing.pb"), 10_000_000)
    assert plan_file(missing, None, 1000) == (Segment(missing),)
    assert list(segment_chunks(Segment(missing), None)) == [
        Skipped("missing.pb", "file", "cannot open: No such file or directory")
    ]


def test_small_files_are_grouped_into_pieces() -> None:
    files = [Segment(InputFile(f"{n}.json", f"/{n}.json", size)) for n, size in enumerate([3, 3, 5, 9, 1])]
    assert [[s.file.source for s in p] for p in group_pieces(files, 8)] == [
        ["0.json", "1.json"],
        ["2.json"],
        ["3.json"],
        ["4.json"],
    ]
