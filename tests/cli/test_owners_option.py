"""``scan --owners``: a bad owners file stops the scan before anything is read, with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from paths import SAMPLE

from orchscan.cli import main


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[orders, payment]\n", "expected a mapping of team names to services"),
        ("checkout: []\n", "team 'checkout' must list its services"),
        ("checkout: [orders\n", "malformed YAML"),
    ],
)
def test_an_unusable_owners_file_is_a_usage_error(tmp_path: Path, text: str, reason: str) -> None:
    owners = tmp_path / "owners.yaml"
    owners.write_text(text)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["scan", str(SAMPLE / "traces"), "--owners", str(owners), "--out", str(out)]
    )
    assert result.exit_code == 2
    assert f"orchscan: {owners}: " in result.output and reason in result.output
    assert not out.exists()  # refused before the analysis


def test_a_missing_owners_file_is_refused_by_the_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["scan", str(SAMPLE / "traces"), "--owners", str(tmp_path / "absent.yaml"), "--out", str(tmp_path)],
    )
    assert result.exit_code == 2 and "absent.yaml" in result.output


def test_teams_come_to_a_scan_of_kept_records_as_to_a_scan_of_spans(tmp_path: Path) -> None:
    owners = [
        "--owners",
        str(SAMPLE / "owners.yaml"),
        "--format",
        "json",
        "--openapi",
        str(SAMPLE / "openapi"),
    ]
    runner = CliRunner()
    spans = runner.invoke(
        main,
        [
            "scan",
            str(SAMPLE / "traces"),
            *owners,
            "--out",
            str(tmp_path / "spans"),
            "--keep-records",
            str(tmp_path / "kept"),
        ],
    )
    assert spans.exit_code == 0, spans.output
    records = runner.invoke(
        main, ["scan", "--records", str(tmp_path / "kept"), *owners, "--out", str(tmp_path / "records")]
    )
    assert records.exit_code == 0, records.output
    from_spans = (tmp_path / "spans" / "findings.json").read_text()
    assert (tmp_path / "records" / "findings.json").read_text() == from_spans
    assert '"rule": "cross-team-orchestration"' in from_spans and '"kind": "choreographed"' in from_spans
