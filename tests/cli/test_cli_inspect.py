"""The inspect command over real third-party traces, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from paths import ROOT

from orchscan.cli import EXIT_INPUT, main


def test_inspect_hotrod_reports_files_totals_and_skips(fixtures: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", "--json", "-j", "1", str(fixtures / "hotrod" / "traces")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["totals"]["spans"] == 120
    assert doc["totals"]["traces"] == 3
    assert doc["totals"]["services"] == 6
    formats = {Path(f["file"]).name: f["format"] for f in doc["files"]}
    assert formats["jaeger-ui_getTrace-response.otlp.json"] == "otlp-json"
    # The manifests sit beside the traces but are not traces: counted as skipped, not dropped silently.
    assert {Path(s["file"]).name for s in doc["skipped"]} == {
        "jaeger-skills_n_plus_one_full_concurrent.manifest.json",
        "jaeger-skills_n_plus_one_full_serial.manifest.json",
    }


def test_inspect_nothing_readable_exits_2_naming_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_bytes(b"\x00\x01garbage")
    result = CliRunner().invoke(main, ["inspect", str(junk)])
    assert result.exit_code == EXIT_INPUT
    assert "junk.json" in result.output


def test_api_descriptions_passed_as_traces_are_named_as_such(fixtures: Path, tmp_path: Path) -> None:
    spec = ROOT / "sample_traces" / "openapi" / "inventory.json"
    arazzo = tmp_path / "flow.arazzo.yaml"
    arazzo.write_text("arazzo: 1.0.1\ninfo: {title: t, version: '1'}\n")
    traces = fixtures / "hotrod" / "traces" / "jaeger-ui_getTrace-response.otlp.json"
    result = CliRunner().invoke(main, ["inspect", "--json", "-j", "1", str(spec), str(arazzo), str(traces)])
    assert result.exit_code == 0, result.output
    reasons = {Path(s["file"]).name: s["reason"] for s in json.loads(result.output)["skipped"]}
    assert reasons == {
        "inventory.json": "an OpenAPI document, not traces (pass it with --openapi)",
        "flow.arazzo.yaml": "an Arazzo document, not traces (pass it with --arazzo)",
    }


def test_span_text_cannot_drive_the_terminal(tmp_path: Path) -> None:
    """A service named with ANSI and bidi controls is printed as visible escapes (JSON keeps it exact)."""
    evil = "pay\x1b[2J\x1b[31mments\u202egnp"
    span = {
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "id": "00f067aa0ba902b7",
        "name": "GET /x",
        "kind": "SERVER",
        "timestamp": 1_700_000_000_000_000,
        "duration": 1000,
        "localEndpoint": {"serviceName": evil},
    }
    path = tmp_path / "evil\x1b[0m.json"
    path.write_text(json.dumps([span]))
    text = CliRunner().invoke(main, ["inspect", "-j", "1", str(path)])
    assert text.exit_code == 0, text.output
    assert "\x1b" not in text.output and "\u202e" not in text.output
    assert "services: pay\\x1b[2J\\x1b[31mments\\u202egnp" in text.output
    assert "evil\\x1b[0m.json" in text.output
    as_json = CliRunner().invoke(main, ["inspect", "--json", "-j", "1", str(path)])
    assert json.loads(as_json.output)["files"][0]["services"] == [evil]
