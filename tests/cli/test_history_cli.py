"""``scan --history``, ``history`` and ``diff`` end to end, on the sample landscape and a changed copy of it.

The changed landscape is cut from the sample's own spans (:mod:`landscape_edits`): partner-api
takes no traffic any more, and mobile-bff no longer undoes inventory and payment when a later
step fails. The scans record into a real SQLite file; the last test starts real processes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from analysis_factories import shop_analysis
from click.testing import CliRunner, Result
from history_files import write_v1_history
from landscape_edits import sample_batches, without_calls, without_traces_entering, write_batches
from paths import SAMPLE

from orchscan.analyzer.changes.snapshot import take_snapshot
from orchscan.cli import main
from orchscan.reports.history.findings_file import read_findings_snapshot
from orchscan.reports.history.store import open_history
from orchscan.reports.history.tracking import record_scan
from orchscan.reports.json_report import findings_document

EPOCH = "1772431200"  # 2026-03-02 06:00:00 UTC
EMPTY = {
    "orchestrators": {"added": [], "removed": [], "changed": []},
    "flows": {"added": [], "removed": [], "changed": []},
    "findings": {"new": [], "resolved": []},
}


def run(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args], env={"SOURCE_DATE_EPOCH": EPOCH})
    assert "Traceback" not in result.output, result.output
    return result


def scan(traces: Path, out: Path, history: Path, *extra: str) -> Result:
    return run("scan", traces, "--openapi", SAMPLE / "openapi", "--out", out, "--history", history, *extra)


@dataclass(frozen=True)
class Scanned:
    """Three scans recorded into one history: the sample twice, then the changed landscape."""

    history: Path
    outs: tuple[Path, Path, Path]
    outputs: tuple[str, str, str]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Scanned:
    root = tmp_path_factory.mktemp("history")
    changed = without_traces_entering(sample_batches(), "partner-api")
    changed = without_calls(changed, "mobile-bff", "inventory", "DELETE", "/reservations/{reservationId}")
    changed = without_calls(changed, "mobile-bff", "payment", "POST", "/refunds")
    changed_traces = write_batches(changed, root / "changed" / "shop.otlp.jsonl")
    history = root / "scans" / "shop.db"
    outs = (root / "first", root / "second", root / "changed-report")
    results = [
        scan(SAMPLE / "traces", outs[0], history),
        scan(SAMPLE / "traces", outs[1], history),
        scan(changed_traces.parent, outs[2], history),
    ]
    for result in results:
        assert result.exit_code == 0, result.output
    return Scanned(history, outs, (results[0].output, results[1].output, results[2].output))


def diff_json(*args: str | Path) -> dict[str, Any]:
    result = run("diff", "--json", *args)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_each_scan_says_where_it_was_recorded_and_what_changed(scanned: Scanned) -> None:
    first, second, changed = (o.splitlines() for o in scanned.outputs)
    assert f"recorded scan 1 in {scanned.history} (the first)" in first
    assert f"recorded scan 2 in {scanned.history}; since scan 1: no changes" in second
    assert (
        f"recorded scan 3 in {scanned.history}; since scan 2: orchestrators 0 added, 1 removed, 0 changed; "
        "flows 0 added, 1 removed, 1 changed; findings 2 new, 3 resolved" in changed
    )


def test_two_scans_of_the_same_traces_give_an_empty_diff(scanned: Scanned) -> None:
    assert diff_json("--history", scanned.history, "1", "2") == EMPTY
    first, second = (o / "findings.json" for o in scanned.outs[:2])
    assert diff_json(first, second) == EMPTY
    text = run("diff", "--history", scanned.history, "1", "2")
    assert (text.exit_code, text.stdout) == (0, "No changes from scan 1 to scan 2.\n")
    assert (
        "No changes since scan 1 (recorded 2026-03-02 06:00 UTC)."
        in (scanned.outs[1] / "summary.md").read_text()
    )


def test_the_changed_landscape_gives_the_expected_changes(scanned: Scanned) -> None:
    document = diff_json("--history", scanned.history)  # previous and latest
    assert document["orchestrators"] == {
        "added": [],
        "removed": [
            {
                "service": "partner-api",
                "changes": ["role"],
                "role": {"old": "orchestrator", "new": None},
                "hidden": {"old": False, "new": None},
                "score": {"old": document["orchestrators"]["removed"][0]["score"]["old"], "new": None},
            }
        ],
        "changed": [],
    }
    assert [(f["owner"], f["entry"]) for f in document["flows"]["removed"]] == [
        ("partner-api", "POST /partner/v1/orders")
    ]
    assert document["flows"]["removed"][0]["steps"] == [
        "payment POST /payments",
        "inventory POST /reservations",
        "shipping POST /shipments",
    ]
    assert document["flows"]["added"] == []
    (mobile,) = document["flows"]["changed"]
    assert (mobile["owner"], mobile["changes"]) == ("mobile-bff", ["compensations removed"])
    assert sorted((c["failed_step"], c["operation"]) for c in mobile["compensations"]["removed"]) == [
        ("payment POST /payments", "DELETE /reservations/{reservationId}"),
        ("shipping POST /shipments", "DELETE /reservations/{reservationId}"),
        ("shipping POST /shipments", "POST /refunds"),
    ]
    new = [(f["severity"], f["rule"], f["service"]) for f in document["findings"]["new"]]
    assert new == [("high", "uncompensated-failure", "mobile-bff")] * 2
    resolved = [(f["rule"], f["service"]) for f in document["findings"]["resolved"]]
    assert resolved == [
        ("uncompensated-failure", "partner-api"),
        ("duplicated-flow", "partner-api"),
        ("workflow-description", "partner-api"),
    ]
    # The two findings.json files tell the same story as the history.
    second, changed = (o / "findings.json" for o in scanned.outs[1:])
    assert diff_json(second, changed) == document
    assert diff_json("--history", scanned.history, "1", "latest") == document


def test_the_history_holds_what_each_scans_findings_json_holds(scanned: Scanned) -> None:

    with open_history(scanned.history, create=False, now=datetime.now(UTC)) as history:
        for scan_id, out in enumerate(scanned.outs, start=1):
            assert history.snapshot(scan_id) == read_findings_snapshot(out / "findings.json")


@pytest.mark.parametrize(("severity", "status"), [("high", 1), ("medium", 1), ("critical", 0), ("none", 0)])
def test_fail_on_new_gates_on_new_findings_only(scanned: Scanned, severity: str, status: int) -> None:
    result = run("diff", "--history", scanned.history, "--fail-on-new", severity)
    assert result.exit_code == status, result.output
    assert "+ [high] uncompensated-failure mobile-bff: When step 2" in result.stdout
    # The same findings in both scans are not new, whatever their severity.
    assert run("diff", "--history", scanned.history, "1", "2", "--fail-on-new", "info").exit_code == 0


def test_history_lists_the_scans(scanned: Scanned) -> None:
    listing = run("history", "--json", scanned.history)
    assert listing.exit_code == 0, listing.output
    scans = json.loads(listing.stdout)["scans"]
    # Four orchestrated flows and the event-driven flow orders' orders start (three and one later).
    assert [(s["id"], s["spans"], s["orchestrators"], s["flows"]) for s in scans] == [
        (1, 26_107, 4, 5),
        (2, 26_107, 4, 5),
        (3, 24_011, 3, 4),
    ]
    assert [s["findings"]["high"] for s in scans] == [3, 3, 4]
    assert {s["recorded_at"] for s in scans} == {"2026-03-02T06:00:00Z"}
    assert scans[0]["window"]["start"] == "2026-11-26T11:26:59Z"
    text = run("history", scanned.history).stdout.splitlines()
    assert text[0].split()[:2] == ["id", "recorded"] and len(text) == 4
    assert text[3].split()[0] == "3" and text[3].endswith("4 high, 5 medium, 3 info")


def test_the_reports_show_the_changes_and_the_trends(scanned: Scanned) -> None:
    html = (scanned.outs[2] / "report.html").read_text()
    assert '<section id="changes">' in html and html.count('<figure class="card trend-chart"') == 4
    assert "Scan 3 compared with scan 2" in html and "Recorded scans (3)" in html
    summary = (scanned.outs[2] / "summary.md").read_text()
    section = summary[summary.index("## Changes since the previous scan") : summary.index("## Findings")]
    assert "**Orchestrators** 0 added, 1 removed, 0 changed" in section
    assert "- **removed** orchestrator partner-api: no longer seen in the traces" in section
    assert "- **new** finding (high) uncompensated-failure mobile-bff:" in section
    assert len(section) < 4_000
    first = (scanned.outs[0] / "summary.md").read_text()
    assert "Scan 1 is the first scan of its history" in first
    # findings.json is the same with or without a history.
    document = json.loads((scanned.outs[0] / "findings.json").read_text())
    plain = run(
        "scan",
        SAMPLE / "traces",
        "--openapi",
        SAMPLE / "openapi",
        "--out",
        scanned.outs[0].parent / "plain",
    )
    assert json.loads((scanned.outs[0].parent / "plain" / "findings.json").read_text()) == document, (
        plain.output
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_unusable_history_stops_the_scan_before_anything_is_written(tmp_path: Path) -> None:
    foreign = tmp_path / "notes.db"
    foreign.write_text("not a database\n")
    before = _digest(foreign)
    result = scan(SAMPLE / "traces", tmp_path / "out", foreign)
    assert result.exit_code == 2
    assert (
        f"orchscan: {foreign} is not an SQLite file, so not an orchscan history; it was left as it is"
        in result.output
    )
    assert _digest(foreign) == before and not (tmp_path / "out").exists()
    for args in (["history", foreign], ["diff", "--history", foreign]):
        refused = run(*args)
        assert refused.exit_code == 2 and "not an SQLite file" in refused.output
    assert _digest(foreign) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "{tmp}/missing.db"], "no such history file"),
        (["diff"], "give two findings.json files, or --history PATH with two scans"),
        (["diff", "{tmp}/old.json", "{tmp}/new.json"], "cannot read"),
        (["diff", "{tmp}/v11.json", "{tmp}/v11.json"], "format 1.1, which has no finding fingerprints"),
    ],
    ids=["missing-history", "no-scans", "missing-files", "format-1.1"],
)
def test_bad_diff_and_history_arguments_exit_with_status_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    document = findings_document(shop_analysis())
    document["format_version"] = "1.1"
    (tmp_path / "v11.json").write_text(json.dumps(document))
    result = run(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_unknown_scans_are_named(scanned: Scanned) -> None:
    result = run("diff", "--history", scanned.history, "9", "latest")
    assert result.exit_code == 2
    assert f"{scanned.history}: no scan 9 (`orchscan history {scanned.history}` lists them)" in result.output


def test_an_older_history_is_migrated_by_a_newer_orchscan(scanned: Scanned, tmp_path: Path) -> None:
    old = read_findings_snapshot(scanned.outs[0] / "findings.json")
    path = write_v1_history(tmp_path / "v1.db", [old])
    listing = run("history", "--json", path)
    assert listing.exit_code == 0, listing.output
    (only,) = json.loads(listing.stdout)["scans"]
    assert (only["orchscan_version"], only["orchestrators"], only["findings"]["high"]) == ("0.0.9", 4, 3)
    assert scan(SAMPLE / "traces", tmp_path / "out", path, "--format", "json").exit_code == 0
    assert diff_json("--history", path) == EMPTY


@pytest.mark.slow
def test_concurrent_scans_into_one_history(tmp_path: Path) -> None:
    history = tmp_path / "shared.db"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchscan",
                "scan",
                str(SAMPLE / "traces"),
                "--openapi",
                str(SAMPLE / "openapi"),
                "--format",
                "json",
                "--out",
                str(tmp_path / f"out{i}"),
                "--history",
                str(history),
                "-j",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    recorded = sorted(
        line.split(" in ")[0]
        for out, _ in outputs
        for line in out.splitlines()
        if line.startswith("recorded scan")
    )
    assert recorded == ["recorded scan 1", "recorded scan 2", "recorded scan 3"]
    scans = json.loads(run("history", "--json", history).stdout)["scans"]
    assert [s["id"] for s in scans] == [1, 2, 3] and {s["spans"] for s in scans} == {26_107}
    assert diff_json("--history", history, "1", "2") == EMPTY == diff_json("--history", history, "2", "3")


def test_the_first_run_of_a_scheduled_gate_has_nothing_to_compare(tmp_path: Path) -> None:
    history = tmp_path / "h.db"
    record_scan(history, take_snapshot(shop_analysis()), recorded_at=datetime.now(UTC), orchscan_version="t")
    result = run("diff", "--history", history, "--fail-on-new", "info")
    assert (result.exit_code, result.stdout) == (0, "No changes from scan 1 to scan 1.\n")
    assert f"scan 1 is the only scan in {history}: nothing to compare" in result.stderr
    assert run("diff", "--json", "--history", history, "previous", "latest").exit_code == 0
    # Asked for by number, a scan that does not exist is still an error.
    assert run("diff", "--history", history, "0", "latest").exit_code == 2
