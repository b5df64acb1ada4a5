"""``orchscan receive`` in a real process, fed by the OpenTelemetry SDK's OTLP/HTTP exporter; then scanned."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from sdk_spans import Landscape, assert_matches_landscape, record_landscape

from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces.ingest import ingest


@pytest.fixture(scope="module")
def land() -> Landscape:
    return record_landscape()


@contextmanager
def receiving(out: Path, *options: str) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """A receiver process on a free port of 127.0.0.1, its traces URL, and what it printed before."""
    command = [sys.executable, "-m", "orchscan", "receive", "--listen", "127.0.0.1:0", "--out", str(out)]
    process = subprocess.Popen(
        [*command, *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        before: list[str] = []
        found = None
        while not found and (line := process.stdout.readline()):  # empty once the process ended
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+/v1/traces)", line)
            before += [] if found else [line]
        assert found, f"the receiver ended early: {before}"
        yield process, found.group(1), before
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def stop(process: subprocess.Popen[str], signum: int = signal.SIGTERM) -> tuple[str, str]:
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return out, err


def test_sdk_exports_arrive_whole_and_a_scan_reads_them(land: Landscape, tmp_path: Path) -> None:
    out = tmp_path / "received"
    with receiving(out) as (process, url, _):
        exporter = OTLPSpanExporter(endpoint=url, compression=Compression.Gzip)
        # One request per four spans, as a batching processor would send them.
        results = [exporter.export(land.spans[i : i + 4]) for i in range(0, len(land.spans), 4)]
        exporter.shutdown()
        printed, _ = stop(process)
    assert set(results) == {SpanExportResult.SUCCESS}
    (written,) = sorted(out.iterdir())
    assert re.fullmatch(r"traces-\d{8}T\d{6}Z-\d+-0001\.pb", written.name)
    assert f"wrote {written.as_posix()}" in printed
    assert f"{len(results)} request(s), {len(land.spans)} span(s) written, 0 rejected" in printed
    result = ingest([out], jobs=1)
    assert result.files[0].format == "otlp-proto" and result.skipped == ()
    assert_matches_landscape(plain_strings(result.spans).to_pylist(), land)
    scanned = subprocess.run(
        [sys.executable, "-m", "orchscan", "inspect", "--json", "-j", "1", str(out)],
        capture_output=True,
        text=True,
    )
    assert json.loads(scanned.stdout)["totals"]["spans"] == len(land.spans)


def test_sigint_completes_the_current_file(land: Landscape, tmp_path: Path) -> None:
    out = tmp_path / "received"
    with receiving(out) as (process, url, _):
        assert OTLPSpanExporter(endpoint=url).export(land.spans) == SpanExportResult.SUCCESS
        partial = list(out.glob(".*.partial"))
        assert len(partial) == 1 and not list(out.glob("*.pb"))  # open, hidden from a scan
        stop(process, signal.SIGINT)
    assert not list(out.glob(".*")) and len(list(out.glob("*.pb"))) == 1
    assert ingest([out], jobs=1).spans.num_rows == len(land.spans)


def test_an_overloaded_receiver_answers_503_and_the_exporter_comes_back(
    land: Landscape, tmp_path: Path
) -> None:
    out = tmp_path / "received"
    with receiving(out, "--max-in-flight", "1") as (process, url, _):
        port = int(url.split(":")[2].split("/")[0])
        # A client that sends its headers and part of its body, then stalls: it holds the one slot.
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 10\r\n\r\nabc"
        )
        time.sleep(0.3)
        outcome: list[SpanExportResult] = []
        exporting = threading.Thread(
            target=lambda: outcome.append(OTLPSpanExporter(endpoint=url).export(land.spans))
        )
        began = time.monotonic()
        exporting.start()
        time.sleep(0.3)
        stalled.sendall(b"defghij")  # the body completes (as garbage: 400) and frees the slot
        assert stalled.recv(4096).startswith(b"HTTP/1.1 400 ")
        stalled.close()
        exporting.join(timeout=30)
        waited = time.monotonic() - began
        printed, errors = stop(process)
    assert outcome == [SpanExportResult.SUCCESS]
    assert waited >= 1.0  # the exporter honoured Retry-After: 1
    assert "refused: 1 x HTTP 400, 1 x HTTP 503" in printed
    assert "503 for POST /v1/traces from 127.0.0.1: too many requests in progress" in errors
    assert ingest([out], jobs=1).spans.num_rows == len(land.spans)


def test_files_rotate_by_size_and_every_frame_is_read(land: Landscape, tmp_path: Path) -> None:
    out = tmp_path / "received"
    with receiving(out, "--max-file-bytes", "1000") as (process, url, _):
        exporter = OTLPSpanExporter(endpoint=url)
        for i in range(0, len(land.spans), 3):
            assert exporter.export(land.spans[i : i + 3]) == SpanExportResult.SUCCESS
        stop(process)
    files = sorted(out.glob("*.pb"))
    assert len(files) > 2 and all(f.name.endswith(f"-{n + 1:04d}.pb") for n, f in enumerate(files))
    assert_matches_landscape(plain_strings(ingest([out], jobs=1).spans).to_pylist(), land)


def test_an_old_file_is_completed_while_the_receiver_runs(land: Landscape, tmp_path: Path) -> None:
    out = tmp_path / "received"
    with receiving(out, "--max-file-age", "0.3") as (process, url, _):
        assert OTLPSpanExporter(endpoint=url).export(land.spans) == SpanExportResult.SUCCESS
        deadline = time.monotonic() + 10
        while not list(out.glob("*.pb")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(list(out.glob("*.pb"))) == 1 and not list(out.glob(".*"))  # complete, no new write needed
        stop(process)


def test_a_file_left_unfinished_is_completed_at_the_next_start(land: Landscape, tmp_path: Path) -> None:
    out = tmp_path / "received"
    with receiving(out) as (process, url, _):
        assert OTLPSpanExporter(endpoint=url).export(land.spans) == SpanExportResult.SUCCESS
        process.kill()  # no chance to complete the file
        process.wait()
    (left,) = out.glob(".*.partial")
    with receiving(out) as (process, url, before):
        stop(process)
    recovered = out / left.name[1 : -len(".partial")]
    assert before == [
        f"orchscan receive: completed {recovered.as_posix()}, left unfinished by an earlier run\n"
    ]
    assert recovered.exists() and ingest([out], jobs=1).spans.num_rows == len(land.spans)
