"""CI gates on the sample landscape: what --fail-on counts and says, suppressions, reports on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from paths import SAMPLE

from orchscan.cli import main
from orchscan.exits import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK

TRACES = str(SAMPLE / "traces")
SPECS = str(SAMPLE / "openapi")


def scan(*args: str, epoch: str = "1717200000") -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess (SOURCE_DATE_EPOCH 2024-06-01 decides what has expired)."""
    return subprocess.run(
        [sys.executable, "-m", "orchscan", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "SOURCE_DATE_EPOCH": epoch},
    )


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("gates") / "report"
    result = CliRunner().invoke(main, ["scan", TRACES, "--openapi", SPECS, "--out", str(out)])
    assert result.exit_code == EXIT_OK, result.output
    return out, json.loads((out / "findings.json").read_text())


def _high(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in document["findings"] if f["severity"] in ("critical", "high")]


def test_fail_on_names_every_finding_that_tripped_it(
    tmp_path: Path, baseline: tuple[Path, dict[str, Any]]
) -> None:
    result = scan("scan", TRACES, "--openapi", SPECS, "--out", str(tmp_path / "o"), "--fail-on", "high")
    assert result.returncode == EXIT_FINDINGS
    high = _high(baseline[1])
    assert f"orchscan: {len(high)} finding(s) at --fail-on high or worse:" in result.stderr
    for finding in high:
        assert f"  {finding['severity']} {finding['rule']} {finding['service']} (" in result.stderr
        assert f"[{finding['fingerprint']}]" in result.stderr
    medium = [f for f in baseline[1]["findings"] if f["severity"] == "medium"]
    assert medium and all(f"[{f['fingerprint']}]" not in result.stderr for f in medium)


def _drafted_orders(out: Path, tmp_path: Path, *, drift: bool) -> Path:
    document = yaml.safe_load((out / "arazzo" / "orders.arazzo.yaml").read_text())
    if drift:
        steps = document["workflows"][0]["steps"]
        document["workflows"][0]["steps"] = [s for s in steps if s["stepId"] != "sendNotification"]
        document["workflows"][0].pop("outputs", None)
    path = tmp_path / "orders.arazzo.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    # The draft's source descriptions point at the specs next to the drafts.
    for spec in (out / "arazzo").glob("*.yaml"):
        if not spec.name.endswith(".arazzo.yaml"):
            (tmp_path / spec.name).write_text(spec.read_text())
    return path


def test_conform_gates_on_drift_only(tmp_path: Path, baseline: tuple[Path, dict[str, Any]]) -> None:
    out, document = baseline
    assert _high(document), "the scan's own findings must exist for this test to mean anything"
    (tmp_path / "exact").mkdir()
    exact = _drafted_orders(out, tmp_path / "exact", drift=False)
    args = ["conform", TRACES, "--openapi", SPECS, "--format", "json", "--fail-on", "info"]
    clean = scan(*args, "--arazzo", str(exact), "--out", str(tmp_path / "a"))
    assert clean.returncode == EXIT_OK, clean.stderr
    found = json.loads((tmp_path / "a" / "findings.json").read_text())["findings"]
    assert not [f for f in found if f["rule"] == "workflow-drift"] and _high({"findings": found})
    (tmp_path / "drift").mkdir()
    drifted = _drafted_orders(out, tmp_path / "drift", drift=True)
    gated = scan(*args, "--arazzo", str(drifted), "--out", str(tmp_path / "b"))
    assert gated.returncode == EXIT_FINDINGS
    assert "among workflow-drift findings" in gated.stderr
    listed = [line for line in gated.stderr.splitlines() if line.startswith("  ")]
    assert listed and all(" workflow-drift orders" in line for line in listed)


def _suppressions(tmp_path: Path, document: dict[str, Any]) -> Path:
    by_key = {(f["rule"], f["service"]): f for f in _high(document)}
    idempotency = by_key[("missing-idempotency", "orders")]
    entries = [
        {"fingerprint": idempotency["fingerprint"], "reason": "Shipping dedupes on order id (SHOP-12)"},
        {
            "rule": "uncompensated-failure",
            "service": "partner-api",
            "reason": "Partner API is being retired",
            "expires": "2024-12-31",
        },
        {
            "rule": "uncompensated-failure",
            "service": "orders",
            "reason": "Saga lands in Q1",
            "expires": "2024-03-31",
        },
        {"rule": "unbounded-wait", "service": "no-such-service", "reason": "stale entry"},
    ]
    path = tmp_path / "suppressions.yaml"
    path.write_text(yaml.safe_dump({"suppressions": entries}, sort_keys=False))
    return path


