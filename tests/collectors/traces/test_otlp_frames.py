"""Cutting OTLP protobuf into chunks: damaged size prefixes, truncation, messages larger than a chunk."""

from __future__ import annotations

import gzip
import io
import os
import struct
from pathlib import Path

import pytest
from sdk_spans import Landscape, batches, encode, framed, record_landscape, write

from orchscan.collectors.model.records import Chunk, Skipped
from orchscan.collectors.traces.formats import otlp_frames, otlp_proto
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.inputs import open_input, plain_file


@pytest.fixture(scope="module")
def land() -> Landscape:
    return record_landscape()


def _frames(land: Landscape, copies: int) -> list[bytes]:
    """Many one-span frames (each span copied with its own trace id), as the Collector writes them."""
    frames = []
    for copy in range(copies):
        for request in batches(land.spans, 1):
            for rs in request.resource_spans:
                for scope in rs.scope_spans:
                    for span in scope.spans:
                        span.trace_id = copy.to_bytes(2, "big") + span.trace_id[2:]
            body = request.SerializeToString()
            frames.append(struct.pack(">I", len(body)) + body)
    return frames


@pytest.mark.parametrize(
    "delta", [+37, -9, +(1 << 24), -(1 << 31)], ids=["larger", "smaller", "huge", "top-bit"]
)
def test_a_damaged_size_prefix_costs_its_frame_not_the_rest_of_the_file(
    land: Landscape, tmp_path: Path, delta: int
) -> None:
    frames = _frames(land, 20)
    damaged = 57
    (size,) = struct.unpack(">I", frames[damaged][:4])
    frames[damaged] = struct.pack(">I", (size + delta) % (1 << 32)) + frames[damaged][4:]
    path = write(tmp_path / "traces.binpb", b"".join(frames))
    result = ingest([path], jobs=1)
    # Every other frame is read; the damaged one at most partly.
    assert result.spans.num_rows >= len(frames) - 2
    resync = [s for s in result.skipped if "size prefix" in s.reason or "damaged" in s.reason]
    assert resync, result.skipped
    offset = sum(len(f) for f in frames[:damaged])
    assert any(int(s.position.split()[1]) >= offset for s in resync)
    assert all("resumed" in s.reason for s in resync)


def test_garbage_between_frames_is_skipped_and_counted(land: Landscape, tmp_path: Path) -> None:
    frames = _frames(land, 5)
    garbage = b"\x0a\x00\x00\x07" * 50 + b"not a frame at all"
    payload = b"".join(frames[:10]) + garbage + b"".join(frames[10:])
    result = ingest([write(tmp_path / "traces.binpb", payload)], jobs=1)
    assert result.spans.num_rows == len(frames)
    (skip,) = result.skipped
    start = sum(len(f) for f in frames[:10])
    assert skip.position == f"byte {start}"
    assert f"{len(garbage):,} bytes skipped" in skip.reason


