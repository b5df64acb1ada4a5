"""The output folder is one set: real scans in subprocesses, interrupted, run side by side, refused.

A reader of ``--out`` must see the previous set or the new one, never a mix, and never a
temporary file; problems with the folder must be reported before any analysis.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from paths import SAMPLE

from orchscan.exits import EXIT_INPUT, EXIT_OK, EXIT_TERMINATED

#: An interrupted scan cleans up, says so, then ends by SIGINT itself (shells report 130).
INTERRUPTED = -signal.SIGINT

TRACES = str(SAMPLE / "traces")
SPECS = str(SAMPLE / "openapi")


def orchscan(*args: str, epoch: int = 1) -> subprocess.Popen[str]:
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    return subprocess.Popen(
        [sys.executable, "-m", "orchscan", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run(*args: str, epoch: int = 1) -> subprocess.CompletedProcess[str]:
    process = orchscan(*args, epoch=epoch)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def staging(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if ".orchscan-" in p.name)


def _wait_for_staging(parent: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not staging(parent) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


def _generated(files: dict[str, bytes]) -> set[str]:
    """The 'Generated ...' stamps of the set's Markdown and HTML (one per scan: they must agree)."""
    stamps = set()
    for name in ("summary.md", "report.html"):
        text = files[name].decode()
        start = text.index("Generated ") if "Generated " in text else text.index("generated ")
        stamps.add(text[start + 10 : start + 29])
    return stamps


@pytest.mark.parametrize(
    ("sent", "status", "word"),
    [(signal.SIGTERM, EXIT_TERMINATED, "terminated"), (signal.SIGINT, INTERRUPTED, "interrupted")],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signal_during_a_scan_leaves_the_previous_set_whole(
    tmp_path: Path, sent: signal.Signals, status: int, word: str
) -> None:
    out = tmp_path / "out"
    assert run("scan", TRACES, "--openapi", SPECS, "--out", str(out), "-j", "1").returncode == EXIT_OK
    previous = snapshot(out)
    kept = 0
    for attempt, delay in enumerate((0.0, 0.5, 1.0, 1.5), start=2):
        process = orchscan("scan", TRACES, "--openapi", SPECS, "--out", str(out), "-j", "1", epoch=attempt)
        _wait_for_staging(tmp_path, process)
        time.sleep(delay)
        process.send_signal(sent)
        _, stderr = process.communicate(timeout=120)
        now = snapshot(out)
        assert staging(tmp_path) == [], "a staging folder was left behind"
        # Stopped or not, the folder holds one whole set: the previous one, or the new one when
        # the signal came after the swap (and is then ignored: the scan's outcome stands).
        assert process.returncode in (status, EXIT_OK), stderr
        assert "Traceback" not in stderr
        if process.returncode == status:
            assert f"orchscan: {word}" in stderr
            kept += now == previous
        if now != previous:
            assert set(now) == set(previous) and len(_generated(now)) == 1
            previous = now
    assert kept >= 1, "no interrupted scan left the previous set in place"


def test_concurrent_scans_into_one_folder_leave_one_whole_set(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sets = ({"findings.json", "summary.md"}, {"findings.json", "results.sarif", "junit.xml"})
    for _ in range(2):
        first = orchscan("scan", TRACES, "--out", str(out), "--format", "json,markdown", "-j", "1")
        second = orchscan("scan", TRACES, "--out", str(out), "--format", "json,sarif,junit", "-j", "1")
        for process in (first, second):
            _, stderr = process.communicate(timeout=300)
            assert process.returncode == EXIT_OK, stderr
        assert set(snapshot(out)) in sets
        assert staging(tmp_path) == []


def test_leftovers_of_a_killed_scan_are_removed_but_a_live_scans_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    dead = tmp_path / ".out.orchscan-dead0000"
    (dead / "arazzo").mkdir(parents=True)
    (dead / "findings.json").write_text("{}")
    live = tmp_path / ".out.orchscan-live0000"
    live.mkdir()
    handle = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        result = run("scan", TRACES, "--out", str(out), "--format", "json")
        assert result.returncode == EXIT_OK, result.stderr
        assert not dead.exists() and live.is_dir()
    finally:
        os.close(handle)
    assert set(snapshot(out)) == {"findings.json"}


def _refused(tmp_path: Path, out: Path | str, *prefix: str) -> str:
    # The input is junk: had the traces been read first, the message would be about them.
    junk = tmp_path / "junk.json"
    junk.write_text('{"title": "not a trace"}')
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "orchscan", "scan", str(junk), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == EXIT_INPUT, result.stderr
    assert "unrecognised" not in result.stderr and "Traceback" not in result.stderr
    return result.stderr


def test_output_problems_are_reported_before_reading_the_traces(tmp_path: Path) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("x")
    assert f"{afile}/out: {afile} is a file, not a folder" in _refused(tmp_path, afile / "out")
    assert f"{afile}: exists and is not a folder" in _refused(tmp_path, afile)
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    message = _refused(tmp_path, foreign)
    assert "holds files orchscan did not write (notes.txt)" in message
    assert (foreign / "notes.txt").read_text() == "mine"
    assert "/proc/orchscan/out: cannot create /proc/orchscan" in _refused(tmp_path, "/proc/orchscan/out")


def test_a_read_only_parent_is_refused_before_reading(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    junk = tmp_path / "junk.json"
    junk.write_text('{"title": "not a trace"}')
    command = [sys.executable, "-m", "orchscan", "scan", str(junk), "--out", str(locked / "out")]
    if os.geteuid() == 0:
        # Permissions do not stop root: make the folder a read-only file system in a private mount namespace.
        script = f'mount --bind {locked} {locked} && mount -o remount,ro,bind {locked} && exec "$@"'
        command = ["unshare", "--mount", "sh", "-c", script, "sh", *command]
        reason = "Read-only file system"
    else:
        locked.chmod(0o555)
        reason = "Permission denied"
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        locked.chmod(0o755)
    assert result.returncode == EXIT_INPUT, result.stderr
    assert f"{locked}/out: cannot write in {locked}: {reason}" in result.stderr
    assert "unrecognised" not in result.stderr and list(locked.iterdir()) == []


@pytest.mark.parametrize(
    ("sent", "status"),
    [(signal.SIGINT, INTERRUPTED), (signal.SIGTERM, EXIT_TERMINATED)],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_to_the_whole_process_group_ends_the_workers_quietly(
    tmp_path: Path, sent: signal.Signals, status: int
) -> None:
    """Ctrl-C in a terminal reaches the parsing and reducing workers too: one line, not a traceback each."""
    out = tmp_path / "out"
    rendition = str(SAMPLE / "renditions" / "shop.otlp.jsonl.gz")
    # While parsing, then while reducing partitions in the workers.
    for delay in (0.5, 2.0, 3.0):
        process = subprocess.Popen(
            [sys.executable, "-m", "orchscan", "scan", rendition, "--openapi", SPECS, "--out", str(out),
             "-j", "2", "--memory-limit", "64M"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        _wait_for_staging(tmp_path, process)
        time.sleep(delay)
        os.killpg(process.pid, sent)
        _, stderr = process.communicate(timeout=120)
        if process.returncode == EXIT_OK:
            continue  # finished first on a fast machine
        assert process.returncode == status, stderr
        assert stderr.strip().splitlines()[-1].startswith("orchscan: ") and "Traceback" not in stderr
        assert staging(tmp_path) == [] and not out.exists()
