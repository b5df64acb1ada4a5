"""Request records kept by one scan (--keep-records) make the same reports without the spans (--records)."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from landscape import SAGA_MIX, Noise, add_noise, build_table
from landscape import _messages as otlp_messages
from paths import ROOT, SAMPLE

from orchscan.cli import main
from orchscan.records import RECORDS_VERSION, SCHEMAS

SPECS = ["--openapi", str(SAMPLE / "openapi")]


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sample scanned once, its reports and its records (in units of one worker's share)."""
    base = tmp_path_factory.mktemp("kept")
    out, records = base / "out", base / "records"
    result = CliRunner().invoke(
        main,
        [
            "scan",
            str(SAMPLE / "traces"),
            *SPECS,
            "--out",
            str(out),
            "--keep-records",
            str(records),
            "--format",
            "json,markdown",
            "-j",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    return out, records


def _scan(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["scan", *arguments])
    return result.exit_code, result.output


def test_reports_from_records_equal_the_reports_from_spans(kept: tuple[Path, Path], tmp_path: Path) -> None:
    out, records = kept
    code, output = _scan(
        "--records", str(records), *SPECS, "--out", str(tmp_path), "--format", "json,markdown"
    )
    assert code == 0, output
    for name in ("findings.json", "summary.md"):
        assert (tmp_path / name).read_text() == (out / name).read_text(), name
    manifest = json.loads((records / "manifest.json").read_text())
    assert manifest["version"] == RECORDS_VERSION and manifest["units"] >= 1
    assert sorted(p.name for p in records.iterdir() if p.is_dir()) == sorted([*SCHEMAS, "units"])


def test_records_take_other_landscape_thresholds(kept: tuple[Path, Path], tmp_path: Path) -> None:
    _, records = kept
    code, output = _scan(
        "--records", str(records), "--out", str(tmp_path), "--format", "json", "--set", "roles.hub_z=50"
    )
    assert code == 0, output
    document = json.loads((tmp_path / "findings.json").read_text())
    assert not [s for s in document["services"] if s["role"] == "orchestrator"]


def test_records_refuse_another_reduction_threshold(kept: tuple[Path, Path], tmp_path: Path) -> None:
    _, records = kept
    code, output = _scan(
        "--records", str(records), "--out", str(tmp_path), "--set", "calls.overlap_tolerance_ms=3"
    )
    assert code == 2
    assert "calls.overlap_tolerance_ms=1.0 (now 3.0)" in output
    assert not (tmp_path / "findings.json").exists()


def test_unusable_records_folders_are_input_errors(kept: tuple[Path, Path], tmp_path: Path) -> None:
    _, records = kept
    empty = tmp_path / "empty"
    empty.mkdir()
    code, output = _scan("--records", str(empty), "--out", str(tmp_path / "a"))
    assert code == 2 and "no manifest.json" in output
    other = tmp_path / "other"
    other.mkdir()
    manifest = json.loads((records / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "version": RECORDS_VERSION + 1}))
    code, output = _scan("--records", str(other), "--out", str(tmp_path / "b"))
    assert code == 2 and f"records version {RECORDS_VERSION + 1}" in output
    (other / "manifest.json").write_text(json.dumps({**manifest, "version": 1}))
    code, output = _scan("--records", str(other), "--out", str(tmp_path / "older"))
    assert code == 2 and "records version 1 (written by an older orchscan" in output
    assert "--keep-records" in output
    (other / "manifest.json").write_text("{not json")
    code, output = _scan("--records", str(other), "--out", str(tmp_path / "c"))
    assert code == 2 and "unreadable" in output


def test_keeping_records_needs_a_new_or_empty_folder(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep me")
    code, output = _scan(str(SAMPLE / "traces"), "--out", str(tmp_path / "out"), "--keep-records", str(taken))
    assert code == 2 and "not empty" in output
    assert sorted(p.name for p in taken.iterdir()) == ["mine.txt"]


def test_traces_or_records_not_both_nor_neither(kept: tuple[Path, Path], tmp_path: Path) -> None:
    _, records = kept
    assert _scan(str(SAMPLE / "traces"), "--records", str(records), "--out", str(tmp_path))[0] == 2
    assert _scan("--out", str(tmp_path))[0] == 2


def test_the_records_document_describes_every_table_and_column() -> None:
    text = (ROOT / "docs" / "records.md").read_text()
    documented: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in re.findall(r"^\| ([a-z_]+) \| ([a-z_]+) \| ([a-z0-9<>_: ]+) \|", text, re.M):
        if table != "table":  # the header row
            documented.setdefault(table, []).append((column, kind))
    written = {
        name: [(field.name, re.sub(r"<\w+: ", "<", str(field.type))) for field in schema]
        for name, schema in SCHEMAS.items()
    }
    assert documented == written


def test_records_of_a_noisy_landscape_judge_as_its_spans(tmp_path: Path) -> None:
    """Lost spans leave fragments, lost answers and requests with holes, and sagas fail and
    compensate; the records keep them all."""
    table = add_noise(build_table(12_000, mix=SAGA_MIX), Noise(dropped=0.03, duplicated=0.01, seed=9))
    traces = tmp_path / "noisy.binpb"
    with traces.open("wb") as out:
        for message in otlp_messages(table):
            out.write(struct.pack(">I", len(message)) + message)
    records, first, second = tmp_path / "records", tmp_path / "spans", tmp_path / "records-out"
    options = ("--format", "json,markdown")
    code, output = _scan(str(traces), "--out", str(first), "--keep-records", str(records), *options)
    assert code == 0, output
    code, output = _scan("--records", str(records), "--out", str(second), *options)
    assert code == 0, output
    for name in ("findings.json", "summary.md"):
        assert (second / name).read_text() == (first / name).read_text(), name
    document = json.loads((first / "findings.json").read_text())
    assert document["input"]["fragments"]["kept"] > 0 and document["input"]["fragments"]["attached"] > 0
    assert any(flow["holes"] for flow in document["flows"])
    assert any(flow["failure"]["compensations"] for flow in document["flows"])
    assert any(flow["failure"]["retries"] for flow in document["flows"])
    assert {"missing-idempotency", "uncompensated-failure"} <= {
        finding["rule"] for finding in document["findings"]
    }