def test_a_bare_request_cut_short_keeps_the_spans_before_the_cut(land: Landscape, tmp_path: Path) -> None:
    body = encode(land.spans).SerializeToString()
    result = ingest([write(tmp_path / "request.pb", body[: len(body) * 2 // 3])], jobs=1)
    assert 0 < result.spans.num_rows < len(land.spans)
    assert result.skipped and all("byte" in s.position for s in result.skipped)


def test_a_framed_stream_cut_short_keeps_every_whole_frame(land: Landscape, tmp_path: Path) -> None:
    frames = _frames(land, 3)
    payload = b"".join(frames)
    cut = payload[: len(payload) - len(frames[-1]) // 2]
    result = ingest([write(tmp_path / "traces.binpb", cut)], jobs=1)
    assert result.spans.num_rows == len(frames) - 1
    # Counted once: by the worker that salvaged the partial message.
    (skip,) = result.skipped
    assert skip.reason.startswith("invalid OTLP protobuf") and "damaged here" in skip.reason


def _chunks(payload: bytes, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int) -> list[Chunk | Skipped]:
    monkeypatch.setattr(otlp_frames, "CHUNK_BYTES", chunk_bytes)
    return list(otlp_frames.split(io.BufferedReader(io.BytesIO(payload)), "x", "otlp-proto"))


def test_a_message_larger_than_a_chunk_is_cut_at_resource_spans(
    land: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = encode(land.spans)
    assert len(request.resource_spans) > 2
    body = request.SerializeToString()
    for payload in (body, framed([request])):
        chunks = _chunks(payload, monkeypatch, 200)
        assert len(chunks) == len(request.resource_spans)
        assert all(isinstance(c, Chunk) and len(c.payload) < len(body) for c in chunks)
        result = ingest([write(tmp_path / "request.pb", payload)], jobs=1)
        assert result.spans.num_rows == len(land.spans)
        assert result.skipped == ()


def _split_file(path: Path) -> list[Chunk | Skipped]:
    with open_input(path) as stream:
        return list(otlp_frames.split(stream, "x", "otlp-proto"))


def test_chunks_of_a_file_name_where_their_bytes_lie_and_read_back_as_the_bytes_split(
    land: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(otlp_frames, "CHUNK_BYTES", 2000)
    frames = _frames(land, 3)
    garbage = b"\x0a\x00\x00\x07" * 50  # a damaged stretch: runs of intact fields around it
    whole = b"".join(frames)
    boundary = sum(len(f) for f in frames[:9])
    (size,) = struct.unpack(">I", frames[9][:4])
    large = encode(land.spans).SerializeToString()  # one frame larger than a chunk
    inputs = {
        "framed": whole,
        "bare": large,
        "garbage": b"".join(frames[:10]) + garbage + b"".join(frames[10:]),
        "damaged prefix": whole[:boundary] + struct.pack(">I", size + 37) + whole[boundary + 4 :],
        "prefix past the record limit": whole[:boundary]
        + struct.pack(">I", size + (1 << 31))
        + whole[boundary + 4 :],
        "large frame": b"".join(frames[:9]) + struct.pack(">I", len(large)) + large + b"".join(frames[9:]),
        # Cut just before, at and just after a frame's end, and inside the next size prefix.
        **{f"cut at {cut:+}": whole[: boundary + cut] for cut in (-1, 0, 1, 3, 5, 9)},
    }
    for name, payload in inputs.items():
        from_file = _split_file(write(tmp_path / f"{name}.binpb", payload))
        in_memory = list(otlp_frames.split(io.BufferedReader(io.BytesIO(payload)), "x", "otlp-proto"))
        chunks = [c for c in from_file if isinstance(c, Chunk)]
        assert len(chunks) > 1, name
        assert all(c.extent is not None and c.payload == b"" for c in chunks), name
        # Each chunk read back is the chunk of the same bytes split in memory, and parses alike.
        read = [otlp_frames.read_extent(c) if isinstance(c, Chunk) else c for c in from_file]
        assert read == in_memory, name
        for chunk, twin in zip(chunks, (c for c in in_memory if isinstance(c, Chunk)), strict=True):
            assert otlp_proto.parse(chunk) == otlp_proto.parse(twin), name


def test_a_file_replaced_or_cut_short_after_it_was_split_is_skipped_with_the_reason(
    land: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(otlp_frames, "CHUNK_BYTES", 2000)
    payload = b"".join(_frames(land, 3))
    path = write(tmp_path / "traces.binpb", payload)
    chunks = [c for c in _split_file(path) if isinstance(c, Chunk)]
    first, last = chunks[0], chunks[-1]
    assert first.extent is not None and last.extent is not None
    # Another file (the same bytes, even) takes the path, as a rotating exporter does.
    path.rename(tmp_path / "rotated.binpb")
    write(path, payload)
    replaced = otlp_proto.parse(first)
    assert replaced.batch.num_rows == 0
    (skipped,) = replaced.skipped
    assert skipped.position == f"byte {first.extent.runs[0][0]}"
    assert "could not be read again" in skipped.reason and "another file took its place" in skipped.reason
    # While the reading process holds the file open, a worker reaches it after a rename too.
    if os.path.isdir("/proc/self/fd"):
        with open_input(tmp_path / "rotated.binpb") as stream:
            held = [c for c in otlp_frames.split(stream, "x", "otlp-proto") if isinstance(c, Chunk)]
            (tmp_path / "rotated.binpb").rename(tmp_path / "rotated-again.binpb")
            in_memory = otlp_frames.split(io.BufferedReader(io.BytesIO(payload)), "x", "otlp-proto")
            expected = [otlp_proto.parse(c) for c in in_memory if isinstance(c, Chunk)]
            assert [otlp_proto.parse(c) for c in held] == expected
        (tmp_path / "rotated-again.binpb").rename(tmp_path / "rotated.binpb")
    # The file that was split, back in place but cut inside its last chunk.
    (tmp_path / "rotated.binpb").replace(path)
    os.truncate(path, last.extent.runs[0][0] + 10)
    assert otlp_proto.parse(first).batch.num_rows > 0
    (cut,) = otlp_proto.parse(last).skipped
    assert "cut short" in cut.reason


def test_only_a_regular_file_read_as_stored_from_its_start_is_split_by_extent(
    land: Landscape, tmp_path: Path
) -> None:
    payload = b"".join(_frames(land, 1))
    path = write(tmp_path / "traces.binpb", payload)
    with open_input(path) as stream:
        found = plain_file(stream)
        assert found is not None
        assert (found[0], found[2], found[3]) == (str(path.resolve()), path.stat().st_dev, path.stat().st_ino)
        stream.read(10)
        assert plain_file(stream) is None  # not from its start
    gzipped = write(tmp_path / "traces.binpb.gz", gzip.compress(payload))
    with open_input(gzipped) as stream:
        assert plain_file(stream) is None
        assert all(
            c.extent is None for c in otlp_frames.split(stream, "x", "otlp-proto") if isinstance(c, Chunk)
        )
    assert plain_file(io.BufferedReader(io.BytesIO(payload))) is None
