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
