"""A call run in a forked child beside the caller: its result, its failures, and its end."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from orchscan.beside import beside
from orchscan.engines.local import WorkerError


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_the_call_runs_in_a_child_while_the_caller_works(tmp_path: Path) -> None:
    # Inherited data, not sent: a frame the child sums as the caller holds it.
    frame = pd.DataFrame({"service": ["a", "b", "a"] * 1000, "calls": range(3000)})
    started = tmp_path / "started"

    def call() -> tuple[int, dict[str, int]]:
        started.touch()
        return os.getpid(), frame.groupby("service")["calls"].sum().to_dict()

    with beside(call, jobs=2) as pending:
        _wait_for(started)  # the child ran before anyone asked for its result
        child, sums = pending.result()
    assert child != os.getpid()
    assert sums == frame.groupby("service")["calls"].sum().to_dict()
    assert not multiprocessing.active_children()


def test_with_one_job_the_call_runs_in_the_caller_when_its_result_is_asked_for(tmp_path: Path) -> None:
    ran = tmp_path / "ran"

    def call() -> int:
        ran.touch()
        return os.getpid()

    with beside(call, jobs=1) as pending:
        assert not ran.exists() and not multiprocessing.active_children()
        assert pending.result() == os.getpid()


def test_an_error_in_the_child_is_raised_in_the_caller_with_its_traceback() -> None:
    def call() -> None:
        raise ValueError("no chains to stitch")

    with beside(call, jobs=2) as pending, pytest.raises(WorkerError) as raised:
        pending.result()
    assert "ValueError: no chains to stitch" in str(raised.value)
    assert "Traceback" in str(raised.value)


@pytest.mark.parametrize(
    ("end", "reason"),
    [(lambda: os._exit(7), "exit status 7"), (lambda: os.kill(os.getpid(), signal.SIGKILL), "-9")],
)
def test_a_child_that_ends_without_an_answer_is_an_error_not_a_hang(
    end: Callable[[], None], reason: str
) -> None:
    with beside(end, jobs=2) as pending, pytest.raises(WorkerError, match="ended unexpectedly") as raised:
        pending.result()
    assert reason in str(raised.value)


def test_leaving_the_block_without_the_result_ends_the_child() -> None:
    def call() -> None:
        time.sleep(120)

    with pytest.raises(KeyError), beside(call, jobs=2):
        (child,) = multiprocessing.active_children()
        raise KeyError("the caller failed")
    assert not child.is_alive() and child.exitcode == -signal.SIGKILL
