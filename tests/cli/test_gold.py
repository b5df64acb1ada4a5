"""Golden files: the sample landscape's findings.json, summary.md and one Arazzo draft, byte for byte.

A change that moves any of them shows here as a diff to review. When the change is intended,
``make update-gold`` rewrites the files in ``tests/gold/``; commit them with the change. On a
mismatch the actual files are written to ``tests/artifacts/gold/`` for a side-by-side look.
"""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from paths import ROOT, TESTS

from orchscan.cli import main

GOLD = TESTS / "gold" / "sample"
ACTUAL = TESTS / "artifacts" / "gold"
#: The compared outputs, relative to the scan's output folder.
FILES = ("findings.json", "summary.md", "arazzo/orders.arazzo.yaml")
UPDATE = os.environ.get("ORCHSCAN_UPDATE_GOLD") == "1"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gold") / "report"
    # Relative inputs from the repository root, as the README's demo runs: findings.json keeps
    # paths as given, and golden files must not hold this machine's folders.
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(
            main,
            [
                "scan",
                "sample_traces/traces",
                "--openapi",
                "sample_traces/openapi",
                "--out",
                str(out),
                "-j",
                "1",
            ],
            env={"SOURCE_DATE_EPOCH": "1700000000"},
        )
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("name", FILES)
def test_the_sample_reports_match_their_golden_files(scanned: Path, name: str) -> None:
    actual = (scanned / name).read_text(encoding="utf-8")
    gold = GOLD / name
    if UPDATE:
        gold.parent.mkdir(parents=True, exist_ok=True)
        gold.write_text(actual, encoding="utf-8")
        return
    expected = gold.read_text(encoding="utf-8")
    if actual != expected:
        kept = ACTUAL / name
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(scanned / name, kept)
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                str(gold),
                str(kept),
                n=2,
            )
        )
        pytest.fail(f"{name} differs from its golden file (make update-gold if intended):\n{diff[:6000]}")
