"""SARIF 2.1.0 (``results.sarif``): findings for code-scanning dashboards such as GitHub's.

One result per finding: the rule id, a level from the severity, the message, a logical location
naming the service and the flow, and ``partialFingerprints`` from the finding's fingerprint, so
that a dashboard tracks one finding across scans. Suppressed findings are results too, carrying
a SARIF ``suppressions`` entry with the team's reason; expired and unused suppression entries
are tool configuration notifications. Every rule of the catalogue is described with help text.
No timestamps or absolute paths: equal scans give equal bytes.
"""

from __future__ import annotations

from typing import Any

import orjson

from orchscan.analyzer.results import Analysis, Finding, Suppression
from orchscan.reports.rules import RULES, describe_rule
from orchscan.reports.untrusted import printable

SARIF_VERSION = "2.1.0"
#: The ``$id`` of the OASIS SARIF TC's 2.1.0 schema, which the tests validate every log against.
SARIF_SCHEMA = (
    "https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json"
)

#: Severity -> SARIF result level.
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}

#: The ``partialFingerprints`` key of orchscan's finding fingerprint (rule, service, subject).
FINGERPRINT_KEY = "orchscanFinding/v1"


def render_sarif(analysis: Analysis, *, tool_version: str) -> str:
    """The SARIF log of a scan as indented JSON text."""
    rule_ids = list(RULES) + sorted({f.rule for f in _all_findings(analysis)} - set(RULES))
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    results = [_result(f, index, None) for f in analysis.findings]
    results += [_result(s.finding, index, s.suppression) for s in analysis.suppressions.suppressed]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "orchscan",
                "version": tool_version,
                "semanticVersion": tool_version,
                "rules": [_rule(rule_id) for rule_id in rule_ids],
            }
        },
        "results": results,
    }
    notes = _notifications(analysis)
    if notes:
        run["invocations"] = [{"executionSuccessful": True, "toolConfigurationNotifications": notes}]
    log = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
    return orjson.dumps(log, option=orjson.OPT_INDENT_2).decode() + "\n"


def _all_findings(analysis: Analysis) -> list[Finding]:
    return [*analysis.findings, *(s.finding for s in analysis.suppressions.suppressed)]


def _rule(rule_id: str) -> dict[str, Any]:
    rule = describe_rule(rule_id)
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.help},
        "help": {"text": rule.help},
    }


def _result(finding: Finding, index: dict[str, int], suppression: Suppression | None) -> dict[str, Any]:
    service = printable(finding.service)
    location: dict[str, Any] = {"name": service, "fullyQualifiedName": service, "kind": "module"}
    if finding.flow:
        flow = printable(finding.flow)
        location = {"name": flow, "fullyQualifiedName": f"{service}/{flow}", "kind": "function"}
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": index[finding.rule],
        "level": LEVELS[finding.severity],
        "message": {"text": printable(finding.message)},
        "locations": [{"logicalLocations": [location]}],
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
        "properties": {
            "severity": finding.severity,
            "service": finding.service,
            "flow": finding.flow,
            "subject": finding.subject,
            "evidence": list(finding.evidence),
            "recommendation": finding.recommendation,
            "exampleTraces": list(finding.example_traces),
        },
    }
    if suppression is not None:
        result["suppressions"] = [_suppression(suppression)]
    return result


def _suppression(entry: Suppression) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "external",
        "justification": printable(entry.reason),
        "properties": {"origin": entry.origin},
    }
    if entry.expires is not None:
        out["properties"]["expires"] = entry.expires.isoformat()
    return out


def _notifications(analysis: Analysis) -> list[dict[str, Any]]:
    notes = [
        {
            "level": "warning",
            "message": {
                "text": f"{printable(e.origin)}: suppression expired on {e.expires}; its findings count again"
            },
        }
        for e in analysis.suppressions.expired
    ]
    notes += [
        {"level": "note", "message": {"text": f"{printable(e.origin)}: suppression matched no finding"}}
        for e in analysis.suppressions.unused
    ]
    return notes
