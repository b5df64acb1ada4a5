"""Suppressions and the --fail-on gate, as pure functions over findings."""

from __future__ import annotations

from datetime import date

from analysis_factories import shop_analysis

from orchscan.analyzer.findings.gate import gate_for
from orchscan.analyzer.findings.suppressions import suppress_findings
from orchscan.analyzer.results import SEVERITIES, Suppression

TODAY = date(2024, 6, 1)


def test_fingerprint_and_rule_service_entries_split_the_findings() -> None:
    findings = shop_analysis().findings
    one, other = findings[0], findings[-1]
    by_fingerprint = Suppression("r1", "f: suppressions[0]", fingerprint=one.fingerprint)
    by_rule = Suppression("r2", "f: suppressions[1]", rule=other.rule, service=other.service)
    active, result = suppress_findings(findings, [by_fingerprint, by_rule], today=TODAY)
    matched_by_rule = [f for f in findings if f.rule == other.rule and f.service == other.service]
    assert [s.finding for s in result.suppressed] == [f for f in findings if f == one or f in matched_by_rule]
    assert active == tuple(f for f in findings if f != one and f not in matched_by_rule)
    assert {s.suppression.reason for s in result.suppressed} == {"r1", "r2"}
    assert result.expired == () and result.unused == ()


def test_an_entry_holds_through_its_expiry_day_and_not_after() -> None:
    findings = shop_analysis().findings
    entry = Suppression(
        "until May", "f: suppressions[0]", fingerprint=findings[0].fingerprint, expires=date(2024, 5, 31)
    )
    active, result = suppress_findings(findings, [entry], today=date(2024, 5, 31))
    assert len(result.suppressed) == 1 and len(active) == len(findings) - 1
    active, result = suppress_findings(findings, [entry], today=TODAY)
    assert active == findings and result.expired == (entry,) and result.suppressed == ()


def test_entries_that_match_nothing_are_reported_unused_and_the_first_match_wins() -> None:
    findings = shop_analysis().findings
    first = Suppression("first", "f: suppressions[0]", fingerprint=findings[0].fingerprint)
    second = Suppression("second", "f: suppressions[1]", rule=findings[0].rule, service=findings[0].service)
    stale = Suppression("stale", "f: suppressions[2]", rule="unbounded-wait", service="gone")
    _, result = suppress_findings(findings[:1], [first, second, stale], today=TODAY)
    assert [s.suppression for s in result.suppressed] == [first]
    assert result.unused == (second, stale)


def test_the_gate_counts_severity_and_worse_within_its_rules() -> None:
    findings = shop_analysis().findings
    for severity in SEVERITIES:
        limit = SEVERITIES.index(severity)
        expected = tuple(f for f in findings if SEVERITIES.index(f.severity) <= limit)
        assert gate_for(severity).tripped_by(findings) == expected
    assert gate_for("none").tripped_by(findings) == ()
    assert gate_for("info", {"workflow-drift"}).tripped_by(findings) == ()
    rule = findings[0].rule
    assert gate_for("info", {rule}).tripped_by(findings) == tuple(f for f in findings if f.rule == rule)
    assert gate_for("high", {"workflow-drift"}).describe() == "high or worse among workflow-drift findings"
