"""Independent linters accept every generated Arazzo document: Spectral (spectral:arazzo) and Redocly.

The tools come from npm (``ci-tools/package.json``, installed by ``.ci/run``). Under CI these
tests must run: a missing tool fails them there, and only skips them on a developer machine.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from arazzo_flows import order_flow, sock_shop_apis, write_draft
from click.testing import CliRunner
from paths import ROOT, SAMPLE

from orchscan.cli import main
from orchscan.reports.arazzo.checks import check_references, validate_arazzo

CI_TOOLS = ROOT / "ci-tools"
BIN = CI_TOOLS / "node_modules" / ".bin"


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        reason = f"{path} missing: run `npm ci` in {CI_TOOLS}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    """The Sock Shop order workflow written to disk with its source descriptions."""
    target = tmp_path / "arazzo" / "orders.arazzo.yaml"
    document = write_draft([order_flow()], sock_shop_apis(tmp_path / "specs"), target)
    assert validate_arazzo(document) == ()
    assert check_references(document, base=target.parent) == ()
    return target


def _spectral(*documents: Path) -> list[dict[str, Any]]:
    """Spectral's findings for documents under the spectral:arazzo ruleset."""
    done = subprocess.run(
        [
            str(_tool("spectral")),
            "lint",
            "-r",
            str(CI_TOOLS / ".spectral.yaml"),
            "-f",
            "json",
            "--quiet",
            *map(str, documents),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    results: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    return results


def test_spectral_arazzo_ruleset_finds_no_errors_or_warnings(generated: Path) -> None:
    results = _spectral(generated)
    # Severity 0 is error, 1 warning; hints (3) only recommend operationId over operationPath,
    # which Sock Shop's operationIds ("Get cart") cannot be used for.
    serious = [r for r in results if r["severity"] <= 1]
    assert serious == [], serious
    assert {r["code"] for r in results} <= {"arazzo-step-operationPath"}


def test_spectral_reports_a_broken_document(generated: Path) -> None:
    """The linter is really looking: a goto to a step that does not exist is an error."""
    document = yaml.safe_load(generated.read_text())
    document["workflows"][0]["steps"][5]["onFailure"][0]["stepId"] = "no-such-step"
    generated.write_text(yaml.safe_dump(document, sort_keys=False))
    results = _spectral(generated)
    assert any(r["severity"] == 0 for r in results), results


def test_redocly_lint_finds_no_problems(generated: Path) -> None:
    redocly = _tool("redocly")
    done = subprocess.run(
        [str(redocly), "lint", "--format", "json", str(generated)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=generated.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout[done.stdout.index("{") :])
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, report["problems"]


def _redocly(*documents: Path, ruleset: str = "recommended") -> list[dict[str, Any]]:
    """Redocly's JSON report per document (it prints one JSON object per file)."""
    done = subprocess.run(
        [str(_tool("redocly")), "lint", "--extends", ruleset, "--format", "json", *map(str, documents)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    text, reports, decoder = done.stdout[done.stdout.index("{") :], [], json.JSONDecoder()
    while text.strip():
        report, end = decoder.raw_decode(text.strip())
        reports.append(report)
        text = text.strip()[end:]
    assert len(reports) == len(documents), done.stdout + done.stderr
    return reports


@pytest.mark.parametrize("with_specs", [False, True], ids=["inferred-stand-ins", "copied-specs"])
def test_the_sample_scans_drafts_and_stand_ins_pass_both_linters(tmp_path: Path, with_specs: bool) -> None:
    """Drafts sharing stand-ins, or pointing at copied specs, as `orchscan scan` writes them."""
    args = ["scan", str(SAMPLE / "traces"), "--out", str(tmp_path), "--format", "arazzo"]
    result = CliRunner().invoke(main, args + (["--openapi", str(SAMPLE / "openapi")] if with_specs else []))
    assert result.exit_code == 0, result.output
    drafts = sorted((tmp_path / "arazzo").glob("*.arazzo.yaml"))
    stand_ins = sorted((tmp_path / "arazzo").glob("*.inferred.openapi.yaml"))
    assert len(drafts) == 4 and bool(stand_ins) is not with_specs
    assert [r for r in _spectral(*drafts) if r["severity"] <= 1] == []
    assert [r["problems"] for r in _redocly(*drafts) if r["problems"]] == []
    if stand_ins:
        # The structural rules only: a stand-in knows no servers, security or error responses.
        assert [r["problems"] for r in _redocly(*stand_ins, ruleset="spec") if r["problems"]] == []
