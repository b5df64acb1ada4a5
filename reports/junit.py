"""JUnit XML (``junit.xml``): the scan as test results, for CI systems that chart them.

One test suite per rule and one test case per finding; a finding that trips the ``--fail-on``
gate is a failure, a suppressed finding is skipped (with its reason), any other finding passes
with its message as output. A rule without findings is one passing case, so the suite lists
every check that ran. Span text is made printable: XML 1.0 cannot hold most control characters.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orchscan.analyzer.findings.gate import Gate
from orchscan.analyzer.results import Analysis, Finding, Suppression
from orchscan.reports.rules import RULES
from orchscan.reports.untrusted import printable


def render_junit(analysis: Analysis, *, gate: Gate) -> str:
    """The JUnit XML document of a scan; failures are exactly the findings that trip ``gate``."""
    cases: dict[str, list[ET.Element]] = {rule_id: [] for rule_id in RULES}
    for finding in analysis.findings:
        cases.setdefault(finding.rule, []).append(_case(finding, gate, None))
    for item in analysis.suppressions.suppressed:
        cases.setdefault(item.finding.rule, []).append(_case(item.finding, gate, item.suppression))
    root = ET.Element("testsuites", name="orchscan")
    for rule_id, elements in cases.items():
        suite = ET.SubElement(root, "testsuite", name=f"orchscan.{rule_id}")
        suite.extend(
            elements or [ET.Element("testcase", classname=f"orchscan.{rule_id}", name="no findings")]
        )
        _count(suite, list(suite))
    _count(root, [case for suite in root for case in suite])
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _case(finding: Finding, gate: Gate, suppression: Suppression | None) -> ET.Element:
    target = printable(finding.subject or finding.flow or "(service)")
    case = ET.Element(
        "testcase", classname=f"orchscan.{finding.rule}", name=f"{printable(finding.service)}: {target}"
    )
    properties = ET.SubElement(case, "properties")
    for name, value in (("fingerprint", finding.fingerprint), ("severity", finding.severity)):
        ET.SubElement(properties, "property", name=name, value=value)
    details = _details(finding)
    if suppression is not None:
        ET.SubElement(case, "skipped", message=f"suppressed: {printable(suppression.reason)}")
    elif gate.trips(finding):
        failure = ET.SubElement(case, "failure", type=finding.severity, message=printable(finding.message))
        failure.text = details
        return case
    ET.SubElement(case, "system-out").text = details
    return case


def _details(finding: Finding) -> str:
    lines = [f"[{finding.severity}] {finding.message}", *(f"- {e}" for e in finding.evidence)]
    lines.append(f"Recommendation: {finding.recommendation}")
    return "\n".join(printable(line) for line in lines)


def _count(element: ET.Element, cases: list[ET.Element]) -> None:
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    element.set("errors", "0")
    element.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
