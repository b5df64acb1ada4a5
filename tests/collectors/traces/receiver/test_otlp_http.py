"""The receiver's OTLP/HTTP protocol on a real socket: encodings, limits, status codes and response bodies."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.rpc.status_pb2 import Status
from live_backends import LIVE, hotrod_files
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from sdk_spans import encode, record_landscape

from orchscan.collectors.model.spans import plain_strings
from orchscan.collectors.traces.ingest import ingest
from orchscan.collectors.traces.receiver import Receiver, ReceiverLimits

PROTOBUF = "application/x-protobuf"


@dataclass
class Running:
    receiver: Receiver
    folder: Path

    def post(
        self,
        body: bytes,
        content_type: str = PROTOBUF,
        headers: dict[str, str] | None = None,
        path: str = "/v1/traces",
    ) -> tuple[int, dict[str, str], bytes]:
        host, port = self.receiver.address
        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:
            connection.request("POST", path, body, {"Content-Type": content_type, **(headers or {})})
            answer = connection.getresponse()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        finally:
            connection.close()

    def read(self) -> list[dict[str, Any]]:
        """Stop the receiver and read what it wrote, as a scan does."""
        self.receiver.close()
        if not list(self.folder.glob("*.pb")):
            return []
        return plain_strings(ingest([self.folder], jobs=1).spans).drop_columns(["source"]).to_pylist()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    limits = ReceiverLimits(max_request_bytes=256 << 10)
    receiver = Receiver(("127.0.0.1", 0), tmp_path / "out", limits)
    receiver.start()
    stop = threading.Event()
    rotating = threading.Thread(target=receiver.run_until, args=(stop,))
    rotating.start()
    yield Running(receiver, tmp_path / "out")
    stop.set()
    rotating.join()
    receiver.close()


def by_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: (row["trace_id"], row["span_id"]))


def test_the_specification_example_in_json(running: Running) -> None:
    status, headers, body = running.post((LIVE / "otlp" / "trace.json").read_bytes(), "application/json")
    assert (status, headers["content-type"], json.loads(body)) == (200, "application/json", {})
    (row,) = running.read()
    assert (row["trace_id"], row["span_id"], row["parent_span_id"]) == (
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
        "eee19b7ec3c1b173",
    )
    assert (row["service"], row["name"], row["kind"]) == ("my.service", "I'm a server span", "server")
    assert dict(row["attributes"]) == {"my.span.attr": "some value"}


def test_gzip_json_arrives_as_the_file_holds_it(running: Running) -> None:
    # The two captures that are TracesData documents, which is what an export request looks like.
    captures = [path for path in hotrod_files() if "n_plus_one" in path.name]
    for path in captures:
        status, _, _ = running.post(
            gzip.compress(path.read_bytes()), "application/json", {"Content-Encoding": "gzip"}
        )
        assert status == 200
    direct = plain_strings(ingest(captures, jobs=1).spans).drop_columns(["source"]).to_pylist()
    assert by_id(running.read()) == by_id(direct)


def test_unknown_json_fields_are_ignored(running: Running) -> None:
    document = json.loads((LIVE / "otlp" / "trace.json").read_text())
    document["futureField"] = {"x": 1}
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["futureSpanField"] = 7
    assert running.post(json.dumps(document).encode(), "application/json; charset=utf-8")[0] == 200
    assert len(running.read()) == 1


def test_spans_without_usable_ids_are_rejected_one_by_one(running: Running) -> None:
    request = encode(record_landscape().spans[:3])
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].trace_id = bytes(16)
    status, headers, body = running.post(request.SerializeToString())
    response = ExportTraceServiceResponse()
    response.ParseFromString(body)
    assert (status, headers["content-type"]) == (200, PROTOBUF)
    assert response.partial_success.rejected_spans == 1
    assert "16-byte trace id" in response.partial_success.error_message
    kept = {
        span.span_id.hex() for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans[1:]
    }
    kept |= {
        span.span_id.hex() for rs in request.resource_spans[1:] for ss in rs.scope_spans for span in ss.spans
    }
    assert {row["span_id"] for row in running.read()} == kept


def test_a_bad_hex_id_in_json_rejects_its_span_only(running: Running) -> None:
    document = json.loads((LIVE / "otlp" / "trace.json").read_text())
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "spanId": "not-hex"})
    status, _, body = running.post(json.dumps(document).encode(), "application/json")
    assert status == 200
    assert json.loads(body)["partialSuccess"]["rejectedSpans"] == "1"
    assert len(running.read()) == 1


def test_a_full_success_leaves_partial_success_unset(running: Running) -> None:
    status, _, body = running.post(encode(record_landscape().spans).SerializeToString())
    response = ExportTraceServiceResponse()
    response.ParseFromString(body)
    assert status == 200 and not response.HasField("partial_success")


def status_of(body: bytes) -> Status:
    message = Status()
    message.ParseFromString(body)
    return message


def test_undecodable_protobuf_is_a_400_with_a_status(running: Running) -> None:
    status, headers, body = running.post(b"\x0a\xff\xff\xff")
    assert (status, headers["content-type"]) == (400, PROTOBUF)
    assert status_of(body).message.startswith("not an ExportTraceServiceRequest")
    assert running.read() == []


@pytest.mark.parametrize("body", [b"{not json", b'{"resourceSpans": "nope"}', b"[]"])
def test_bad_json_is_a_400_with_a_json_status(running: Running, body: bytes) -> None:
    status, headers, answer = running.post(body, "application/json")
    assert (status, headers["content-type"]) == (400, "application/json")
    assert json.loads(answer)["code"] == 3 and json.loads(answer)["message"]


def test_unsupported_media_and_encodings_are_415(running: Running) -> None:
    status, _, body = running.post(b"hello", "text/plain")
    assert status == 415 and "unsupported Content-Type 'text/plain'" in status_of(body).message
    status, _, body = running.post(b"x", PROTOBUF, {"Content-Encoding": "br"})
    assert status == 415 and "unsupported Content-Encoding 'br'" in status_of(body).message


def test_bodies_over_the_limit_are_413_before_and_after_unpacking(running: Running) -> None:
    status, headers, body = running.post(b"\x0a" * (257 << 10))
    assert (status, headers.get("connection")) == (413, "close")
    assert "larger than the 262,144-byte limit" in status_of(body).message
    bomb = gzip.compress(b"\x00" * (4 << 20))
    assert len(bomb) < 256 << 10
    status, _, body = running.post(bomb, PROTOBUF, {"Content-Encoding": "gzip"})
    assert status == 413 and "once unpacked" in status_of(body).message


def test_chunked_bodies_are_read(running: Running) -> None:
    payload = encode(record_landscape().spans).SerializeToString()
    host, port = running.receiver.address
    connection = http.client.HTTPConnection(host, port, timeout=10)
    pieces = [payload[i : i + 700] for i in range(0, len(payload), 700)]
    connection.request("POST", "/v1/traces", iter(pieces), {"Content-Type": PROTOBUF}, encode_chunked=True)
    assert connection.getresponse().status == 200
    connection.close()
    assert len(running.read()) == len(record_landscape().spans)


def test_an_empty_request_succeeds_and_writes_nothing(running: Running) -> None:
    assert running.post(ExportTraceServiceRequest().SerializeToString())[0] == 200
    assert running.read() == [] and not list(running.folder.iterdir())


def test_other_paths_and_methods(running: Running) -> None:
    assert running.post(b"", path="/v1/metrics")[0] == 404
    host, port = running.receiver.address
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", "/v1/traces")
    answer = connection.getresponse()
    assert (answer.status, answer.getheader("Allow")) == (405, "POST")
    connection.close()
