"""Live sources on the command line: inspect, scan and conform read Jaeger and Tempo as users run them."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from live_backends import JaegerV1, OtlpTrace, Tempo, hotrod_files, petclinic_files, split_traces
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from paths import ROOT, SAMPLE
from replay import Received, Reply, replay

from orchscan.cli import EXIT_INPUT, main

PETCLINIC_WINDOW = ["--start", "2019-11-01T00:00:00Z", "--end", "2020-02-01T00:00:00Z"]
HOTROD_WINDOW = ["--start", "2026-06-01T00:00:00Z", "--end", "2026-08-31T00:00:00Z"]


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_inspect_reads_a_jaeger_source_and_accounts_for_the_fetch() -> None:
    with replay(JaegerV1.from_files(petclinic_files()).route) as server:
        label = f"jaeger+{server.url}"
        result = run("inspect", "--json", "-j", "1", label, *PETCLINIC_WINDOW)
        text = run("inspect", "-j", "1", label, *PETCLINIC_WINDOW)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["totals"]["spans"], doc["totals"]["traces"], doc["totals"]["services"]) == (30, 3, 2)
    (entry,) = doc["files"]
    assert (entry["file"], entry["format"], entry["spans"]) == (label, "jaeger-json", 30)
    (fetched,) = doc["sources"]
    assert fetched["window_start"] == "2019-11-01T00:00:00.000Z"
    assert (fetched["traces"], fetched["pages"], fetched["requests"], fetched["errors"]) == (3, 2, 3, 0)
    assert f"orchscan: fetched {label}: 3 traces in 2 page(s), 3 requests" in result.stderr
    assert text.exit_code == 0
    assert "  window: 2019-11-01T00:00:00.000Z .. 2020-02-01T00:00:00.000Z" in text.stdout
    assert "  fetched: 3 traces in 2 page(s), 3 requests (0 retries, 0 failed)" in text.stdout


def test_scan_reads_files_and_a_tempo_source_together(tmp_path: Path) -> None:
    traces = [OtlpTrace.load(path) for path in hotrod_files()]
    petclinic = petclinic_files()[0]
    with replay(Tempo(traces).route) as server:
        label = f"tempo+{server.url}?api=v1"
        out = tmp_path / "out"
        args = [label, str(petclinic), *HOTROD_WINDOW, "--out", str(out), "--format", "json,markdown"]
        result = run("scan", "-j", "1", *args)
    assert result.exit_code == 0, result.output
    document = json.loads((out / "findings.json").read_text())
    files = {f["file"]: (f["format"], f["spans"]) for f in document["input"]["files"]}
    assert files == {str(petclinic): ("jaeger-json", 17), label: ("otlp-proto", 120)}
    (fetched,) = document["input"]["sources"]
    assert (fetched["source"], fetched["traces"], fetched["requests"]) == (label, 3, 4)
    assert document["format_version"] == "1.7"
    summary = (out / "summary.md").read_text()
    assert (
        "Fetched from tempo+http://127.0.0.1:" in summary and "3 traces in 1 page(s), 4 requests" in summary
    )


@pytest.mark.slow
def test_a_scan_through_tempo_finds_what_a_scan_of_the_file_finds(tmp_path: Path) -> None:
    requests = []
    with gzip.open(SAMPLE / "traces" / "shop.otlp.pb.gz", "rb") as stream:
        while prefix := stream.read(4):
            (size,) = struct.unpack(">I", prefix)
            request = ExportTraceServiceRequest()
            request.ParseFromString(stream.read(size))
            requests.append(request)
    traces = split_traces(requests)
    window = ["--start", "2026-11-26T00:00:00Z", "--end", "2026-11-27T00:00:00Z"]
    common = ["--openapi", str(SAMPLE / "openapi"), "--format", "json", "-j", "1"]
    # The sample's busiest second holds more than a default page of 100 traces.
    limits = ["--max-traces", "5000", "--page-size", "1000"]
    with replay(Tempo(traces).route) as server:
        live = run("scan", f"tempo+{server.url}", *window, *limits, *common, "--out", str(tmp_path / "live"))
    files = run("scan", str(SAMPLE / "traces"), *common, "--out", str(tmp_path / "files"))
    assert live.exit_code == files.exit_code == 0, live.output
    by_live = json.loads((tmp_path / "live" / "findings.json").read_text())
    by_file = json.loads((tmp_path / "files" / "findings.json").read_text())
    assert by_live["input"]["sources"][0]["traces"] == len(traces) == by_file["input"]["traces"]
    assert by_live["input"]["spans"] == by_file["input"]["spans"]
    assert by_live["input"]["skipped"] == by_file["input"]["skipped"] == []
    # The same spans in another order (per trace, as Tempo answers) give the same analysis.
    for section in ("services", "edges", "flows", "findings", "coverage"):
        assert by_live[section] == by_file[section], section


def test_conform_reads_a_live_source(tmp_path: Path) -> None:
    arazzo = ROOT / "tests" / "fixtures" / "arazzo-examples" / "1.0.0" / "pet-coupons.arazzo.yaml"
    with replay(JaegerV1.from_files(petclinic_files()).route) as server:
        out = tmp_path / "out"
        args = [f"jaeger+{server.url}", *PETCLINIC_WINDOW, "--out", str(out), "--format", "json", "-j", "1"]
        result = run("conform", "--arazzo", str(arazzo), *args)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "findings.json").read_text())["input"]["sources"][0]["traces"] == 3


def test_the_auth_secret_reaches_the_backend_and_nowhere_else(tmp_path: Path) -> None:
    secret = "Bearer orchscan-test-s3cr3t"
    backend = JaegerV1.from_files(petclinic_files())
    seen: list[str | None] = []

    def route(request: Received) -> Reply:
        seen.append(request.header("Authorization"))
        if request.header("Authorization") != secret:
            return Reply(b'{"errors":[{"code":401,"msg":"unauthorized"}]}', 401)
        return backend.route(request)

    out = tmp_path / "out"
    with replay(route) as server:
        args = [f"jaeger+{server.url}", *PETCLINIC_WINDOW, "--out", str(out), "-j", "1"]
        completed = subprocess.run(
            [sys.executable, "-m", "orchscan", "scan", *args, "--auth-header-env", "ORCHSCAN_TEST_TOKEN"],
            env={**os.environ, "ORCHSCAN_TEST_TOKEN": secret},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert completed.returncode == 0, completed.stderr
    assert seen and set(seen) == {secret}
    written = [path.read_text() for path in out.rglob("*") if path.is_file()]
    assert written
    for text in [completed.stdout, completed.stderr, *written]:
        assert "s3cr3t" not in text


def test_live_options_without_a_live_source_are_refused() -> None:
    result = run("inspect", str(petclinic_files()[0]), "--since", "1h", "--max-traces", "5")
    assert result.exit_code == EXIT_INPUT
    assert "--since, --max-traces only apply to live sources" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["zipkin+http://h:9411"], "unknown source kind 'zipkin'"),
        (["jaeger+http://u:pw@h:16686"], "credentials do not belong in the URL"),
        (["jaeger+http://h:16686?sevrice=a"], "unknown option(s) sevrice"),
        (["no/such/file.json"], "neither an existing file or folder nor a live source URL"),
        (["jaeger+http://h:16686", "--since", "5x"], "cannot read duration '5x'"),
        (["jaeger+http://h:16686", "--since", "1h", "--start", "2024-01-01"], "exclude each other"),
        (["jaeger+http://h:16686", "--auth-header-env", "ORCHSCAN_NOT_SET"], "ORCHSCAN_NOT_SET is not set"),
    ],
)
def test_bad_sources_and_options_are_usage_errors(args: list[str], message: str) -> None:
    result = run("inspect", *args)
    assert result.exit_code == EXIT_INPUT
    assert message in result.output
    assert "pw" not in result.output


def test_an_unreachable_source_is_an_input_error_naming_it() -> None:
    with replay(lambda request: Reply(b"", 503)) as server:
        result = run("inspect", f"tempo+{server.url}", "--fetch-retries", "1", "--since", "10m")
    assert result.exit_code == EXIT_INPUT
    assert "no spans could be read from 0 file(s) and 1 live source(s)" in result.output
    assert "search failed: HTTP 503" in result.output


def test_help_names_the_live_sources_and_their_options() -> None:
    for command in ("inspect", "scan", "conform"):
        text = run(command, "--help").output
        for expected in (
            "jaeger+http://jaeger:16686",
            "tempo+http://tempo:3200",
            "--since",
            "--start",
            "--end",
            "--auth-header-env",
            "--max-traces",
            "--page-size",
            "--fetch-timeout",
        ):
            assert expected in text, (command, expected)