def test_suppressions_are_honoured_by_the_gate_and_listed_by_every_report(
    tmp_path: Path, baseline: tuple[Path, dict[str, Any]]
) -> None:
    document = baseline[1]
    accepted = _suppressions(tmp_path, document)
    out = tmp_path / "out"
    formats = "json,markdown,html,sarif,junit"
    result = scan(
        "scan",
        TRACES,
        "--openapi",
        SPECS,
        "--out",
        str(out),
        "--format",
        formats,
        "--fail-on",
        "high",
        "--suppressions",
        str(accepted),
    )
    # The expired entry no longer holds: orders' uncompensated failure trips the gate again.
    assert result.returncode == EXIT_FINDINGS
    listed = [line for line in result.stderr.splitlines() if line.startswith("  high ")]
    assert len(listed) == 1 and "uncompensated-failure orders" in listed[0]
    assert "suppressions[2]: suppression expired on 2024-03-31; its findings count again" in result.stderr
    assert "suppressions[3]: suppression matched no finding" in result.stderr
    assert "(2 suppressed)" in result.stdout

    findings = json.loads((out / "findings.json").read_text())
    suppressed = findings["suppressions"]["suppressed"]
    assert [(s["finding"]["rule"], s["finding"]["service"]) for s in suppressed] == [
        ("missing-idempotency", "orders"),
        ("uncompensated-failure", "partner-api"),
    ]
    assert suppressed[1]["suppression"]["expires"] == "2024-12-31"
    expired = findings["suppressions"]["expired"]
    assert [e["origin"].rsplit(": ", 1)[1] for e in expired] == ["suppressions[2]"]
    assert len(findings["findings"]) == len(document["findings"]) - 2

    sarif = json.loads((out / "results.sarif").read_text())["runs"][0]
    justified = [r["suppressions"][0]["justification"] for r in sarif["results"] if "suppressions" in r]
    assert justified == ["Shipping dedupes on order id (SHOP-12)", "Partner API is being retired"]
    assert len(sarif["results"]) == len(document["findings"])

    junit = ET.parse(out / "junit.xml").getroot()
    assert junit.get("skipped") == "2" and junit.get("failures") == "1"
    summary = (out / "summary.md").read_text()
    assert "## Suppressed findings (2)" in summary and "Partner API is being retired" in summary
    html = (out / "report.html").read_text()
    assert "Suppressed findings" in html and "Shipping dedupes on order id (SHOP-12)" in html

    later = scan(
        "scan",
        TRACES,
        "--openapi",
        SPECS,
        "--out",
        str(out),
        "--format",
        "json",
        "--fail-on",
        "high",
        "--suppressions",
        str(accepted),
        epoch="1767225600",
    )
    # On 2026-01-01 the partner entry has expired too.
    assert later.returncode == EXIT_FINDINGS
    assert sum(line.startswith("  high ") for line in later.stderr.splitlines()) == 2


def test_a_broken_suppression_file_is_a_usage_error_naming_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("suppressions:\n  - rule: missing-idempotency\n    service: orders\n")
    result = scan("scan", TRACES, "--out", str(tmp_path / "o"), "--suppressions", str(bad))
    assert result.returncode == EXIT_INPUT
    assert f"orchscan: {bad}: suppressions[0]: a reason is required" in result.stderr
    assert not (tmp_path / "o").exists()


def test_one_report_goes_to_standard_output(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchscan", "scan", TRACES, "--out", "-", "--format", "sarif"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert json.loads(result.stdout)["version"] == "2.1.0"
    assert "spans" in result.stderr and "wrote" not in result.stderr
    assert list(tmp_path.iterdir()) == []
    for formats in ("arazzo", "json,markdown"):
        refused = CliRunner().invoke(main, ["scan", TRACES, "--out", "-", "--format", formats])
        assert refused.exit_code == EXIT_INPUT and "--out - writes one report" in refused.output
