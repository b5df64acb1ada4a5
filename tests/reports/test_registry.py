"""Every report renders from one complete analysis, whichever formats a scan writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from paths import SAMPLE

from orchscan.cli import main
from orchscan.reports.arazzo import draft_set
from orchscan.reports.registry import REPORTS


def _scan(out: Path, *extra: str) -> dict[str, bytes]:
    args = ["scan", str(SAMPLE / "traces"), "--openapi", str(SAMPLE / "openapi"), "--out", str(out), *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every file of a scan that writes every format (the CI formats are not written by default)."""
    return _scan(tmp_path_factory.mktemp("all") / "out", "--format", ",".join(REPORTS))


@pytest.mark.parametrize("name", list(REPORTS))
def test_a_format_written_alone_is_byte_identical_to_the_full_scans(
    everything: dict[str, bytes], tmp_path: Path, name: str
) -> None:
    alone = _scan(tmp_path / "out", "--format", name)
    assert alone
    assert {path: everything[path] for path in alone} == alone


def test_findings_json_alone_names_the_drafts_without_building_them(
    everything: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a draft was built for findings.json alone")

    monkeypatch.setattr(draft_set, "build_arazzo", refuse)
    monkeypatch.setattr(draft_set, "plan_apis", refuse)
    alone = _scan(tmp_path / "out", "--format", "json")
    assert b'.arazzo.yaml"' in alone["findings.json"]
    assert alone["findings.json"] == everything["findings.json"]


def test_the_html_report_alone_shows_every_draft(everything: dict[str, bytes], tmp_path: Path) -> None:
    html = _scan(tmp_path / "out", "--format", "html")["report.html"].decode()
    drafts = [p for p in everything if p.endswith(".arazzo.yaml")]
    assert len(drafts) == 4
    assert html.count("Draft Arazzo workflow") == len(drafts)
