"""Exit statuses of the real command, as CI sees them, and the README's table of them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from paths import ROOT, SAMPLE

from orchscan import exits

TRACES = str(SAMPLE / "traces")

#: Patches the analysis to fail as a bug would, then runs the real command line.
CRASH = (
    "import sys, orchscan.scanning as scanning\n"
    "def broken(*args, **kwargs):\n"
    "    raise RuntimeError('\\x1b[2Jboom')\n"
    "scanning.scan_traces = broken\n"
    "from orchscan.cli import main\n"
    "sys.argv = ['orchscan', *sys.argv[1:]]\n"
    "main()\n"
)


def orchscan(*args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "orchscan", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_clean_findings_and_bad_input_have_their_own_status(tmp_path: Path) -> None:
    clean = orchscan(
        "scan", TRACES, "--out", str(tmp_path / "a"), "--format", "json", "--fail-on", "critical"
    )
    assert clean.returncode == exits.EXIT_OK, clean.stderr
    gated = orchscan("scan", TRACES, "--out", str(tmp_path / "b"), "--format", "json", "--fail-on", "high")
    assert gated.returncode == exits.EXIT_FINDINGS
    nan = orchscan("scan", TRACES, "--out", str(tmp_path / "c"), "--set", "roles.hub_z=nan")
    assert nan.returncode == exits.EXIT_INPUT
    assert "orchscan: roles.hub_z: expected a finite number, got 'nan'" in nan.stderr
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2]")
    unreadable = orchscan("scan", str(junk), "--out", str(tmp_path / "d"))
    assert unreadable.returncode == exits.EXIT_INPUT and "junk.json" in unreadable.stderr
    usage = orchscan("scan", TRACES, "--format", "pdf", "--out", str(tmp_path / "e"))
    assert usage.returncode == exits.EXIT_INPUT and "unknown report format(s) pdf" in usage.stderr
    assert not (tmp_path / "c").exists() and not (tmp_path / "e").exists()


def test_an_internal_error_says_where_its_traceback_went(tmp_path: Path) -> None:
    result = orchscan("scan", TRACES, "--out", str(tmp_path / "out"), script=CRASH)
    assert result.returncode == exits.EXIT_INTERNAL
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert "orchscan: internal error: RuntimeError: \\x1b[2Jboom" in lines
    (where,) = re.findall(r"the traceback is in (\S+) ", result.stderr)
    crash = Path(where)
    try:
        text = crash.read_text()
        assert text.startswith("Traceback") and "RuntimeError" in text and "broken" in text
    finally:
        crash.unlink()
    assert not (tmp_path / "out").exists()


def test_debug_prints_the_traceback_instead(tmp_path: Path) -> None:
    result = orchscan("--debug", "scan", TRACES, "--out", str(tmp_path / "out"), script=CRASH)
    assert result.returncode == exits.EXIT_INTERNAL
    assert result.stderr.startswith("Traceback") and "in broken" in result.stderr
    assert "the traceback is in" not in result.stderr


def test_the_readme_lists_every_exit_status() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Exit codes") :]
    table = dict(
        re.findall(r"^\| (\d+) \| (.+) \|$", section[: section.index("\n\n", section.index("|"))], re.M)
    )
    codes = {value for name, value in vars(exits).items() if name.startswith("EXIT_")}
    assert {int(code) for code in table} == codes


def test_a_report_streamed_to_a_pipe_arrives_whole_before_the_process_ends() -> None:
    """The process ends without the interpreter's teardown once the command has run (see
    ``orchscan.entry``): what it wrote to standard output must still all be there."""
    streamed = orchscan("scan", TRACES, "--out", "-", "--format", "json")
    assert streamed.returncode == exits.EXIT_OK, streamed.stderr
    assert json.loads(streamed.stdout)["flows"]


#: Writes to buffered standard output, then ends the process as ``orchscan.entry`` does.
ENDS_NOW = (
    "import sys\n"
    "from orchscan.entry import _end_now\n"
    "sys.stdout.write('x' * 5000 + 'end')\n"
    "_end_now(sys.argv[1] if not sys.argv[1].isdigit() else int(sys.argv[1]))\n"
)


def test_ending_at_once_flushes_the_streams_and_keeps_the_status() -> None:
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}

    def end(code: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", ENDS_NOW, code]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=buffered)

    ended = end("3")
    assert (ended.returncode, ended.stdout) == (3, "x" * 5000 + "end")
    said = end("no luck")
    assert (said.returncode, said.stderr) == (1, "no luck\n")
