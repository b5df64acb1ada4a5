"""SARIF 2.1.0: valid against the OASIS schema, one result per finding, rules described, stable."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
from analysis_factories import RULES as SHOP_RULES
from analysis_factories import hostile_analysis, large_analysis, shop_analysis
from click.testing import CliRunner
from paths import FIXTURES, ROOT, SAMPLE

from orchscan.analyzer.findings.conformance import RULE as DRIFT_RULE
from orchscan.analyzer.findings.rules import RULES as ANALYZER_RULES
from orchscan.analyzer.findings.suppressions import apply_suppressions
from orchscan.analyzer.results import Analysis, Suppression
from orchscan.cli import main
from orchscan.reports.rules import RULES
from orchscan.reports.sarif import FINGERPRINT_KEY, LEVELS, SARIF_SCHEMA, render_sarif

SCHEMA = json.loads((FIXTURES / "sarif" / "sarif-schema-2.1.0.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def sarif(analysis: Analysis) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(render_sarif(analysis, tool_version="1.2.3"))
    VALIDATOR.validate(log)
    return log


def suppressed_shop() -> Analysis:
    analysis = shop_analysis()
    first, second = analysis.findings[0], analysis.findings[3]
    entries = [
        Suppression("Accepted: tracked in SHOP-7", "s.yaml: suppressions[0]", fingerprint=first.fingerprint),
        Suppression(
            "Partner path retired",
            "s.yaml: suppressions[1]",
            rule=second.rule,
            service=second.service,
            expires=date(2030, 1, 1),
        ),
        Suppression(
            "Old", "s.yaml: suppressions[2]", rule="unbounded-wait", service="x", expires=date(2020, 1, 1)
        ),
        Suppression("Typo", "s.yaml: suppressions[3]", rule="unbounded-wait", service="nobody"),
    ]
    return apply_suppressions(analysis, entries, today=date(2024, 6, 1))


def test_the_fixture_is_the_schema_the_log_names_and_it_rejects_a_bad_log() -> None:
    assert SCHEMA["$id"] == SARIF_SCHEMA and SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    log = json.loads(render_sarif(shop_analysis(), tool_version="0"))
    log["runs"][0]["results"][0]["level"] = "fatal"
    assert not VALIDATOR.is_valid(log)


def test_one_result_per_finding_with_rule_level_location_and_fingerprint() -> None:
    analysis = shop_analysis()
    log = sarif(analysis)
    assert log["version"] == "2.1.0" and log["$schema"] == SARIF_SCHEMA
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("orchscan", "1.2.3")
    rules = driver["rules"]
    assert [r["id"] for r in rules][: len(RULES)] == list(RULES)
    assert all(r["help"]["text"] and r["shortDescription"]["text"] for r in rules)
    results = run["results"]
    assert len(results) == len(analysis.findings)
    for finding, result in zip(analysis.findings, results, strict=True):
        assert result["ruleId"] == finding.rule == rules[result["ruleIndex"]]["id"]
        assert result["level"] == LEVELS[finding.severity]
        assert result["message"]["text"] == finding.message
        assert result["partialFingerprints"] == {FINGERPRINT_KEY: finding.fingerprint}
        (location,) = result["locations"][0]["logicalLocations"]
        if finding.flow:
            assert location["fullyQualifiedName"] == f"{finding.service}/{finding.flow}"
            assert location["name"] == finding.flow and location["kind"] == "function"
        else:
            assert location == {
                "name": finding.service,
                "fullyQualifiedName": finding.service,
                "kind": "module",
            }
        assert "suppressions" not in result
    assert "invocations" not in run


def test_suppressed_findings_are_results_with_the_reason_and_entries_are_notified() -> None:
    analysis = suppressed_shop()
    log = sarif(analysis)
    (run,) = log["runs"]
    results = run["results"]
    assert len(results) == len(shop_analysis().findings)
    suppressed = [r for r in results if "suppressions" in r]
    assert [r["suppressions"][0]["justification"] for r in suppressed] == [
        "Accepted: tracked in SHOP-7",
        "Partner path retired",
    ]
    assert suppressed[1]["suppressions"][0]["properties"] == {
        "origin": "s.yaml: suppressions[1]",
        "expires": "2030-01-01",
    }
    notes = [n["message"]["text"] for n in run["invocations"][0]["toolConfigurationNotifications"]]
    assert notes == [
        "s.yaml: suppressions[2]: suppression expired on 2020-01-01; its findings count again",
        "s.yaml: suppressions[3]: suppression matched no finding",
    ]


def test_hostile_span_text_is_printable_and_the_log_still_valid() -> None:
    text = render_sarif(hostile_analysis(), tool_version="0")
    VALIDATOR.validate(json.loads(text))
    evil = shop_analysis()
    findings = tuple(dataclasses.replace(f, message="a\x1b[2Jb\u202ec") for f in evil.findings)
    evil = dataclasses.replace(evil, findings=findings)
    for result in sarif(evil)["runs"][0]["results"]:
        assert result["message"]["text"] == "a\\x1b[2Jb\\u202ec"


def test_a_large_landscape_is_valid_and_deterministic() -> None:
    analysis = large_analysis()
    assert render_sarif(analysis, tool_version="0") == render_sarif(large_analysis(), tool_version="0")
    assert len(sarif(analysis)["runs"][0]["results"]) == len(analysis.findings)


def test_the_sample_scan_writes_a_valid_log(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["scan", str(SAMPLE / "traces"), "--openapi", str(SAMPLE / "openapi"), "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--format", "sarif"])
    assert result.exit_code == 0, result.output
    log = json.loads((out / "results.sarif").read_text())
    VALIDATOR.validate(log)
    assert {r["ruleId"] for r in log["runs"][0]["results"]} >= {
        "missing-idempotency",
        "uncompensated-failure",
    }


def test_the_catalogue_covers_every_rule_the_analyzer_raises() -> None:
    documented = set(
        re.findall(r"^\| `([a-z-]+)`(?:, `([a-z-]+)`)? \|", (ROOT / "docs" / "method.md").read_text(), re.M)
    )
    from_docs = {rule for pair in documented for rule in pair if rule}
    assert set(RULES) == from_docs
    assert {*ANALYZER_RULES, DRIFT_RULE, *SHOP_RULES, "undocumented-endpoint", "unused-operation"} <= set(
        RULES
    )
