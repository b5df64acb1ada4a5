"""findings.json read back as a scan snapshot: the same snapshot as the scan's own, or a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from analysis_factories import hostile_analysis, large_analysis, shop_analysis

from orchscan.analyzer.changes.snapshot import take_snapshot
from orchscan.analyzer.results import Analysis
from orchscan.reports.history.findings_file import read_findings_snapshot
from orchscan.reports.history.store import HistoryError
from orchscan.reports.json_report import findings_document, render_json


@pytest.mark.parametrize(
    "analysis", [shop_analysis(), hostile_analysis(), large_analysis(80)], ids=["shop", "hostile", "large"]
)
def test_a_findings_file_gives_the_snapshot_of_its_scan(tmp_path: Path, analysis: Analysis) -> None:
    path = tmp_path / "findings.json"
    path.write_bytes(render_json(analysis))
    assert read_findings_snapshot(path) == take_snapshot(analysis)


def _document(tmp_path: Path, change: Any) -> Path:
    document = findings_document(shop_analysis())
    change(document)
    path = tmp_path / "findings.json"
    path.write_text(json.dumps(document))
    return path


def test_a_later_minor_version_is_read_the_same_way(tmp_path: Path) -> None:
    path = _document(tmp_path, lambda d: d.update(format_version="1.7", sarif={"added": "later"}))
    assert read_findings_snapshot(path) == take_snapshot(shop_analysis())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(format_version="1.1"), "format 1.1, which has no finding fingerprints"),
        (lambda d: d.update(format_version="2.0"), "format '2.0'; this orchscan reads format 1.2 and later"),
        (lambda d: d.pop("format_version"), "document has no 'format_version'"),
        (lambda d: d["flows"][0]["steps"][1].pop("operation"), r"flows\[0\].steps\[1\] has no 'operation'"),
        (lambda d: d["services"][2].update(score="high"), r"services\[2\].score should be a number"),
        (lambda d: d["input"].update(spans=True), "input.spans should be int, not True"),
        (lambda d: d["findings"][0].update(severity="urgent"), r"findings\[0\].severity 'urgent' is none of"),
        (lambda d: d.update(findings={"a": 1}), "document.findings should be list"),
    ],
    ids=["1.1", "2.0", "no-version", "no-operation", "score", "spans", "severity", "findings"],
)
def test_a_document_it_cannot_read_is_named_with_the_reason(tmp_path: Path, change: Any, reason: str) -> None:
    with pytest.raises(HistoryError, match=reason):
        read_findings_snapshot(_document(tmp_path, change))


def test_files_that_are_not_findings_documents(tmp_path: Path) -> None:
    (tmp_path / "report.html").write_text("<!DOCTYPE html><html></html>")
    with pytest.raises(HistoryError, match="is not JSON"):
        read_findings_snapshot(tmp_path / "report.html")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(HistoryError, match="document has no 'format_version'"):
        read_findings_snapshot(tmp_path / "list.json")
    with pytest.raises(HistoryError, match="cannot read"):
        read_findings_snapshot(tmp_path / "missing.json")
