"""Cutting OTLP protobuf into chunks: damaged size prefixes, truncation, messages larger than a chunk."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from sdk_spans import Landscape, batches, encode, framed, record_landscape, write

from orchscan.collectors.model.records import Chunk, Skipped
from orchscan.collectors.traces.formats import otlp_frames
from orchscan.collectors.traces.ingest import ingest


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
    import io

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
