"""The diff in JSON (schema-valid, one object), in words for a terminal, and as summary.md's section."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
from analysis_factories import PAYLOADS, hostile_analysis
from markdown_it import MarkdownIt
from paths import ROOT
from snapshot_factories import CHANGES, EMPTY, month_of_changes

from orchscan.analyzer.changes.diff import compare_scans
from orchscan.analyzer.changes.snapshot import ScanSnapshot, count_scan, take_snapshot
from orchscan.reports.history.diff_report import render_diff_json, render_diff_text
from orchscan.reports.history.markdown import SUMMARY_CHANGES, changes_section
from orchscan.reports.history.store import RecordedScan
from orchscan.reports.history.tracking import ScanHistory

SCHEMA = json.loads((ROOT / "reports" / "schemas" / "diff.schema.json").read_text())
WHEN = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def test_the_json_diff_is_one_schema_valid_object_naming_every_item() -> None:
    document = json.loads(render_diff_json(compare_scans(*month_of_changes())))
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert list(document) == ["orchestrators", "flows", "findings"]
    seen = {
        f"{part} {kind}": [item.get("service") or item.get("id") for item in items]
        for part in ("orchestrators", "flows")
        for kind, items in document[part].items()
    }
    assert seen == CHANGES
    assert all(item["owner"] for items in document["flows"].values() for item in items)
    (changed,) = document["flows"]["changed"]
    assert changed["steps"]["added"] == ["fraud POST /checks"]
    assert changed["steps"]["reordered"]["new"][3:5] == [
        "shipping POST /shipments",
        "payment POST /payments/authorize",
    ]
    assert changed["retries"] == {
        "added": ["shipping POST /shipments"],
        "removed": [],
        "idempotency_key": [{"step": "payment POST /payments/authorize", "old": False, "new": True}],
    }
    assert changed["compensations"]["removed"][0]["operation"] == "DELETE /reservations/{reservationId}"
    assert document["orchestrators"]["added"][0]["role"] == {"old": "gateway", "new": "orchestrator"}
    assert document["orchestrators"]["removed"][0]["role"] == {"old": "orchestrator", "new": None}
    assert document["orchestrators"]["changed"][0]["changes"] == ["hidden"]
    new, resolved = document["findings"]["new"], document["findings"]["resolved"]
    assert [(f["severity"], f["service"]) for f in new] == [("critical", "web-gateway")]
    assert [(f["rule"], f["service"]) for f in resolved] == [("duplicated-flow", "legacy-checkout")]
    assert all(len(f["fingerprint"]) == 16 for f in new + resolved)


def test_an_empty_diff_in_json_and_in_words() -> None:
    old, _ = month_of_changes()
    diff = compare_scans(old, old)
    assert json.loads(render_diff_json(diff)) == {
        "orchestrators": {"added": [], "removed": [], "changed": []},
        "flows": {"added": [], "removed": [], "changed": []},
        "findings": {"new": [], "resolved": []},
    }
    assert render_diff_text(diff, old="scan 3", new="scan 4") == "No changes from scan 3 to scan 4.\n"


def test_the_readable_summary_has_a_tally_and_a_line_per_change() -> None:
    text = render_diff_text(compare_scans(*month_of_changes()), old="old.json", new="new.json")
    lines = text.splitlines()
    assert lines[0] == "Changes from old.json to new.json:"
    assert "Orchestrators: 1 added, 1 removed, 1 changed" in lines
    assert "Findings: 1 new, 1 resolved" in lines
    assert "  + web-gateway: now an orchestrator, score 4.20; was a gateway" in lines
    assert "  - legacy-checkout: no longer seen in the traces" in lines
    assert "  ~ order-saga: now hidden: it also does its own business work" in lines
    assert "      retries added: shipping POST /shipments" in lines
    assert "      now sends an idempotency key when retrying payment POST /payments/authorize" in lines
    assert any(line.startswith("  + [critical] uncompensated-failure web-gateway: ") for line in lines)


def _history(old: ScanSnapshot | None, new: ScanSnapshot) -> ScanHistory:
    def recorded(scan_id: int, snapshot: ScanSnapshot) -> RecordedScan:
        return RecordedScan(scan_id, WHEN, "test", snapshot.start_ns, snapshot.end_ns, count_scan(snapshot))

    current = recorded(8, new)
    previous = recorded(7, old) if old else None
    diff = compare_scans(old, new) if old else None
    return ScanHistory(current, previous, diff, (*([previous] if previous else []), current))


def test_the_summary_section_names_the_scans_and_lists_the_first_changes() -> None:
    old, new = month_of_changes()
    lines = changes_section(_history(old, new))
    assert lines[0] == "## Changes since the previous scan"
    assert lines[2].startswith(
        "Scan 8 compared with scan 7 (recorded 2026-03-02 06:00 UTC): **Orchestrators** 1 added"
    )
    items = [line for line in lines if line.startswith("- ")]
    assert len(items) == 8
    assert items[0] == "- **added** orchestrator web-gateway: now an orchestrator, score 4.20; was a gateway"
    assert any(i.startswith("- **new** finding (critical) uncompensated-failure web-gateway:") for i in items)
    assert (
        changes_section(_history(old, old))[2] == "No changes since scan 7 (recorded 2026-03-02 06:00 UTC)."
    )
    assert "first scan of its history" in changes_section(_history(None, new))[2]


def test_the_summary_section_stays_short_and_renders_span_text_as_text() -> None:
    hostile = take_snapshot(hostile_analysis())
    lines = changes_section(_history(EMPTY, hostile))
    changes = compare_scans(EMPTY, hostile)
    total = len(changes.orchestrators_added) + len(changes.flows_added) + len(changes.findings_new)
    assert total > SUMMARY_CHANGES
    assert sum(1 for line in lines if line.startswith("- ")) == SUMMARY_CHANGES
    assert f"… and {total - SUMMARY_CHANGES} more" in "\n".join(lines)
    html = MarkdownIt("commonmark").render("\n".join(lines))
    for payload in PAYLOADS:
        assert payload not in html or "<" not in payload
    assert "<script" not in html and "<img" not in html and "<iframe" not in html and "<svg" not in html
