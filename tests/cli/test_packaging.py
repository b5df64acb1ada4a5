"""The built wheel carries its templates, static files and schemas: a scan runs from it alone."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from paths import ROOT, SAMPLE


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return next(out.glob("orchscan-*.whl"))


def test_wheel_ships_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "orchscan/reports/html/templates/report.html.j2",
        "orchscan/reports/html/static/report.js",
        "orchscan/reports/html/static/report.css",
        "orchscan/reports/schemas/findings.schema.json",
        "orchscan/reports/schemas/diff.schema.json",
        "orchscan/reports/html/templates/history.html.j2",
        "orchscan/reports/arazzo/schema/v1.0.json",
        "orchscan/reports/arazzo/schema/v1.1.json",
    ):
        assert required in names, required
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"orchscan"}


def test_wheel_declares_and_ships_its_licence(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    licences = [n for n in archive.namelist() if ".dist-info/" in n and n.rsplit("/", 1)[1] == "LICENSE"]
    assert len(licences) == 1
    assert archive.read(licences[0]) == (ROOT / "LICENSE").read_bytes()
    assert b"Apache License\n                           Version 2.0" in archive.read(licences[0])
    metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    lines = archive.read(metadata).decode().splitlines()
    assert "License: Apache-2.0" in lines
    assert "Classifier: License :: OSI Approved :: Apache Software License" in lines
    # The service graph is laid out by running Graphviz's `dot`; the `graphviz` wrapper is not used.
    assert not [line for line in lines if line.startswith("Requires-Dist: graphviz")]


def test_scan_renders_every_report_from_the_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    out = tmp_path / "report"
    # -I isolates from the working tree, so only the wheel's copy of orchscan can be imported;
    # third-party packages still come from this environment's site-packages.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import orchscan.reports as reports; "
        "assert reports.__file__.startswith(sys.argv[1]), reports.__file__; "
        "from orchscan.cli import main; "
        "sys.argv = ['orchscan', 'scan', sys.argv[2], '--openapi', sys.argv[3], '--out', sys.argv[4], "
        "'--history', sys.argv[5]]; main()"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            script,
            str(unpacked),
            str(SAMPLE / "traces"),
            str(SAMPLE / "openapi"),
            str(out),
            str(tmp_path / "history.db"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    html = (out / "report.html").read_text()
    assert "<svg" in html and "orchscan audit report" in html
    assert "Changes since the previous scan" in html and 'class="trend"' in html
    assert (out / "findings.json").stat().st_size > 0
    assert sorted(p.name for p in (out / "arazzo").glob("*.arazzo.yaml"))
