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
from paths import ROOT

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


def _spectral(document: Path) -> list[dict[str, Any]]:
    """Spectral's findings for one document under the spectral:arazzo ruleset."""
    done = subprocess.run(
        [
            str(_tool("spectral")),
            "lint",
            "-r",
            str(CI_TOOLS / ".spectral.yaml"),
            "-f",
            "json",
            "--quiet",
            str(document),
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
