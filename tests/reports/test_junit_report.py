"""JUnit XML: one suite per rule, one case per finding, failures exactly at the gate, suppressions skipped."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from datetime import date

from analysis_factories import hostile_analysis, shop_analysis

from orchscan.analyzer.findings.gate import gate_for
from orchscan.analyzer.findings.suppressions import apply_suppressions
from orchscan.analyzer.results import Suppression
from orchscan.reports.junit import render_junit
from orchscan.reports.rules import RULES


def parse(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text.encode("utf-8"))


def test_suites_per_rule_cases_per_finding_and_failures_at_the_gate() -> None:
    analysis = shop_analysis()
    gate = gate_for("high")
    root = parse(render_junit(analysis, gate=gate))
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert list(suites) == [f"orchscan.{rule}" for rule in RULES]
    failing = [f for f in analysis.findings if gate.trips(f)]
    assert failing and root.get("failures") == str(len(failing)) and root.get("skipped") == "0"
    for rule in RULES:
        suite = suites[f"orchscan.{rule}"]
        mine = [f for f in analysis.findings if f.rule == rule]
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases)) == str(max(len(mine), 1))
        if not mine:
            assert [c.get("name") for c in cases] == ["no findings"]
            continue
        for finding, case in zip(mine, cases, strict=True):
            fingerprint = case.find("properties/property[@name='fingerprint']")
            assert fingerprint is not None and fingerprint.get("value") == finding.fingerprint
            failure = case.find("failure")
            assert (failure is not None) == gate.trips(finding)
            if failure is not None:
                assert failure.get("message") == finding.message and failure.get("type") == finding.severity
                assert "Recommendation: " in (failure.text or "")
            else:
                assert finding.message in (case.findtext("system-out") or "")
    assert int(root.get("tests", "0")) == sum(int(s.get("tests", "0")) for s in suites.values())


def test_no_gate_means_no_failures_and_conform_gates_on_drift_only() -> None:
    analysis = shop_analysis()
    assert parse(render_junit(analysis, gate=gate_for("none"))).get("failures") == "0"
    drift_only = gate_for("info", {"workflow-drift"})
    assert parse(render_junit(analysis, gate=drift_only)).get("failures") == "0"


def test_suppressed_findings_are_skipped_with_their_reason() -> None:
    analysis = shop_analysis()
    first = analysis.findings[0]
    entry = Suppression(
        "Known & accepted <for now>", "s.yaml: suppressions[0]", fingerprint=first.fingerprint
    )
    root = parse(
        render_junit(apply_suppressions(analysis, [entry], today=date(2024, 1, 1)), gate=gate_for("info"))
    )
    skipped = [case for case in root.iter("testcase") if case.find("skipped") is not None]
    assert len(skipped) == 1 and root.get("skipped") == "1"
    assert skipped[0].find("skipped").get("message") == "suppressed: Known & accepted <for now>"  # type: ignore[union-attr]
    assert root.get("failures") == str(len(analysis.findings) - 1)


def test_control_characters_never_reach_the_xml() -> None:
    analysis = hostile_analysis()
    evil = tuple(
        dataclasses.replace(f, message="bell\x07 esc\x1b[0m nul\x00 \u202e") for f in analysis.findings
    )
    text = render_junit(dataclasses.replace(analysis, findings=evil), gate=gate_for("info"))
    root = parse(text)
    messages = [f.get("message") for f in root.iter("failure")]
    assert messages and all(m == "bell\\x07 esc\\x1b[0m nul\\x00 \\u202e" for m in messages)
