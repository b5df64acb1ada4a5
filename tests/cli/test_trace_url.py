"""``orchscan scan --trace-url TEMPLATE``: example trace ids in the HTML report link to a trace UI."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner
from paths import SAMPLE

from orchscan.cli import main

JAEGER = "https://jaeger.example/trace/{trace_id}"


def scan(out: Path, *extra: str) -> tuple[int, str]:
    args = ["scan", str(SAMPLE / "traces"), "--out", str(out), "--format", "html,json", *extra]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


def test_example_trace_ids_link_into_the_trace_ui(tmp_path: Path) -> None:
    status, output = scan(tmp_path / "out", "--trace-url", JAEGER)
    assert status == 0, output
    html = (tmp_path / "out" / "report.html").read_text()
    findings = json.loads((tmp_path / "out" / "findings.json").read_text())["findings"]
    wanted = {t for f in findings for t in f["example_traces"]}
    linked = set(
        re.findall(r'<a href="https://jaeger\.example/trace/([0-9a-f]{32})" rel="noopener noreferrer"', html)
    )
    assert wanted and wanted <= linked


def test_a_template_that_cannot_give_a_safe_link_is_a_usage_error(tmp_path: Path) -> None:
    for template in ("javascript:alert({trace_id})", "https://jaeger.example/trace/"):
        status, output = scan(tmp_path / "out", "--trace-url", template)
        assert status == 2
        assert "Invalid value for '--trace-url'" in output
    assert not (tmp_path / "out").exists()  # refused before anything was read or written
